#include "kernels/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

// Built with -O3 -ffast-math (this file only, see CMakeLists.txt) so that GCC vectorizes the loops and
// tanhf/expf through glibc's libmvec; target_clones compiles AVX-512 and AVX2 variants and picks one at
// load time.
#define S2S_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

namespace s2s::kernels {
namespace {

inline float as_float(float x) {
  return x;
}
inline double as_float(double x) {  // double stays double (gradient tests)
  return x;
}
inline float as_float(uint16_t bf16) {  // bfloat16 bits are the high half of a float32
  const uint32_t u = static_cast<uint32_t>(bf16) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline void store(float x, float* out) {
  *out = x;
}
inline void store(double x, double* out) {
  *out = x;
}
inline void store(float x, uint16_t* out) {  // round to nearest even, as c10::BFloat16 (finite values)
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  *out = static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

// sigmoid(x) = (1 + tanh(x / 2)) / 2: one vectorized transcendental for every gate.
template <class T>
__attribute__((always_inline)) inline void lstm_row(const T* __restrict gates, const float* c_prev, float* c,
                                                    T* __restrict h, int64_t H) {
  const T* gi = gates;
  const T* gf = gates + H;
  const T* go = gates + 2 * H;
  const T* gg = gates + 3 * H;
  for (int64_t j = 0; j < H; ++j) {
    const float i = 0.5f + 0.5f * std::tanh(0.5f * as_float(gi[j]));
    const float f = 0.5f + 0.5f * std::tanh(0.5f * as_float(gf[j]));
    const float o = 0.5f + 0.5f * std::tanh(0.5f * as_float(go[j]));
    const float cell = f * c_prev[j] + i * std::tanh(as_float(gg[j]));
    c[j] = cell;
    store(o * std::tanh(cell), h + j);
  }
}

S2S_CLONES void lstm_rows_f32(const float* gates, const float* c_prev, float* c, float* h, int64_t begin,
                              int64_t end, int64_t H) {
  for (int64_t r = begin; r < end; ++r) lstm_row(gates + r * 4 * H, c_prev + r * H, c + r * H, h + r * H, H);
}

S2S_CLONES void lstm_rows_bf16(const uint16_t* gates, const float* c_prev, float* c, uint16_t* h,
                               int64_t begin, int64_t end, int64_t H) {
  for (int64_t r = begin; r < end; ++r) lstm_row(gates + r * 4 * H, c_prev + r * H, c + r * H, h + r * H, H);
}

// One row of the training cell; C is the cell (and compute) type. Inlined into the row loop, the pointers
// lose __restrict and their number exceeds GCC's alias-check budget: `ivdep` states there is no overlap.
template <class T, class C>
__attribute__((always_inline)) inline void lstm_train_row(const T* __restrict gates,
                                                          const C* __restrict c_prev, C* __restrict c,
                                                          T* __restrict h, T* __restrict act, int64_t H) {
  const T *gi = gates, *gf = gates + H, *go = gates + 2 * H, *gg = gates + 3 * H;
  T *ai = act, *af = act + H, *ao = act + 2 * H, *ag = act + 3 * H;
#pragma GCC ivdep
  for (int64_t j = 0; j < H; ++j) {
    const C i = C(0.5) + C(0.5) * std::tanh(C(0.5) * as_float(gi[j]));
    const C f = C(0.5) + C(0.5) * std::tanh(C(0.5) * as_float(gf[j]));
    const C o = C(0.5) + C(0.5) * std::tanh(C(0.5) * as_float(go[j]));
    const C g = std::tanh(C(as_float(gg[j])));
    const C cell = f * c_prev[j] + i * g;
    c[j] = cell;
    store(o * std::tanh(cell), h + j);
    store(i, ai + j), store(f, af + j), store(o, ao + j), store(g, ag + j);
  }
}

// d/d pre-activations of one row: with tc = tanh(c) and dcc = dc + dh * o * (1 - tc^2):
// di = dcc * g * i(1-i), df = dcc * c_prev * f(1-f), do = dh * tc * o(1-o), dg = dcc * i * (1-g^2),
// dc_prev = dcc * f.
template <class T, class C>
__attribute__((always_inline)) inline void lstm_backward_row(const T* __restrict act,
                                                             const C* __restrict c_prev,
                                                             const C* __restrict c, const T* __restrict dh,
                                                             const C* __restrict dc, T* __restrict dgates,
                                                             C* __restrict dc_prev, int64_t H) {
  const T *ai = act, *af = act + H, *ao = act + 2 * H, *ag = act + 3 * H;
  T *di = dgates, *df = dgates + H, *d_o = dgates + 2 * H, *dg = dgates + 3 * H;
#pragma GCC ivdep
  for (int64_t j = 0; j < H; ++j) {
    const C i = as_float(ai[j]), f = as_float(af[j]), o = as_float(ao[j]), g = as_float(ag[j]);
    const C tc = std::tanh(c[j]), d_h = as_float(dh[j]);
    const C dcc = dc[j] + d_h * o * (C(1) - tc * tc);
    store(dcc * g * i * (C(1) - i), di + j);
    store(dcc * c_prev[j] * f * (C(1) - f), df + j);
    store(d_h * tc * o * (C(1) - o), d_o + j);
    store(dcc * i * (C(1) - g * g), dg + j);
    dc_prev[j] = dcc * f;
  }
}

#define S2S_LSTM_TRAIN(NAME, T, C)                                                                     \
  S2S_CLONES void NAME##_forward(const T* gates, const C* c_prev, C* c, T* h, T* act, int64_t begin,   \
                                 int64_t end, int64_t H) {                                             \
    for (int64_t r = begin; r < end; ++r)                                                              \
      lstm_train_row(gates + r * 4 * H, c_prev + r * H, c + r * H, h + r * H, act + r * 4 * H, H);     \
  }                                                                                                    \
  S2S_CLONES void NAME##_backward(const T* act, const C* c_prev, const C* c, const T* dh, const C* dc, \
                                  T* dgates, C* dc_prev, int64_t begin, int64_t end, int64_t H) {      \
    for (int64_t r = begin; r < end; ++r)                                                              \
      lstm_backward_row(act + r * 4 * H, c_prev + r * H, c + r * H, dh + r * H, dc + r * H,            \
                        dgates + r * 4 * H, dc_prev + r * H, H);                                       \
  }
S2S_LSTM_TRAIN(lstm_f32, float, float)
S2S_LSTM_TRAIN(lstm_bf16, uint16_t, float)
S2S_LSTM_TRAIN(lstm_f64, double, double)
#undef S2S_LSTM_TRAIN

template <class T>
__attribute__((always_inline)) inline void logsumexp_rows(const T* __restrict x, int64_t cols, int64_t begin,
                                                          int64_t end, float* out, float* sums) {
  for (int64_t r = begin; r < end; ++r) {
    const T* row = x + r * cols;
    float max = std::numeric_limits<float>::lowest(), total = 0;
    if (sums) {
      for (int64_t j = 0; j < cols; ++j) max = std::max(max, as_float(row[j])), total += as_float(row[j]);
      sums[r] = total;
    } else {
      for (int64_t j = 0; j < cols; ++j) max = std::max(max, as_float(row[j]));
    }
    float sum = 0;
    for (int64_t j = 0; j < cols; ++j) sum += std::exp(as_float(row[j]) - max);
    out[r] = max + std::log(sum);
  }
}

S2S_CLONES void logsumexp_f32(const float* x, int64_t cols, int64_t begin, int64_t end, float* out,
                              float* sums) {
  logsumexp_rows(x, cols, begin, end, out, sums);
}

S2S_CLONES void logsumexp_bf16(const uint16_t* x, int64_t cols, int64_t begin, int64_t end, float* out,
                               float* sums) {
  logsumexp_rows(x, cols, begin, end, out, sums);
}

// x[j] = g * (exp(x[j] - shift) - offset) for j in [c0, c1), sums[j] += the float32 value. Exponents are
// clamped at -80, as in softmax_numerators (libmvec's scalar path; exp(-80) is below any gradient's
// rounding).
template <class T>
__attribute__((always_inline)) inline void xent_span(T* __restrict x, int64_t c0, int64_t c1, float shift,
                                                     float offset, float g, float* __restrict sums) {
  for (int64_t j = c0; j < c1; ++j) {
    const float v = g * (std::exp(std::max(as_float(x[j]) - shift, -80.f)) - offset);
    store(v, x + j);
    sums[j] += v;
  }
}

template <class T>
__attribute__((always_inline)) inline void xent_rows(T* __restrict x, int64_t rows, int64_t cols, int64_t c0,
                                                     int64_t c1, const float* lse, const int64_t* gold,
                                                     float g, float smoothing, float* sums) {
  const float offset = smoothing / static_cast<float>(cols);
  for (int64_t i = 0; i < rows; ++i) {
    T* row = x + i * cols;  // [cols]
    const int64_t t = gold[i];
    if (t < c0 || t >= c1) {
      xent_span(row, c0, c1, lse[i], offset, g, sums);
      continue;
    }
    xent_span(row, c0, t, lse[i], offset, g, sums);
    const float v = g * (std::exp(as_float(row[t]) - lse[i]) - offset + (smoothing - 1));
    store(v, row + t);
    sums[t] += v;
    xent_span(row, t + 1, c1, lse[i], offset, g, sums);
  }
}

S2S_CLONES void xent_f32(float* x, int64_t rows, int64_t cols, int64_t c0, int64_t c1, const float* lse,
                         const int64_t* gold, float g, float smoothing, float* sums) {
  xent_rows(x, rows, cols, c0, c1, lse, gold, g, smoothing, sums);
}

S2S_CLONES void xent_bf16(uint16_t* x, int64_t rows, int64_t cols, int64_t c0, int64_t c1, const float* lse,
                          const int64_t* gold, float g, float smoothing, float* sums) {
  xent_rows(x, rows, cols, c0, c1, lse, gold, g, smoothing, sums);
}

// Attention score of query q against key k: the dot product, or Bahdanau's v . tanh(q + k) when v is given
// (q is then the projected query).
// C: the compute type of queries, weights and context (float, or double for gradient tests).
template <class T, class C>
__attribute__((always_inline)) inline C score(const C* __restrict q, const T* __restrict k,
                                              const C* __restrict v, int64_t D) {
  C s = 0;
  if (v) {
    for (int64_t d = 0; d < D; ++d) s += v[d] * std::tanh(q[d] + as_float(k[d]));
  } else {
    for (int64_t d = 0; d < D; ++d) s += q[d] * as_float(k[d]);
  }
  return s;
}

template <class T, class C>
__attribute__((always_inline)) inline void attend(const C* __restrict query, const T* __restrict keys,
                                                  const C* __restrict v, const T* __restrict memory,
                                                  const bool* mask, int64_t group, int64_t S, int64_t D,
                                                  int64_t M, C* __restrict weights, C* __restrict context) {
  for (int64_t g = 0; g < group; ++g) {
    const C* q = query + g * D;
    C* w = weights + g * S;
    C max = std::numeric_limits<C>::lowest();  // finite: this file assumes no infinities
    for (int64_t s = 0; s < S; ++s) {
      w[s] = mask[s] ? score(q, keys + s * D, v, D) : C(0);
      if (mask[s] && w[s] > max) max = w[s];
    }
    C sum = 0;
    for (int64_t s = 0; s < S; ++s) {
      w[s] = mask[s] ? std::exp(w[s] - max) : C(0);
      sum += w[s];
    }
    const C inv = C(1) / sum;
    C* ctx = context + g * M;
    for (int64_t m = 0; m < M; ++m) ctx[m] = 0;
    for (int64_t s = 0; s < S; ++s) {
      const C ws = (w[s] *= inv);
      if (ws == 0) continue;
      const T* mem = memory + s * M;
      for (int64_t m = 0; m < M; ++m) ctx[m] += ws * as_float(mem[m]);
    }
  }
}

// Backward of attend for one dot-product query: with da[s] = d_context . memory[s],
// d_scores[s] = w[s] (da[s] - sum_s' w[s'] da[s']) and d_query = sum_s d_scores[s] keys[s].
template <class T, class C>
__attribute__((always_inline)) inline void attend_backward(const T* __restrict keys,
                                                           const T* __restrict memory, const bool* mask,
                                                           const C* __restrict w,
                                                           const C* __restrict d_context, int64_t S,
                                                           int64_t D, int64_t M, C* __restrict d_query,
                                                           C* __restrict d_scores) {
  C expected = 0;  // sum_s w[s] da[s]
  for (int64_t s = 0; s < S; ++s) {
    C da = 0;
    if (mask[s] && w[s] != 0) {
      const T* mem = memory + s * M;
      for (int64_t m = 0; m < M; ++m) da += d_context[m] * as_float(mem[m]);
    }
    d_scores[s] = da;
    expected += w[s] * da;
  }
  for (int64_t d = 0; d < D; ++d) d_query[d] = 0;
  for (int64_t s = 0; s < S; ++s) {
    const C ds = (d_scores[s] = w[s] * (d_scores[s] - expected));
    if (ds == 0) continue;
    const T* k = keys + s * D;
    for (int64_t d = 0; d < D; ++d) d_query[d] += ds * as_float(k[d]);
  }
}

S2S_CLONES void attend_f32(const float* query, const float* keys, const float* v, const float* memory,
                           const bool* mask, int64_t group, int64_t S, int64_t D, int64_t M, float* weights,
                           float* context) {
  attend(query, keys, v, memory, mask, group, S, D, M, weights, context);
}

S2S_CLONES void attend_bf16(const float* query, const uint16_t* keys, const float* v, const uint16_t* memory,
                            const bool* mask, int64_t group, int64_t S, int64_t D, int64_t M, float* weights,
                            float* context) {
  attend(query, keys, v, memory, mask, group, S, D, M, weights, context);
}

S2S_CLONES void attend_f64(const double* query, const double* keys, const double* memory, const bool* mask,
                           int64_t group, int64_t S, int64_t D, int64_t M, double* weights, double* context) {
  attend(query, keys, static_cast<const double*>(nullptr), memory, mask, group, S, D, M, weights, context);
}

#define S2S_ATTEND_BACKWARD(NAME, T, C)                                                                  \
  S2S_CLONES void NAME(const T* keys, const T* memory, const bool* mask, const C* w, const C* d_context, \
                       int64_t S, int64_t D, int64_t M, C* d_query, C* d_scores) {                       \
    attend_backward(keys, memory, mask, w, d_context, S, D, M, d_query, d_scores);                       \
  }
S2S_ATTEND_BACKWARD(attend_backward_f32, float, float)
S2S_ATTEND_BACKWARD(attend_backward_bf16, uint16_t, float)
S2S_ATTEND_BACKWARD(attend_backward_f64, double, double)
#undef S2S_ATTEND_BACKWARD

}  // namespace

void lstm_cell(const float* gates, const float* c_prev, float* c, float* h, int64_t begin, int64_t end,
               int64_t hidden) {
  lstm_rows_f32(gates, c_prev, c, h, begin, end, hidden);
}

void lstm_cell(const uint16_t* gates, const float* c_prev, float* c, uint16_t* h, int64_t begin, int64_t end,
               int64_t hidden) {
  lstm_rows_bf16(gates, c_prev, c, h, begin, end, hidden);
}

void lstm_cell_train(const float* gates, const float* c_prev, float* c, float* h, float* act, int64_t begin,
                     int64_t end, int64_t hidden) {
  lstm_f32_forward(gates, c_prev, c, h, act, begin, end, hidden);
}
void lstm_cell_train(const uint16_t* gates, const float* c_prev, float* c, uint16_t* h, uint16_t* act,
                     int64_t begin, int64_t end, int64_t hidden) {
  lstm_bf16_forward(gates, c_prev, c, h, act, begin, end, hidden);
}
void lstm_cell_train(const double* gates, const double* c_prev, double* c, double* h, double* act,
                     int64_t begin, int64_t end, int64_t hidden) {
  lstm_f64_forward(gates, c_prev, c, h, act, begin, end, hidden);
}

void lstm_cell_backward(const float* act, const float* c_prev, const float* c, const float* dh,
                        const float* dc, float* dgates, float* dc_prev, int64_t begin, int64_t end,
                        int64_t hidden) {
  lstm_f32_backward(act, c_prev, c, dh, dc, dgates, dc_prev, begin, end, hidden);
}
void lstm_cell_backward(const uint16_t* act, const float* c_prev, const float* c, const uint16_t* dh,
                        const float* dc, uint16_t* dgates, float* dc_prev, int64_t begin, int64_t end,
                        int64_t hidden) {
  lstm_bf16_backward(act, c_prev, c, dh, dc, dgates, dc_prev, begin, end, hidden);
}
void lstm_cell_backward(const double* act, const double* c_prev, const double* c, const double* dh,
                        const double* dc, double* dgates, double* dc_prev, int64_t begin, int64_t end,
                        int64_t hidden) {
  lstm_f64_backward(act, c_prev, c, dh, dc, dgates, dc_prev, begin, end, hidden);
}

S2S_CLONES void dropout_mask_n(uint64_t seed, float keep, float scale, float* __restrict mask, int64_t begin,
                               int64_t end) {
  const auto threshold = static_cast<uint32_t>(static_cast<double>(keep) * 16777216.0);  // keep * 2^24
  for (int64_t i = begin; i < end; ++i) {
    uint64_t z = seed + static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;  // splitmix64
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    mask[i] = static_cast<uint32_t>(z >> 40) < threshold ? scale : 0.f;  // 24 uniform bits
  }
}

void dropout_mask(uint64_t seed, float keep, float scale, float* mask, int64_t begin, int64_t end) {
  dropout_mask_n(seed, keep, scale, mask, begin, end);
}

S2S_CLONES void to_bf16_n(const float* __restrict in, uint16_t* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) store(in[i], out + i);
}

