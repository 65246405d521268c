# The data disk: the node's only persistent storage. hosts/<name>/disko.nix
# declares its partition and mount; this module makes the mount available
# early, because the SSH host key on it is also the key sops-nix decrypts
# the host's secrets with during activation.
{ config, lib, ... }:
let
  cfg = config.homestaker.dataDisk;
  hostKey = "${cfg.mountPoint}/secrets/ssh/ssh_host_ed25519_key";
in
{
  options.homestaker.dataDisk.mountPoint = lib.mkOption {
    type = lib.types.str;
    default = "/var/lib";
    description = "Where the data disk is mounted. Client state directories live below it.";
  };

  config = {
    fileSystems.${cfg.mountPoint}.neededForBoot = true;

    services.openssh.hostKeys = [{ path = hostKey; type = "ed25519"; }];
    sops.age.sshKeyPaths = [ hostKey ];
    sops.gnupg.sshKeyPaths = [ ];

    # An install with --store-on-data-disk built this node with its Nix
    # store in this folder of the data disk (bind-mounted at /nix on the
    # installing system); the node has its own store in RAM and removes
    # the leftover at boot. Absent on other installs: nothing to do.
    systemd.tmpfiles.rules = [ "R ${cfg.mountPoint}/.homestaker-nix - - - - -" ];
  };
}
