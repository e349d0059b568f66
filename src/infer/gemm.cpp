#include "infer/gemm.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <algorithm>
#include <cmath>
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
Matrix Matrix::from_f32(const float* data, int64_t rows, int64_t cols, WeightType type, bool per_row) {
  Matrix m;
  m.rows = rows, m.cols = cols, m.scale_per_row = per_row;
  const auto n = static_cast<size_t>(rows * cols);
  if (type == WeightType::kF32) {
    m.f32.assign(data, data + n);
  } else if (type == WeightType::kBf16) {
    m.bf16.resize(n);
    kernels::to_bf16(data, m.bf16.data(), rows * cols);
  } else {  // int8, symmetric: scale = absmax / 127 per output channel
    m.scales.assign(static_cast<size_t>(per_row ? rows : cols), 0.f);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        auto& s = m.scales[static_cast<size_t>(per_row ? r : c)];
        s = std::max(s, std::abs(data[r * cols + c]));
      }
    for (auto& s : m.scales) s = kernels::int8_scale(s);
    std::vector<float> inv(m.scales.size());
    for (size_t i = 0; i < inv.size(); ++i) inv[i] = 1.f / m.scales[i];
    m.s8.resize(n);
    for (int64_t r = 0; r < rows; ++r) {
      const float* in = data + r * cols;     // [cols] of row r
      int8_t* out = m.s8.data() + r * cols;  // [cols] of row r
      for (int64_t c = 0; c < cols; ++c) {
        out[c] =
            static_cast<int8_t>(kernels::round_to_int(in[c] * inv[static_cast<size_t>(per_row ? r : c)]));
      }
    }
  }
  return m;
}

Matrix Matrix::select_rows(const std::vector<int64_t>& ids) const {
  Matrix m;
  m.rows = static_cast<int64_t>(ids.size()), m.cols = cols;
  auto copy = [&](const auto& src, auto& dst) {
    dst.resize(static_cast<size_t>(m.rows * cols));
    for (size_t i = 0; i < ids.size(); ++i)
      std::memcpy(dst.data() + i * static_cast<size_t>(cols), src.data() + ids[i] * cols,
                  static_cast<size_t>(cols) * sizeof(src[0]));
  };
  if (is_int8()) {
    copy(s8, m.s8);
    m.scale_per_row = scale_per_row;
    if (!scale_per_row) {
      m.scales = scales;
    } else {
      for (const auto id : ids) m.scales.push_back(scales[static_cast<size_t>(id)]);
    }
  } else if (is_bf16()) {
    copy(bf16, m.bf16);
  } else {
    copy(f32, m.f32);
  }
  return m;
}

void Matrix::row(int64_t r, float* out) const {
  if (is_int8()) {
    for (int64_t j = 0; j < cols; ++j) {
      const float s = scales[static_cast<size_t>(scale_per_row ? r : j)];
      out[j] = s * static_cast<float>(s8[static_cast<size_t>(r * cols + j)]);
    }
    return;
  }
  if (!is_bf16()) {
    std::memcpy(out, f32.data() + r * cols, static_cast<size_t>(cols) * sizeof(float));
    return;
  }
  for (int64_t j = 0; j < cols; ++j) {
    const uint32_t bits = static_cast<uint32_t>(bf16[static_cast<size_t>(r * cols + j)]) << 16;
    std::memcpy(out + j, &bits, sizeof bits);
  }
}

