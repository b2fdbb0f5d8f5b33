#!/usr/bin/env bash
# Run the snapshot and change-detection benchmarks once each: the table goes to the terminal
# (stderr) and the JSON rows to generated/bench/ (with --json a bench prints the table on stderr).
# Usage: benches/run.sh [extra perago bench options, e.g. --files 10000 --size 4K]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
perago="${PERAGO:-$here/../.venv/bin/perago}"
out="${BENCH_OUT:-$here/../generated/bench}"
mkdir -p "$out"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
"$perago" bench snapshot --json "$@" > "$out/snapshot-$stamp.json"
"$perago" bench diff --json "$@" > "$out/diff-$stamp.json"
echo "JSON results: $out/snapshot-$stamp.json $out/diff-$stamp.json" >&2
