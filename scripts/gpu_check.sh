#!/usr/bin/env bash
# One command for a session with an NVIDIA GPU (issue 10): builds the CUDA variant, runs the CUDA tests,
# trains 300 steps of the reference config on the GPU (bf16 autocast), runs a 1-rank NCCL data-parallel
# smoke test and translates test2016 on the GPU. Prints `gpu_check: <what> <figure>` lines; fits in one
# 10-minute device call.
#
# Needs (checked first, each with a one-line reason when missing):
#   - nvidia-smi and a GPU;
#   - python3 with a CUDA-enabled PyTorch 2.x: its LibTorch (headers, CMake config, NCCL) is what we link;
#   - cmake and a C++17 compiler;
#   - the Debian 12 packages of scripts/gpu_debs.sh as .deb files in .gpu-debs/ (made with package access by
#     `bash scripts/gpu_debs.sh`; the device tool carries the folder: carry [".gpu-debs"]), unpacked here with
#     dpkg -x (or ar + tar) into .gpu-prefix/;
#   - ../shared/data/multi30k for the training and translation figures (skipped without it).
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
find "$PREFIX" -name '*.pc' -exec sed -i "s|^prefix=/usr|prefix=$PREFIX/usr|" {} +
say "unpacked $(ls .gpu-debs/*.deb | wc -l) packages into $PREFIX"

# 2. Build.
start=$(date +%s)
cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DS2S_USE_PCH=OFF \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$PREFIX/usr;$ARCH_LIB/cmake" \
  -DCMAKE_INCLUDE_PATH="$PREFIX/usr/include" -DCMAKE_LIBRARY_PATH="$ARCH_LIB" >build-cuda.log 2>&1 ||
  { tail -20 build-cuda.log; need "cmake failed (build-cuda.log)"; }
cmake --build build-cuda -j "$JOBS" >>build-cuda.log 2>&1 || { grep -m5 error build-cuda.log; need "build failed"; }
say "build $(($(date +%s) - start)) s"
S2S=build-cuda/bin/s2s
$S2S --version | grep -q "CUDA available: yes" || need "the build does not see CUDA ($S2S --version)"

# 3. CUDA tests (and the distributed ones, on the CPU of this machine).
(cd build-cuda && ./bin/s2s_nn_tests --gtest_filter='Cuda.*:Distributed.*' 2>&1 | tail -3 | sed 's/^/gpu_check: tests /')

DATA=../shared/data/multi30k
if [[ ! -d $DATA ]]; then say "no $DATA: training and translation figures skipped"; exit 0; fi
WORK=$(mktemp -d)
# 4. 300 steps of the reference config on the GPU, bf16 autocast.
$S2S -q train -c configs/multi30k-de-en.yaml --model-dir "$WORK/m" --device cuda --precision bf16 \
  --max-steps "$STEPS" --set train.valid_every=1000000 --set train.max_minutes=0 --set train.log_every=50
python3 - "$WORK/m/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"train_loss"' in l]
a, b = rows[0], rows[-1]
print(f"gpu_check: train {b['step']} steps, loss {b['train_loss']:.3f}, "
      f"{(b['total_tokens'] - a['total_tokens']) / (b['elapsed_s'] - a['elapsed_s']):.0f} tok/s")
PY
# 5. A 1-rank NCCL data-parallel smoke test (resumes the run above for 20 steps).
$S2S -q train --model-dir "$WORK/m" --device cuda --world-size 1 --dist-addr 127.0.0.1:29577 \
  --max-steps $((STEPS + 20)) && say "nccl 1-rank: ok"
# 6. test2016 on the GPU.
start=$(date +%s.%N)
$S2S -q translate -m "$WORK/m" --engine torch --device cuda -b 5 -i $DATA/test2016.de -o "$WORK/hyp.en"
secs=$(python3 -c "import time; print(f'{time.time() - $start:.2f}')")
say "translate test2016 beam 5 on cuda: ${secs} s, $($S2S -q eval --hyp "$WORK/hyp.en" --ref $DATA/test2016.en --score-only --metrics bleu) BLEU"
rm -rf "$WORK"
