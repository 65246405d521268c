#!/usr/bin/env bash
# Measures `homestaker flash` against `dd bs=4M oflag=direct conv=fsync`
# writing the same image to the same loop device, in the same run, in
# alternating rounds: the write throughput of each (homestaker's write phase
# is timed apart from its read-back, which dd does not do), their ratio
# (median of the rounds), and homestaker's peak memory. It measures; it never
# fails on a number. Needs root and losetup.
# Usage: bench/flash.sh [image size, default 1G] [rounds, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-1G}"
rounds="${2:-3}"
work="$(mktemp -d "${TMPDIR:-/tmp}/homestaker-bench.XXXXXX")"
dev=""
cleanup() {
  if [ -n "$dev" ]; then losetup -d "$dev"; fi
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/homestaker" .
head -c "$size" /dev/urandom >"$work/image.iso"
bytes=$(stat -c %s "$work/image.iso")
truncate -s $((bytes + (64 << 20))) "$work/stick.img"
dev="$(losetup --find --show "$work/stick.img")"
# Write the stick's file once first, so no round pays for the file system
# allocating its blocks.
dd if="$work/image.iso" of="$dev" bs=4M oflag=direct conv=fsync status=none
echo "image: $bytes bytes; target: $dev (loop device on $(df --output=fstype "$work" | tail -1)); load: $(cut -d' ' -f1-3 /proc/loadavg)"

median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
rate() { awk -v b="$bytes" -v s="$1" 'BEGIN {printf "%.0f", b / s / 1e6}'; }

: >"$work/dd.times"
: >"$work/hs.times"
: >"$work/hs.verify"
for r in $(seq "$rounds"); do
  start=$(date +%s.%N)
  dd if="$work/image.iso" of="$dev" bs=4M oflag=direct conv=fsync status=none
  end=$(date +%s.%N)
  dd_s=$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}')
  echo "$dd_s" >>"$work/dd.times"

  HOMESTAKER_FLASH_LOOP_FILE="$work/stick.img" /usr/bin/time -f "%M" -o "$work/rss" \
    "$work/homestaker" flash --image "$work/image.iso" --device "$dev" --yes --confirm-device "$dev" \
    >"$work/hs.out" 2>"$work/hs.err" || { cat "$work/hs.err"; exit 1; }
  # "... write 0.83 s at 1290 MB/s, verify 1.42 s"
  hs_s=$(sed -n 's/.*write \([0-9.]*\) s at.*/\1/p' "$work/hs.out")
  hs_v=$(sed -n 's/.*verify \([0-9.]*\) s$/\1/p' "$work/hs.out")
  echo "$hs_s" >>"$work/hs.times"
  echo "$hs_v" >>"$work/hs.verify"
  printf 'round %d: dd %6s MB/s (%.2f s)   homestaker write %6s MB/s (%.2f s), verify %.2f s, %d MiB max RSS\n' \
    "$r" "$(rate "$dd_s")" "$dd_s" "$(rate "$hs_s")" "$hs_s" "$hs_v" "$(($(cat "$work/rss") / 1024))"
done

dd_m=$(median <"$work/dd.times")
hs_m=$(median <"$work/hs.times")
v_m=$(median <"$work/hs.verify")
printf '%-34s %6s MB/s\n' "dd bs=4M oflag=direct conv=fsync" "$(rate "$dd_m")"
printf '%-34s %6s MB/s\n' "homestaker flash (write)" "$(rate "$hs_m")"
printf '%-34s %6s MB/s\n' "homestaker flash (read-back)" "$(rate "$v_m")"
awk -v d="$dd_m" -v h="$hs_m" 'BEGIN {printf "%-34s %6.2fx (target >= 0.9x)\n", "ratio homestaker/dd (write)", d / h}'
