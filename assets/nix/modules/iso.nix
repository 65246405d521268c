# The node as a bootable ISO (written raw to a USB stick): the image is copied
# into RAM at boot (copytoram), so the stick can be removed once it runs.
{ lib, modulesPath, ... }:
{
  imports = [ (modulesPath + "/installer/cd-dvd/iso-image.nix") ];

  # nix build puts the image at result/iso/nixos.iso: nixpkgs names the file
  # after image.baseName (isoImage.isoName is gone since NixOS 25.05).
  image.baseName = lib.mkForce "nixos";
  isoImage.makeEfiBootable = true;
  # A hybrid image (BIOS and USB boot) for sticks written with dd or flash.
  isoImage.makeBiosBootable = true;
  isoImage.makeUsbBootable = true;
  boot.kernelParams = [ "copytoram" ];
}
