#!/usr/bin/env bash
# Side-by-side timing on a noisy machine: runs each command in turn, N rounds, and prints for each its wall
# clock and CPU time (user + sys of the command and its children), min and median, in milliseconds. Compare two
# binaries this way (before and after a change), not timings taken at different moments: this VM's speed
# drifts by up to 2x within hours (docs/BENCHMARKS.md, session 19).
# Usage: scripts/bench/alternate.sh N 'label=command' ['label=command' ...]
# e.g.   scripts/bench/alternate.sh 20 "old=/tmp/old/s2s -q translate --model M -o /dev/null </dev/null" \
#                                      "new=build/bin/s2s -q translate --model M -o /dev/null </dev/null"
set -euo pipefail
N=${1:?usage: alternate.sh N 'label=command' ...}
shift
(($# > 0)) || { echo "usage: alternate.sh N 'label=command' ..." >&2; exit 2; }
specs=("$@")
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
TIMEFORMAT='%3R %3U %3S'
for _ in $(seq "$N"); do
  for i in "${!specs[@]}"; do
    spec=${specs[i]}
    { time bash -c "${spec#*=}" >/dev/null 2>"$OUT/err"; } 2>>"$OUT/$i" ||
      { echo "failed: ${spec#*=}" >&2; cat "$OUT/err" >&2; exit 1; }
  done
done
stats() {  # lines "real user sys" (s) -> "min median" of the chosen column sum, in ms
  awk -v cols="$1" '{split(cols, c, ","); v = 0; for (k in c) v += $c[k]; print v * 1000}' | sort -n |
    awk '{a[NR] = $1} END {printf "%7.1f %7.1f", a[1], (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'
}
printf '%-16s %17s %17s\n' "" "wall min / median" "CPU min / median"
for i in "${!specs[@]}"; do
  spec=${specs[i]}
  printf '%-16s %17s %17s\n' "${spec%%=*}" "$(stats 1 <"$OUT/$i")" "$(stats 2,3 <"$OUT/$i")"
done
