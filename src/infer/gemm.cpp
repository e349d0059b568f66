#include "infer/gemm.h"

#include <cstdlib>
#include <string>

#include <dnnl.h>

#include <cstring>
#include <string>

#include "kernels/kernels.h"
#include "util/error.h"
#include "util/text.h"

// oneDNN exports its bf16 GEMM (row-major, like dnnl_sgemm) but 2.x leaves it out of the public header.
extern "C" dnnl_status_t dnnl_gemm_bf16bf16f32(char transa, char transb, dnnl_dim_t M, dnnl_dim_t N,
                                               dnnl_dim_t K, float alpha, const uint16_t* A, dnnl_dim_t lda,
                                               const uint16_t* B, dnnl_dim_t ldb, float beta, float* C,
                                               dnnl_dim_t ldc);

namespace s2s::infer {

Matrix Matrix::select_rows(const std::vector<int64_t>& ids) const {
  Matrix m;
  m.rows = static_cast<int64_t>(ids.size()), m.cols = cols;
  auto copy = [&](const auto& src, auto& dst) {
    dst.resize(static_cast<size_t>(m.rows * cols));
    for (size_t i = 0; i < ids.size(); ++i)
      std::memcpy(dst.data() + i * static_cast<size_t>(cols), src.data() + ids[i] * cols,
                  static_cast<size_t>(cols) * sizeof(src[0]));
  };
  if (is_bf16())
    copy(bf16, m.bf16);
  else
    copy(f32, m.f32);
  return m;
}

void Matrix::row(int64_t r, float* out) const {
  if (!is_bf16()) {
    std::memcpy(out, f32.data() + r * cols, static_cast<size_t>(cols) * sizeof(float));
    return;
  }
  for (int64_t j = 0; j < cols; ++j) {
    const uint32_t bits = static_cast<uint32_t>(bf16[static_cast<size_t>(r * cols + j)]) << 16;
    std::memcpy(out + j, &bits, sizeof bits);
  }
}

void matmul(const float* A, int64_t M, int64_t lda, const Matrix& W, bool transposed, float* C, int64_t ldc,
            bool accumulate) {
  if (M == 0) return;
  const int64_t K = transposed ? W.cols : W.rows, N = transposed ? W.rows : W.cols;
  const char tb = transposed ? 'T' : 'N';
  const float beta = accumulate ? 1.f : 0.f;
  dnnl_status_t status;
  if (W.is_bf16()) {
    thread_local std::vector<uint16_t> a16;  // A rounded to bf16, reused across calls
    a16.resize(static_cast<size_t>(M * K));
    for (int64_t i = 0; i < M; ++i) kernels::to_bf16(A + i * lda, a16.data() + i * K, K);
    status = dnnl_gemm_bf16bf16f32('N', tb, M, N, K, 1.f, a16.data(), K, W.bf16.data(), W.cols, beta, C, ldc);
  } else {
    status = dnnl_sgemm('N', tb, M, N, K, 1.f, A, lda, W.f32.data(), W.cols, beta, C, ldc);
  }
  if (status != dnnl_success) {
    throw Error("oneDNN " + std::string(W.is_bf16() ? "bf16" : "float32") + " GEMM failed (status " +
                std::to_string(static_cast<int>(status)) + ")" +
                (W.is_bf16() ? ": bf16 needs an AVX-512 CPU; use --precision fp32 or --engine torch" : ""));
  }
}

bool bf16_is_fast() {
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("avx512bf16")) return false;
#else
  return false;
#endif
  const char* cap = std::getenv("ONEDNN_MAX_CPU_ISA");  // oneDNN's ISA limit, if any
  if (cap == nullptr) cap = std::getenv("DNNL_MAX_CPU_ISA");
  if (cap == nullptr) return true;
  const std::string isa = text::to_lower(cap);
  return isa == "all" || isa.find("bf16") != std::string::npos || isa.find("amx") != std::string::npos;
}

}  // namespace s2s::infer
