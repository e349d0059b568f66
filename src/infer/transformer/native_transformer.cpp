#include "infer/transformer/native_transformer.h"

#include <algorithm>
#include <cmath>

#include "kernels/kernels.h"
#include "util/error.h"

namespace s2s::infer {
namespace {

// Search state: the memory's keys/values per decoder layer, and every decoded step's keys/values as written,
// with each row's ancestry. A reorder rewrites the ancestry (t x R indices), never the cached vectors.
struct TransformerState : NativeState {
  std::vector<int64_t> live;     // [A]: where the search's sentence a is in `lengths` and `memory`
  std::vector<int64_t> lengths;  // [B] source lengths
  // per layer [B, S, 2D]: row (b, j) = [key ; value] of source position j (head h in columns h*dh ..); kept
  // for all B sentences until the batch ends (the search dropping finished ones shrinks `live` only)
  std::vector<std::vector<float>> memory;
  // per layer, per step t': [R_t', 2D] = [key ; value] per row, float32 (written by the projection itself)
  // or, in the bf16 and int8 precisions, bfloat16: half the bytes that every step reads back
  std::vector<std::vector<std::unique_ptr<float[]>>> self_kv;
  std::vector<std::vector<std::unique_ptr<uint16_t[]>>> self_kv16;
  std::vector<std::vector<int32_t>> ancestor;  // per step t': [R] the row of step t' that row r continues
  int64_t position = 0;                        // t: target positions decoded so far
};

// One query row over n keys for every head (kernels::multi_head_attention, scaled by 1/sqrt(dh)); T is the
// keys' and values' type, float or bfloat16 bits.
template <class T>
void attend_row(const float* q, const std::vector<const T*>& keys, const std::vector<const T*>& values,
                int64_t n, int64_t heads, int64_t dh, float* out, float* weights) {
  thread_local std::vector<float> p;                  // [n rounded up to 16]: the kernel's scratch
  p.resize(static_cast<size_t>((n + 15) / 16 * 16));  // (its exp runs in 16-wide blocks)
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  kernels::multi_head_attention(q, keys.data(), values.data(), n, heads, dh, scale, p.data(), out, weights);
}

// Self-attention of q [R, D] over decoded steps 0..t into ctx [R, D]: row r reads step j's key and value
// in row ancestor[j][r] of kv_steps[j] ([R_j, 2D]: key ; value).
template <class T>
void attend_steps(const std::vector<std::unique_ptr<T[]>>& kv_steps,
                  const std::vector<std::vector<int32_t>>& ancestor, const float* q, int64_t R, int64_t t,
                  int64_t D, int64_t heads, float* ctx) {
  thread_local std::vector<const T*> keys, values;  // [t + 1]
  keys.resize(static_cast<size_t>(t + 1)), values.resize(keys.size());
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t j = 0; j <= t; ++j) {
      const T* kv = &kv_steps[j][ancestor[j][r] * 2 * D];
      keys[j] = kv, values[j] = kv + D;
    }
    attend_row(q + r * D, keys, values, t + 1, heads, D / heads, ctx + r * D, nullptr);
  }
}

// Pointers to n rows of x, `stride` floats apart.
void row_pointers(const float* x, int64_t stride, int64_t n, std::vector<const float*>& out) {
  out.resize(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) out[j] = x + j * stride;
}

}  // namespace

void NativeTransformer::Linear::apply(const float* x, int64_t rows, float* y) const {
  matmul(x, rows, w.cols, w, /*transposed=*/true, y, w.rows, /*accumulate=*/false, bias.data());
}

void NativeTransformer::Linear::add_to(const float* x, int64_t rows, float* y) const {
  matmul(x, rows, w.cols, w, /*transposed=*/true, y, w.rows, /*accumulate=*/true, bias.data());
}

void NativeTransformer::Norm::apply(const float* x, int64_t rows, float* y) const {
  kernels::layer_norm(x, rows, static_cast<int64_t>(gain.size()), gain.data(), bias.data(), 1e-5f, y);
}

NativeTransformer::Linear NativeTransformer::linear(ParameterSource& w, const std::string& name, int64_t out,
                                                    int64_t in, WeightType type) const {
  return linear_rows(w, name, out, in, 0, out, type);
}

