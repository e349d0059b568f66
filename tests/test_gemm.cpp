// The native engine's GEMMs: int8 weights (per output channel) with activations quantized per row stay close
// to float32, in both weight layouts, with and without accumulation; rows selected from an int8 matrix keep
// their scales.
#include "infer/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "util/error.h"

namespace {

using s2s::infer::Matrix;
using s2s::infer::WeightType;

std::vector<float> random_values(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// max |a - b| / max |b|
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, ref = 0;
  for (size_t i = 0; i < a.size(); ++i)
    diff = std::max(diff, double(std::abs(a[i] - b[i]))), ref = std::max(ref, double(std::abs(b[i])));
  return diff / ref;
}

// int8 weights are symmetric per output channel: scale = absmax / 127, values round(w / scale) half away
// from zero. The matrix is big enough for the quantization to split its rows or columns over threads.
TEST(Gemm, Int8WeightsAreRoundedPerOutputChannel) {
  const int64_t rows = 301, cols = 263;  // 79,163 values: past the threshold of a parallel region
  auto w = random_values(rows * cols, 16, 0.1f);
  w[5] = 0.f, w[7 * cols + 3] = -1.5f;  // a channel's largest magnitude negative
  for (const bool per_row : {true, false}) {
    SCOPED_TRACE(per_row ? "scales per row" : "scales per column");
    const auto m = Matrix::from_f32(w.data(), rows, cols, WeightType::kInt8, per_row);
    ASSERT_EQ(m.scales.size(), static_cast<size_t>(per_row ? rows : cols));
    std::vector<float> absmax(m.scales.size(), 0.f);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        auto& a = absmax[static_cast<size_t>(per_row ? r : c)];
        a = std::max(a, std::abs(w[r * cols + c]));
      }
    for (size_t i = 0; i < absmax.size(); ++i) ASSERT_EQ(m.scales[i], absmax[i] / 127.f) << "channel " << i;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const float x = w[r * cols + c] * (1.f / m.scales[static_cast<size_t>(per_row ? r : c)]);
        const auto want = static_cast<int>(x + (x >= 0 ? 0.5f : -0.5f));
        ASSERT_EQ(m.s8[static_cast<size_t>(r * cols + c)], want) << r << ", " << c;
      }
  }
}

TEST(Gemm, Int8StaysCloseToFloat32) {
  if (!s2s::infer::int8_is_fast()) GTEST_SKIP() << "this CPU has no VNNI for int8 GEMMs";
  const int64_t M = 7, K = 300, N = 50;
  const auto A = random_values(M * K, 1, 1.f);
  for (const bool transposed : {false, true}) {
    SCOPED_TRACE(transposed ? "W [N, K] used transposed" : "W [K, N]");
    const auto w = random_values(K * N, 2, 0.05f);
    const int64_t rows = transposed ? N : K, cols = transposed ? K : N;
    const auto f32 = Matrix::from_f32(w.data(), rows, cols, WeightType::kF32, transposed);
    const auto s8 = Matrix::from_f32(w.data(), rows, cols, WeightType::kInt8, transposed);
    ASSERT_TRUE(s8.is_int8());
    EXPECT_EQ(s8.scales.size(), static_cast<size_t>(N));  // one scale per output channel
    std::vector<float> exact(M * N, 1.f), approx(M * N, 1.f);
    s2s::infer::matmul(A.data(), M, K, f32, transposed, exact.data(), N, /*accumulate=*/true);
    s2s::infer::matmul(A.data(), M, K, s8, transposed, approx.data(), N, /*accumulate=*/true);
    EXPECT_LT(relative_error(approx, exact), 0.03);
    s2s::infer::matmul(A.data(), M, K, s8, transposed, approx.data(), N, /*accumulate=*/false);
    s2s::infer::matmul(A.data(), M, K, f32, transposed, exact.data(), N, /*accumulate=*/false);
    EXPECT_LT(relative_error(approx, exact), 0.03);
  }
}