void to_bf16(const float* in, uint16_t* out, int64_t n) {
  to_bf16_n(in, out, n);
}

// One element's Adam update (kernels::adam_step).
__attribute__((always_inline)) inline void adam_element(float& w, float grad, float& m, float& v,
                                                        const AdamStep& s) {
  const float g = s.grad_scale * grad;
  m = s.beta1 * m + (1 - s.beta1) * g;
  v = s.beta2 * v + (1 - s.beta2) * g * g;
  w -= s.step_size * m / (std::sqrt(v) / s.sqrt_bc2 + s.eps);
}

S2S_CLONES void adam_n(float* __restrict w, const float* __restrict grad, float* __restrict m,
                       float* __restrict v, int64_t n, AdamStep s) {
  for (int64_t i = 0; i < n; ++i) adam_element(w[i], grad[i], m[i], v[i], s);
}

S2S_CLONES void adam_average_n(float* __restrict w, const float* __restrict grad, float* __restrict m,
                               float* __restrict v, float* __restrict average, int64_t n, AdamStep s) {
  for (int64_t i = 0; i < n; ++i) {
    adam_element(w[i], grad[i], m[i], v[i], s);
    average[i] += s.average_weight * (w[i] - average[i]);
  }
}

void adam_step(float* w, const float* grad, float* m, float* v, float* average, int64_t n,
               const AdamStep& s) {
  if (average == nullptr) {
    adam_n(w, grad, m, v, n, s);
  } else {
    adam_average_n(w, grad, m, v, average, n, s);
  }
}

