#!/usr/bin/env bash
# Measures homestaker's reader and progress model of Nix's internal-json
# build log, in lines per second, on the logs recorded from a real Nix
# (image/testdata/build/*.log). It measures; it never fails on a number.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench 'BenchmarkNixLogParse' -benchmem -count "${COUNT:-3}" ./image/
