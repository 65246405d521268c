#!/usr/bin/env bash
# Measures homestaker's reader and progress model of Nix's internal-json
# build log, in lines per second, on the logs recorded from real builds
# with Debian 12's Nix 2.8 (nixbuild/testdata/build/*.log) and Debian trixie's
# Nix 2.26 (nixbuild/testdata/build/nix-2.26/*.log), one sub-benchmark each.
# It measures; it never fails on a number.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench 'BenchmarkNixLogParse' -benchmem -count "${COUNT:-3}" ./nixbuild/
