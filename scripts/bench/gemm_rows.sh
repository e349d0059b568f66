#!/usr/bin/env bash
# bf16 GEMM time against the row count on this CPU (scripts/bench/gemm_rows.cpp), for the reference model's
# shapes: the decoder's per-position gates (K=1024, N=2048; M = sentences in the batch) and the output layer
# (K=512, N=8000, W^T; M = rows of a loss chunk). On AMX CPUs multiples of 16 rows run up to 3x faster
# (docs/BENCHMARKS.md: train.batch_multiple and the 512-row loss chunks come from here).
# Usage: scripts/bench/gemm_rows.sh [M...]   Env: CXX (default g++).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=$(mktemp -d)/gemm_rows
trap 'rm -rf "$(dirname "$BIN")"' EXIT
${CXX:-g++} -O2 -std=c++17 scripts/bench/gemm_rows.cpp -I/usr/include/torch/csrc/api/include \
  -ltorch -ltorch_cpu -lc10 -o "$BIN"
ROWS=("$@")
[[ ${#ROWS[@]} -gt 0 ]] || ROWS=(256 272 280 288 290 296 304 320)
"$BIN" 1024 2048 n "${ROWS[@]}"
"$BIN" 512 8000 t 512 524 1024
