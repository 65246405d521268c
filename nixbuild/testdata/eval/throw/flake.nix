# A homestaker-shaped flake whose configuration does not evaluate: the
# toplevel throws the module system's message for an unknown option, so the
# kexec tree that holds it fails too, before anything is built.
{
  outputs = { self }:
    let
      system = "@SYSTEM@";
      toplevel = throw "The option `services.ethereum.lighthouse-beacon' does not exist. Definition values:\n- In `/nix/store/x-source/hosts/node1/default.nix'";
    in {
      nixosConfigurations.node1.config.system.build = {
        inherit toplevel;
        kexecTree = builtins.derivation {
          name = "kexec-tree";
          inherit system toplevel;
          builder = "/bin/sh";
          nonce = "@NONCE@";
          args = [ "-c" "echo built > $out" ];
        };
      };
    };
}
