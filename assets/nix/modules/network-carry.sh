#!/bin/sh
# Usage: network-carry.sh JQ FILTER CARRY_FILE OUT_DIR
#
# Turns homestaker's network carry-over file into systemd-networkd files
# OUT_DIR/10-homestaker-carry-<n>.network, one per carried interface, with
# the jq FILTER (network-carry.jq). All files or none: if any interface's
# settings are damaged, nothing is written and the node keeps its default,
# DHCP on every ethernet interface.
set -eu
jq=$1 filter=$2 carry=$3 out=$4

n=$("$jq" -e 'if .version == 1 and (.interfaces | type) == "array"
  then .interfaces | length
  else error("not a version 1 homestaker network carry file") end' "$carry")

tmp="$out/.homestaker-carry.tmp"
mkdir -p "$out"
rm -rf "$tmp"
mkdir "$tmp"
i=0
while [ "$i" -lt "$n" ]; do
  if ! "$jq" -r --argjson i "$i" -f "$filter" "$carry" >"$tmp/10-homestaker-carry-$i.network"; then
    rm -rf "$tmp"
    echo "homestaker: $carry: interface $i cannot be carried over; nothing written" >&2
    exit 1
  fi
  i=$((i + 1))
done
rm -f "$out"/10-homestaker-carry-*.network
for f in "$tmp"/*.network; do
  [ -e "$f" ] && mv "$f" "$out/"
done
rmdir "$tmp"
echo "homestaker: carried over the network of $n interface(s) from $carry into $out"
