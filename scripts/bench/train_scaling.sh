#!/usr/bin/env bash
# Data-parallel scaling of the reference model on this machine, by scripts/bench/train_throughput.sh:
#   1 process x 1 thread (the unit), 1 process x 2 threads (OpenMP), 2 processes x 1 thread (c10d/Gloo ranks,
#   `--nproc 2`). The global batch stays the throughput bench's 4096 tokens: each rank takes half of it.
# Prints one line per setting and, last, scaling_efficiency=<tok/s of 2 processes / (2 x tok/s of 1 x 1)>.
# Env: WARMUP (default 10), STEPS (default 30), as train_throughput.sh; extra arguments go to `s2s train`.
set -euo pipefail
cd "$(dirname "$0")/../.."
export WARMUP=${WARMUP:-10} STEPS=${STEPS:-30}
tok_s() { bash scripts/bench/train_throughput.sh "$@" 2>/dev/null | tee /dev/stderr | sed -n 's/^train_tokens_per_s=//p'; }
one=$(tok_s --threads 1 "$@")
omp=$(tok_s --threads 2 "$@")
dp=$(tok_s --threads 2 --nproc 2 --set train.batch_tokens=2048 "$@")
python3 - "$one" "$omp" "$dp" <<'PY'
import sys
one, omp, dp = map(float, sys.argv[1:])
print(f"1 process x 1 thread: {one:.0f} tok/s")
print(f"1 process x 2 threads: {omp:.0f} tok/s, efficiency {omp / (2 * one):.2f}")
print(f"2 processes x 1 thread: {dp:.0f} tok/s, efficiency {dp / (2 * one):.2f}")
print(f"scaling_efficiency={dp / (2 * one):.2f}")
PY