NativeTransformer::Linear NativeTransformer::linear_rows(ParameterSource& w, const std::string& name,
                                                         int64_t out, int64_t in, int64_t begin, int64_t end,
                                                         WeightType type) const {
  const auto key =
      name + ".weight" +
      (begin == 0 && end == out ? "" : "[" + std::to_string(begin) + ":" + std::to_string(end) + "]");
  auto matrix = w.matrix(key, {end - begin, in, type, /*per_row=*/true, /*pack=*/true}, [&] {
    return part_of(w.get(name + ".weight", {out, in}), begin * in, end * in, {end - begin, in});
  });
  return {std::move(matrix), w.get(name + ".bias", {out}).values(begin, end)};
}

NativeTransformer::Norm NativeTransformer::norm(ParameterSource& w, const std::string& name) const {
  return {w.get(name + ".weight", {dim_}).values(), w.get(name + ".bias", {dim_}).values()};
}

NativeTransformer::NativeTransformer(const ModelConfig& config, int64_t src_vocab, int64_t tgt_vocab,
                                     ParameterSource& w, WeightType type)
    : config_(config), dim_(config.emb_dim), heads_(config.heads), bf16_cache_(type != WeightType::kF32) {
  check_weight_type(type);
  const int64_t D = dim_, F = config.ffn_dim;
  if (config.share_embeddings) {
    src_emb_ = tgt_emb_ = shared_matrix(w, "embedding.weight", tgt_vocab, D, type, true);
  } else {
    src_emb_ = shared_matrix(w, "src_embedding.weight", src_vocab, D, type, true);
    tgt_emb_ = shared_matrix(w, "tgt_embedding.weight", tgt_vocab, D, type, true);
  }
  auto ffn = [&](const std::string& p) {
    return Ffn{linear(w, p + "ffn.inner", F, D, type), linear(w, p + "ffn.outer", D, F, type)};
  };
  for (int l = 0; l < config.enc_layers; ++l) {
    const auto p = "encoder_" + std::to_string(l) + ".";
    enc_layers_.push_back({norm(w, p + "norm_attn"), norm(w, p + "norm_ffn"),
                           linear(w, p + "self_attn.qkv", 3 * D, D, type),
                           linear(w, p + "self_attn.out", D, D, type), ffn(p)});
  }
  for (int l = 0; l < config.dec_layers; ++l) {
    const auto p = "decoder_" + std::to_string(l) + ".";
    dec_layers_.push_back({norm(w, p + "norm_self"), norm(w, p + "norm_cross"), norm(w, p + "norm_ffn"),
                           linear_rows(w, p + "self_attn.qkv", 3 * D, D, 0, D, type),
                           linear_rows(w, p + "self_attn.qkv", 3 * D, D, D, 3 * D, type),
                           linear(w, p + "self_attn.out", D, D, type),
                           linear(w, p + "cross_attn.q", D, D, type),
                           linear(w, p + "cross_attn.kv", 2 * D, D, type),
                           linear(w, p + "cross_attn.out", D, D, type), ffn(p)});
  }
  enc_norm_ = norm(w, "encoder_norm");
  dec_norm_ = norm(w, "decoder_norm");
  out_weight_ = config.tie_output ? tgt_emb_ : shared_matrix(w, "out_weight", tgt_vocab, D, type, true);
  out_bias_ = w.get("out_bias", {tgt_vocab}).values();
}

