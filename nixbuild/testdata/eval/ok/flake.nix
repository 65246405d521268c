# A stand-in for a homestaker flake that evaluates, with no inputs: the
# host's toplevel and its kexec tree (which holds the toplevel, as the real
# one does) are trivial derivations. @NONCE@ keeps each test's apart.
{
  outputs = { self }:
    let
      system = "@SYSTEM@";
      drv = name: deps: builtins.derivation ({
        inherit name system;
        builder = "/bin/sh";
        nonce = "@NONCE@";
        args = [ "-c" "echo ${name} > $out" ];
      } // deps);
      toplevel = drv "nixos-system-node1" { };
    in {
      nixosConfigurations.node1.config.system.build = {
        inherit toplevel;
        kexecTree = drv "kexec-tree" { inherit toplevel; };
      };
    };
}
