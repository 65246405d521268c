# Network carry-over: a node started by `homestaker kexec` comes up with the
# network the machine had before the jump, so it stays reachable over SSH
# (a Hetzner-style static /32 with an on-link gateway and static IPv6 via
# fe80::1 included).
#
# `homestaker kexec` appends an archive to the initrd that holds
# /homestaker/carry/network.json. Files of the initrd vanish at switch_root,
# so stage 1 copies the folder to /run/homestaker/carry: /run is a tmpfs
# that stage 1 mounts and moves into the final root (scripted stage 1:
# `mount --move /run $targetRoot/run` in stage-1-init.sh; systemd stage 1
# keeps /run across switch-root too). Early in stage 2, before
# systemd-networkd starts, network-carry.sh with network-carry.jq turns the
# file into /run/systemd/network/10-homestaker-carry-<n>.network: matched by
# MAC address, DHCP on, every static address and carried route kept.
#
# Without the file (an ISO boot, a plain reboot) nothing is written and the
# default below applies: DHCP on every ethernet interface. The files in /run
# sort before NixOS's 99-ethernet-default-dhcp.network, so they win for the
# interfaces they name; other interfaces still get DHCP.
{ config, lib, pkgs, ... }:
let
  carryDir = "/run/homestaker/carry";
  initrdDir = "/homestaker/carry";
in
{
  networking.useNetworkd = true;
  # The default when nothing was carried over: DHCP on every ethernet interface.
  networking.useDHCP = lib.mkDefault true;
  # One reachable interface is enough; a carried interface without a cable
  # must not hold the boot for minutes.
  systemd.network.wait-online.anyInterface = lib.mkDefault true;

  # Scripted stage 1 (stage-1-init.sh).
  boot.initrd.postMountCommands = lib.mkIf (!config.boot.initrd.systemd.enable) ''
    if [ -f ${initrdDir}/network.json ]; then
      mkdir -p -m 0700 ${carryDir}
      cp -R ${initrdDir}/. ${carryDir}/
    fi
  '';

  # systemd stage 1, which does not run postMountCommands.
  boot.initrd.systemd.services.homestaker-carry = lib.mkIf config.boot.initrd.systemd.enable {
    description = "Keep the network settings homestaker kexec carried over";
    wantedBy = [ "initrd.target" ];
    before = [ "initrd.target" ];
    unitConfig.ConditionPathExists = "${initrdDir}/network.json";
    serviceConfig.Type = "oneshot";
    script = ''
      mkdir -p -m 0700 ${carryDir}
      cp -R ${initrdDir}/. ${carryDir}/
    '';
  };

  systemd.services.homestaker-network-carry = {
    description = "Network settings carried over by homestaker kexec";
    wantedBy = [ "systemd-networkd.service" ];
    before = [ "systemd-networkd.service" "network-pre.target" ];
    wants = [ "network-pre.target" ];
    unitConfig = {
      ConditionPathExists = "${carryDir}/network.json";
      # systemd-networkd starts early; waiting for basic.target would hold it back.
      DefaultDependencies = false;
    };
    serviceConfig = {
      Type = "oneshot";
      RemainAfterExit = true;
      # Store paths and these folders have no spaces: no quoting needed.
      ExecStart = lib.concatStringsSep " " [
        "${pkgs.bash}/bin/bash"
        "${./network-carry.sh}"
        "${pkgs.jq}/bin/jq"
        "${./network-carry.jq}"
        "${carryDir}/network.json"
        "/run/systemd/network"
      ];
    };
  };
}