void NativeTransformer::embed(const Matrix& table, const std::vector<int64_t>& tokens,
                              const std::vector<int64_t>& positions, float* x) const {
  const int64_t D = dim_, half = D / 2;
  const float scale = std::sqrt(static_cast<float>(D));
  // As sinusoid_positions: frequencies exp(i * -ln(10000) / (half - 1)), sines then cosines (float32),
  // computed once per distinct position of the call (one for a decoder step), not per row.
  const auto step =
      static_cast<float>(-std::log(10000.0) / static_cast<double>(std::max<int64_t>(half - 1, 1)));
  if (tokens.empty()) return;
  const auto [lo, hi] = std::minmax_element(positions.begin(), positions.end());
  thread_local std::vector<float> sinusoid;  // [hi - lo + 1, D]: row p - lo is position p
  sinusoid.assign(static_cast<size_t>((*hi - *lo + 1) * D), 0.f);  // an odd width's last column stays 0
  for (int64_t p = *lo; p <= *hi; ++p) {
    float* sp = &sinusoid[static_cast<size_t>((p - *lo) * D)];
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(p) * std::exp(static_cast<float>(i) * step);
      sp[i] = std::sin(angle), sp[half + i] = std::cos(angle);
    }
  }
  for (size_t r = 0; r < tokens.size(); ++r) {
    float* xr = x + static_cast<int64_t>(r) * D;
    const float* sp = &sinusoid[static_cast<size_t>((positions[r] - *lo) * D)];
    table.row(tokens[r], xr);
#pragma omp simd
    for (int64_t d = 0; d < D; ++d) xr[d] = xr[d] * scale + sp[d];
  }
}

void NativeTransformer::add_ffn(const Ffn& ffn, const Norm& norm, float* x, int64_t rows) const {
  const int64_t D = dim_, F = ffn.inner.w.rows;
  thread_local std::vector<float> h, inner;
  h.resize(static_cast<size_t>(rows * D)), inner.resize(static_cast<size_t>(rows * F));
  norm.apply(x, rows, h.data());
  ffn.inner.apply(h.data(), rows, inner.data());
  if (config_.ffn_activation == Activation::kGelu) {
    kernels::gelu_inplace(inner.data(), rows * F);
  } else {
    kernels::relu_inplace(inner.data(), rows * F);
  }
  ffn.outer.add_to(inner.data(), rows, x);
}

std::unique_ptr<NativeState> NativeTransformer::start(const std::vector<std::vector<int32_t>>& batch,
                                                      int64_t pad, int64_t /*K*/) const {
  auto state = std::make_unique<TransformerState>();
  const int64_t B = static_cast<int64_t>(batch.size()), D = dim_, dh = D / heads_;
  int64_t S = 0;
  for (const auto& s : batch) S = std::max<int64_t>(S, static_cast<int64_t>(s.size()));
  state->src_len = S;
  std::vector<int64_t> tokens, positions;  // [B * S], row b * S + t
  for (const auto& s : batch) {
    state->live.push_back(static_cast<int64_t>(state->lengths.size()));
    state->lengths.push_back(static_cast<int64_t>(s.size()));
    for (int64_t t = 0; t < S; ++t) {
      tokens.push_back(t < static_cast<int64_t>(s.size()) ? s[static_cast<size_t>(t)] : pad);
      positions.push_back(t);
    }
  }
  const int64_t N = B * S;
  std::vector<float> x(static_cast<size_t>(N * D)), h(x.size()), qkv(static_cast<size_t>(N * 3 * D)),
      ctx(x.size());
  embed(*src_emb_, tokens, positions, x.data());
  for (const auto& layer : enc_layers_) {
    layer.norm_attn.apply(x.data(), N, h.data());
    layer.qkv.apply(h.data(), N, qkv.data());  // [N, 3D]: q, k, v
    std::vector<const float*> keys, values;
    for (int64_t b = 0; b < B; ++b) {
      const float* base = &qkv[static_cast<size_t>(b * S * 3 * D)];  // row t of sentence b: [q ; k ; v]
      row_pointers(base + D, 3 * D, state->lengths[b], keys);
      row_pointers(base + 2 * D, 3 * D, state->lengths[b], values);
      for (int64_t i = 0; i < S; ++i)
        attend_row(base + i * 3 * D, keys, values, state->lengths[b], heads_, dh, &ctx[(b * S + i) * D],
                   nullptr);
    }
    layer.out.add_to(ctx.data(), N, x.data());
    add_ffn(layer.ffn, layer.norm_ffn, x.data(), N);
  }
  enc_norm_.apply(x.data(), N, h.data());  // memory [B * S, D]
  for (const auto& layer : dec_layers_) {
    state->memory.emplace_back(static_cast<size_t>(N * 2 * D));
    layer.kv.apply(h.data(), N, state->memory.back().data());  // [N, 2D]: k, v
  }
  state->self_kv.resize(dec_layers_.size()), state->self_kv16.resize(dec_layers_.size());
  return state;
}