// The bias epilogue in every precision: C = A W + bias, and C += A W + bias, into rows ldc apart whose tail
// columns stay untouched; int8 folds the bias into its rescaling pass, the float GEMMs add it first.
TEST(Gemm, BiasJoinsTheProductInEveryPrecision) {
  const int64_t M = 5, K = 64, N = 24, ldc = 30;
  const auto A = random_values(M * K, 4, 1.f), w = random_values(N * K, 5, 0.1f),
             bias = random_values(N, 6, 1.f);
  const auto start = random_values(M * ldc, 7, 1.f);
  const auto f32 = Matrix::from_f32(w.data(), N, K, WeightType::kF32, /*per_row=*/true);
  std::vector<float> product(M * N, 0.f);  // A W^T, float32
  s2s::infer::matmul(A.data(), M, K, f32, /*transposed=*/true, product.data(), N, /*accumulate=*/false);
  std::vector<WeightType> types{WeightType::kF32};
  if (s2s::infer::bf16_is_fast()) types.push_back(WeightType::kBf16);
  if (s2s::infer::int8_is_fast()) types.push_back(WeightType::kInt8);
  for (const auto type : types) {
    const auto W = Matrix::from_f32(w.data(), N, K, type, /*per_row=*/true);
    for (const bool accumulate : {false, true}) {
      SCOPED_TRACE("type " + std::to_string(static_cast<int>(type)) + (accumulate ? " accumulate" : ""));
      auto C = start;
      s2s::infer::matmul(A.data(), M, K, W, /*transposed=*/true, C.data(), ldc, accumulate, bias.data());
      std::vector<float> got, want;
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < ldc; ++j) {
          const float before = start[i * ldc + j];
          if (j >= N) {
            EXPECT_EQ(C[i * ldc + j], before) << "column " << j << " is past N";
            continue;
          }
          got.push_back(C[i * ldc + j]);
          want.push_back(product[i * N + j] + bias[j] + (accumulate ? before : 0.f));
        }
      EXPECT_LT(relative_error(got, want), type == WeightType::kF32 ? 1e-6 : 0.02);
    }
  }
}

// An int8 product into contiguous rows writes its int32 sums into C and rescales them in place; rows ldc > N
// apart go through a separate int32 buffer. Both give the same floats, bit for bit.
TEST(Gemm, Int8SumsRescaledInPlaceEqualASeparateBuffer) {
  if (!s2s::infer::int8_is_fast()) GTEST_SKIP() << "this CPU has no VNNI for int8 GEMMs";
  const int64_t M = 9, K = 70, N = 33, ldc = N + 3;
  const auto A = random_values(M * K, 8, 1.f), w = random_values(N * K, 9, 0.1f),
             bias = random_values(N, 10, 1.f);
  const auto W = Matrix::from_f32(w.data(), N, K, WeightType::kInt8, /*per_row=*/true);
  for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
    SCOPED_TRACE(b ? "with bias" : "no bias");
    std::vector<float> in_place(M * N), strided(M * ldc);
    s2s::infer::matmul(A.data(), M, K, W, /*transposed=*/true, in_place.data(), N, /*accumulate=*/false, b);
    s2s::infer::matmul(A.data(), M, K, W, /*transposed=*/true, strided.data(), ldc, /*accumulate=*/false, b);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) ASSERT_EQ(in_place[i * N + j], strided[i * ldc + j]) << i << ", " << j;
  }
}

