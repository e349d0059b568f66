// Encoder: embeddings followed by N bidirectional LSTM layers. Both directions of a layer run in one
// time loop (stacked as a batch of 2 for one bmm per step); the backward direction reads each sentence
// reversed within its own length, so padding never enters a real token's state.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include <vector>

namespace s2s {

struct EncoderOptions {
  int64_t vocab_size = 0;     // source vocabulary size
  int64_t emb_dim = 256;      // embedding size
  int64_t hidden = 256;       // hidden size per direction
  int64_t layers = 2;         // bidirectional layers
  bool residual = false;      // add the layer input to its output (layers >= 2)
  double dropout_emb = 0;     // dropout on embeddings
  double dropout_hidden = 0;  // dropout between layers
  int64_t pad_id = 0;         // padding token id
};

struct EncoderOutput {
  torch::Tensor memory;  // [batch, src_len, 2 * hidden], zero at padded positions
  torch::Tensor mask;    // [batch, src_len] bool, true at real tokens
  torch::Tensor final;   // [batch, 2 * hidden] top-layer state at each sentence's last token (fwd ; bwd)
};

// One bidirectional LSTM layer with input-to-gate products hoisted out of the time loop.
// Gate order in the weights is [input, forget, output, cell].
class BiLSTMLayerImpl : public torch::nn::Module {
 public:
  BiLSTMLayerImpl(int64_t input_size, int64_t hidden);
  // x: [src_len, batch, input] time-major; rev_index: [src_len, batch] positions that reverse each sentence
  // within its length. Returns [src_len, batch, 2 * hidden].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& rev_index);

  torch::Tensor w_ih;  // [2, input, 4 * hidden]
  torch::Tensor w_hh;  // [2, hidden, 4 * hidden]
  torch::Tensor bias;  // [2, 1, 4 * hidden]
  int64_t hidden;
  bool fused_recurrence = true;  // CPU training runs lstm_recurrence instead of a step loop under autograd
};
TORCH_MODULE(BiLSTMLayer);

class EncoderImpl : public torch::nn::Module {
 public:
  explicit EncoderImpl(const EncoderOptions& options, torch::nn::Embedding shared_embedding = nullptr);
  // src: [batch, src_len] token ids, lengths: [batch] int64 (on CPU or the device).
  EncoderOutput forward(const torch::Tensor& src, const torch::Tensor& lengths);

  EncoderOptions options;
  torch::nn::Embedding embedding{nullptr};
  std::vector<BiLSTMLayer> layers;
};
TORCH_MODULE(Encoder);

// Gathers x [len, batch, dim] along time with index [len, batch] (used to reverse within lengths).
torch::Tensor gather_time(const torch::Tensor& x, const torch::Tensor& index);

// [len, batch] index that maps position t to (length - 1 - t) for t < length, and to t otherwise.
torch::Tensor reverse_index(const torch::Tensor& lengths, int64_t max_len);

}  // namespace s2s
