#!/usr/bin/env bash
# One command for a session with an NVIDIA GPU (issue 10): builds the CUDA variant, runs the CUDA tests,
# trains 300 steps of the reference config on the GPU (bf16 autocast), runs a 1-rank NCCL data-parallel
# smoke test and translates test2016 on the GPU. Prints `gpu_check: <what> <figure>` lines; fits in one
# 10-minute device call. Where the CPU has bf16 it also measures the CPU training throughput on 2 cores.
#
# Needs (checked first, each with a one-line reason when missing):
#   - nvidia-smi and a GPU;
#   - python3 with a CUDA-enabled PyTorch 2.x: its LibTorch (headers, CMake config, NCCL) is what we link;
#   - cmake and a C++17 compiler;
#   - the Debian 12 packages of scripts/gpu_debs.sh as .deb files in .gpu-debs/ (made with package access by
#     `bash scripts/gpu_debs.sh`; the device tool carries the folder: carry [".gpu-debs"]), unpacked here with
#     dpkg -x (or ar + tar) into .gpu-prefix/;
#   - ../shared/data/multi30k for the training and translation figures (skipped without it). The device tool
#     does not carry ../shared: copy data/multi30k into .gpu-data/ (git-ignored), carry it, and start the
#     command with `ln -sfn "$PWD/.gpu-data" ../shared;` (session 25 did so).
# Usage: bash scripts/gpu_check.sh   (env: STEPS, default 300; JOBS, default nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STEPS=${STEPS:-300}
JOBS=${JOBS:-$(nproc)}
say() { echo "gpu_check: $*"; }
need() { say "cannot run: $*" >&2; exit 2; }

command -v nvidia-smi >/dev/null || need "no nvidia-smi (not a GPU machine)"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | sed 's/^/gpu_check: gpu /'
say "cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) threads," \
  "bf16: $(grep -o -m1 -w -E 'avx512_bf16|amx_bf16' /proc/cpuinfo | head -1 || true)"
