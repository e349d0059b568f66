#include "infer/gemm.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include <dnnl.h>
#include <dnnl.hpp>

#include <omp.h>

#include "kernels/kernels.h"
#include "util/error.h"
#include "util/text.h"

// oneDNN exports its bf16 GEMM (row-major, like dnnl_sgemm) but 2.x leaves it out of the public header.
extern "C" dnnl_status_t dnnl_gemm_bf16bf16f32(char transa, char transb, dnnl_dim_t M, dnnl_dim_t N,
                                               dnnl_dim_t K, float alpha, const uint16_t* A, dnnl_dim_t lda,
                                               const uint16_t* B, dnnl_dim_t ldb, float beta, float* C,
                                               dnnl_dim_t ldc);

namespace s2s::infer {

// oneDNN's matmul primitive over weights packed once in its blocked layout (int8 or bf16). Its brgemm kernels
// (AMX, AVX512-VNNI, AVX512-BF16) multiply the decoder's shapes 1.3-10x faster than the BLAS-like
// dnnl_gemm_u8s8s32 / dnnl_gemm_bf16bf16f32, whose dispatch on AMX CPUs is slow for few rows. A primitive has
// fixed shapes: one is made per (type, rows, K, N) on first use (~0.3 ms) and shared by all threads; rows and
// output channels are rounded up so that few shapes exist.
struct PackedWeights {
  dnnl::memory::data_type type;  // s8 or bf16
  int64_t K = 0, N = 0;          // N: output channels rounded up to kColumnMultiple (zero weights past them)
  dnnl::memory weights;          // [K, N] in the layout of the primitives of packed_primitive()
};

namespace {

using dnnl::memory;
using Dt = memory::data_type;
using Tag = memory::format_tag;

// Packed products of more rows run in blocks of this many, so that a few primitives (one per row bucket)
// serve the encoder's products of every batch, whose rows are sentences x positions: a greedy run of
// test2016 made 74 primitives instead of 93 (~0.45 ms each), beam 5 113 instead of 124.
constexpr int64_t kMaxPackedRows = 256;

// Output channels of packed weights round up to this multiple, so that the shortlisted output layers of
// different batches share primitives.
constexpr int64_t kColumnMultiple = 64;

int64_t round_up(int64_t x, int64_t multiple) {
  return (x + multiple - 1) / multiple * multiple;
}

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// [M, K] x [K, N] -> [M, N]: int8 -> int32 or bf16 -> float32, with the weights in `layout` (null: oneDNN's
// choice); the caller passes the scratchpad.
dnnl::matmul::primitive_desc packed_desc(Dt type, int64_t M, int64_t K, int64_t N,
                                         const memory::desc* layout = nullptr) {
  const memory::desc src({M, K}, type, Tag::ab);
  const memory::desc weights = layout ? *layout : memory::desc({K, N}, type, Tag::any);
  const memory::desc dst({M, N}, type == Dt::s8 ? Dt::s32 : Dt::f32, Tag::ab);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return {dnnl::matmul::desc(src, weights, dst), attr, cpu_engine()};
}

// Which oneDNN kernels a packed product of `type` gets here, e.g. "brg:avx512_core_amx_int8" ("" if none).
std::string packed_kernels(Dt type) {
  try {
    return packed_desc(type, 16, 64, 64).impl_info_str();
  } catch (const dnnl::error&) {
    return "";
  }
}

// Rows of a packed product of `type` round up to this multiple (one primitive per bucket): AMX multiplies
// 16-row tiles anyway, the AVX-512 kernels pay for every row. 0: oneDNN has no brgemm kernels for `type` here
// (ISA, or ONEDNN_MAX_CPU_ISA), and the plain GEMM is the faster one; nothing is packed.
int64_t packed_row_multiple(Dt type) {
  auto multiple = [](const std::string& kernels) -> int64_t {
    if (kernels.rfind("brg", 0) != 0) return 0;
    return kernels.find("amx") != std::string::npos ? 16 : 4;
  };
  static const int64_t int8 = multiple(packed_kernels(Dt::s8)), bf16 = multiple(packed_kernels(Dt::bf16));
  return type == Dt::s8 ? int8 : bf16;
}

struct PackedPrimitive {
  dnnl::matmul matmul;
  memory::desc weights, scratchpad;
};

// The primitive for [M, K] x packed [K, N] of `type`, made on first use and kept for the process (a few
// hundred at most: rows and columns are bucketed). Packing asks oneDNN for its layout at the bucket size
// (`layout` null); products then pass that layout, which oneDNN's choice for other row counts may not be
// (bf16, K 96, N 64: another one from 48 rows on) but its kernels take.
const PackedPrimitive& packed_primitive(Dt type, int64_t M, int64_t K, int64_t N,
                                        const memory::desc* layout) {
  static std::mutex mutex;
  static std::map<std::tuple<Dt, int64_t, int64_t, int64_t>, PackedPrimitive> made;  // nodes never move
  const std::lock_guard<std::mutex> lock(mutex);
  auto [it, added] = made.try_emplace({type, M, K, N});
  if (added) {
    try {
      const auto desc = packed_desc(type, M, K, N, layout);
      it->second = {dnnl::matmul(desc), desc.weights_desc(), desc.scratchpad_desc()};
    } catch (...) {
      made.erase(it);
      throw;
    }
  }
  return it->second;
}

// Memory of at least `bytes`, 64-byte aligned, kept per thread (the primitives' scratchpads).
void* thread_scratchpad(size_t bytes) {
  thread_local std::vector<std::byte> buffer;
  if (buffer.size() < bytes + 64) buffer.resize(bytes + 64);
  const auto address = reinterpret_cast<uintptr_t>(buffer.data());
  return buffer.data() + (64 - address % 64) % 64;
}

// dst [Mp, P.N] = src [Mp, P.K] x P, with Mp a multiple of the row bucket (int32 or float32 out).
void execute_packed(const PackedWeights& P, const void* src, int64_t Mp, void* dst) {
  const auto layout = P.weights.get_desc();
  const auto& primitive = packed_primitive(P.type, Mp, P.K, P.N, &layout);
  const auto& engine = cpu_engine();
  thread_local dnnl::stream stream(engine);
  memory a({{Mp, P.K}, P.type, Tag::ab}, engine, const_cast<void*>(src));
  memory c({{Mp, P.N}, P.type == Dt::s8 ? Dt::s32 : Dt::f32, Tag::ab}, engine, dst);
  memory scratchpad(primitive.scratchpad, engine, thread_scratchpad(primitive.scratchpad.get_size()));
  primitive.matmul.execute(stream, {{DNNL_ARG_SRC, a},
                                    {DNNL_ARG_WEIGHTS, P.weights},
                                    {DNNL_ARG_DST, c},
                                    {DNNL_ARG_SCRATCHPAD, scratchpad}});
  stream.wait();
}

// W [rows, cols] (elements of `bytes` each) reordered into the primitives' layout: [K, N] from W^T when
// transposed, with zero output channels up to Np (a copy of W first, when N is not a multiple of them).
std::shared_ptr<const PackedWeights> pack_weights(Dt type, const void* data, int64_t rows, int64_t cols,
                                                  size_t bytes, bool transposed) {
  const int64_t K = transposed ? cols : rows, N = transposed ? rows : cols, Np = round_up(N, kColumnMultiple);
  std::vector<std::byte> padded;  // W as [Np, K] when transposed, else [K, Np]
  if (Np != N) {
    padded.assign(static_cast<size_t>(K * Np) * bytes, std::byte{0});
    const int64_t stride = transposed ? K : Np;  // elements between rows of `padded`
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(padded.data() + static_cast<size_t>(r * stride) * bytes,
                  static_cast<const std::byte*>(data) + static_cast<size_t>(r * cols) * bytes,
                  static_cast<size_t>(cols) * bytes);
    }
    data = padded.data();
  }
  const auto& primitive = packed_primitive(type, packed_row_multiple(type), K, Np, /*layout=*/nullptr);
  auto out = std::make_shared<PackedWeights>();
  out->type = type, out->K = K, out->N = Np;
  out->weights = memory(primitive.weights, cpu_engine());
  memory plain({{K, Np}, type, transposed ? Tag::ba : Tag::ab}, cpu_engine(), const_cast<void*>(data));
  dnnl::stream stream(cpu_engine());
  dnnl::reorder(plain, out->weights).execute(stream, plain, out->weights);
  stream.wait();
  return out;
}

}  // namespace

