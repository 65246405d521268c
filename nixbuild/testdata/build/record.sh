#!/usr/bin/env bash
# Records the internal-json logs the parser tests replay by building the
# test flakes with a real Nix. Run as root with no network; every run builds
# afresh thanks to a new nonce.
#
#   ./record.sh                  Debian 12's Nix 2.8 (nix on PATH) -> *.log here
#   ./record.sh nix-2.26 NIX     another Nix, e.g. Nix 2.26 from scripts/nix226
#                                ("$HOMESTAKER_TEST_NIX") -> nix-2.26/*.log
set -euo pipefail
cd "$(dirname "$0")"
dest="${1:-.}"
nix="${2:-nix}"
nixstore=nix-store
if [ "$nix" != nix ]; then
  nixstore="$(dirname "$nix")/nix-store"
fi
mkdir -p "$dest"
nix() { command "$nix" "$@"; }
nix-store() { command "$nixstore" "$@"; }
nonce="record-$(date +%s)-$RANDOM"
system="$(uname -m)-linux"
# build-users-group '': Nix 2.26 as root refuses to build without the
# nixbld group of a multi-user install (Nix 2.8 only warns).
nixflags=(--extra-experimental-features 'nix-command flakes' --option substituters '' --option sandbox false
  --option build-users-group '')
for name in kexec fail iso; do
  tmp="$(mktemp -d)"
  cp -r "$name/." "$tmp/"
  sed -i "s/@NONCE@/$nonce/; s/@SYSTEM@/$system/" "$tmp/flake.nix"
  attr=kexecTree; [ "$name" = iso ] && attr=isoImage
  nix build -L --log-format internal-json "${nixflags[@]}" --json --no-link \
    "path:$tmp#nixosConfigurations.node1.config.system.build.$attr" 2> "$dest/$name.log" >/dev/null || true
  # The temp path and nonce vary per run; keep the recording stable to read.
  sed -i "s#$tmp#/tmp/flake#g" "$dest/$name.log"
  rm -rf "$tmp"
done
nix --version > "$dest/nix-version.txt"

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
  --option substituters "file://$cache" --option require-sigs false --option build-users-group '' \
  --json --no-link "$ref" 2> "$dest/substitute.log" >/dev/null
sed -i "s#$tmp#/tmp/flake#g; s#$cache#/tmp/cache#g" "$dest/substitute.log"
rm -rf "$tmp" "$cache"
