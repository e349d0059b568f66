#include "libtorch/util/runtime.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <malloc.h>
#include <omp.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "util/error.h"

namespace s2s::runtime {

void configure_threads(int threads) {
  static bool interop_set = false;
  if (!interop_set) {
    // Denormal floats (exp of very negative logits in softmax) cost microcode assists: flush them to zero,
    // before the OpenMP workers start so that they inherit the mode. Halves log_softmax on real logits.
    at::globalContext().setFlushDenormal(true);
    try {
      at::set_num_interop_threads(1);
    } catch (const std::exception&) {
      // Already started by an earlier parallel region; harmless.
    }
    interop_set = true;
  }
  at::set_num_threads(threads);
}

void set_thread_intra_op_threads(int threads) {
  at::internal::lazy_init_num_threads();  // ATen sets this thread's team size once, on first use: do it now
  omp_set_num_threads(std::max(1, threads));
}

c10::Device to_torch(const Device& device) {
  if (device.is_cpu()) return c10::Device(c10::kCPU);
  const auto name = to_string(device);
  if (!torch::cuda::is_available()) {
    throw Error("device '" + name + "' requested, but " +
                (torch::cuda::device_count() == 0 && std::string(TORCH_VERSION).empty()
                     ? std::string("no GPU is visible")
                     : "this s2s was built against a CPU-only LibTorch (" + std::string(TORCH_VERSION) +
                           ") or no GPU is visible; rebuild with a CUDA LibTorch (see README) or use "
                           "--device cpu"));
  }
  if (device.index >= static_cast<int>(torch::cuda::device_count())) {
    throw Error("device '" + name + "': only " + std::to_string(torch::cuda::device_count()) +
                " GPU(s) visible");
  }
  return device.index < 0 ? c10::Device(c10::kCUDA)
                          : c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(device.index));
}

AutocastGuard::AutocastGuard(bool enabled, const c10::Device& device)
    : enabled_(enabled), cuda_(device.is_cuda()), prev_(false) {
  if (!enabled_) return;
  if (cuda_) {
    prev_ = at::autocast::is_enabled();
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
  } else {
    prev_ = at::autocast::is_cpu_enabled();
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
  }
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!enabled_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  if (cuda_) {
    at::autocast::set_enabled(prev_);
  } else {
    at::autocast::set_cpu_enabled(prev_);
  }
}

std::string torch_version() {
  return TORCH_VERSION;
}

bool cuda_available() {
  return torch::cuda::is_available();
}

}  // namespace s2s::runtime
