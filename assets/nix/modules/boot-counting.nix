# Boot counting for the boot entry on the data disk (UEFI). homestaker
# writes each new generation's systemd-boot entry with a counter of tries
# (loader/entries/homestaker-0002+3.conf) and keeps the previous, booted
# generation without one. systemd-boot takes a try off each time it starts
# the entry; once none is left it sorts the entry last and boots the
# fallback, so a generation that never completes a boot (a kernel panic, a
# hang that the provider's reset or a watchdog ends) gives the node back to
# the previous one by itself. This module makes a completed boot count:
#
# - systemd-bless-boot.service and boot-complete.target are upstream units
#   NixOS installs (nixos/modules/system/boot/systemd.nix, the first when
#   systemd is built with its boot loader); systemd-bless-boot-generator
#   pulls the service in when systemd-boot started a counted entry (the
#   LoaderBootCountPath EFI variable), and after boot-complete.target it
#   renames the entry to homestaker-0002.conf on the ESP. nixpkgs'
#   boot.loader.systemd-boot.bootCounting is for entries NixOS writes
#   itself; the node's are homestaker's, so it stays off.
# - The ESP is mounted at /boot with nofail (disko.nix), so local-fs.target
#   does not wait for it: the service waits for the mount itself.
# - The boot is complete once multi-user.target is reached with sshd
#   running, so that the staker can reach the node, and the data disk
#   mounted.
{ config, lib, pkgs, ... }:
let
  boot = "/boot";
  dataDisk = config.homestaker.dataDisk.mountPoint;
in
{
  config = lib.mkIf pkgs.stdenv.hostPlatform.isx86_64 {
    assertions = [{
      assertion = config.systemd.package.withBootloader or true;
      message = "homestaker's boot entry needs systemd built with its boot loader (systemd-bless-boot.service marks a completed boot)";
    }];

    systemd.services.systemd-bless-boot.unitConfig.RequiresMountsFor = [ boot ];

    systemd.targets.boot-complete = {
      requires = lib.optional config.services.openssh.enable "sshd.service";
      after = [ "multi-user.target" ] ++ lib.optional config.services.openssh.enable "sshd.service";
      unitConfig.RequiresMountsFor = [ dataDisk ];
    };
  };
}
