#include "libtorch/model/rnn/decoder.h"

#include "libtorch/model/ops.h"
#include "libtorch/model/rnn/decoder_recurrence.h"
#include "libtorch/model/rnn/lstm_recurrence.h"

namespace s2s {

void DecoderState::index_select(const std::vector<int64_t>& rows) {
  for (auto& t : h) t = select_rows(t, rows);
  for (auto& t : c) t = select_rows(t, rows);
  feed = select_rows(feed, rows);
}

DecoderImpl::DecoderImpl(const DecoderOptions& opts, torch::nn::Embedding shared_embedding) : options(opts) {
  using torch::nn::LinearOptions;
  embedding = shared_embedding
                  ? shared_embedding
                  : torch::nn::Embedding(
                        torch::nn::EmbeddingOptions(opts.vocab_size, opts.emb_dim).padding_idx(opts.pad_id));
  register_module("embedding", embedding);
  const auto H = opts.hidden;
  for (int64_t l = 0; l < opts.layers; ++l) {
    const auto name = std::to_string(l);
    const auto rec_in = (l == 0 ? (opts.input_feeding ? opts.out_dim : 0) : H) + H;
    if (l == 0) w_x.push_back(register_parameter("w_x" + name, torch::empty({opts.emb_dim, 4 * H})));
    w_rec.push_back(register_parameter("w_rec" + name, torch::empty({rec_in, 4 * H})));
    bias.push_back(register_parameter("bias" + name, torch::zeros({4 * H})));
  }
  bridge = register_module("bridge", torch::nn::Linear(opts.memory_dim, 2 * opts.layers * H));
  attention = register_module("attention", Attention(opts.attention, H, opts.memory_dim));
  combine = register_module("combine",
                            torch::nn::Linear(LinearOptions(opts.memory_dim + H, opts.out_dim).bias(false)));
}

DecoderState DecoderImpl::initial_state(const EncoderOutput& encoded) {
  DecoderState state;
  const auto L = options.layers, H = options.hidden;
  auto init = torch::tanh(bridge(encoded.final)).view({-1, 2 * L, H});  // [batch, 2L, H]
  for (int64_t l = 0; l < L; ++l) {
    state.h.push_back(init.select(1, l));
    state.c.push_back(init.select(1, L + l));
  }
  state.feed = torch::zeros({encoded.final.size(0), options.out_dim}, init.options());
  state.keys = attention->precompute(encoded.memory, encoded.mask);
  return state;
}

torch::Tensor DecoderImpl::advance(const torch::Tensor& x_gates, DecoderState& state, torch::Tensor* attn) {
  torch::Tensor below;
  for (size_t l = 0; l < w_rec.size(); ++l) {
    torch::Tensor rec_in;
    if (l == 0) {
      rec_in = options.input_feeding ? torch::cat({state.feed, state.h[0]}, 1) : state.h[0];
    } else {
      rec_in = torch::cat({s2s::dropout(below, options.dropout_hidden, is_training()), state.h[l]}, 1);
    }
    std::tie(state.h[l], state.c[l]) = lstm_step(l == 0 ? x_gates : bias[l], rec_in, w_rec[l], state.c[l]);
    below = state.h[l];
  }
  auto [context, weights] = attention(below, state.keys);
  if (attn) *attn = weights;
  auto out = torch::tanh(combine(torch::cat({context.to(below.scalar_type()), below}, 1)));
  out = s2s::dropout(out, options.dropout_attn, is_training());
  state.feed = out;
  return out;  // [batch, out_dim]
}

torch::Tensor DecoderImpl::step(const torch::Tensor& tokens, DecoderState& state, torch::Tensor* attn) {
  auto emb = s2s::dropout(embedding(tokens), options.dropout_emb, is_training());  // [batch, emb]
  return advance(torch::addmm(bias[0], emb, w_x[0]), state, attn);
}

torch::Tensor DecoderImpl::forward(const torch::Tensor& tgt_in, DecoderState& state) {
  const auto batch = tgt_in.size(0), len = tgt_in.size(1);
  auto emb = s2s::dropout(embedding(tgt_in.t()), options.dropout_emb, is_training());  // [len, batch, emb]
  auto x_gates = torch::addmm(bias[0], emb.view({len * batch, -1}), w_x[0]).view({len, batch, -1});
  if (options.fused_recurrence && torch::GradMode::is_enabled() &&
      options.attention != AttentionType::kBahdanau && recurrence_supported(x_gates)) {
    return recurrence(x_gates, state, tgt_in).transpose(0, 1);
  }
  std::vector<torch::Tensor> outputs;
  outputs.reserve(static_cast<size_t>(len));
  for (int64_t t = 0; t < len; ++t) outputs.push_back(advance(x_gates[t], state, nullptr));
  return torch::stack(outputs, 1);  // [batch, len, out_dim]
}

torch::Tensor DecoderImpl::recurrence(const torch::Tensor& x_gates, const DecoderState& state,
                                      const torch::Tensor& tgt_in) {
  const auto len = x_gates.size(0), batch = x_gates.size(1), L = options.layers, H = options.hidden;
  DecoderRecurrenceInputs in;
  in.x_gates = x_gates, in.h = state.h, in.c = state.c;
  in.keys = state.keys.keys, in.memory = state.keys.memory, in.mask = state.keys.mask;
  in.w_rec = w_rec, in.bias.assign(bias.begin() + 1, bias.end()), in.w_combine = combine->weight;
  in.input_feeding = options.input_feeding;
  in.active = active_rows(tgt_in, options.pad_id);  // the batcher puts the longest targets first
  if (is_training() && options.dropout_hidden > 0 && L > 1) {
    in.drop_hidden = dropout_mask({len, L - 1, batch, H}, options.dropout_hidden);
  }
  if (is_training() && options.dropout_attn > 0) {
    in.drop_out = dropout_mask({len, batch, options.out_dim}, options.dropout_attn);
  }
  return decoder_recurrence(in);
}

}  // namespace s2s
