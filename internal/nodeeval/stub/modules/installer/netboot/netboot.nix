# STUB of nixpkgs' nixos/modules/installer/netboot/netboot.nix, for
# homestaker's evaluation tests only: the options it declares and the build
# outputs it makes, as fake derivations.
{ config, lib, pkgs, ... }:
{
  options.netboot = {
    squashfsCompression = lib.mkOption { type = lib.types.str; default = "zstd -Xcompression-level 19"; };
    storeContents = lib.mkOption { type = lib.types.listOf lib.types.package; default = [ ]; };
  };
  config.system.build = {
    kexecTree = pkgs.linkFarm "kexec-tree" [ ];
    netbootRamdisk = pkgs.writeText "initrd" "";
    squashfsStore = pkgs.writeText "squashfs" config.netboot.squashfsCompression;
  };
}
