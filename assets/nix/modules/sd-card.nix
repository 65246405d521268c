# The node on a Raspberry Pi 4's SD card. The card holds only the Pi's boot
# partition; the node runs from RAM like a kexec tree, with the same initrd
# (the Nix store as a squashfs inside it), and its data on the USB disk.
#
# The flake builds the card's parts, config.system.build.sdParts: the
# kernel Image, the initrd, cmdline.txt, the Pi 4 firmware and device trees
# with their overlays (from raspberrypifw, the firmware the build uses).
# `homestaker build` assembles the card image from them (FAT32 in an MBR)
# and writes config.txt itself; `homestaker image sd --parts DIR` does the
# same for parts built elsewhere.
{ config, lib, pkgs, ... }:
let
  firmware = "${pkgs.raspberrypifw}/share/raspberrypi/boot";
  cmdline = config.homestaker.sdCard.cmdline;
in
{
  imports = [ ./kexec-tree.nix ];

  options.homestaker.sdCard.cmdline = lib.mkOption {
    type = lib.types.str;
    readOnly = true;
    internal = true;
    description = "The kernel command line the Pi's firmware reads from cmdline.txt.";
  };

  config = {
    homestaker.sdCard.cmdline = "init=${config.system.build.toplevel}/init ${toString config.boot.kernelParams}";

    system.build.sdParts = pkgs.runCommand "sd-parts" { } ''
      mkdir -p $out/overlays
      ln -s ${config.system.build.kernel}/${config.system.boot.loader.kernelFile} $out/Image
      ln -s ${config.system.build.netbootRamdisk}/initrd $out/initrd
      printf '%s\n' ${lib.escapeShellArg cmdline} > $out/cmdline.txt
      for f in ${firmware}/start4*.elf ${firmware}/fixup4*.dat ${firmware}/bcm2711-*.dtb ${firmware}/LICENCE.broadcom; do
        ln -s "$f" $out/
      done
      ln -s ${firmware}/overlays/* $out/overlays/
    '';
  };
}
