# A stand-in for a homestaker flake with a Raspberry Pi 4 host:
# nixosConfigurations.pi has sdParts made of trivial /bin/sh derivations (no
# nixpkgs), shaped like the real one (modules/sd-card.nix: Image, initrd and
# the firmware as symlinks into other store paths, cmdline.txt, overlays/).
# The Image has an arm64 header and the initrd zstd's magic, nothing more.
# @NONCE@ makes every test run build afresh.
{
  outputs = { self }:
    let
      system = "@SYSTEM@";
      step = name: deps: script: builtins.derivation ({
        inherit name system;
        builder = "/bin/sh";
        PATH = "/usr/bin:/bin";
        nonce = "@NONCE@";
        args = [ "-c" ''
          set -e
          echo "building ${name}"
          ${script}
        '' ];
      } // deps);
      kernel = step "linux-rpi4" { } ''
        mkdir $out
        { head -c 16 /dev/zero; printf '\000\100\000\000\000\000\000\000'; head -c 32 /dev/zero; printf 'ARM\144'; head -c 16380 /dev/zero; } > $out/Image
      '';
      initrd = step "initrd" { } ''
        mkdir $out
        { printf '\050\265\057\375'; head -c 300000 /dev/zero; } > $out/initrd
      '';
      firmware = step "raspberrypi-firmware" { } ''
        mkdir -p $out/share/raspberrypi/boot/overlays
        cd $out/share/raspberrypi/boot
        echo start4 > start4.elf; echo fixup4 > fixup4.dat; echo dtb > bcm2711-rpi-4-b.dtb
        echo licence > LICENCE.broadcom; echo bt > overlays/disable-bt.dtbo; echo readme > overlays/README
      '';
      sdParts = step "sd-parts" { inherit kernel initrd firmware; } ''
        fw=$firmware/share/raspberrypi/boot
        mkdir -p $out/overlays
        ln -s $kernel/Image $out/Image
        ln -s $initrd/initrd $out/initrd
        printf '%s\n' 'init=/nix/store/00000000000000000000000000000000-nixos-system-pi/init console=tty1 console=ttyS0,115200' > $out/cmdline.txt
        for f in $fw/start4*.elf $fw/fixup4*.dat $fw/bcm2711-*.dtb $fw/LICENCE.broadcom; do ln -s "$f" $out/; done
        ln -s $fw/overlays/* $out/overlays/
      '';
    in {
      nixosConfigurations.pi.config.system.build.sdParts = sdParts;
    };
}
