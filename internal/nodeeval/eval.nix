# Evaluates a flake written by homestaker offline, as `nix build` would:
# flake.nix's own outputs function is called with the real ethereum.nix,
# sops-nix and disko sources and the real nixpkgs lib; only NixOS' base
# options and the package set are stubs (stub/), because the whole of
# nixpkgs cannot be had offline. The result is, per host, what the tests
# judge: the systemd services the clients run as, the firewall, the mounts,
# the secrets and the image the host builds.
#
#   nix-instantiate --eval --strict --json eval.nix \
#     --arg sources /path/to/sources --arg flake /path/to/flake
#
# sources holds one checkout per input: ethereum.nix, sops-nix, disko and
# nixpkgs.lib.
{ sources, flake }:
let
  lib = import (sources + "/nixpkgs.lib/lib");
  eth = sources + "/ethereum.nix";

  # nixpkgs' lib.nixosSystem, on the stubbed NixOS base options.
  nixosSystem = { modules, specialArgs ? { }, ... }:
    lib.evalModules {
      specialArgs = { modulesPath = ./stub/modules; } // specialArgs;
      modules = [ ./stub/nixos.nix ] ++ modules;
    };

  # ethereum.nix's package set, one fake derivation per package it has, as
  # its flake's `packages.<system>` (blueprint makes one per packages/ folder).
  fakeDerivation = system: name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-ethereum-nix-${name}";
    drvPath = "/nix/store/00000000000000000000000000000000-ethereum-nix-${name}.drv";
    meta = { };
  };
  ethPackageNames = lib.attrNames (lib.filterAttrs (_: t: t == "directory") (builtins.readDir (eth + "/packages")));
  ethPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (system: lib.genAttrs ethPackageNames (fakeDerivation system));
  # nixosModules.default as ethereum.nix's flake makes it: every folder of
  # modules/nixos.
  ethModuleNames = lib.attrNames (lib.filterAttrs (_: t: t == "directory") (builtins.readDir (eth + "/modules/nixos")));

  inputs = {
    nixpkgs = {
      lib = lib.extend (_: _: { inherit nixosSystem; });
      outPath = sources + "/nixpkgs.lib";
    };
    ethereum-nix = {
      nixosModules.default.imports = map (n: eth + "/modules/nixos/${n}") ethModuleNames;
      overlays.default = import (eth + "/overlays") { packages = ethPackages; };
      outPath = eth;
    };
    sops-nix = {
      nixosModules.sops = sources + "/sops-nix/modules/sops";
      outPath = sources + "/sops-nix";
    };
    disko = {
      nixosModules.disko = sources + "/disko/module.nix";
      outPath = sources + "/disko";
    };
  };

  flakeNix = import (flake + "/flake.nix");
  self = flakeNix.outputs (inputs // { inherit self; }) // { outPath = flake; };

  # What a host's evaluation gives the tests.
  summary = name: node:
    let
      config = node.config;
      failed = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
      system = (builtins.fromJSON (builtins.readFile (flake + "/hosts/${name}/homestaker.json"))).host.arch + "-linux";
      unit = _: s: {
        inherit (s) description after before wants requires wantedBy;
        serviceConfig = s.serviceConfig;
        environment = s.environment;
      };
    in
    if failed != [ ] then throw "host ${name}: failed assertions:\n- ${lib.concatStringsSep "\n- " failed}"
    else {
      services = lib.mapAttrs unit (lib.filterAttrs (_: s: s.enable) config.systemd.services);
      firewall = {
        inherit (config.networking.firewall) enable allowedTCPPorts allowedUDPPorts;
      };
      fileSystems = lib.mapAttrs (_: f: { inherit (f) device fsType neededForBoot options; }) config.fileSystems;
      sops = {
        secrets = lib.mapAttrs (_: s: { inherit (s) path owner mode; sopsFile = toString s.sopsFile; }) config.sops.secrets;
        sshKeyPaths = config.sops.age.sshKeyPaths;
      };
      openssh = { inherit (config.services.openssh) enable hostKeys; };
      tmpfilesRules = config.systemd.tmpfiles.rules;
      hostName = config.networking.hostName;
      systemPackages = map (p: p.name) config.environment.systemPackages;
      kernelParams = config.boot.kernelParams;
      image = self.packages.${system}.${name}.name;
      # The kernel and, for an SD card, the command line in its cmdline.txt.
      kernel = if config.boot.kernelPackages == null then null else config.boot.kernelPackages.kernel.name;
      sdCmdline = config.homestaker.sdCard.cmdline or null;
      kernelFile = if config.boot.kernelPackages == null then null else config.system.boot.loader.kernelFile;
      # The boot loader files the system carries for the data disk's boot entry.
      bootLoader = (config.environment.etc."homestaker/boot-loader" or { source = { name = null; }; }).source.name;
      # What marks a boot from a counted entry complete (modules/boot-counting.nix).
      bootCounting = {
        blessRequiresMountsFor = config.systemd.services.systemd-bless-boot.unitConfig.RequiresMountsFor or [ ];
        completeRequires = config.systemd.targets.boot-complete.requires or [ ];
        completeRequiresMountsFor = config.systemd.targets.boot-complete.unitConfig.RequiresMountsFor or [ ];
      };
      warnings = config.warnings;
    };
in
lib.mapAttrs summary self.nixosConfigurations
