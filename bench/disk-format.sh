#!/usr/bin/env bash
# Measures `homestaker disk format --image` on a 4 TiB sparse image against
# plain mkfs.ext4 on an identical image, in the same run: wall time, peak
# memory (max RSS) and bytes allocated in the image. It measures; it never fails
# on a number. Usage: bench/disk-format.sh [size, default 4T]
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-4T}"
work="$(mktemp -d "${TMPDIR:-/tmp}/homestaker-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT

go build -o "$work/homestaker" .
cat > "$work/homestaker.json" <<'JSON'
{"version":1,"host":{"name":"bench"},"ethereum":{"execution":"geth","consensus":"lighthouse","validator":{"enable":true,"feeRecipient":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"},"mevBoost":{"enable":false}},"disk":{"device":"/dev/disk/by-id/bench","filesystem":"ext4"},"ssh":{"authorizedKeys":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIrAWAe8Eu8oR0nqj8sN7aHINtNpPHK2dZ4dS1IZqosR staker@laptop"]},"secrets":{}}
JSON
# disk format puts the host key on the disk: render makes it in the private folder.
"$work/homestaker" render --answers "$work/homestaker.json" --out "$work/flake" --private "$work/private" >/dev/null 2>&1

measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/$label.log" 2>&1 || { cat "$work/$label.log"; exit 1; }
  read -r secs kib <"$work/time"
  printf '%-28s %8s s  %8s MiB max RSS\n' "$label" "$secs" "$((kib / 1024))"
}

measure "homestaker disk format" "$work/homestaker" disk format --answers "$work/homestaker.json" --private "$work/private" --image "$work/a.img" --size "$size"
truncate -s "$(stat -c %s "$work/a.img")" "$work/b.img"
measure "mkfs.ext4 (whole image)" mkfs.ext4 -F -q -L homestaker "$work/b.img"
printf '%-28s %8s MiB allocated\n' "homestaker image" "$(( $(stat -c %b "$work/a.img") * 512 / 1048576 ))"
printf '%-28s %8s MiB allocated\n' "mkfs.ext4 image" "$(( $(stat -c %b "$work/b.img") * 512 / 1048576 ))"