S2S_CLONES double sum_of_squares_n(const float* __restrict x, int64_t n) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  return sum;
}

double sum_of_squares(const float* x, int64_t n) {
  return sum_of_squares_n(x, n);
}

S2S_CLONES void tanh_n(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i]);
}

void tanh_inplace(float* x, int64_t n) {
  tanh_n(x, n);
}

void row_logsumexp(const float* x, int64_t cols, int64_t begin, int64_t end, float* out, float* sums) {
  logsumexp_f32(x, cols, begin, end, out, sums);
}

void row_logsumexp(const uint16_t* x, int64_t cols, int64_t begin, int64_t end, float* out, float* sums) {
  logsumexp_bf16(x, cols, begin, end, out, sums);
}

void xent_logit_grad(float* x, int64_t rows, int64_t cols, int64_t c0, int64_t c1, const float* lse,
                     const int64_t* gold, float g, float smoothing, float* column_sums) {
  xent_f32(x, rows, cols, c0, c1, lse, gold, g, smoothing, column_sums);
}

void xent_logit_grad(uint16_t* x, int64_t rows, int64_t cols, int64_t c0, int64_t c1, const float* lse,
                     const int64_t* gold, float g, float smoothing, float* column_sums) {
  xent_bf16(x, rows, cols, c0, c1, lse, gold, g, smoothing, column_sums);
}

