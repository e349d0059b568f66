#!/usr/bin/env bash
# Translation speed of a reference-size model (trained with configs/multi30k-de-en.yaml) on Multi30k
# test2016 (1000 lines), 2 threads: beam 5 and greedy, wall clock including model load, with peak RSS and
# BLEU of each run. Prints beam5_seconds=<s> greedy_seconds=<s> as its last line.
# Usage: scripts/bench/translate_speed.sh MODEL_DIR [extra translate options, e.g. --precision bf16]
# (the native CPU engine is the default; add --engine torch to time the LibTorch engine)
# Env: S2S (binary, default build/bin/s2s), RUNS (repetitions, best is reported; default 3), BATCH
# (sentences per batch; default 0 = auto: 16 at beam 5, 64 greedy; figures before session 16 used 64).
set -euo pipefail
cd "$(dirname "$0")/../.."
S2S=${S2S:-build/bin/s2s}
MODEL=${1:?usage: translate_speed.sh MODEL_DIR [translate options]}
shift
RUNS=${RUNS:-3}
BATCH=${BATCH:-0}
SRC=../shared/data/multi30k/test2016.de
REF=../shared/data/multi30k/test2016.en
[[ -f $SRC ]] || { echo "needs $SRC" >&2; exit 2; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

run() {  # name beam -> prints seconds of the fastest run; logs RSS and BLEU to stderr
  local name=$1 beam=$2 best="" t rss
  shift 2
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %M" -o "$OUT/time" "$S2S" -q translate --model "$MODEL" -i "$SRC" -o "$OUT/$name.en" \
      --beam-size "$beam" --batch-size "$BATCH" --threads 2 "$@"
    read -r t rss < <(tail -n 1 "$OUT/time")
    if [[ -z $best ]] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
  done
  local bleu
  bleu=$("$S2S" -q eval --hyp "$OUT/$name.en" --ref "$REF" --metrics bleu -w 2)
  echo "$name: best of $RUNS = ${best}s, peak RSS $((rss / 1024)) MB, $bleu" >&2
  echo "$best"
}

beam5=$(run beam5 5 "$@")
greedy=$(run greedy 1 "$@")
echo "beam5_seconds=$beam5 greedy_seconds=$greedy"