namespace {

// C (+)= A W (+ bias) for int8 W: A quantized per row to uint8 (zero point 128), one u8s8s32 GEMM, then each
// int32 sum scaled by its row's and its output channel's scales, plus the bias (vectorized in kernels/).
dnnl_status_t matmul_int8(const float* A, int64_t M, int64_t K, int64_t lda, const Matrix& W, bool transposed,
                          int64_t N, float* C, int64_t ldc, bool accumulate, const float* bias) {
  if (transposed != W.scale_per_row)
    throw Error("int8 weights quantized along the wrong axis for this product");
  thread_local std::vector<uint8_t> a8;     // [M, K]
  thread_local std::vector<float> a_scale;  // [M]
  thread_local std::vector<int32_t> c32;    // [M, N] when C cannot hold the int32 sums itself
  a8.resize(static_cast<size_t>(M * K)), a_scale.resize(static_cast<size_t>(M));
  int32_t* sums = reinterpret_cast<int32_t*>(C);  // [M, N]: replaced by their floats in place
  if (accumulate || ldc != N) c32.resize(static_cast<size_t>(M * N)), sums = c32.data();
  kernels::quantize_rows(A, M, K, lda, a8.data(), a_scale.data());
  const int32_t no_offset = 0;
  const auto status = dnnl_gemm_u8s8s32('N', transposed ? 'T' : 'N', 'F', M, N, K, 1.f, a8.data(), K, 128,
                                        W.s8.data(), W.cols, 0, 0.f, sums, N, &no_offset);
  if (status == dnnl_success)
    kernels::dequantize_rows(sums, M, N, a_scale.data(), W.scales.data(), bias, C, ldc, accumulate);
  return status;
}

// C [M, N] (rows ldc apart) = bias, or += bias when accumulate: a float GEMM then adds A B with beta 1.
void add_bias(const float* bias, int64_t M, int64_t N, float* C, int64_t ldc, bool accumulate) {
  for (int64_t i = 0; i < M; ++i) {
    if (accumulate) {
      kernels::add_to_rows(C + i * ldc, 1, bias, N);
    } else {
      std::memcpy(C + i * ldc, bias, static_cast<size_t>(N) * sizeof(float));
    }
  }
}

}  // namespace

void matmul(const float* A, int64_t M, int64_t lda, const Matrix& W, bool transposed, float* C, int64_t ldc,
            bool accumulate, const float* bias) {
  if (M == 0) return;
  const int64_t K = transposed ? W.cols : W.rows, N = transposed ? W.rows : W.cols;
  const char tb = transposed ? 'T' : 'N';
  if (bias && !W.is_int8()) add_bias(bias, M, N, C, ldc, accumulate), accumulate = true;
  const float beta = accumulate ? 1.f : 0.f;
  dnnl_status_t status;
  if (W.is_int8()) {
    status = matmul_int8(A, M, K, lda, W, transposed, N, C, ldc, accumulate, bias);
  } else if (W.is_bf16()) {
    thread_local std::vector<uint16_t> a16;  // A rounded to bf16, reused across calls
    a16.resize(static_cast<size_t>(M * K));
    for (int64_t i = 0; i < M; ++i) kernels::to_bf16(A + i * lda, a16.data() + i * K, K);
    status = dnnl_gemm_bf16bf16f32('N', tb, M, N, K, 1.f, a16.data(), K, W.bf16.data(), W.cols, beta, C, ldc);
  } else {
    status = dnnl_sgemm('N', tb, M, N, K, 1.f, A, lda, W.f32.data(), W.cols, beta, C, ldc);
  }
  if (status != dnnl_success) {
    throw Error("oneDNN " +
                std::string(W.is_int8()   ? "int8"
                            : W.is_bf16() ? "bf16"
                                          : "float32") +
                " GEMM failed (status " + std::to_string(static_cast<int>(status)) + ")" +
                (W.is_bf16() ? ": bf16 needs an AVX-512 CPU; use --precision fp32 or --engine torch" : ""));
  }
}

namespace {

// Whether oneDNN may use an ISA level whose name contains one of `names` (no ONEDNN_MAX_CPU_ISA: all).
bool isa_allowed(std::initializer_list<const char*> names) {
  const char* cap = std::getenv("ONEDNN_MAX_CPU_ISA");  // oneDNN's ISA limit, if any
  if (cap == nullptr) cap = std::getenv("DNNL_MAX_CPU_ISA");
  if (cap == nullptr) return true;
  const std::string isa = text::to_lower(cap);
  if (isa == "all") return true;
  for (const char* n : names) {
    if (isa.find(n) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

bool bf16_is_fast() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx512bf16") && isa_allowed({"bf16", "amx"});
#else
  return false;
#endif
}

#if defined(__x86_64__)
// AVX-VNNI (VEX-encoded, e.g. Alder Lake): CPUID leaf 7 subleaf 1, EAX bit 4. Asked directly: clang 14's
// __builtin_cpu_supports does not know "avxvnni".
bool has_avx_vnni() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid_count(7, 1, &a, &b, &c, &d) != 0 && ((a >> 4) & 1u) != 0;
}
#endif

bool int8_is_fast() {
#if defined(__x86_64__)
  const bool vnni = __builtin_cpu_supports("avx512vnni") || has_avx_vnni();
  return vnni && isa_allowed({"vnni", "bf16", "amx"});
#else
  return false;
#endif
}

}  // namespace s2s::infer
