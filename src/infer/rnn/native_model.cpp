#include "infer/rnn/native_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/kernels.h"
#include "util/error.h"

namespace s2s::infer {

NativeModel::NativeModel(const ModelConfig& config, int64_t src_vocab, int64_t tgt_vocab,
                         const std::filesystem::path& weights, WeightType type)
    : config_(config) {
  load(*open_weights_file(weights), src_vocab, tgt_vocab, type);
}

NativeModel::NativeModel(const ModelConfig& config, int64_t src_vocab, int64_t tgt_vocab,
                         ParameterSource& params, WeightType type)
    : config_(config) {
  load(params, src_vocab, tgt_vocab, type);
}

void NativeModel::load(ParameterSource& w, int64_t src_vocab, int64_t tgt_vocab, WeightType type) {
  const auto& config = config_;
  check_weight_type(type);
  bf16_memory_ = type != WeightType::kF32;
  const int64_t E = config.emb_dim, He = config.enc_hidden, M = 2 * He, H = config.dec_hidden;
  const int64_t L = config.dec_layers, out_dim = config.tie_output ? E : H;
  src_emb_ = shared_matrix(w, "encoder.embedding.weight", src_vocab, E, type, true);
  tgt_emb_ = config.share_embeddings && src_vocab == tgt_vocab
                 ? src_emb_
                 : shared_matrix(w, "decoder.embedding.weight", tgt_vocab, E, type, true);
  for (int64_t l = 0; l < config.enc_layers; ++l) {
    const int64_t in = l == 0 ? E : M;
    const auto p = "encoder.layer" + std::to_string(l) + ".";
    // Direction d of parameter `name` [2, rows, 4 He].
    auto direction = [&](const std::string& name, int64_t rows, int d) {
      const MatrixLayout layout{rows, 4 * He, type, /*per_row=*/false, /*pack=*/true};
      return w.matrix(p + name + "[" + std::to_string(d) + "]", layout, [&] {
        const int64_t n = rows * 4 * He;
        return part_of(w.get(p + name, {2, rows, 4 * He}), d * n, (d + 1) * n, {rows, 4 * He});
      });
    };
    const auto bias = w.get(p + "bias", {2, 1, 4 * He});
    BiLayer layer;
    for (int d = 0; d < 2; ++d) {
      layer.w_ih[d] = direction("w_ih", in, d), layer.w_hh[d] = direction("w_hh", He, d);
      layer.bias[d] = bias.values(d * 4 * He, (d + 1) * 4 * He);
    }
    enc_layers_.push_back(std::move(layer));
  }
  for (int64_t l = 0; l < L; ++l) {
    const auto name = std::to_string(l);
    const auto rec_in = (l == 0 ? (config.input_feeding ? out_dim : 0) : H) + H;
    DecLayer layer;
    if (l == 0) {  // one GEMM for [emb ; feed ; h] instead of two
      const MatrixLayout layout{E + rec_in, 4 * H, type, /*per_row=*/false, /*pack=*/true};
      layer.w = w.matrix("decoder.w_x0+w_rec0", layout, [&] {
        std::vector<float> stacked = w.get("decoder.w_x0", {E, 4 * H}).values();
        const auto rec = w.get("decoder.w_rec0", {rec_in, 4 * H});
        stacked.insert(stacked.end(), rec.data, rec.data + rec.size);
        return Parameter({E + rec_in, 4 * H}, std::move(stacked));
      });
    } else {
      layer.w = make_matrix(w, "decoder.w_rec" + name, rec_in, 4 * H, type, false);
    }
    layer.bias = w.get("decoder.bias" + name, {4 * H}).values();
    dec_layers_.push_back(std::move(layer));
  }
  bridge_ = make_matrix(w, "decoder.bridge.weight", 2 * L * H, M, type, true);
  bridge_bias_ = w.get("decoder.bridge.bias", {2 * L * H}).values();
  if (config.attention != AttentionType::kLuongDot) {
    key_proj_ = make_matrix(w, "decoder.attention.key_proj.weight", H, M, type, true);
    if (config.attention == AttentionType::kLuongGeneral && bf16_memory_)
      query_to_memory_ = make_matrix(w, "decoder.attention.key_proj.weight", H, M, type, false);
  }
  if (config.attention == AttentionType::kBahdanau) {
    query_proj_ = make_matrix(w, "decoder.attention.query_proj.weight", H, H, type, true);
    query_bias_ = w.get("decoder.attention.query_proj.bias", {H}).values();
    score_v_ = w.get("decoder.attention.v.weight", {1, H}).values();
  } else if (config.attention == AttentionType::kLuongDot && H != M) {
    throw Error("luong-dot attention needs decoder hidden size == encoder output size");
  }
  combine_ = make_matrix(w, "decoder.combine.weight", out_dim, M + H, type, true);
  out_weight_ = config.tie_output ? tgt_emb_ : shared_matrix(w, "out_weight", tgt_vocab, out_dim, type, true);
  out_bias_ = w.get("out_bias", {tgt_vocab}).values();
}

void NativeModel::lstm_step(const float* rec_in, int64_t rows, int64_t in, const Matrix& w_rec,
                            const float* bias, float* gates, float* c, float* h, int64_t H) {
  matmul(rec_in, rows, in, w_rec, /*transposed=*/false, gates, 4 * H, /*accumulate=*/bias == nullptr, bias);
  kernels::lstm_cell(gates, c, c, h, 0, rows, H);
}

// One bidirectional layer over x [S, B, in] (time-major) -> y [S, B, 2H], or, for the top layer
// (`batch_major`), y [B, S, 2H] with zeros past each sentence's length: the attention memory as it is read.
// The backward direction reads each sentence reversed within its length, exactly as
// BiLSTMLayerImpl::forward. The input-side gate products are computed kChunk time steps at a time (one GEMM
// of kChunk * B rows), not for the whole sequence at once, which bounds the working memory of long batches.
// A residual connection adds x's rows of the same position (in == 2H). The buffers are freed on return, for
// the decoder's steps to reuse (per-thread buffers kept for every batch measured 20 MB more peak RSS).
std::vector<float> NativeModel::run_bilayer(const BiLayer& layer, const std::vector<float>& x, int64_t in,
                                            const Encoded& enc, bool batch_major, bool residual) const {
  constexpr int64_t kChunk = 8;
  const int64_t S = enc.src_len, B = enc.batch, H = layer.w_hh[0].rows, G = 4 * H;
  auto rev = [&](int64_t t, int64_t b) { return t < enc.lengths[b] ? enc.lengths[b] - 1 - t : t; };
  // Where position pos of sentence b goes in y (-1: padding, not kept in the batch-major memory).
  auto out_row = [&](int64_t pos, int64_t b) -> int64_t {
    if (!batch_major) return pos * B + b;
    return pos < enc.lengths[b] ? b * S + pos : -1;
  };
  std::vector<float> y(static_cast<size_t>(S * B * 2 * H));  // [S, B, 2H] or [B, S, 2H]
  std::vector<float> xr, pre, h(static_cast<size_t>(B * H)), c(h.size());
  for (int d = 0; d < 2; ++d) {
    std::fill(h.begin(), h.end(), 0.f), std::fill(c.begin(), c.end(), 0.f);
    for (int64_t t0 = 0; t0 < S; t0 += kChunk) {
      const int64_t T = std::min(kChunk, S - t0);
      const float* in_rows = &x[static_cast<size_t>(t0 * B * in)];  // [T, B, in]
      if (d == 1) {  // the chunk's inputs reversed within lengths
        xr.resize(static_cast<size_t>(T * B * in));
        for (int64_t t = 0; t < T; ++t)
          for (int64_t b = 0; b < B; ++b)
            std::memcpy(&xr[(t * B + b) * in], &x[(rev(t0 + t, b) * B + b) * in],
                        static_cast<size_t>(in) * sizeof(float));
        in_rows = xr.data();
      }
      pre.resize(static_cast<size_t>(T * B * G));  // [T, B, 4H] input-side gate products
      matmul(in_rows, T * B, in, layer.w_ih[d], /*transposed=*/false, pre.data(), G, /*accumulate=*/false,
             layer.bias[d].data());
      for (int64_t t = 0; t < T; ++t) {
        lstm_step(h.data(), B, H, layer.w_hh[d], nullptr, pre.data() + t * B * G, c.data(), h.data(), H);
        for (int64_t b = 0; b < B; ++b) {  // forward into y[t][b][0:H], backward into y[rev(t)][b][H:2H]
          const int64_t pos = d == 0 ? t0 + t : rev(t0 + t, b), row = out_row(pos, b);
          if (row < 0) continue;
          float* out = &y[static_cast<size_t>(row * 2 * H + d * H)];
          std::memcpy(out, &h[b * H], static_cast<size_t>(H) * sizeof(float));
          if (residual) kernels::add_to_rows(out, 1, &x[static_cast<size_t>((pos * B + b) * in + d * H)], H);
        }
      }
    }
  }
  return y;
}

Encoded NativeModel::encode(const std::vector<std::vector<int32_t>>& batch, int64_t pad, bool keys) const {
  Encoded enc;
  enc.batch = static_cast<int64_t>(batch.size());
  for (const auto& s : batch) {
    enc.live.push_back(static_cast<int64_t>(enc.lengths.size()));
    enc.lengths.push_back(static_cast<int64_t>(s.size()));
    enc.src_len = std::max<int64_t>(enc.src_len, static_cast<int64_t>(s.size()));
  }
  const int64_t S = enc.src_len, B = enc.batch, E = src_emb_->cols;
  std::vector<float> x(static_cast<size_t>(S * B * E));  // [S, B, E]
  for (int64_t t = 0; t < S; ++t)
    for (int64_t b = 0; b < B; ++b) {
      const auto& s = batch[static_cast<size_t>(b)];
      src_emb_->row(t < static_cast<int64_t>(s.size()) ? s[static_cast<size_t>(t)] : pad,
                    &x[(t * B + b) * E]);
    }
  int64_t in = E;
  for (size_t l = 0; l < enc_layers_.size(); ++l) {
    const bool top = l + 1 == enc_layers_.size();
    x = run_bilayer(enc_layers_[l], x, in, enc, /*batch_major=*/top, config_.enc_residual && l > 0);
    in = static_cast<int64_t>(x.size()) / (S * B);
  }
  const int64_t M = in, Hh = M / 2;
  enc.memory = std::move(x);  // [B, S, M]
  enc.mask.assign(static_cast<size_t>(B * S), 0);
  enc.final.resize(static_cast<size_t>(B * M));
  for (int64_t b = 0; b < B; ++b) {
    const auto len = enc.lengths[static_cast<size_t>(b)];
    std::fill_n(&enc.mask[static_cast<size_t>(b * S)], len, 1);
    std::memcpy(&enc.final[b * M], &enc.memory[(b * S + len - 1) * M],
                static_cast<size_t>(Hh) * sizeof(float));
    std::memcpy(&enc.final[b * M + Hh], &enc.memory[b * S * M + Hh], static_cast<size_t>(Hh) * sizeof(float));
  }
  if (keys && key_proj_.rows > 0) {  // else the keys are the memory itself, or step() projects the query
    enc.keys.resize(static_cast<size_t>(B * S * key_proj_.rows));
    matmul(enc.memory.data(), B * S, M, key_proj_, /*transposed=*/true, enc.keys.data(), key_proj_.rows,
           /*accumulate=*/false);
  }
  if (bf16_memory_) {
    for (auto [f32, bf16] : {std::pair{&enc.memory, &enc.memory16}, std::pair{&enc.keys, &enc.keys16}}) {
      bf16->resize(f32->size());
      kernels::to_bf16(f32->data(), bf16->data(), static_cast<int64_t>(f32->size()));
      *f32 = std::vector<float>();
    }
  }
  return enc;
}

DecoderRows NativeModel::initial_state(const Encoded& enc) const {
  const int64_t B = enc.batch, L = static_cast<int64_t>(dec_layers_.size()), H = config_.dec_hidden;
  std::vector<float> init(static_cast<size_t>(B * 2 * L * H));  // [B, 2L, H]
  matmul(enc.final.data(), B, enc.final.size() / static_cast<size_t>(B), bridge_, /*transposed=*/true,
         init.data(), 2 * L * H, /*accumulate=*/false, bridge_bias_.data());
  kernels::tanh_inplace(init.data(), static_cast<int64_t>(init.size()));
  DecoderRows s;
  s.h.assign(static_cast<size_t>(L), std::vector<float>(static_cast<size_t>(B * H)));
  s.c = s.h;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l = 0; l < L; ++l) {  // init row b: [h of every layer ; c of every layer]
      const float* src = &init[static_cast<size_t>((b * 2 * L + l) * H)];
      std::copy(src, src + H, &s.h[l][b * H]);
      std::copy(src + L * H, src + (L + 1) * H, &s.c[l][b * H]);
    }
  s.feed.assign(static_cast<size_t>(B * out_dim()), 0.f);
  return s;
}

