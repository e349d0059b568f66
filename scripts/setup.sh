#!/usr/bin/env bash
# One-command setup for a fresh Debian 12 machine:
#   1. installs the Debian packages s2s needs (LibTorch, oneDNN, SentencePiece, CLI11, spdlog, yaml-cpp, GoogleTest,
#      the OpenMP build of OpenBLAS),
#   2. makes the OpenMP OpenBLAS the system BLAS/LAPACK (reference BLAS is ~25x slower; pthread OpenBLAS
#      oversubscribes the cores together with LibTorch's OpenMP pool),
#   3. configures and builds a Release s2s in build/,
#   4. runs the main job on the shipped data: trains configs/demo.yaml, translates a few lines, scores the
#      test set, and converts the model for the native engine (s2s convert), which must translate the same.
# Idempotent: re-running skips what is already there.
# Options: --no-demo (skip step 4), --build-only (skip steps 1-2), BUILD_DIR=... (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD_DIR=${BUILD_DIR:-build}
RUN_DEMO=1
INSTALL=1
for arg in "$@"; do
  case "$arg" in
    --no-demo) RUN_DEMO=0 ;;
    --build-only) INSTALL=0; RUN_DEMO=0 ;;
    *) echo "setup.sh: unknown option '$arg' (use --no-demo or --build-only)" >&2; exit 2 ;;
  esac
done
say() { printf '\n== %s\n' "$*"; }

PACKAGES=(build-essential cmake pkg-config git
  libtorch-dev libsentencepiece-dev sentencepiece libcli11-dev libspdlog-dev libyaml-cpp-dev
  nlohmann-json3-dev libgtest-dev libopenblas0-openmp libdnnl-dev libxxhash-dev
  libcpp-httplib-dev libplplot-dev plplot-driver-cairo libgloo-dev)

if [[ $INSTALL == 1 ]]; then
  SUDO=""
  if [[ $(id -u) != 0 ]]; then SUDO="sudo"; fi
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    say "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    say "Debian packages already installed"
  fi
  say "selecting the OpenMP OpenBLAS as the system BLAS/LAPACK"
  arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
  for alt in libblas.so.3 liblapack.so.3 libopenblas.so.0; do
    target=/usr/lib/$arch/openblas-openmp/$alt
    if [[ -e $target ]]; then $SUDO update-alternatives --set "$alt-$arch" "$target" >/dev/null; fi
  done
  update-alternatives --query "libblas.so.3-$arch" | grep '^Value:' || true
fi

say "configuring ($BUILD_DIR, Release)"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-}
say "building with $(nproc) jobs"
start=$(date +%s)
cmake --build "$BUILD_DIR" -j "$(nproc)"
say "build finished in $(( $(date +%s) - start )) s: $BUILD_DIR/bin/s2s"

if [[ $RUN_DEMO == 1 ]]; then
  S2S="$BUILD_DIR/bin/s2s"
  say "training the demo model (configs/demo.yaml -> models/demo)"
  "$S2S" train -c configs/demo.yaml --model-dir models/demo
  say "translating the first lines of data/test.de"
  head -n 5 data/test.de | tee /dev/stderr | "$S2S" translate --model models/demo
  say "scoring data/test.de against data/test.en"
  "$S2S" eval --model models/demo --src data/test.de --ref data/test.en
  say "converting it for the native engine (models/demo-converted) and checking that it translates the same"
  if ! "$S2S" -q convert -m models/demo -o models/demo-converted --force 2> models/convert.err; then
    grep -q "has neither" models/convert.err || { cat models/convert.err >&2; exit 1; }
    say "skipped: this CPU has neither int8 nor bf16 GEMMs to convert for"
  else
    "$S2S" -q translate -m models/demo < data/test.de > models/demo-converted/test.source.out
    "$S2S" -q translate -m models/demo-converted < data/test.de > models/demo-converted/test.out
    cmp models/demo-converted/test.source.out models/demo-converted/test.out
    say "same translations from $(du -h models/demo-converted/best.bin | cut -f1) of weights (best.bin: $(du -h models/demo/best.bin | cut -f1))"
  fi
fi