void Matrix::pack(bool keep_rows) {
  if (packed || type == WeightType::kF32) return;
  const Dt dt = type == WeightType::kInt8 ? Dt::s8 : Dt::bf16;
  if (packed_row_multiple(dt) == 0) return;
  const bool transposed = scale_per_row;  // W [N, K] used as W^T (matmul checks the same)
  if (type == WeightType::kInt8) {
    packed = pack_weights(dt, s8.data(), rows, cols, sizeof(int8_t), transposed);
    if (!keep_rows) s8 = std::vector<int8_t>();  // (= {} would keep the capacity)
  } else {
    packed = pack_weights(dt, bf16.data(), rows, cols, sizeof(uint16_t), transposed);
    if (!keep_rows) bf16 = std::vector<uint16_t>();
  }
}

namespace {

// f(begin, end) over [0, n) split into one contiguous range per thread of the calling OpenMP team, when
// `work` (elements) pays for a parallel region.
template <class F>
void parallel_ranges(int64_t n, int64_t work, const F& f) {
  const int parts = work >= (int64_t{1} << 16) ? std::max(1, omp_get_max_threads()) : 1;
#pragma omp parallel for num_threads(parts) schedule(static)
  for (int p = 0; p < parts; ++p) f(n * p / parts, n * (p + 1) / parts);
}

// m.s8 and m.scales of float32 `data` [rows, cols], symmetric: scale = absmax / 127 per output channel (per
// row or per column), values round(w / scale) in [-127, 127]. The maxima and the rounding are vectorized
// kernels over row or column ranges, one per thread: the load's largest cost (docs/BENCHMARKS.md, session
// 19).
void quantize_int8(const float* data, int64_t rows, int64_t cols, bool per_row, Matrix& m) {
  m.scales.assign(static_cast<size_t>(per_row ? rows : cols), 0.f);
  float* scale = m.scales.data();
  const int64_t n = rows * cols;
  if (per_row) {
    parallel_ranges(rows, n, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) scale[r] = kernels::absmax(data + r * cols, cols);
    });
  } else {
    parallel_ranges(cols, n, [&](int64_t c0, int64_t c1) {
      kernels::column_absmax(data + c0, rows, c1 - c0, cols, scale + c0);  // columns [c0, c1) of every row
    });
  }
  std::vector<float> inv(m.scales.size());
  for (size_t i = 0; i < inv.size(); ++i)
    m.scales[i] = kernels::int8_scale(m.scales[i]), inv[i] = 1.f / m.scales[i];
  m.s8.resize(static_cast<size_t>(n));
  int8_t* q = m.s8.data();
  if (per_row) {
    parallel_ranges(rows, n, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) kernels::scale_to_int8(data + r * cols, cols, inv[r], q + r * cols);
    });
  } else {
    parallel_ranges(cols, n, [&](int64_t c0, int64_t c1) {
      kernels::scale_to_int8(data + c0, rows, c1 - c0, cols, inv.data() + c0, q + c0);
    });
  }
}

}  // namespace

