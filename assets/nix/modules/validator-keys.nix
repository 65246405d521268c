# The validator's keys: imported into the validator client's own state on
# the data disk before the client starts, on every boot.
#
# The keystores (EIP-2335, encrypted with the keystore password), the
# password and the optional EIP-3076 slashing-protection history are sops
# secrets in hosts/<name>/secrets.yaml, encrypted to the host's key and the
# admins: nothing of them is in the flake in the clear. A oneshot unit runs
# as the validator client's own (dynamic) user with its state directory,
# reads them as systemd credentials and hands each key not yet imported to
# the client's own importer; the slashing history is imported once, before
# any key signs. The validator client requires the unit, so it never starts
# with keys half imported.
{ config, lib, pkgs, ... }:
let
  cfg = config.homestaker.validatorKeys;
  inherit (lib) mkOption types;
  vcModule = {
    lighthouse = "lighthouse-validator";
    prysm = "prysm-validator";
    nimbus = "nimbus-validator";
  }.${cfg.client};
  vcUnit = "${vcModule}-${cfg.network}";
  vc = config.systemd.services.${vcUnit}.serviceConfig;
  unit = "homestaker-validator-keys-${cfg.network}";
  keystoreSecret = pubkey: "validator-keystore-${pubkey}";
  # Where the validator client's state is: DynamicUser services keep it
  # under /var/lib/private.
  state = "/var/lib/private/${vc.StateDirectory}";
  exportCommand = {
    lighthouse = ''${cfg.package}/bin/lighthouse --network ${cfg.network} account validator slashing-protection export --datadir ${state} "$out"'';
    prysm = ''
      tmp=$(mktemp -d)
      ${cfg.package}/bin/validator slashing-protection-history export --accept-terms-of-use --datadir=${state} --slashing-protection-export-dir="$tmp"
      mv "$tmp/slashing_protection.json" "$out"
      rm -rf "$tmp"'';
    nimbus = ''${cfg.package}/bin/nimbus_beacon_node slashingdb export "$out" --data-dir=${state}'';
  }.${cfg.client};
  # Moving the keys to another machine: stop the validator, export its
  # slashing-protection history (EIP-3076) for the next machine to import.
  exportScript = pkgs.writeShellScriptBin "homestaker-export-slashing-protection" ''
    set -euo pipefail
    out=''${1:-/root/slashing-protection-${cfg.network}.json}
    systemctl stop ${vcUnit}.service
    echo "stopped ${vcUnit}: it stays stopped, so these keys sign nowhere while they move"
    ${exportCommand}
    chmod 0600 "$out"
    echo "wrote $out (EIP-3076): copy it to the new machine and import it there before its validator starts"
    echo "before this node reboots, remove the keys from its answers (homestaker reconfigure), or it imports and runs them again"
  '';
in
{
  options.homestaker.validatorKeys = {
    enable = mkOption {
      type = types.bool;
      default = false;
      description = "Import the validator's keys before its client starts.";
    };
    client = mkOption {
      type = types.enum [ "lighthouse" "prysm" "nimbus" ];
      description = "The validator client (services.ethereum.<client>-validator.<network>).";
    };
    network = mkOption {
      type = types.str;
      description = "The network, also the name of the validator client's instance.";
    };
    package = mkOption {
      type = types.package;
      description = "The package holding the client's importer.";
    };
    pubkeys = mkOption {
      type = types.listOf (types.strMatching "0x[0-9a-f]{96}");
      default = [ ];
      description = "Public keys of the keystores; each is the sops secret validator-keystore-<pubkey>.";
    };
    slashingProtection = mkOption {
      type = types.bool;
      default = false;
      description = "Whether secrets.yaml holds an EIP-3076 history (validator-slashing-protection) to import.";
    };
  };

  config = lib.mkIf cfg.enable {
    sops.secrets = {
      validator-password = { };
    }
    // lib.genAttrs (map keystoreSecret cfg.pubkeys) (_: { })
    // lib.optionalAttrs cfg.slashingProtection { validator-slashing-protection = { }; };

    systemd.services.${unit} = {
      description = "Import the validator keys into ${cfg.client}'s validator client (${cfg.network})";
      wantedBy = [ "${vcUnit}.service" ];
      before = [ "${vcUnit}.service" ];
      after = [ "local-fs.target" ];
      path = [ pkgs.coreutils pkgs.jq ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        # The validator client's own user and state directory, so what is
        # imported belongs to it.
        DynamicUser = true;
        User = vc.User;
        StateDirectory = vc.StateDirectory;
        StateDirectoryMode = "0700";
        UMask = "0077";
        PrivateTmp = true;
        LoadCredential =
          [ "password:${config.sops.secrets.validator-password.path}" ]
          ++ map (pk: "keystore-${pk}:${config.sops.secrets.${keystoreSecret pk}.path}") cfg.pubkeys
          ++ lib.optional cfg.slashingProtection "slashing-protection:${config.sops.secrets.validator-slashing-protection.path}"
          ++ lib.optional (cfg.client == "prysm") "wallet-password:${config.sops.secrets.prysm-wallet-password.path}";
        ExecStart = lib.concatStringsSep " " [
          "${pkgs.bash}/bin/bash"
          "${./validator-keys.sh}"
          cfg.client
          "${cfg.package}"
          cfg.network
          "%S/${vc.StateDirectory}"
        ];
      };
    };

    systemd.services.${vcUnit} = {
      requires = [ "${unit}.service" ];
      after = [ "${unit}.service" ];
    };

    environment.systemPackages = [ exportScript ];
  };
}
