#!/usr/bin/env bash
# Runs the whole test suite (GoogleTest through ctest) against the build made by scripts/setup.sh.
# Builds first if anything changed. BUILD_DIR=... selects another build directory. Extra arguments go to ctest.
#   --sanitize  builds build-sanitize/ with AddressSanitizer + UndefinedBehaviorSanitizer and runs the suite
#               there (any report fails the test that triggered it).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
CMAKE_ARGS=(-DCMAKE_BUILD_TYPE=Release)
if [[ ${1:-} == --sanitize ]]; then
  shift
  BUILD_DIR=${BUILD_DIR_SANITIZE:-build-sanitize}
  CMAKE_ARGS=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DS2S_SANITIZE=ON)
  # LibTorch and SentencePiece are not instrumented: leaks of their static state at exit are not ours.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:detect_odr_violation=0}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
  cmake -S . -B "$BUILD_DIR" "${CMAKE_ARGS[@]}"
fi
cmake --build "$BUILD_DIR" -j "$(nproc)"
cd "$BUILD_DIR"
ctest --output-on-failure -j "$(nproc)" "$@"
