# A homestaker-shaped flake whose kexecTree fails to build after a
# dependency built fine: the failure must name the failing derivation and
# show its last log lines. @NONCE@ makes every test run build afresh.
{
  outputs = { self }:
    let
      system = "@SYSTEM@";
      kernel = builtins.derivation {
        name = "linux-kernel";
        inherit system;
        builder = "/bin/sh";
        nonce = "@NONCE@";
        args = [ "-c" "echo kernel ok; echo k > $out" ];
      };
    in {
      nixosConfigurations.node1.config.system.build.kexecTree = builtins.derivation {
        name = "kexec-tree-broken";
        inherit system kernel;
        builder = "/bin/sh";
        PATH = "/usr/bin:/bin";
        nonce = "@NONCE@";
        args = [ "-c" ''
          echo '@nix {"action":"setPhase","phase":"installPhase"}' >&2
          i=1
          while [ $i -le 45 ]; do echo "log line $i"; i=$((i+1)); done
          echo "error: initrd too large" >&2
          exit 3
        '' ];
      };
    };
}
