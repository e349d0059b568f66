// The attentional encoder-decoder: embeddings (optionally shared), bi-LSTM encoder, LSTM decoder with
// attention and input feeding, and the output layer (optionally tied to the target embeddings).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "config/config.h"
#include "libtorch/model/nmt_model.h"
#include "libtorch/model/rnn/decoder.h"
#include "libtorch/model/rnn/encoder.h"

namespace s2s {

class Seq2SeqImpl : public NmtModelImpl {
 public:
  Seq2SeqImpl(const ModelConfig& config, const Vocabularies& vocabs);

  // src: [batch, src_len], lengths: [batch] -> encoder output and the decoder's initial state.
  DecoderState start(const torch::Tensor& src, const torch::Tensor& lengths);
  // Teacher forcing: [batch, tgt_len, out_dim] attentional vectors for tgt_in.
  torch::Tensor forward(const torch::Tensor& src, const torch::Tensor& lengths,
                        const torch::Tensor& tgt_in) override;
  std::unique_ptr<DecoderCache> start_search(const torch::Tensor& src, const torch::Tensor& lengths,
                                             int64_t K) override;
  torch::Tensor step(const torch::Tensor& tokens, DecoderCache& cache, torch::Tensor* attn) override;

  Encoder encoder{nullptr};
  Decoder decoder{nullptr};
};
TORCH_MODULE(Seq2Seq);

// Initializes parameters uniformly in [-0.1, 0.1] (seeded by the caller), with zero padding embeddings and
// open forget gates.
void init_parameters(Seq2SeqImpl& model);

// A new RNN model with initialized parameters (seeded by the caller).
Seq2Seq build_rnn_model(const ModelConfig& config, const Vocabularies& vocabs);

}  // namespace s2s
