# A homestaker-shaped flake whose isoImage is a trivial derivation with the
# ISO under iso/, as nixpkgs' isoImage lays it out. @NONCE@ makes every test
# run build afresh.
{
  outputs = { self }: {
    nixosConfigurations.node1.config.system.build.isoImage = builtins.derivation {
      name = "nixos.iso";
      system = "@SYSTEM@";
      builder = "/bin/sh";
      PATH = "/usr/bin:/bin";
      nonce = "@NONCE@";
      args = [ "-c" "mkdir -p $out/iso $out/nix-support; head -c 300000 /dev/zero > $out/iso/nixos.iso; echo file iso $out/iso/nixos.iso > $out/nix-support/hydra-build-products" ];
    };
  };
}
