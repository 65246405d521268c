# STUB of nixpkgs' nixos/modules/installer/cd-dvd/iso-image.nix (NixOS 26.05),
# for homestaker's evaluation tests only: the options it declares and the ISO
# it makes, as a fake derivation named after the file it writes. As in
# nixpkgs, the file is iso/<image.baseName>.iso whatever image.fileName says,
# and isoImage.isoName no longer exists.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
in
{
  options.isoImage = {
    volumeID = mkOption { type = types.str; default = "nixos-26.05-x86_64"; };
    edition = mkOption { type = types.str; default = ""; };
    makeEfiBootable = mkOption { type = types.bool; default = false; };
    makeBiosBootable = mkOption { type = types.bool; default = true; };
    makeUsbBootable = mkOption { type = types.bool; default = false; };
    compressImage = mkOption { type = types.bool; default = false; };
    squashfsCompression = mkOption { type = types.nullOr types.str; default = "zstd -Xcompression-level 19"; };
    contents = mkOption { type = types.listOf types.attrs; default = [ ]; };
    storeContents = mkOption { type = types.listOf types.anything; default = [ ]; };
  };
  options.image = {
    baseName = mkOption { type = types.str; default = "nixos-26.05-${pkgs.stdenv.hostPlatform.system}"; };
    extension = mkOption { type = types.str; default = if config.isoImage.compressImage then "iso.zst" else "iso"; };
    fileName = mkOption { type = types.str; default = "${config.image.baseName}.${config.image.extension}"; };
    filePath = mkOption { type = types.str; default = "iso/${config.image.fileName}"; };
  };
  config = {
    assertions = [{
      assertion = !config.isoImage.makeUsbBootable || config.isoImage.makeBiosBootable;
      message = "isoImage.makeUsbBootable needs isoImage.makeBiosBootable";
    }];
    system.build.isoImage = pkgs.writeText "iso/${config.image.baseName}.iso" "";
  };
}
