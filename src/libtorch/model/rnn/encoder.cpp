#include "libtorch/model/rnn/encoder.h"

#include <torch/nn/init.h>

#include "libtorch/model/ops.h"
#include "libtorch/model/rnn/lstm_recurrence.h"

namespace s2s {

torch::Tensor gather_time(const torch::Tensor& x, const torch::Tensor& index) {
  return x.gather(0, index.unsqueeze(2).expand({-1, -1, x.size(2)}));
}

torch::Tensor reverse_index(const torch::Tensor& lengths, int64_t max_len) {
  auto t = torch::arange(max_len, lengths.options()).unsqueeze(1);  // [len, 1]
  auto len = lengths.unsqueeze(0);                                  // [1, batch]
  return torch::where(t < len, len - 1 - t, t.expand({max_len, lengths.size(0)}));
}

BiLSTMLayerImpl::BiLSTMLayerImpl(int64_t input_size, int64_t hidden_size) : hidden(hidden_size) {
  w_ih = register_parameter("w_ih", torch::empty({2, input_size, 4 * hidden}));
  w_hh = register_parameter("w_hh", torch::empty({2, hidden, 4 * hidden}));
  bias = register_parameter("bias", torch::zeros({2, 1, 4 * hidden}));
}

torch::Tensor BiLSTMLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& rev_index) {
  const auto len = x.size(0), batch = x.size(1), H = hidden;
  // Direction 0 reads x, direction 1 reads x reversed within each sentence.
  auto rev = gather_time(x, rev_index);
  torch::Tensor pre;                    // [2, len, batch, 4H]
  if (torch::GradMode::is_enabled()) {  // training: one baddbmm for both directions
    pre = torch::baddbmm(bias, torch::stack({x, rev}).view({2, len * batch, -1}), w_ih);
  } else {  // inference: a bf16 bmm JITs a oneDNN primitive per sentence length (14 ms a call), mm does not
    pre = torch::stack({torch::mm(x.reshape({len * batch, -1}), w_ih[0]),
                        torch::mm(rev.reshape({len * batch, -1}), w_ih[1])})
              .add_(bias);
  }
  pre = pre.view({2, len, batch, 4 * H});
  torch::Tensor out;  // [2, len, batch, H]
  if (fused_recurrence && torch::GradMode::is_enabled() && recurrence_supported(pre)) {
    out = lstm_recurrence(pre, w_hh);
  } else {
    auto h = torch::zeros({2, batch, H}, pre.options());
    auto c = torch::zeros({2, batch, H}, pre.options());
    std::vector<torch::Tensor> outputs;
    outputs.reserve(static_cast<size_t>(len));
    for (int64_t t = 0; t < len; ++t) {
      std::tie(h, c) = lstm_step(pre.select(1, t), h, w_hh, c);  // h, c: [2, batch, H]
      outputs.push_back(h);
    }
    out = torch::stack(outputs, 1);
  }
  return torch::cat({out[0], gather_time(out[1], rev_index)}, 2);  // [len, batch, 2H]
}

EncoderImpl::EncoderImpl(const EncoderOptions& opts, torch::nn::Embedding shared_embedding) : options(opts) {
  embedding = shared_embedding
                  ? shared_embedding
                  : torch::nn::Embedding(
                        torch::nn::EmbeddingOptions(opts.vocab_size, opts.emb_dim).padding_idx(opts.pad_id));
  register_module("embedding", embedding);
  for (int64_t l = 0; l < opts.layers; ++l) {
    const auto input = l == 0 ? opts.emb_dim : 2 * opts.hidden;
    layers.push_back(register_module("layer" + std::to_string(l), BiLSTMLayer(input, opts.hidden)));
  }
}

EncoderOutput EncoderImpl::forward(const torch::Tensor& src, const torch::Tensor& lengths) {
  const auto len = src.size(1);
  auto lens = lengths.to(src.device());
  auto rev = reverse_index(lens, len);                                            // [len, batch]
  auto x = s2s::dropout(embedding(src.t()), options.dropout_emb, is_training());  // [len, batch, emb]
  for (size_t l = 0; l < layers.size(); ++l) {
    if (l > 0) x = s2s::dropout(x, options.dropout_hidden, is_training());
    auto y = layers[l](x, rev);
    x = (options.residual && l > 0) ? y + x : y;
  }
  EncoderOutput out;
  out.mask = torch::arange(len, lens.options()).unsqueeze(0) < lens.unsqueeze(1);  // [batch, len]
  auto memory = x.transpose(0, 1);                                                 // [batch, len, 2H]
  out.memory = memory.masked_fill(~out.mask.unsqueeze(2), 0);
  // Forward direction ends at length - 1; the backward direction's summary sits at position 0.
  auto last = (lens - 1).view({-1, 1, 1}).expand({-1, 1, options.hidden});
  auto fwd = memory.narrow(2, 0, options.hidden).gather(1, last).squeeze(1);
  auto bwd = memory.select(1, 0).narrow(1, options.hidden, options.hidden);
  out.final = torch::cat({fwd, bwd}, 1);
  return out;
}

}  // namespace s2s