void NativeModel::step(const std::vector<int64_t>& tokens, DecoderRows& s, const Encoded& enc, int64_t group,
                       std::vector<float>& out, std::vector<float>* attn) const {
  const int64_t R = static_cast<int64_t>(tokens.size()), H = config_.dec_hidden, E = tgt_emb_->cols;
  const int64_t G = 4 * H, F = out_dim(), S = enc.src_len, M = enc.mem_dim(), D = enc.key_dim();
  thread_local std::vector<float> input, gates, cat;
  for (size_t l = 0; l < dec_layers_.size(); ++l) {
    const auto& layer = dec_layers_[l];
    const int64_t width = layer.w.rows;  // [emb ; feed ; h] or [h_below ; h]
    input.resize(static_cast<size_t>(R * width));
    for (int64_t r = 0; r < R; ++r) {
      float* row = &input[r * width];
      if (l == 0) {
        tgt_emb_->row(tokens[static_cast<size_t>(r)], row);
        if (config_.input_feeding) std::copy(&s.feed[r * F], &s.feed[(r + 1) * F], row + E), row += F;
        row += E;
      } else {
        std::copy(&s.h[l - 1][r * H], &s.h[l - 1][(r + 1) * H], row), row += H;
      }
      std::copy(&s.h[l][r * H], &s.h[l][(r + 1) * H], row);
    }
    gates.resize(static_cast<size_t>(R * G));
    lstm_step(input.data(), R, width, layer.w, layer.bias.data(), gates.data(), s.c[l].data(), s.h[l].data(),
              H);
  }
  // Attention of each sentence's `group` rows over its memory, then [context ; h_top] -> attentional vector.
  const auto& top = s.h.back();
  cat.resize(static_cast<size_t>(R * (M + H)));
  thread_local std::vector<float> context;
  context.resize(static_cast<size_t>(R * M));
  if (attn) attn->resize(static_cast<size_t>(R * S));
  thread_local std::vector<float> weights;
  weights.resize(static_cast<size_t>(R * S));
  const float* query = top.data();  // [R, D] dot scores: h_top itself
  thread_local std::vector<float> projected;
  if (!score_v_.empty()) {  // Bahdanau: the projected query W_q h + b, scored by v . tanh(q + k)
    projected.resize(static_cast<size_t>(R * D));
    matmul(top.data(), R, H, query_proj_, /*transposed=*/true, projected.data(), D, /*accumulate=*/false,
           query_bias_.data());
    query = projected.data();
  } else if (query_to_memory_.rows > 0 && enc.keys16.empty()) {  // Luong general, no keys: greedy (start)
    projected.resize(static_cast<size_t>(R * M));
    matmul(top.data(), R, H, query_to_memory_, /*transposed=*/false, projected.data(), M,
           /*accumulate=*/false);
    query = projected.data();
  }
  for (int64_t a = 0; a < static_cast<int64_t>(enc.live.size()); ++a)
    attend(enc, enc.live[a], query + a * group * D, group, &weights[a * group * S], &context[a * group * M]);
  if (attn) *attn = weights;
  for (int64_t r = 0; r < R; ++r) {
    std::copy(&context[r * M], &context[(r + 1) * M], &cat[r * (M + H)]);
    std::copy(&top[r * H], &top[(r + 1) * H], &cat[r * (M + H) + M]);
  }
  out.resize(static_cast<size_t>(R * F));
  matmul(cat.data(), R, M + H, combine_, /*transposed=*/true, out.data(), F, /*accumulate=*/false);
  kernels::tanh_inplace(out.data(), R * F);
  s.feed = out;
}

