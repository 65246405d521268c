# STUB of NixOS' own base options, for homestaker's evaluation tests only.
#
# nixpkgs as a whole cannot be had offline, so this module declares the
# NixOS options that homestaker's flake, ethereum.nix, sops-nix and disko set
# or read (boot, networking, systemd, users, openssh, fileSystems, …), with
# the types and defaults NixOS gives them, and nothing of their
# implementation. Everything else in an evaluation is real: nixpkgs' lib and
# module system, the upstream modules, and the flake's own files.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  opt = type: default: mkOption { inherit type default; };
  any = opt types.anything;
  str = opt types.str;
  bool = opt types.bool;
  lines = opt types.lines "";
  strList = opt (types.listOf types.str) [ ];
  anyList = opt (types.listOf types.anything) [ ];
  anyAttrs = opt (types.attrsOf types.anything) { };
  # systemd's unit options as NixOS types them (nixos/lib/systemd-unit-options.nix):
  # lists of several definitions are joined, single values must agree.
  unitOption = types.mkOptionType {
    name = "systemd option";
    merge = loc: defs:
      if lib.any (def: builtins.isList def.value) defs
      then lib.concatMap (def: lib.toList def.value) defs
      else lib.mergeEqualOption loc defs;
  };
  unitSection = opt (types.attrsOf unitOption) { };
  # A unit: the attributes homestaker and the upstream modules use, typed as
  # NixOS types them (lists merge, scripts are lines).
  unitOptions = {
    enable = bool true;
    description = str "";
    after = strList;
    before = strList;
    wants = strList;
    requires = strList;
    requiredBy = strList;
    wantedBy = strList;
    bindsTo = strList;
    partOf = strList;
    conflicts = strList;
    requisite = strList;
    upheldBy = strList;
    unitConfig = unitSection;
    serviceConfig = unitSection;
    environment = opt (types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ]))) { };
    path = anyList;
    script = lines;
    preStart = lines;
    postStart = lines;
    restartTriggers = anyList;
    reloadTriggers = anyList;
    restartIfChanged = bool true;
    stopIfChanged = bool true;
    startAt = opt (types.either types.str (types.listOf types.str)) [ ];
    onFailure = strList;
    documentation = strList;
  };
  units = opt (types.attrsOf (types.submodule { options = unitOptions; })) { };
  fileSystem = types.submodule ({ name, ... }: {
    options = {
      mountPoint = str name;
      device = opt (types.nullOr types.str) null;
      fsType = str "auto";
      options = opt (types.nonEmptyListOf types.str) [ "defaults" ];
      neededForBoot = bool false;
      depends = strList;
      label = opt (types.nullOr types.str) null;
      noCheck = bool false;
      autoFormat = bool false;
      autoResize = bool false;
      formatOptions = opt (types.nullOr types.str) null;
    };
  });
  user = types.submodule ({ name, ... }: {
    options = {
      name = str name;
      isSystemUser = bool false;
      isNormalUser = bool false;
      group = str "";
      extraGroups = strList;
      home = str "/var/empty";
      uid = opt (types.nullOr types.int) null;
      openssh.authorizedKeys.keys = strList;
      openssh.authorizedKeys.keyFiles = anyList;
      hashedPassword = opt (types.nullOr types.str) null;
      initialHashedPassword = opt (types.nullOr types.str) null;
      shell = opt (types.nullOr types.anything) null;
    };
  });
  # `lib.stringAfter` entries, as system.activationScripts takes them.
  activationScript = types.either types.str (types.attrsOf types.anything);