S2S_CLONES void top_n(const float* v, int64_t size, int64_t n, int64_t* idx) {
  int64_t count = 0;              // idx[0..count) sorted, best first
  auto insert = [&](int64_t j) {  // j beats idx[n - 1] (or the list is not full): bubble it up
    int64_t pos = count == n ? n - 1 : count++;
    for (; pos > 0 && v[j] > v[idx[pos - 1]]; --pos) idx[pos] = idx[pos - 1];
    idx[pos] = j;
  };
  int64_t j = 0;
  for (; j < n; ++j) insert(j);
  constexpr int64_t kBlock = 16;
  for (; j + kBlock <= size; j += kBlock) {
    const float worst = v[idx[n - 1]];
    bool any = false;
    for (int64_t i = 0; i < kBlock; ++i) any |= v[j + i] > worst;
    if (!any) continue;
    for (int64_t i = j; i < j + kBlock; ++i)
      if (v[i] > v[idx[n - 1]]) insert(i);
  }
  for (; j < size; ++j)
    if (v[j] > v[idx[n - 1]]) insert(j);
}

void attention(const float* query, const float* keys, const float* memory, const bool* mask, int64_t group,
               int64_t src_len, int64_t dim, int64_t mem_dim, float* weights, float* context) {
  attend_f32(query, keys, nullptr, memory, mask, group, src_len, dim, mem_dim, weights, context);
}

