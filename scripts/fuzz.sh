#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz) with clang + ASan + UBSan in build-fuzz/ and runs each for a
# given time. Usage: bash scripts/fuzz.sh [SECONDS_PER_HARNESS (default 600)] [harness ...]
# Harnesses: config text metrics model_files serve_request checkpoint (LibTorch's last.pt reader). Seeds come from the shipped configs and data; new corpus entries
# go to build-fuzz/corpus/<harness>/, crashes to build-fuzz/crashes/<harness>/ (the script then exits 1).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECONDS_EACH=${1:-600}
shift || true
HARNESSES=("$@")
((${#HARNESSES[@]})) || HARNESSES=(config text metrics model_files serve_request checkpoint)
BUILD=${BUILD_DIR_FUZZ:-build-fuzz}

need=()
for p in clang libfuzzer-14-dev libomp-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  SUDO=""; [[ $(id -u) != 0 ]] && SUDO=sudo
  $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang \
    -DS2S_FUZZ=ON -DS2S_BUILD_TESTS=OFF -DS2S_USE_PCH=OFF
fi
cmake --build "$BUILD" -j "$(nproc)" --target fuzz_all

seed() {  # seed corpus of a harness from the repository's own files
  local dir=$BUILD/corpus/$1
  mkdir -p "$dir"
  case $1 in
    config) cp configs/*.yaml "$dir"/ ;;
    text | metrics) head -c 2000 data/train.de > "$dir/de"; head -c 2000 data/train.en > "$dir/en"
      printf 'a man walks .\nthe man walks .\ta man is walking .\n' > "$dir/pair" ;;
    model_files) printf 'S2SWEIG2\x01\0\0\0\0\0\0\0' > "$dir/header"; printf 's2s-shortlist 1\n' > "$dir/shortlist"
      printf 'S2SCONV1\x02\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x01\0\0\0\x0e\0\0\0decoder.w_rec1' > "$dir/converted" ;;
    checkpoint) S2S_FUZZ_SEED=$dir ASAN_OPTIONS=detect_leaks=0 "$BUILD/bin/fuzz_checkpoint"
      cp tests/data/fuzz/checkpoint-* "$dir"/ ;;
    serve_request) printf '{"text": ["Ein Mann.", "Hallo"], "beam_size": 5}' > "$dir/array"
      printf '{"text": "Ein Mann."}' > "$dir/string" ;;
  esac
}

failed=0
for h in "${HARNESSES[@]}"; do
  seed "$h"
  mkdir -p "$BUILD/crashes/$h"
  echo "== fuzz_$h: $SECONDS_EACH s"
  if ! (cd "$BUILD/crashes/$h" && ASAN_OPTIONS=detect_leaks=0 "$ROOT/$BUILD/bin/fuzz_$h" \
        -max_total_time="$SECONDS_EACH" -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        "$ROOT/$BUILD/corpus/$h" 2>&1 | grep -E "^(#[0-9]+ +DONE|Done|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)"); then
    :
  fi
  if ls "$BUILD/crashes/$h"/crash-* "$BUILD/crashes/$h"/timeout-* "$BUILD/crashes/$h"/oom-* >/dev/null 2>&1; then
    echo "fuzz_$h: findings in $BUILD/crashes/$h"; failed=1
  fi
done
exit $failed