Matrix Matrix::from_f32(const float* data, int64_t rows, int64_t cols, WeightType type, bool per_row) {
  Matrix m;
  m.rows = rows, m.cols = cols, m.scale_per_row = per_row, m.type = type;
  const auto n = static_cast<size_t>(rows * cols);
  if (type == WeightType::kF32) {
    m.f32.assign(data, data + n);
  } else if (type == WeightType::kBf16) {
    m.bf16.resize(n);
    kernels::to_bf16(data, m.bf16.data(), rows * cols);
  } else {
    quantize_int8(data, rows, cols, per_row, m);
  }
  return m;
}

Matrix Matrix::from_stored(WeightType type, const void* weights, const float* scales, int64_t rows,
                           int64_t cols, bool per_row, bool pack) {
  if (type == WeightType::kF32) throw Error("internal: float32 weights are not stored converted");
  Matrix m;
  m.rows = rows, m.cols = cols, m.scale_per_row = per_row, m.type = type;
  if (type == WeightType::kInt8) m.scales.assign(scales, scales + (per_row ? rows : cols));
  const Dt dt = type == WeightType::kInt8 ? Dt::s8 : Dt::bf16;
  if (pack && packed_row_multiple(dt) != 0) {  // as pack(false), without the row-major copy
    m.packed =
        pack_weights(dt, weights, rows, cols, type == WeightType::kInt8 ? 1 : 2, /*transposed=*/per_row);
    return m;
  }
  const auto n = static_cast<size_t>(rows * cols);
  if (type == WeightType::kInt8) {
    m.s8.assign(static_cast<const int8_t*>(weights), static_cast<const int8_t*>(weights) + n);
  } else {
    m.bf16.assign(static_cast<const uint16_t*>(weights), static_cast<const uint16_t*>(weights) + n);
  }
  return m;
}