command -v cmake >/dev/null || need "no cmake"
python3 - <<'PY' || need "python3 has no CUDA-enabled PyTorch 2.x"
import torch, sys
assert torch.cuda.is_available() and int(torch.__version__.split(".")[0]) >= 2
print(f"gpu_check: torch {torch.__version__} cuda {torch.version.cuda} cxx11_abi {torch._C._GLIBCXX_USE_CXX11_ABI}")
PY
TORCH_PREFIX=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
[[ $(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))') == 1 ]] ||
  need "this PyTorch uses the pre-C++11 std::string ABI; Debian's libraries use the new one (use a cxx11-ABI LibTorch)"

# 1. Debian packages into a prefix.
PREFIX=$ROOT/.gpu-prefix
ls .gpu-debs/*.deb >/dev/null 2>&1 || need "no .gpu-debs/*.deb (run scripts/gpu_debs.sh on Debian 12, carry .gpu-debs)"
rm -rf "$PREFIX" && mkdir -p "$PREFIX"
for deb in .gpu-debs/*.deb; do
  if command -v dpkg >/dev/null; then
    dpkg -x "$deb" "$PREFIX"
  else
    (tmp=$(mktemp -d) && cd "$tmp" && ar x "$ROOT/$deb" && tar -xf data.tar.* -C "$PREFIX" && rm -rf "$tmp")
  fi
done
ARCH_LIB=$PREFIX/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$ARCH_LIB:$PREFIX/usr/lib:$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__) + "/lib")'):${LD_LIBRARY_PATH:-}
export PATH=$PATH:$PREFIX/usr/bin
export PKG_CONFIG_PATH=$ARCH_LIB/pkgconfig:$PREFIX/usr/share/pkgconfig:$PREFIX/usr/lib/pkgconfig
# pkg-config files name /usr; point them at the prefix.
find "$PREFIX" -name '*.pc' -exec sed -i -E "s#^(prefix|exec_prefix|libdir|includedir)=/usr#\1=$PREFIX/usr#; s#(-I|-L)/usr/#\1$PREFIX/usr/#g" {} +
say "unpacked $(ls .gpu-debs/*.deb | wc -l) packages into $PREFIX"

# 2. Build.
start=$(date +%s)
rm -rf build-cuda  # a cached pkg-config answer would outlive a changed prefix
cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DS2S_USE_PCH=OFF \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$PREFIX/usr;$ARCH_LIB/cmake" \
  -DCMAKE_INCLUDE_PATH="$PREFIX/usr/include" -DCMAKE_LIBRARY_PATH="$ARCH_LIB" >build-cuda.log 2>&1 ||
  { tail -20 build-cuda.log; need "cmake failed (build-cuda.log)"; }
# -k: one failed build lists every error, for a device session that may not get a second try.
cmake --build build-cuda -j "$JOBS" -- -k >>build-cuda.log 2>&1 ||
  { grep -E 'error|undefined reference' build-cuda.log | sort -u | head -40; need "build failed"; }
say "build $(($(date +%s) - start)) s"
S2S=build-cuda/bin/s2s
$S2S --version | grep -q "CUDA available: yes" || need "the build does not see CUDA ($S2S --version)"

# 3. CUDA tests (and the distributed ones, on the CPU of this machine, where this LibTorch has Gloo).
filters=('Cuda.*' 'Distributed.*')
if grep -q 'S2S_GLOO_INCLUDE:PATH=.*NOTFOUND' build-cuda/CMakeCache.txt; then
  say "tests Distributed.* skipped: this LibTorch has no Gloo headers (CPU data parallelism needs Gloo)"
  filters=('Cuda.*')
fi
for filter in "${filters[@]}"; do
  (cd build-cuda && timeout 300 ./bin/s2s_nn_tests --gtest_filter="$filter" 2>&1 |
    grep -E '^\[ +(PASSED|FAILED|SKIPPED) +\]' | sed "s/^/gpu_check: tests $filter /") || true
done

DATA=../shared/data/multi30k
if [[ ! -d $DATA ]]; then say "no $DATA: training and translation figures skipped"; exit 0; fi
WORK=$(mktemp -d)
# tok/s of a run from metrics.jsonl, between the row of step $2 (0: the first row) and the last.
rate() {
  python3 - "$1/metrics.jsonl" "$2" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"train_loss"' in l]
a = next((r for r in rows if r["step"] == int(sys.argv[2])), rows[0])
b = rows[-1]
print(f"{b['step']} steps, loss {b['train_loss']:.3f}, "
      f"{(b['total_tokens'] - a['total_tokens']) / (b['elapsed_s'] - a['elapsed_s']):.0f} tok/s")
PY
}
# 4. 300 steps of the reference config on the GPU, bf16 autocast, with the throughput bench's 4096-token batches.
$S2S -q train -c configs/multi30k-de-en.yaml --model-dir "$WORK/m" --device cuda --precision bf16 --set train.batch_tokens=4096 \
  --max-steps "$STEPS" --set train.valid_every=1000000 --set train.max_minutes=0 --set train.log_every=50
say "train cuda bf16: $(rate "$WORK/m" 0)"
# 5. A 1-rank NCCL data-parallel smoke test (resumes the run above for 20 steps).
$S2S -q train --model-dir "$WORK/m" --device cuda --world-size 1 --dist-addr 127.0.0.1:29577 \
  --max-steps $((STEPS + 20)) && say "nccl 1-rank: ok"
# 6. test2016 on the GPU.
start=$(date +%s.%N)
$S2S -q translate -m "$WORK/m" --engine torch --device cuda -b 5 -i $DATA/test2016.de -o "$WORK/hyp.en"
secs=$(python3 -c "import time; print(f'{time.time() - $start:.2f}')")
say "translate test2016 beam 5 on cuda: ${secs} s, $($S2S -q eval --hyp "$WORK/hyp.en" --ref $DATA/test2016.en --score-only --metrics bleu) BLEU"
# 7. CPU training throughput on two cores of this machine's CPU where it has bf16 (issue 9): 5 warm-up steps,
# then CPU_STEPS, in bf16 and fp32, with the GPU run's vocabulary and the throughput bench's 4096-token batches.
if grep -q -w -E 'avx512_bf16|amx_bf16' /proc/cpuinfo && command -v taskset >/dev/null; then
  for precision in bf16 fp32; do
    timeout 240 taskset -c 0,1 $S2S -q train -c configs/multi30k-de-en.yaml --model-dir "$WORK/cpu_$precision" \
      --device cpu --precision $precision --threads 2 --set vocab.src_model="$WORK/m/spm.model" --set train.batch_tokens=4096 \
      --max-steps $((5 + ${CPU_STEPS:-20})) --set train.valid_every=1000000 --set train.max_minutes=0 \
      --set train.log_every=5 || true
    say "cpu train 2 cores $precision: $(rate "$WORK/cpu_$precision" 5)"
  done
fi
rm -rf "$WORK"