// Packed weights (oneDNN's matmul kernels: AMX, AVX512-VNNI, AVX512-BF16) give the plain GEMM's floats: int8
// bit for bit (the same int32 sums: int8 activations are the uint8 ones less their zero point 128, and the
// same rescaling), bf16 up to float32 summation order. For row counts inside and across the row buckets and
// blocks, output channels that are and are not a multiple of the column padding, both layouts, a bias,
// accumulation and rows ldc apart.
TEST(Gemm, PackedWeightsEqualThePlainGemm) {
  std::vector<WeightType> types;
  if (s2s::infer::int8_is_fast()) types.push_back(WeightType::kInt8);
  if (s2s::infer::bf16_is_fast()) types.push_back(WeightType::kBf16);
  const int64_t K = 96;
  int packed_types = 0;
  for (const auto type : types) {
    for (const int64_t N : {int64_t{64}, int64_t{70}}) {
      for (const bool transposed : {false, true}) {
        const auto w = random_values(K * N, 11, 0.1f), bias = random_values(N, 12, 1.f);
        const int64_t rows = transposed ? N : K, cols = transposed ? K : N;
        const auto plain = Matrix::from_f32(w.data(), rows, cols, type, transposed);
        auto packed = plain;
        packed.pack(/*keep_rows=*/false);
        if (!packed.packed) break;  // oneDNN has no matmul kernels for this type here
        packed_types += N == 64 && !transposed;
        ASSERT_FALSE(packed.has_rows());
        ASSERT_EQ(packed.type, type);
        for (const int64_t M :
             {int64_t{1}, int64_t{3}, int64_t{16}, int64_t{17}, int64_t{40}, int64_t{300}}) {
          for (const bool accumulate : {false, true}) {
            SCOPED_TRACE((type == WeightType::kInt8 ? "int8 N " : "bf16 N ") + std::to_string(N) +
                         (transposed ? " W^T" : " W") + " M " + std::to_string(M) +
                         (accumulate ? " accumulate" : ""));
            const int64_t ldc = accumulate ? N + 5 : N;
            const auto A = random_values(M * K, 13 + M, 1.f), start = random_values(M * ldc, 14, 1.f);
            auto want = start, got = start;
            s2s::infer::matmul(A.data(), M, K, plain, transposed, want.data(), ldc, accumulate, bias.data());
            s2s::infer::matmul(A.data(), M, K, packed, transposed, got.data(), ldc, accumulate, bias.data());
            if (type == WeightType::kInt8) {
              ASSERT_EQ(got, want);
            } else {
              ASSERT_LT(relative_error(got, want), 1e-5);
            }
          }
        }
      }
    }
  }
  if (packed_types == 0) GTEST_SKIP() << "oneDNN has no int8 or bf16 matmul kernels here (or a capped ISA)";
}

// Packing keeps the row-major copy only when asked: rows of a table packed without it are an error, not
// garbage.
TEST(Gemm, PackedWeightsKeepTheirRowsOnlyWhenAsked) {
  if (!s2s::infer::int8_is_fast()) GTEST_SKIP() << "this CPU has no VNNI for int8 GEMMs";
  const auto w = random_values(20 * 8, 15, 1.f);
  const auto plain = Matrix::from_f32(w.data(), 20, 8, WeightType::kInt8, /*per_row=*/true);
  auto kept = plain, dropped = plain;
  kept.pack(/*keep_rows=*/true);
  dropped.pack(/*keep_rows=*/false);
  if (!kept.packed)
    GTEST_SKIP() << "oneDNN has no int8 matmul kernels here (or ONEDNN_MAX_CPU_ISA caps them)";
  std::vector<float> row(8), expected(8);
  kept.row(5, row.data());
  plain.row(5, expected.data());
  EXPECT_EQ(row, expected);
  EXPECT_EQ(kept.select_rows({5}).s8, plain.select_rows({5}).s8);
  EXPECT_THROW(dropped.row(5, row.data()), s2s::Error);
  EXPECT_THROW(dropped.select_rows({5}), s2s::Error);
}

TEST(Gemm, Int8RowsKeepTheirScales) {
  const auto w = random_values(20 * 8, 3, 1.f);
  const auto m = Matrix::from_f32(w.data(), 20, 8, WeightType::kInt8, /*per_row=*/true);
  const auto picked = m.select_rows({3, 17});
  std::vector<float> row(8), expected(8);
  picked.row(1, row.data());
  m.row(17, expected.data());
  EXPECT_EQ(row, expected);
  for (int j = 0; j < 8; ++j) EXPECT_NEAR(row[j], w[17 * 8 + j], std::abs(w[17 * 8 + j]) * 0.01 + 0.02);
}

}  // namespace