void attention(const float* query, const uint16_t* keys, const uint16_t* memory, const bool* mask,
               int64_t group, int64_t src_len, int64_t dim, int64_t mem_dim, float* weights, float* context) {
  attend_bf16(query, keys, nullptr, memory, mask, group, src_len, dim, mem_dim, weights, context);
}

void attention(const double* query, const double* keys, const double* memory, const bool* mask, int64_t group,
               int64_t src_len, int64_t dim, int64_t mem_dim, double* weights, double* context) {
  attend_f64(query, keys, memory, mask, group, src_len, dim, mem_dim, weights, context);
}

void attention_backward(const float* keys, const float* memory, const bool* mask, const float* weights,
                        const float* d_context, int64_t src_len, int64_t dim, int64_t mem_dim, float* d_query,
                        float* d_scores) {
  attend_backward_f32(keys, memory, mask, weights, d_context, src_len, dim, mem_dim, d_query, d_scores);
}
void attention_backward(const uint16_t* keys, const uint16_t* memory, const bool* mask, const float* weights,
                        const float* d_context, int64_t src_len, int64_t dim, int64_t mem_dim, float* d_query,
                        float* d_scores) {
  attend_backward_bf16(keys, memory, mask, weights, d_context, src_len, dim, mem_dim, d_query, d_scores);
}
void attention_backward(const double* keys, const double* memory, const bool* mask, const double* weights,
                        const double* d_context, int64_t src_len, int64_t dim, int64_t mem_dim,
                        double* d_query, double* d_scores) {
  attend_backward_f64(keys, memory, mask, weights, d_context, src_len, dim, mem_dim, d_query, d_scores);
}

