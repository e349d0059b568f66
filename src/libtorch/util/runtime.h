// Process-wide runtime choices made on purpose: threads, the allocator, the device and bf16 autocast.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

#include "config/types.h"
#include "util/allocator.h"

namespace s2s::runtime {

// Sets LibTorch's intra-op threads (and OpenMP, which the OpenMP OpenBLAS shares) to `threads`, and one
// inter-op thread: the two pools plus a pthread BLAS would oversubscribe a small machine.
void configure_threads(int threads);

// Sets the intra-op (OpenMP) team size of the calling thread only, e.g. in a translation worker thread.
void set_thread_intra_op_threads(int threads);

// The LibTorch device for `device`; throws s2s::Error when CUDA is not available in this build/machine.
c10::Device to_torch(const Device& device);

// Whether autocast is on for `device`'s type, and the type it computes in. LibTorch 2.4 replaced 1.13's
// per-device functions (is_cpu_enabled, ...) with these; this is the one place that knows both.
bool autocast_enabled(const c10::Device& device);
c10::ScalarType autocast_dtype(const c10::Device& device);

// Enables CPU bf16 autocast for its lifetime when `enabled` (matmuls in bf16, master weights fp32).
class AutocastGuard {
 public:
  AutocastGuard(bool enabled, const c10::Device& device);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool enabled_;
  c10::Device device_;
  bool prev_;
};

// LibTorch version string and whether CUDA is usable, for `s2s --version`.
std::string torch_version();
bool cuda_available();

}  // namespace s2s::runtime
