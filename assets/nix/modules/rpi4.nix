# Raspberry Pi 4: an aarch64 system with the Pi's own kernel and firmware.
{ pkgs, ... }:
{
  boot.kernelPackages = pkgs.linuxPackages_rpi4;
  hardware.enableRedistributableFirmware = true;
  boot.initrd.availableKernelModules = [ "usbhid" "usb_storage" "uas" "pcie_brcmstb" "reset-raspberrypi" ];
}