namespace {

S2S_CLONES void layer_norm_n(const float* __restrict x, int64_t rows, int64_t D, const float* __restrict gain,
                             const float* __restrict bias, float eps, float* __restrict y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * D;  // [D] of row r
    float mean = 0, var = 0;
    for (int64_t d = 0; d < D; ++d) mean += xr[d];
    mean /= static_cast<float>(D);
    for (int64_t d = 0; d < D; ++d) var += (xr[d] - mean) * (xr[d] - mean);
    const float inv = 1.0f / std::sqrt(var / static_cast<float>(D) + eps);
    float* yr = y + r * D;
    for (int64_t d = 0; d < D; ++d) yr[d] = (xr[d] - mean) * inv * gain[d] + bias[d];
  }
}

// 16 floats: one AVX-512 register (GCC lowers it to two or four in the AVX2 and baseline clones). These
// helpers are inlined into the clones, so a 64-byte vector never crosses a call (-Wpsabi warns about that).
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));  // the same, at any float's address

__attribute__((always_inline)) inline v16 load16(const float* p) {
  return *reinterpret_cast<const v16u*>(p);
}

typedef uint16_t u16x16u __attribute__((vector_size(32), aligned(2)));
typedef uint32_t u32x16 __attribute__((vector_size(64)));

// 16 bfloat16 values widened to float32 (their bits are a float's high half).
__attribute__((always_inline)) inline v16 load16(const uint16_t* p) {
  const u32x16 bits = __builtin_convertvector(*reinterpret_cast<const u16x16u*>(p), u32x16) << 16;
  return (v16)bits;  // a vector cast between equal sizes keeps the bits
}

// out[0, DH) = inv * sum_j p[j] values[j][offset, offset + DH): the weighted values summed in registers.
template <int64_t DH, class T>
__attribute__((always_inline)) inline void head_values(const float* __restrict p, float inv,
                                                       const T* const* values, int64_t offset, int64_t n,
                                                       float* __restrict out) {
  constexpr int C = DH / 16;
  v16 acc[C] = {};
  for (int64_t j = 0; j < n; ++j) {
    const float w = p[j] * inv;
    const T* v = values[j] + offset;
    for (int c = 0; c < C; ++c) acc[c] += w * load16(v + 16 * c);
  }
  for (int c = 0; c < C; ++c) *reinterpret_cast<v16u*>(out + 16 * c) = acc[c];
}

// p[j] = exp(p[j] - max_j p) for j < n, in whole 16-wide blocks (one vector call each: a plain loop's
// remainder made up to 15 scalar expf calls per head), padded up to n rounded to 16. Exponents are clamped at
// -80 (exp 1.8e-35, below the float rounding of a sum >= 1): libmvec's expf takes a scalar path for any lane
// that underflows, which cost more than the vector call itself. Returns 1 / sum_j p[j].
__attribute__((always_inline)) inline float softmax_numerators(float* __restrict p, int64_t n) {
  float max = std::numeric_limits<float>::lowest();
  for (int64_t j = 0; j < n; ++j) max = std::max(max, p[j]);
  const int64_t n16 = (n + 15) / 16 * 16;
  for (int64_t j = n; j < n16; ++j) p[j] = max - 80.f;
  float sum = 0;
  for (int64_t b = 0; b < n16; b += 16) {
    float* __restrict pb = p + b;
#pragma omp simd reduction(+ : sum)  // one libmvec call per block (unrolled, GCC called scalar expf 16 times)
    for (int64_t j = 0; j < 16; ++j) sum += (pb[j] = std::exp(std::max(pb[j] - max, -80.f)));
  }
  return 1.0f / sum;
}

// Head width DH fixed at compile time (0: dh at run time), so the common widths' dot products unroll into a
// few full-width vector operations; multiples of 16 (64, 32) also sum their values in registers.
template <int64_t DH, class T>
__attribute__((always_inline)) inline void multi_head_attention_t(
    const float* __restrict q, const T* const* keys, const T* const* values, int64_t n, int64_t heads,
    int64_t dh_runtime, float scale, float* __restrict p, float* __restrict out, float* __restrict weights) {
  constexpr bool kVectors = DH > 0 && DH % 16 == 0;
  const int64_t dh = DH > 0 ? DH : dh_runtime;
  for (int64_t h = 0; h < heads; ++h) {
    const float* qh = q + h * dh;
    for (int64_t j = 0; j < n; ++j) {
      const T* __restrict k = keys[j] + h * dh;
      float s = 0;
      for (int64_t d = 0; d < dh; ++d) s += qh[d] * as_float(k[d]);
      p[j] = s * scale;
    }
    const float inv = softmax_numerators(p, n);
    float* __restrict oh = out + h * dh;
    if constexpr (kVectors) {
      head_values<DH>(p, inv, values, h * dh, n, oh);
    } else {
      for (int64_t d = 0; d < dh; ++d) oh[d] = 0;
      for (int64_t j = 0; j < n; ++j) {
        const float w = p[j] * inv;
        const T* __restrict v = values[j] + h * dh;
        for (int64_t d = 0; d < dh; ++d) oh[d] += w * as_float(v[d]);
      }
    }
    if (weights) {
      for (int64_t j = 0; j < n; ++j) weights[j] += p[j] * inv / static_cast<float>(heads);
    }
  }
}

