# A stand-in for a homestaker flake: nixosConfigurations.node1 has a
# kexecTree made of trivial /bin/sh derivations (no nixpkgs), shaped like the
# real one (bzImage, initrd.zst, kexec-boot, netboot.ipxe as symlinks into
# other store paths). @NONCE@ makes every test run build afresh.
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
          echo '@nix {"action":"setPhase","phase":"buildPhase"}' >&2
          echo "building ${name}"
          ${script}
          echo "${name} done"
        '' ];
      } // deps);
      squashfs = step "nix-store-squashfs" { } ''
        head -c 200000 /dev/zero > $out
      '';
      initrd = step "initrd" { inherit squashfs; } ''
        mkdir $out
        cat $squashfs > $out/initrd.zst
      '';
      kernel = step "linux-kernel" { } ''
        mkdir $out
        head -c 50000 /dev/zero > $out/bzImage
      '';
      kexecTree = step "kexec-tree" { inherit initrd kernel; } ''
        mkdir $out
        ln -s $kernel/bzImage $out/bzImage
        ln -s $initrd/initrd.zst $out/initrd.zst
        printf '#!/bin/sh\nkexec --load ./bzImage --initrd=./initrd.zst\n' > $out/kexec-boot
        chmod +x $out/kexec-boot
        printf '#!ipxe\nkernel bzImage\ninitrd initrd.zst\nboot\n' > $out/netboot.ipxe
      '';
    in {
      nixosConfigurations.node1.config.system.build.kexecTree = kexecTree;
    };
}
