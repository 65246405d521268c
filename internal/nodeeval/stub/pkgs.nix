# STUB of nixpkgs' package set, for homestaker's evaluation tests only.
#
# The whole of nixpkgs cannot be had offline, so every package here is a
# fake derivation: an attribute set that the module system accepts as a
# package and that turns into a store path, but builds nothing. Only the
# names NixOS modules of homestaker, sops-nix and disko use are listed; the
# Ethereum clients are deliberately missing, as they are from nixpkgs proper
# under the names ethereum.nix's modules default to, so a service whose
# `package` is not set from ethereum.nix's overlay fails to evaluate.
{ lib, system, overlays }:
let
  fake = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
    drvPath = "/nix/store/00000000000000000000000000000000-${name}.drv";
    outputs = [ "out" ];
    meta = { };
    passthru = { };
    override = _: fake name;
    overrideAttrs = _: fake name;
  };
  fakeFn = name: _: fake name;
  # Writers force their text, so an error in a generated script is an
  # evaluation error, as it would be when nixpkgs writes the file.
  fakeWriter = name: text: builtins.seq (builtins.stringLength text) (fake name);
  kernelTarget = if lib.hasPrefix "aarch64-" system then "Image" else "bzImage";
  base = self: {
    inherit lib;
    stdenv = {
      hostPlatform = lib.systems.elaborate system;
      buildPlatform = lib.systems.elaborate system;
      isLinux = true;
      mkDerivation = args: fake (args.pname or args.name or "mkDerivation");
    };
    stdenvNoCC = self.stdenv;
    buildPackages = self;
    # As nixpkgs' callPackage: a file's function gets the packages it names
    # (a missing one is an evaluation error) and builds a fake.
    callPackage = fn: args:
      let f = if builtins.isFunction fn then fn else import fn;
      in f (builtins.intersectAttrs (builtins.functionArgs f) self // args);
    writeText = fakeWriter;
    writeTextFile = args: fake (args.name or "writeTextFile");
    writeShellScript = fakeWriter;
    writeShellScriptBin = fakeWriter;
    writeShellApplication = args: fake args.name;
    writeScript = fakeWriter;
    runCommand = name: _: _: fake name;
    runCommandLocal = name: _: _: fake name;
    symlinkJoin = args: fake args.name;
    linkFarm = name: _: fake name;
    writers = {
      makeScriptWriter = _: name: _: fake name;
      writeBash = fakeFn;
      writeBashBin = fakeFn;
    };
    formats = {
      json = _: { type = lib.types.anything; generate = fakeFn; };
      yaml = _: { type = lib.types.anything; generate = fakeFn; };
    };
    # A kernel package names its image file (target), as in nixpkgs.
    linuxPackages = { kernel = fake "linux" // { target = kernelTarget; }; };
    linuxPackages_latest = self.linuxPackages;
    linuxPackages_rpi4 = { kernel = fake "linux-rpi4" // { target = kernelTarget; }; };
  }
  // lib.genAttrs [
    "age" "bash" "bashInteractive" "btrfs-progs" "coreutils" "coreutils-full" "curl" "dosfstools"
    "e2fsprogs" "findutils" "gawk" "gnugrep" "gnused" "gnupg" "htop" "iotop" "iproute2" "jq"
    "kexec-tools" "nix" "openssh" "parted" "sops" "ssh-to-age" "systemd" "systemdMinimal"
    "util-linux" "xfsprogs" "zstd" "squashfsTools" "gptfdisk" "mdadm" "lvm2" "cryptsetup"
    "zfs" "bcachefs-tools" "raspberrypifw" "ubootRaspberryPi4_64bit" "grub2"
  ] fake;
in
lib.fix (lib.extends (lib.composeManyExtensions overlays) base)
