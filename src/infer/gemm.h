// Matrix products for the native CPU engine, through oneDNN's BLAS-like GEMMs (Debian libdnnl): float32
// (dnnl_sgemm) or bfloat16 inputs with float32 accumulation and output (AVX512-BF16 where the CPU has it).
#pragma once

#include <cstdint>
#include <vector>

namespace s2s::infer {

// A row-major weight matrix [rows, cols] held in float32 or as bfloat16 bits.
struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> f32;      // float32 data (empty when bf16)
  std::vector<uint16_t> bf16;  // bfloat16 data (empty when float32)
  bool is_bf16() const { return !bf16.empty(); }
  // Rows `ids` of this matrix (same precision), e.g. the output layer restricted to a shortlist.
  Matrix select_rows(const std::vector<int64_t>& ids) const;
  // Float32 copy of row r into out[cols].
  void row(int64_t r, float* out) const;
};

// C [M, N] = A [M, K] * B (+ C when accumulate), with B = W [K, N] or, when transposed, W^T for W [N, K].
// A is float32 (rows lda apart); it is rounded to bf16 first when W is bf16.
void matmul(const float* A, int64_t M, int64_t lda, const Matrix& W, bool transposed, float* C, int64_t ldc,
            bool accumulate);

// Whether bf16 GEMMs run natively here (AVX512-BF16 or AMX, not capped by ONEDNN_MAX_CPU_ISA), so that
// --precision auto picks bf16; elsewhere oneDNN would emulate them, slower than float32.
bool bf16_is_fast();

}  // namespace s2s::infer
