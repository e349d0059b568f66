// Decoder: N LSTM layers with input feeding and attention (Luong et al. 2015). Training runs all steps
// with the embedding-to-gate product hoisted out of the loop; search uses initial_state() + step().
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "libtorch/model/rnn/attention.h"
#include "libtorch/model/rnn/encoder.h"

namespace s2s {

struct DecoderOptions {
  int64_t vocab_size = 0;    // target vocabulary size
  int64_t emb_dim = 256;     // embedding size
  int64_t hidden = 512;      // LSTM hidden size
  int64_t layers = 2;        // LSTM layers
  int64_t memory_dim = 512;  // encoder output size (2 * encoder hidden)
  int64_t out_dim = 512;     // attentional vector size (= emb_dim when the output layer is tied)
  AttentionType attention = AttentionType::kLuongGeneral;  // scoring function
  bool input_feeding = true;     // feed the previous attentional vector to the first layer
  double dropout_emb = 0;        // dropout on embeddings
  double dropout_hidden = 0;     // dropout between LSTM layers
  double dropout_attn = 0;       // dropout on the attentional vector
  int64_t pad_id = 0;            // padding token id
  bool fused_recurrence = true;  // CPU training runs decoder_recurrence (dot and general attention)
};

// Everything search needs to continue a batch of hypotheses; every tensor has batch as dim 0.
struct DecoderState {
  std::vector<torch::Tensor> h;  // per layer [batch, hidden]
  std::vector<torch::Tensor> c;  // per layer [batch, hidden]
  torch::Tensor feed;            // [batch, out_dim] previous attentional vector
  AttentionKeys keys;            // per sentence (not per hypothesis): memory, projected keys and mask

  // Keeps/reorders hypothesis rows (beam backpointers); keys are selected by the caller per sentence.
  void index_select(const std::vector<int64_t>& rows);
};

class DecoderImpl : public torch::nn::Module {
 public:
  explicit DecoderImpl(const DecoderOptions& options, torch::nn::Embedding shared_embedding = nullptr);

  DecoderState initial_state(const EncoderOutput& encoded);
  // One step: tokens [batch] -> attentional vector [batch, out_dim]; `attn` receives [batch, src_len].
  torch::Tensor step(const torch::Tensor& tokens, DecoderState& state, torch::Tensor* attn = nullptr);
  // Teacher forcing over tgt_in [batch, tgt_len] -> [batch, tgt_len, out_dim] (training on the CPU may
  // leave the padding positions zero: they carry no loss).
  torch::Tensor forward(const torch::Tensor& tgt_in, DecoderState& state);

  DecoderOptions options;
  torch::nn::Embedding embedding{nullptr};
  std::vector<torch::Tensor> w_x;     // layer 0 only: [emb, 4H] embedding-to-gates (hoistable)
  std::vector<torch::Tensor> w_rec;   // per layer: [feed_or_below + H, 4H] recurrent-input-to-gates
  std::vector<torch::Tensor> bias;    // per layer: [4H]
  torch::nn::Linear bridge{nullptr};  // encoder summary -> initial (h, c) of every layer
  Attention attention{nullptr};
  torch::nn::Linear combine{nullptr};  // [context ; h_top] -> attentional vector

 private:
  // Teacher forcing as one autograd function: x_gates [len, batch, 4H] -> [len, batch, out_dim], zero at
  // the padding of tgt_in [batch, len], which it does not run.
  torch::Tensor recurrence(const torch::Tensor& x_gates, const DecoderState& state,
                           const torch::Tensor& tgt_in);
  // Runs the LSTM stack and attention for one step given the layer-0 input-side gate product.
  torch::Tensor advance(const torch::Tensor& x_gates, DecoderState& state, torch::Tensor* attn);
};
TORCH_MODULE(Decoder);

}  // namespace s2s
