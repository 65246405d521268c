#!/usr/bin/env bash
# Records the internal-json logs the parser tests replay (*.log here) by
# building the test flakes with the Nix on this machine. Run as root with
# no network; every run builds afresh thanks to a new nonce.
set -euo pipefail
cd "$(dirname "$0")"
nonce="record-$(date +%s)-$RANDOM"
system="$(uname -m)-linux"
nixflags=(--extra-experimental-features 'nix-command flakes' --option substituters '' --option sandbox false)
for name in kexec fail iso; do
  tmp="$(mktemp -d)"
  cp -r "$name/." "$tmp/"
  sed -i "s/@NONCE@/$nonce/; s/@SYSTEM@/$system/" "$tmp/flake.nix"
  attr=kexecTree; [ "$name" = iso ] && attr=isoImage
  nix build -L --log-format internal-json "${nixflags[@]}" --json --no-link \
    "path:$tmp#nixosConfigurations.node1.config.system.build.$attr" 2> "$name.log" >/dev/null || true
  # The temp path and nonce vary per run; keep the recording stable to read.
  sed -i "s#$tmp#/tmp/flake#g" "$name.log"
  rm -rf "$tmp"
done
nix --version > nix-version.txt

# substitute.log: the kexec flake's tree fetched from a local binary cache
# (a file:// store), which is what downloads from cache.nixos.org look like
# (CopyPaths, Substitute and CopyPath activities with byte counts).
tmp="$(mktemp -d)"; cache="$(mktemp -d)"
cp -r kexec/. "$tmp/"
sed -i "s/@NONCE@/$nonce-sub/; s/@SYSTEM@/$system/" "$tmp/flake.nix"
ref="path:$tmp#nixosConfigurations.node1.config.system.build.kexecTree"
out="$(nix build "${nixflags[@]}" --json --no-link "$ref" | sed 's/.*"out":"\([^"]*\)".*/\1/')"
nix copy "${nixflags[@]}" --to "file://$cache" "$out"
nix store delete "${nixflags[@]}" $(nix-store -qR "$out") >/dev/null 2>&1
nix build -L --log-format internal-json --extra-experimental-features 'nix-command flakes' \
  --option substituters "file://$cache" --option require-sigs false --json --no-link "$ref" 2> substitute.log >/dev/null
sed -i "s#$tmp#/tmp/flake#g; s#$cache#/tmp/cache#g" substitute.log
rm -rf "$tmp" "$cache"
