# A homestaker-shaped flake whose kexec tree refers to an attribute the
# configuration lacks.
{
  outputs = { self }:
    let
      system = "@SYSTEM@";
      config = { system.build = { }; };
    in {
      nixosConfigurations.node1.config.system.build.kexecTree = builtins.derivation {
        name = "kexec-tree";
        inherit system;
        toplevel = config.system.build.toplevel;
        builder = "/bin/sh";
        nonce = "@NONCE@";
        args = [ "-c" "echo built > $out" ];
      };
    };
}
