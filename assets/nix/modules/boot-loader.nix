# The boot loader homestaker writes to the data disk's boot partition
# (`homestaker boot install --loader`), built from this system's nixpkgs so
# that nothing of the rescue system ends up on the disk:
#   systemd-bootx64.efi  systemd-boot for UEFI machines, from the systemd
#                        package (nixpkgs' own appliance image test takes it
#                        from ${systemd}/lib/systemd/boot/efi the same way)
#   i386-pc/             GRUB for BIOS machines: boot.img, the modules and a
#                        core.img made with grub-mkimage, whose prefix is the
#                        boot partition (the second partition of the disk
#                        the BIOS booted from)
# The files are copied, not linked, so the node's closure gains about 3 MB
# and not the whole of GRUB.
{ runCommand, systemd, grub2, buildPackages }:
runCommand "homestaker-boot-loader" { nativeBuildInputs = [ buildPackages.grub2 ]; } ''
  mkdir -p $out/i386-pc
  cp ${systemd}/lib/systemd/boot/efi/systemd-bootx64.efi $out/
  cp ${grub2}/lib/grub/i386-pc/boot.img $out/i386-pc/
  cp ${grub2}/lib/grub/i386-pc/*.mod ${grub2}/lib/grub/i386-pc/*.lst $out/i386-pc/
  grub-mkimage -d ${grub2}/lib/grub/i386-pc -O i386-pc -p '(,gpt2)/grub' \
    -o $out/i386-pc/core.img biosdisk part_gpt fat
''
