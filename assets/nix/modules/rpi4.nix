# Raspberry Pi 4: an aarch64 system with the Pi's own kernel and firmware.
{ pkgs, ... }:
{
  boot.kernelPackages = pkgs.linuxPackages_rpi4;
  hardware.enableRedistributableFirmware = true;
  boot.initrd.availableKernelModules = [ "usbhid" "usb_storage" "uas" "pcie_brcmstb" "reset-raspberrypi" ];
  # The serial console on GPIO 14/15 (the mini UART, ttyS0, which config.txt
  # turns on with enable_uart=1) last, so boot messages reach it; and the
  # screen.
  boot.kernelParams = [ "console=tty1" "console=ttyS0,115200" ];
}