Matrix Matrix::select_rows(const std::vector<int64_t>& ids) const {
  if (!has_rows()) throw Error("internal: select_rows on weights packed without their rows");
  Matrix m;
  m.rows = static_cast<int64_t>(ids.size()), m.cols = cols, m.type = type, m.scale_per_row = scale_per_row;
  auto copy = [&](const auto& src, auto& dst) {
    dst.resize(static_cast<size_t>(m.rows * cols));
    for (size_t i = 0; i < ids.size(); ++i)
      std::memcpy(dst.data() + i * static_cast<size_t>(cols), src.data() + ids[i] * cols,
                  static_cast<size_t>(cols) * sizeof(src[0]));
  };
  if (is_int8()) {
    copy(s8, m.s8);
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
  if (!has_rows()) throw Error("internal: row() of weights packed without their rows");
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

// C (+)= A W (+ bias) for packed int8 W: A quantized per row to int8 and padded to a row bucket, one s8s8s32
// primitive, then the int32 sums scaled as in matmul_int8 (int8 A is uint8 A less its zero point 128: the
// sums are the same).
void matmul_packed_int8(const float* A, int64_t M, int64_t K, int64_t lda, const Matrix& W, int64_t N,
                        float* C, int64_t ldc, bool accumulate, const float* bias) {
  const PackedWeights& P = *W.packed;
  const int64_t Mp = round_up(M, packed_row_multiple(P.type));
  thread_local std::vector<uint8_t> a8;     // [Mp, K]: int8 bytes, the rows past M zero
  thread_local std::vector<float> a_scale;  // [M]
  thread_local std::vector<int32_t> c32;    // [Mp, P.N] when C cannot hold the int32 sums itself
  a8.resize(static_cast<size_t>(Mp * K)), a_scale.resize(static_cast<size_t>(M));
  kernels::quantize_rows(A, M, K, lda, a8.data(), a_scale.data(), /*zero_point=*/0);
  std::fill(a8.begin() + M * K, a8.begin() + Mp * K, uint8_t{0});
  int32_t* sums = reinterpret_cast<int32_t*>(C);  // [Mp, P.N]: replaced by their floats in place
  if (accumulate || ldc != N || Mp != M || P.N != N) {
    c32.resize(static_cast<size_t>(Mp * P.N));
    sums = c32.data();
  }
  execute_packed(P, a8.data(), Mp, sums);
  kernels::dequantize_rows(sums, M, N, P.N, a_scale.data(), W.scales.data(), bias, C, ldc, accumulate);
}

// C (+)= A W (+ bias) for packed bf16 W: A rounded to bf16 and padded to a row bucket, one bf16bf16f32
// primitive into C itself when its rows fit, else into a buffer added to C with the bias.
void matmul_packed_bf16(const float* A, int64_t M, int64_t K, int64_t lda, const Matrix& W, int64_t N,
                        float* C, int64_t ldc, bool accumulate, const float* bias) {
  const PackedWeights& P = *W.packed;
  const int64_t Mp = round_up(M, packed_row_multiple(P.type));
  thread_local std::vector<uint16_t> a16;  // [Mp, K]: the rows past M zero
  thread_local std::vector<float> c;       // [Mp, P.N] when C cannot hold the product itself
  a16.resize(static_cast<size_t>(Mp * K));
  for (int64_t i = 0; i < M; ++i) kernels::to_bf16(A + i * lda, a16.data() + i * K, K);
  std::fill(a16.begin() + M * K, a16.begin() + Mp * K, uint16_t{0});
  if (!accumulate && ldc == N && Mp == M && P.N == N) {
    execute_packed(P, a16.data(), Mp, C);
    if (bias) kernels::add_to_rows(C, M, bias, N);
    return;
  }
  c.resize(static_cast<size_t>(Mp * P.N));
  execute_packed(P, a16.data(), Mp, c.data());
  for (int64_t i = 0; i < M; ++i) {
    const float* product = c.data() + i * P.N;  // [N] of row i
    float* out = C + i * ldc;                   // [N] of row i
    if (!accumulate) std::memcpy(out, product, static_cast<size_t>(N) * sizeof(float));
    if (accumulate) kernels::add_to_rows(out, 1, product, N);
    if (bias) kernels::add_to_rows(out, 1, bias, N);
  }
}

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
    kernels::dequantize_rows(sums, M, N, N, a_scale.data(), W.scales.data(), bias, C, ldc, accumulate);
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

namespace {

[[noreturn]] void gemm_failed(const Matrix& W, int status) {
  throw Error("oneDNN " +
              std::string(W.is_int8()   ? "int8"
                          : W.is_bf16() ? "bf16"
                                        : "float32") +
              " GEMM failed (status " + std::to_string(status) + ")" +
              (W.is_bf16() ? ": bf16 needs an AVX-512 CPU; use --precision fp32 or --engine torch" : ""));
}

}  // namespace

void matmul(const float* A, int64_t M, int64_t lda, const Matrix& W, bool transposed, float* C, int64_t ldc,
            bool accumulate, const float* bias) {
  if (M == 0) return;
  const int64_t K = transposed ? W.cols : W.rows, N = transposed ? W.rows : W.cols;
  if (W.packed) {
    if (transposed != W.scale_per_row) throw Error("packed weights laid out for the other transposition");
    try {
      for (int64_t r0 = 0; r0 < M; r0 += kMaxPackedRows) {  // row blocks: see kMaxPackedRows
        const int64_t rows = std::min(kMaxPackedRows, M - r0);
        const float* a = A + r0 * lda;  // [rows, K]
        float* c = C + r0 * ldc;        // [rows, N]
        if (W.is_int8()) {
          matmul_packed_int8(a, rows, K, lda, W, N, c, ldc, accumulate, bias);
        } else {
          matmul_packed_bf16(a, rows, K, lda, W, N, c, ldc, accumulate, bias);
        }
      }
    } catch (const dnnl::error& e) {
      gemm_failed(W, static_cast<int>(e.status));
    }
    return;
  }
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
  if (status != dnnl_success) gemm_failed(W, static_cast<int>(status));
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