template <class T>
__attribute__((always_inline)) inline void multi_head_attention_dispatch(const float* q, const T* const* keys,
                                                                         const T* const* values, int64_t n,
                                                                         int64_t heads, int64_t dh,
                                                                         float scale, float* p, float* out,
                                                                         float* weights) {
  if (dh == 64) {
    multi_head_attention_t<64>(q, keys, values, n, heads, dh, scale, p, out, weights);
  } else if (dh == 32) {
    multi_head_attention_t<32>(q, keys, values, n, heads, dh, scale, p, out, weights);
  } else {
    multi_head_attention_t<0>(q, keys, values, n, heads, dh, scale, p, out, weights);
  }
}

S2S_CLONES void multi_head_attention_n(const float* q, const float* const* keys, const float* const* values,
                                       int64_t n, int64_t heads, int64_t dh, float scale, float* p,
                                       float* out, float* weights) {
  multi_head_attention_dispatch(q, keys, values, n, heads, dh, scale, p, out, weights);
}

S2S_CLONES void multi_head_attention_n(const float* q, const uint16_t* const* keys,
                                       const uint16_t* const* values, int64_t n, int64_t heads, int64_t dh,
                                       float scale, float* p, float* out, float* weights) {
  multi_head_attention_dispatch(q, keys, values, n, heads, dh, scale, p, out, weights);
}

S2S_CLONES void add_to_rows_n(float* __restrict y, int64_t rows, const float* __restrict b, int64_t n) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < n; ++i) y[r * n + i] += b[i];
}

S2S_CLONES void relu_n(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::max(x[i], 0.0f);
}

S2S_CLONES void gelu_n(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * static_cast<float>(M_SQRT1_2)));
}

// The largest |x| of x [n]; inlined into each caller's clone, where it vectorizes (-ffast-math).
__attribute__((always_inline)) inline float largest_magnitude(const float* __restrict x, int64_t n) {
  float m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::abs(x[i]));
  return m;
}

S2S_CLONES void quantize_u8(const float* __restrict a, int64_t M, int64_t K, int64_t lda,
                            uint8_t* __restrict q, float* __restrict scale, int32_t zero_point) {
  for (int64_t i = 0; i < M; ++i) {
    const float* ai = a + i * lda;  // [K] of row i
    scale[i] = int8_scale(largest_magnitude(ai, K));
    const float inv = 1.f / scale[i];
    uint8_t* qi = q + i * K;  // [K] of row i
    for (int64_t k = 0; k < K; ++k) qi[k] = static_cast<uint8_t>(round_to_int(ai[k] * inv) + zero_point);
  }
}

S2S_CLONES void dequantize_n(const int32_t* __restrict c32, int64_t M, int64_t N, int64_t ld32,
                             const float* __restrict a_scale, const float* __restrict w_scale,
                             const float* __restrict bias, float* __restrict C, int64_t ldc,
                             bool accumulate) {
  for (int64_t i = 0; i < M; ++i) {
    const int32_t* ci = c32 + i * ld32;  // [N] of row i
    float* out = C + i * ldc;
    const float sa = a_scale[i];
    if (accumulate && bias) {
      for (int64_t j = 0; j < N; ++j) out[j] += sa * w_scale[j] * static_cast<float>(ci[j]) + bias[j];
    } else if (accumulate) {
      for (int64_t j = 0; j < N; ++j) out[j] += sa * w_scale[j] * static_cast<float>(ci[j]);
    } else if (bias) {
      for (int64_t j = 0; j < N; ++j) out[j] = sa * w_scale[j] * static_cast<float>(ci[j]) + bias[j];
    } else {
      for (int64_t j = 0; j < N; ++j) out[j] = sa * w_scale[j] * static_cast<float>(ci[j]);
    }
  }
}

// dequantize_n with the int32 sums read from C [M, N] itself (contiguous rows), each replaced by its float.
S2S_CLONES void dequantize_in_place_n(float* C, int64_t M, int64_t N, const float* __restrict a_scale,
                                      const float* __restrict w_scale, const float* __restrict bias) {
  for (int64_t i = 0; i < M; ++i) {
    float* row = C + i * N;  // [N] of row i: int32 bits in, float out
    const float sa = a_scale[i];
    auto sum = [row](int64_t j) {
      int32_t v;
      std::memcpy(&v, row + j, sizeof v);
      return static_cast<float>(v);
    };
    if (bias) {
      for (int64_t j = 0; j < N; ++j) row[j] = sa * w_scale[j] * sum(j) + bias[j];
    } else {
      for (int64_t j = 0; j < N; ++j) row[j] = sa * w_scale[j] * sum(j);
    }
  }
}

}  // namespace

