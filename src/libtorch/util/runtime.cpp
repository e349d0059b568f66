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

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool autocast_enabled(const c10::Device& device) {
  return at::autocast::is_autocast_enabled(device.type());
}
c10::ScalarType autocast_dtype(const c10::Device& device) {
  return at::autocast::get_autocast_dtype(device.type());
}
namespace {
void set_autocast(const c10::Device& device, bool enabled) {
  at::autocast::set_autocast_dtype(device.type(), at::kBFloat16);
  at::autocast::set_autocast_enabled(device.type(), enabled);
}
}  // namespace
#else
bool autocast_enabled(const c10::Device& device) {
  return device.is_cuda() ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
c10::ScalarType autocast_dtype(const c10::Device& device) {
  return device.is_cuda() ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
namespace {
void set_autocast(const c10::Device& device, bool enabled) {
  if (device.is_cuda()) {
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(enabled);
  }
}
}  // namespace
#endif

AutocastGuard::AutocastGuard(bool enabled, const c10::Device& device)
    : enabled_(enabled), device_(device.type()), prev_(false) {
  if (!enabled_) return;
  prev_ = autocast_enabled(device_);
  set_autocast(device_, true);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!enabled_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast(device_, prev_);
}

std::string torch_version() {
  return TORCH_VERSION;
}

bool cuda_available() {
  return torch::cuda::is_available();
}

}  // namespace s2s::runtime