in
{
  options = {
    assertions = opt (types.listOf types.anything) [ ];
    warnings = strList;

    nixpkgs = {
      hostPlatform = opt (types.either types.str types.attrs) "x86_64-linux";
      # As NixOS types overlays: functions, taken as they are.
      overlays = opt (types.listOf (types.mkOptionType { name = "nixpkgs-overlay"; check = builtins.isFunction; merge = lib.mergeOneOption; })) [ ];
      config = anyAttrs;
    };

    system = {
      # As nixos/modules/system/activation/top-level.nix declares it (since
      # 26.11 from the kernel package; 26.05 takes the same name, "Image"
      # on aarch64, from hostPlatform.linux-kernel.target, which the lib
      # the tests read no longer has).
      boot.loader.kernelFile = mkOption {
        internal = true;
        type = types.str;
        default = config.boot.kernelPackages.kernel.target;
      };
      stateVersion = str "26.05";
      # As in NixOS: lazy, so outputs that are never asked for are never evaluated.
      build = opt (types.lazyAttrsOf types.raw) { };
      activationScripts = opt (types.attrsOf activationScript) { };
      extraDependencies = anyList;
    };

    boot = {
      kernelPackages = opt types.anything null;
      kernelParams = strList;
      kernelModules = strList;
      supportedFilesystems = opt (types.either (types.listOf types.str) (types.attrsOf types.bool)) { };
      initrd = {
        availableKernelModules = strList;
        kernelModules = strList;
        supportedFilesystems = opt (types.either (types.listOf types.str) (types.attrsOf types.bool)) { };
        compressor = opt (types.either types.str types.anything) "zstd";
        postMountCommands = lines;
        postDeviceCommands = lines;
        luks.devices = anyAttrs;
        systemd = {
          enable = bool true;
          services = units;
          storePaths = anyList;
        };
      };
      loader = {
        grub.enable = bool false;
        grub.efiSupport = bool false;
        grub.devices = strList;
        systemd-boot.enable = bool false;
        generic-extlinux-compatible.enable = bool false;
        efi.canTouchEfiVariables = bool false;
      };
      swraid.enable = bool false;
    };

    fileSystems = opt (types.attrsOf fileSystem) { };
    swapDevices = anyList;

    hardware.enableRedistributableFirmware = bool false;
    hardware.deviceTree = anyAttrs;

    networking = {
      hostName = str "nixos";
      hostId = opt (types.nullOr types.str) null;
      useNetworkd = bool false;
      useDHCP = bool true;
      firewall = {
        enable = bool true;
        allowedTCPPorts = opt (types.listOf types.port) [ ];
        allowedUDPPorts = opt (types.listOf types.port) [ ];
        allowedTCPPortRanges = anyList;
        allowedUDPPortRanges = anyList;
        interfaces = anyAttrs;
      };
    };

    time.timeZone = opt (types.nullOr types.str) null;

    users = {
      users = opt (types.attrsOf user) { };
      groups = opt (types.attrsOf (types.submodule { options.gid = opt (types.nullOr types.int) null; options.members = strList; })) { };
      mutableUsers = bool true;
    };

    services = {
      openssh = {
        enable = bool false;
        settings = anyAttrs;
        hostKeys = opt (types.listOf types.attrs) [
          { type = "rsa"; bits = 4096; path = "/etc/ssh/ssh_host_rsa_key"; }
          { type = "ed25519"; path = "/etc/ssh/ssh_host_ed25519_key"; }
        ];
      };
      timesyncd.enable = bool false;
      userborn.enable = bool false;
    };

    systemd = {
      services = units;
      targets = units;
      paths = units;
      timers = units;
      sockets = units;
      mounts = anyList;
      tmpfiles.rules = strList;
      tmpfiles.settings = anyAttrs;
      network = {
        enable = bool false;
        networks = anyAttrs;
        links = anyAttrs;
        wait-online.anyInterface = bool false;
      };
      sysusers.enable = bool false;
    };

    environment = {
      systemPackages = anyList;
      etc = anyAttrs;
      variables = anyAttrs;
    };

    nix.settings = anyAttrs;

    documentation = {
      enable = bool true;
      man.enable = bool true;
      nixos.enable = bool true;
      doc.enable = bool true;
      info.enable = bool true;
    };

  };

  config = {
    # What NixOS builds for every system (top-level.nix, kernel.nix), as
    # fake derivations.
    system.build.toplevel = pkgs.writeText "nixos-system-${config.networking.hostName}" "";
    system.build.kernel = config.boot.kernelPackages.kernel;
    _module.args.pkgs = import ./pkgs.nix {
      inherit lib;
      system = if builtins.isString config.nixpkgs.hostPlatform then config.nixpkgs.hostPlatform else config.nixpkgs.hostPlatform.system;
      overlays = config.nixpkgs.overlays;
    };
    _module.args.utils = { };
  };
}
