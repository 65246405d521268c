# STUB of nixpkgs' nixos/modules/installer/cd-dvd/iso-image.nix, for
# homestaker's evaluation tests only: the options it declares and the ISO it
# makes, as a fake derivation named after the image's file name.
{ config, lib, pkgs, ... }:
{
  options.isoImage = {
    volumeID = lib.mkOption { type = lib.types.str; default = "nixos-iso"; };
    makeEfiBootable = lib.mkOption { type = lib.types.bool; default = false; };
    makeUsbBootable = lib.mkOption { type = lib.types.bool; default = false; };
    makeBiosBootable = lib.mkOption { type = lib.types.bool; default = true; };
    squashfsCompression = lib.mkOption { type = lib.types.nullOr lib.types.str; default = "zstd -Xcompression-level 19"; };
    contents = lib.mkOption { type = lib.types.listOf lib.types.attrs; default = [ ]; };
    storeContents = lib.mkOption { type = lib.types.listOf lib.types.anything; default = [ ]; };
  };
  options.image = {
    baseName = lib.mkOption { type = lib.types.str; default = "nixos"; };
    extension = lib.mkOption { type = lib.types.str; default = "iso"; };
    fileName = lib.mkOption { type = lib.types.str; default = "${config.image.baseName}.${config.image.extension}"; };
    filePath = lib.mkOption { type = lib.types.str; default = "iso/${config.image.fileName}"; };
  };
  config.system.build.isoImage = pkgs.writeText config.image.filePath "";
}
