# The node as a bootable ISO (written raw to a USB stick): the image is copied
# into RAM at boot (copytoram), so the stick can be removed once it runs.
{ lib, modulesPath, ... }:
{
  imports = [ (modulesPath + "/installer/cd-dvd/iso-image.nix") ];

  isoImage.isoName = lib.mkForce "nixos.iso";
  isoImage.makeEfiBootable = true;
  isoImage.makeUsbBootable = true;
  boot.kernelParams = [ "copytoram" ];
}