void NativeTransformer::advance(const std::vector<int64_t>& tokens, NativeState& base, int64_t K,
                                std::vector<float>& out, std::vector<float>* attn) const {
  auto& s = static_cast<TransformerState&>(base);
  const int64_t R = static_cast<int64_t>(tokens.size()), D = dim_, dh = D / heads_, S = s.src_len;
  const int64_t t = s.position++;
  thread_local std::vector<float> y, h, q, ctx, kv;  // [R, D] each; kv [R, 2D] (for a bf16 cache)
  y.resize(static_cast<size_t>(R * D)), h.resize(y.size()), q.resize(y.size()), ctx.resize(y.size());
  if (bf16_cache_) kv.resize(2 * y.size());
  embed(*tgt_emb_, tokens, std::vector<int64_t>(tokens.size(), t), y.data());
  if (attn) attn->assign(static_cast<size_t>(R * S), 0.f);
  s.ancestor.emplace_back(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) s.ancestor.back()[r] = static_cast<int32_t>(r);
  thread_local std::vector<const float*> keys, values;  // cross-attention: the memory's rows
  for (size_t l = 0; l < dec_layers_.size(); ++l) {
    const auto& layer = dec_layers_[l];
    // Self-attention over positions 0..t: this step's keys and values become its cache entry.
    layer.norm_self.apply(y.data(), R, h.data());
    layer.self_q.apply(h.data(), R, q.data());  // [R, D]
    const auto kv_size = static_cast<size_t>(R * 2 * D);
    if (bf16_cache_) {
      layer.self_kv.apply(h.data(), R, kv.data());  // [R, 2D]
      s.self_kv16[l].emplace_back(new uint16_t[kv_size]);
      kernels::to_bf16(kv.data(), s.self_kv16[l][t].get(), R * 2 * D);
      attend_steps(s.self_kv16[l], s.ancestor, q.data(), R, t, D, heads_, ctx.data());
    } else {
      s.self_kv[l].emplace_back(new float[kv_size]);
      layer.self_kv.apply(h.data(), R, s.self_kv[l][t].get());  // [R, 2D]
      attend_steps(s.self_kv[l], s.ancestor, q.data(), R, t, D, heads_, ctx.data());
    }
    layer.self_out.add_to(ctx.data(), R, y.data());
    // Cross-attention: row r reads its sentence r / K.
    layer.norm_cross.apply(y.data(), R, h.data());
    layer.q.apply(h.data(), R, q.data());  // [R, D] queries
    const bool last = l + 1 == dec_layers_.size();
    for (int64_t r = 0; r < R; ++r) {
      const int64_t b = s.live[static_cast<size_t>(r / K)];
      const float* memory = &s.memory[l][b * S * 2 * D];  // [S, 2D] of sentence b
      row_pointers(memory, 2 * D, s.lengths[b], keys);
      row_pointers(memory + D, 2 * D, s.lengths[b], values);
      attend_row(&q[r * D], keys, values, s.lengths[b], heads_, dh, &ctx[r * D],
                 last && attn ? &(*attn)[r * S] : nullptr);
    }
    layer.cross_out.add_to(ctx.data(), R, y.data());
    add_ffn(layer.ffn, layer.norm_ffn, y.data(), R);
  }
  out.resize(static_cast<size_t>(R * D));
  dec_norm_.apply(y.data(), R, out.data());
}

void NativeTransformer::reorder(NativeState& base, const std::vector<int64_t>& rows,
                                const std::vector<int64_t>& kept, int64_t A, int64_t K) const {
  auto& s = static_cast<TransformerState&>(base);
  for (auto& step : s.ancestor) {  // [R] -> [R']: new row i continues old row rows[i]
    std::vector<int32_t> next(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) next[i] = step[static_cast<size_t>(rows[i])];
    step = std::move(next);
  }
  if (static_cast<int64_t>(kept.size()) == A) return;
  std::vector<int64_t> live;  // the memory stays where it is: no copy of [B, S, 2D] per finished sentence
  for (auto a : kept) live.push_back(s.live[static_cast<size_t>(a)]);
  s.live = std::move(live);
}

}  // namespace s2s::infer
