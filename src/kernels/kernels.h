// Fused inference kernels on plain buffers (no LibTorch): one pass instead of a chain of ATen ops with
// their temporaries, dispatch overhead and (for small bmm shapes) a oneDNN primitive per shape.
#pragma once

#include <cstdint>

namespace s2s::kernels {

// LSTM cell for rows [begin, end): c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g); h = sigmoid(o) * tanh(c).
// gates: [rows, 4H] in the order [input, forget, output, cell]; c_prev, c, h: [rows, H]. c may alias c_prev.
void lstm_cell(const float* gates, const float* c_prev, float* c, float* h, int64_t begin, int64_t end,
               int64_t hidden);
// The same with bf16 gates and h (bfloat16 bits); the cell state stays float32.
void lstm_cell(const uint16_t* gates, const float* c_prev, float* c, uint16_t* h, int64_t begin, int64_t end,
               int64_t hidden);

// Training LSTM cell for rows [begin, end): as lstm_cell, and also keeps the activated gates
// act [rows, 4H] = (sigmoid(i), sigmoid(f), sigmoid(o), tanh(g)) for the backward pass. Gates, h and act
// are float32, bf16 bits (uint16_t) or double; the cell state is float32 (double with double gates).
void lstm_cell_train(const float* gates, const float* c_prev, float* c, float* h, float* act, int64_t begin,
                     int64_t end, int64_t hidden);
void lstm_cell_train(const uint16_t* gates, const float* c_prev, float* c, uint16_t* h, uint16_t* act,
                     int64_t begin, int64_t end, int64_t hidden);
void lstm_cell_train(const double* gates, const double* c_prev, double* c, double* h, double* act,
                     int64_t begin, int64_t end, int64_t hidden);

// Backward of lstm_cell_train for rows [begin, end): from dh [rows, H] and dc [rows, H] to dgates
// [rows, 4H] (pre-activation) and dc_prev [rows, H].
void lstm_cell_backward(const float* act, const float* c_prev, const float* c, const float* dh,
                        const float* dc, float* dgates, float* dc_prev, int64_t begin, int64_t end,
                        int64_t hidden);
void lstm_cell_backward(const uint16_t* act, const float* c_prev, const float* c, const uint16_t* dh,
                        const float* dc, uint16_t* dgates, float* dc_prev, int64_t begin, int64_t end,
                        int64_t hidden);
void lstm_cell_backward(const double* act, const double* c_prev, const double* c, const double* dh,
                        const double* dc, double* dgates, double* dc_prev, int64_t begin, int64_t end,
                        int64_t hidden);

// Dropout mask for elements [begin, end): mask[i] = scale with probability `keep`, else 0. Element i's draw
// is splitmix64(seed + i): it depends only on (seed, i), never on how the range is split across threads.
void dropout_mask(uint64_t seed, float keep, float scale, float* mask, int64_t begin, int64_t end);

// float32 -> bfloat16 bits, round to nearest even (as c10::BFloat16 for finite values), n values.
void to_bf16(const float* in, uint16_t* out, int64_t n);

// The per-element constants of one Adam step (kernels::adam_step).
struct AdamStep {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float step_size = 0;       // lr / (1 - beta1^t)
  float sqrt_bc2 = 1;        // sqrt(1 - beta2^t)
  float grad_scale = 1;      // the gradient-clipping factor (1: none)
  float average_weight = 0;  // with an average: 1 - its decay this step
};

// One Adam step (as torch::optim::Adam without weight decay or amsgrad) over n float32 values of a
// parameter w, its gradient, first and second moments m and v: g = grad_scale * grad; m = beta1 m +
// (1 - beta1) g; v = beta2 v + (1 - beta2) g^2; w -= step_size m / (sqrt(v) / sqrt_bc2 + eps). With
// `average` (not null), then average += average_weight (w - average): the weights' moving average.
void adam_step(float* w, const float* grad, float* m, float* v, float* average, int64_t n, const AdamStep& s);

// The sum of squares of n float32 values, accumulated in double.
double sum_of_squares(const float* x, int64_t n);

// x = tanh(x) for n values (vectorized).
void tanh_inplace(float* x, int64_t n);

// log(sum(exp(x))) of each row in [begin, end) of x [rows, cols] (float32 or bf16 bits) into out[row]; with
// `sums`, also each row's sum of x into sums[row] (float32, in the same pass).
void row_logsumexp(const float* x, int64_t cols, int64_t begin, int64_t end, float* out,
                   float* sums = nullptr);
void row_logsumexp(const uint16_t* x, int64_t cols, int64_t begin, int64_t end, float* out,
                   float* sums = nullptr);

// The gradient of a label-smoothed cross-entropy loss, scaled by g, with respect to logits x [rows, cols]
// (float32 or bf16 bits), over columns [c0, c1) of every row, written over x:
//   x[i, j] = g * (exp(x[i, j] - lse[i]) - smoothing / cols + (smoothing - 1) * [j == gold[i]]),
// in float32, stored rounded as x is (bf16: to nearest even). Each column's sum of its float32 values, row 0
// first, is added to column_sums[j] (the bias gradient): columns, not rows, split the work, so no sum
// depends on how many threads share it.
void xent_logit_grad(float* x, int64_t rows, int64_t cols, int64_t c0, int64_t c1, const float* lse,
                     const int64_t* gold, float g, float smoothing, float* column_sums);
void xent_logit_grad(uint16_t* x, int64_t rows, int64_t cols, int64_t c0, int64_t c1, const float* lse,
                     const int64_t* gold, float g, float smoothing, float* column_sums);

// Indices of the n largest of v[0..size) (0 < n <= size) into idx[0..n), largest first; ties: lower index
// first. One pass: blocks of 16 values none of which beats the n-th best so far are skipped vectorized.
void top_n(const float* v, int64_t size, int64_t n, int64_t* idx);

// Dot-product attention of one sentence's `group` queries over its `src_len` positions.
// query [group, dim]; keys [src_len, dim] and memory [src_len, mem_dim] as float32 or bf16 bits
// (uint16_t); mask [src_len] (true = real token; at least one). Writes weights [group, src_len] (0 at
// padding) and context [group, mem_dim].
void attention(const float* query, const float* keys, const float* memory, const bool* mask, int64_t group,
               int64_t src_len, int64_t dim, int64_t mem_dim, float* weights, float* context);
void attention(const float* query, const uint16_t* keys, const uint16_t* memory, const bool* mask,
               int64_t group, int64_t src_len, int64_t dim, int64_t mem_dim, float* weights, float* context);
void attention(const double* query, const double* keys, const double* memory, const bool* mask, int64_t group,
               int64_t src_len, int64_t dim, int64_t mem_dim, double* weights, double* context);

// Backward of attention() for one query (training): from its weights [src_len] and d_context [mem_dim] to
// d_query [dim] and d_scores [src_len], the gradient of the pre-softmax scores (0 at padding), from which
// the caller forms the keys' and memory's gradients over all steps at once.
void attention_backward(const float* keys, const float* memory, const bool* mask, const float* weights,
                        const float* d_context, int64_t src_len, int64_t dim, int64_t mem_dim, float* d_query,
                        float* d_scores);
void attention_backward(const uint16_t* keys, const uint16_t* memory, const bool* mask, const float* weights,
                        const float* d_context, int64_t src_len, int64_t dim, int64_t mem_dim, float* d_query,
                        float* d_scores);
void attention_backward(const double* keys, const double* memory, const bool* mask, const double* weights,
                        const double* d_context, int64_t src_len, int64_t dim, int64_t mem_dim,
                        double* d_query, double* d_scores);

// Bahdanau (additive) attention, the same contract with score(s) = v . tanh(query + keys[s]): query [group,
// dim] is the projected query (W_q q + b), keys [src_len, dim] the projected memory (W_k m), v [dim].
void additive_attention(const float* query, const float* keys, const float* v, const float* memory,
                        const bool* mask, int64_t group, int64_t src_len, int64_t dim, int64_t mem_dim,
                        float* weights, float* context);
void additive_attention(const float* query, const uint16_t* keys, const float* v, const uint16_t* memory,
                        const bool* mask, int64_t group, int64_t src_len, int64_t dim, int64_t mem_dim,
                        float* weights, float* context);

// --- The native Transformer's row-wise pieces (infer/transformer/) ---

// y [rows, D] = (x - mean) / sqrt(var + eps) * gain + bias, per row of x [rows, D] (as torch LayerNorm).
void layer_norm(const float* x, int64_t rows, int64_t D, const float* gain, const float* bias, float eps,
                float* y);

// Multi-head attention of one query over n keys: out[h*dh, (h+1)*dh) = sum_j softmax_j(q_h . k_jh * scale)
// v_jh, where key j is keys[j] and value j is values[j] ([heads * dh] each, head h at columns h*dh). `p`
// [n rounded up to a multiple of 16] is scratch; `weights` [n] (if not null) accumulates each head's weights
// / heads.
void multi_head_attention(const float* q, const float* const* keys, const float* const* values, int64_t n,
                          int64_t heads, int64_t dh, float scale, float* p, float* out, float* weights);
// The same over bfloat16 keys and values (a decoder's cached steps in the bf16 and int8 precisions).
void multi_head_attention(const float* q, const uint16_t* const* keys, const uint16_t* const* values,
                          int64_t n, int64_t heads, int64_t dh, float scale, float* p, float* out,
                          float* weights);

// y [rows, n] += b [n], every row.
void add_to_rows(float* y, int64_t rows, const float* b, int64_t n);

// x = max(x, 0), or GELU x * Phi(x) (erf form), for n values.
void relu_inplace(float* x, int64_t n);
void gelu_inplace(float* x, int64_t n);

// --- int8 GEMM operands (infer/gemm.cpp) ---

// The int8 quantization step of values whose largest magnitude is `absmax` (symmetric, [-127, 127]).
inline float int8_scale(float absmax) {
  return absmax > 0 ? absmax / 127.f : 1.f;
}

// x rounded half away from zero to an integer; vectorizes, unlike std::lround.
inline int32_t round_to_int(float x) {
  return static_cast<int32_t>(x + (x >= 0 ? 0.5f : -0.5f));
}

// a [M, K] (rows lda apart) quantized per row: q [M, K] = round(a / scale) + zero_point, with round(a /
// scale) in [-127, 127] and scale [M] = absmax / 127 (1 for a zero row): the weights' symmetric scheme
// (infer/gemm.cpp). Zero point 128 gives the uint8 input of a u8s8s32 GEMM; 0 gives int8 (two's complement
// bytes) for an s8s8s32 one.
void quantize_rows(const float* a, int64_t M, int64_t K, int64_t lda, uint8_t* q, float* scale,
                   int32_t zero_point = 128);

// Weight quantization (infer/gemm.cpp computes the scales from these maxima, so that they are rounded alike
// everywhere): absmax [cols] = max(absmax, |w|) down each column of w [rows, cols] (rows ld apart), or the
// largest |x| of x [n].
void column_absmax(const float* w, int64_t rows, int64_t cols, int64_t ld, float* absmax);
float absmax(const float* x, int64_t n);
// q [rows, cols] = round(w * inv) (half away from zero), inv [cols] per column of w [rows, cols] (rows ld
// apart in w and in q), or one inv for all of x [n].
void scale_to_int8(const float* w, int64_t rows, int64_t cols, int64_t ld, const float* inv, int8_t* q);
void scale_to_int8(const float* x, int64_t n, float inv, int8_t* q);

// C [M, N] (rows ldc apart) (+)= c32 [M, N] (rows ld32 apart) * a_scale[row] * w_scale[column] +
// bias[column] (bias may be null). c32 may be C itself (the GEMM wrote its int32 sums where their floats go)
// when ldc == ld32 == N and `accumulate` is false.
void dequantize_rows(const int32_t* c32, int64_t M, int64_t N, int64_t ld32, const float* a_scale,
                     const float* w_scale, const float* bias, float* C, int64_t ldc, bool accumulate);

}  // namespace s2s::kernels
