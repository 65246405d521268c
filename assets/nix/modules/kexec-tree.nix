# The node as a kexec tree: the whole system, its Nix store packed into the
# initrd as a squashfs, runs from RAM. nixpkgs' netboot module provides
# config.system.build.kexecTree (kernel, initrd, kexec-boot script,
# netboot.ipxe); `homestaker kexec` loads the same kernel and initrd after
# checking RAM, SSH keys and the network.
#
# On x86_64 the system also carries the boot loader for the boot entry on
# the data disk (boot-loader.nix) at /etc/homestaker/boot-loader: homestaker
# finds it through the kexec tree's init= path after a build, and a rebuild
# on the node finds it there too. boot-counting.nix marks a boot from that
# entry complete, so that systemd-boot keeps the new generation.
{ lib, pkgs, modulesPath, ... }:
{
  imports = [ (modulesPath + "/installer/netboot/netboot.nix") ./boot-counting.nix ];

  netboot.squashfsCompression = "zstd -Xcompression-level 6";
  boot.initrd.compressor = "zstd";

  environment.etc = lib.mkIf pkgs.stdenv.hostPlatform.isx86_64 {
    "homestaker/boot-loader".source = pkgs.callPackage ./boot-loader.nix { };
  };
}