void layer_norm(const float* x, int64_t rows, int64_t D, const float* gain, const float* bias, float eps,
                float* y) {
  layer_norm_n(x, rows, D, gain, bias, eps, y);
}

void multi_head_attention(const float* q, const float* const* keys, const float* const* values, int64_t n,
                          int64_t heads, int64_t dh, float scale, float* p, float* out, float* weights) {
  multi_head_attention_n(q, keys, values, n, heads, dh, scale, p, out, weights);
}

void multi_head_attention(const float* q, const uint16_t* const* keys, const uint16_t* const* values,
                          int64_t n, int64_t heads, int64_t dh, float scale, float* p, float* out,
                          float* weights) {
  multi_head_attention_n(q, keys, values, n, heads, dh, scale, p, out, weights);
}

void add_to_rows(float* y, int64_t rows, const float* b, int64_t n) {
  add_to_rows_n(y, rows, b, n);
}

void relu_inplace(float* x, int64_t n) {
  relu_n(x, n);
}

void gelu_inplace(float* x, int64_t n) {
  gelu_n(x, n);
}

namespace {

S2S_CLONES void column_absmax_n(const float* __restrict w, int64_t rows, int64_t cols, int64_t ld,
                                float* __restrict absmax) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* wr = w + r * ld;  // [cols] of row r
    for (int64_t c = 0; c < cols; ++c) absmax[c] = std::max(absmax[c], std::abs(wr[c]));
  }
}

S2S_CLONES float absmax_n(const float* __restrict x, int64_t n) {
  return largest_magnitude(x, n);
}

S2S_CLONES void scale_columns_n(const float* __restrict w, int64_t rows, int64_t cols, int64_t ld,
                                const float* __restrict inv, int8_t* __restrict q) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* wr = w + r * ld;  // [cols] of row r
    int8_t* qr = q + r * ld;
    for (int64_t c = 0; c < cols; ++c) qr[c] = static_cast<int8_t>(round_to_int(wr[c] * inv[c]));
  }
}

S2S_CLONES void scale_n(const float* __restrict x, int64_t n, float inv, int8_t* __restrict q) {
  for (int64_t i = 0; i < n; ++i) q[i] = static_cast<int8_t>(round_to_int(x[i] * inv));
}

}  // namespace

void column_absmax(const float* w, int64_t rows, int64_t cols, int64_t ld, float* absmax) {
  column_absmax_n(w, rows, cols, ld, absmax);
}

float absmax(const float* x, int64_t n) {
  return absmax_n(x, n);
}

void scale_to_int8(const float* w, int64_t rows, int64_t cols, int64_t ld, const float* inv, int8_t* q) {
  scale_columns_n(w, rows, cols, ld, inv, q);
}

void scale_to_int8(const float* x, int64_t n, float inv, int8_t* q) {
  scale_n(x, n, inv, q);
}

void quantize_rows(const float* a, int64_t M, int64_t K, int64_t lda, uint8_t* q, float* scale,
                   int32_t zero_point) {
  quantize_u8(a, M, K, lda, q, scale, zero_point);
}

void dequantize_rows(const int32_t* c32, int64_t M, int64_t N, int64_t ld32, const float* a_scale,
                     const float* w_scale, const float* bias, float* C, int64_t ldc, bool accumulate) {
  if (static_cast<const void*>(c32) == C) {
    if (accumulate || ldc != N || ld32 != N)
      throw std::logic_error("dequantize_rows in place needs ldc == ld32 == N and no accumulation");
    dequantize_in_place_n(C, M, N, a_scale, w_scale, bias);
    return;
  }
  dequantize_n(c32, M, N, ld32, a_scale, w_scale, bias, C, ldc, accumulate);
}

void additive_attention(const float* query, const float* keys, const float* v, const float* memory,
                        const bool* mask, int64_t group, int64_t src_len, int64_t dim, int64_t mem_dim,
                        float* weights, float* context) {
  attend_f32(query, keys, v, memory, mask, group, src_len, dim, mem_dim, weights, context);
}

void additive_attention(const float* query, const uint16_t* keys, const float* v, const uint16_t* memory,
                        const bool* mask, int64_t group, int64_t src_len, int64_t dim, int64_t mem_dim,
                        float* weights, float* context) {
  attend_bf16(query, keys, v, memory, mask, group, src_len, dim, mem_dim, weights, context);
}

}  // namespace s2s::kernels
