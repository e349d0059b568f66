// Matrix products for the native CPU engine, through oneDNN's BLAS-like GEMMs (Debian libdnnl): float32
// (dnnl_sgemm), bfloat16 inputs with float32 accumulation (AVX512-BF16 where the CPU has it), or int8
// (dnnl_gemm_u8s8s32, VNNI where present: weights quantized per output channel, activations per row on the
// fly, int32 sums scaled back to float32).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace s2s::infer {

// How a Matrix holds its weights.
enum class WeightType { kF32, kBf16, kInt8 };

// Weights laid out for oneDNN's matmul kernels (defined in gemm.cpp).
struct PackedWeights;

// A row-major weight matrix [rows, cols] held in float32, as bfloat16 bits, or as int8 with one float32 scale
// per output channel: per row for a matrix used transposed (W [N, K]: out layer, projections, embeddings),
// per column otherwise (W [K, N]: the LSTM weights).
struct Matrix {
  int64_t rows = 0, cols = 0;
  WeightType type = WeightType::kF32;
  std::vector<float> f32;      // float32 data (empty unless kF32)
  std::vector<uint16_t> bf16;  // bfloat16 data (empty unless kBf16, or packed alone)
  std::vector<int8_t> s8;      // int8 data (empty unless kInt8, or packed alone): value = s8 * scale of its
                               // output channel
  std::vector<float> scales;   // int8: [rows] when scale_per_row, else [cols]
  bool scale_per_row = true;   // int8: which axis the scales run along; packed: whether used transposed
  std::shared_ptr<const PackedWeights> packed;  // bf16 or int8 in oneDNN's matmul layout, or null
  // Quantizes or converts float32 `data` [rows, cols]; `per_row` picks the int8 scale axis.
  static Matrix from_f32(const float* data, int64_t rows, int64_t cols, WeightType type, bool per_row);
  // A matrix stored already as bf16 or int8 (a converted file): `weights` [rows, cols] and, for int8,
  // `scales` along the axis `per_row` names. With `pack`, laid out as pack(false) does, straight from
  // `weights`.
  static Matrix from_stored(WeightType type, const void* weights, const float* scales, int64_t rows,
                            int64_t cols, bool per_row, bool pack);
  bool is_bf16() const { return type == WeightType::kBf16; }
  bool is_int8() const { return type == WeightType::kInt8; }
  // Whether row() and select_rows() work (the row-major data is there).
  bool has_rows() const { return !packed || !s8.empty() || !bf16.empty(); }
  // bf16 or int8 on a CPU where oneDNN's matmul kernels run (AMX, AVX512-VNNI, AVX512-BF16): lays the weights
  // out once for them, transposed when scale_per_row (every caller passes per_row = used transposed). They
  // multiply 1.3-10x faster than through the BLAS-like GEMMs (docs/BENCHMARKS.md, session 16). Unless
  // `keep_rows`, the row-major copy goes: row() and select_rows() then throw. Does nothing for float32 or on
  // other CPUs.
  void pack(bool keep_rows);
  // Rows `ids` of this matrix (same precision), e.g. the output layer restricted to a shortlist.
  Matrix select_rows(const std::vector<int64_t>& ids) const;
  // Float32 copy of row r into out[cols].
  void row(int64_t r, float* out) const;
};

// C [M, N] = A [M, K] * B + bias (+ C when accumulate), with B = W [K, N] or, when transposed, W^T for
// W [N, K]; bias [N] may be null. A is float32 (rows lda apart); it is rounded to bf16 first when W is bf16,
// and quantized to uint8 per row (absmax scale, zero point 128) when W is int8, whose scales must run along N
// (per row when transposed). For int8 the bias and the accumulation join the int32 rescaling pass, so C is
// written once instead of filled with the bias first.
void matmul(const float* A, int64_t M, int64_t lda, const Matrix& W, bool transposed, float* C, int64_t ldc,
            bool accumulate, const float* bias = nullptr);

// Whether bf16 GEMMs run natively here (AVX512-BF16 or AMX, not capped by ONEDNN_MAX_CPU_ISA), so that
// --precision auto picks bf16; elsewhere oneDNN would emulate them, slower than float32.
bool bf16_is_fast();

// Whether int8 GEMMs run natively here (AVX512-VNNI or AVX-VNNI, not capped by ONEDNN_MAX_CPU_ISA), so that
// --precision auto picks int8 (BLEU within 0.1 of fp32 on Multi30k, the fastest; docs/BENCHMARKS.md).
bool int8_is_fast();

}  // namespace s2s::infer