void NativeModel::attend(const Encoded& enc, int64_t b, const float* query, int64_t group, float* weights,
                         float* context) const {
  const int64_t S = enc.src_len, M = enc.mem_dim(), D = enc.key_dim();
  const auto* mask = reinterpret_cast<const bool*>(&enc.mask[b * S]);
  auto run = [&](const auto* keys, const auto* memory) {  // float32 or bf16: [S, D] and [S, M] of sentence b
    if (score_v_.empty()) {
      kernels::attention(query, keys, memory, mask, group, S, D, M, weights, context);
    } else {
      kernels::additive_attention(query, keys, score_v_.data(), memory, mask, group, S, D, M, weights,
                                  context);
    }
  };
  if (bf16_memory_) {
    run(&(enc.keys16.empty() ? enc.memory16 : enc.keys16)[b * S * D], &enc.memory16[b * S * M]);
  } else {
    run(&(enc.keys.empty() ? enc.memory : enc.keys)[b * S * D], &enc.memory[b * S * M]);
  }
}

namespace {

struct RnnState : NativeState {
  Encoded enc;
  DecoderRows rows;
};

}  // namespace

std::unique_ptr<NativeState> NativeModel::start(const std::vector<std::vector<int32_t>>& batch, int64_t pad,
                                                int64_t K) const {
  auto state = std::make_unique<RnnState>();
  // Luong general's scores h . (W_k m) = (W_k^T h) . m: a greedy search (one query per sentence) projects
  // its query at each step, and the attention reads the memory alone, 6.5% less CPU than keys [B, S, H]
  // projected once (docs/BENCHMARKS.md, session 19); a beam's K queries per sentence share projected keys.
  state->enc = encode(batch, pad, /*keys=*/K > 1 || query_to_memory_.rows == 0);
  state->rows = initial_state(state->enc);
  state->src_len = state->enc.src_len;
  return state;
}

void NativeModel::advance(const std::vector<int64_t>& tokens, NativeState& base, int64_t K,
                          std::vector<float>& out, std::vector<float>* attn) const {
  auto& state = static_cast<RnnState&>(base);
  step(tokens, state.rows, state.enc, K, out, attn);
}

void NativeModel::reorder(NativeState& base, const std::vector<int64_t>& rows,
                          const std::vector<int64_t>& kept, int64_t A, int64_t K) const {
  auto& state = static_cast<RnnState&>(base);
  auto& enc = state.enc;
  const int64_t H = static_cast<int64_t>(state.rows.h[0].size()) / (A * K);
  for (auto& h : state.rows.h) take_rows(h, H, rows);
  for (auto& c : state.rows.c) take_rows(c, H, rows);
  take_rows(state.rows.feed, out_dim(), rows);
  if (static_cast<int64_t>(kept.size()) == A) return;
  std::vector<int64_t> live;  // the memory stays where it is: no copy of [B, S, M] per finished sentence
  for (auto a : kept) live.push_back(enc.live[static_cast<size_t>(a)]);
  enc.live = std::move(live);
}

}  // namespace s2s::infer
