#!/usr/bin/env bash
# Downloads the Debian 12 packages that scripts/gpu_check.sh needs on a GPU machine without package access
# (headers and shared libraries of every dependency except LibTorch, which comes from the machine's PyTorch)
# into .gpu-debs/ (git-ignored), and checks they fit the device tool's 64 MiB carry limit.
# Run it here, on Debian 12 with package access: bash scripts/gpu_debs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.gpu-debs
PACKAGES=(
  libsentencepiece-dev libsentencepiece0 libprotobuf-lite32 libyaml-cpp-dev libyaml-cpp0.7
  libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 libcli11-dev nlohmann-json3-dev libgtest-dev
  libdnnl-dev libdnnl2 libxxhash-dev libxxhash0 libcpp-httplib-dev libcpp-httplib0.11 libbrotli1 libbrotli-dev libssl-dev
  libplplot-dev libplplot17 libcsirocsa0 libqhull-r8.0 libltdl7 libshp2 libgoogle-glog-dev libgoogle-glog0v6
  libgflags-dev libgflags2.2 libunwind8 zlib1g-dev pkgconf pkgconf-bin libpkgconf3)
mkdir -p "$OUT"
(cd "$OUT" && apt-get download "${PACKAGES[@]}")
size=$(du -sm "$OUT" | cut -f1)
echo "gpu_debs: ${#PACKAGES[@]} packages, ${size} MiB in $OUT"
((size <= 60)) || { echo "gpu_debs: $OUT is above the 64 MiB the device tool carries" >&2; exit 1; }
