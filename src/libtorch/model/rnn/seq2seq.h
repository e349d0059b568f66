// The attentional encoder-decoder: embeddings (optionally shared), bi-LSTM encoder, LSTM decoder with
// attention and input feeding, and the output layer (optionally tied to the target embeddings).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "config/config.h"
#include "libtorch/model/rnn/decoder.h"
#include "libtorch/model/rnn/encoder.h"

namespace s2s {

struct Vocabularies {
  int64_t src_size = 0;  // source vocabulary size
  int64_t tgt_size = 0;  // target vocabulary size
  int64_t pad_id = 0;    // padding id (both sides)
  int64_t bos_id = 2;    // target begin-of-sentence id
  int64_t eos_id = 3;    // target end-of-sentence id
  int64_t unk_id = 1;    // target unknown-token id
};

class Seq2SeqImpl : public torch::nn::Module {
 public:
  Seq2SeqImpl(const ModelConfig& config, const Vocabularies& vocabs);

  // src: [batch, src_len], lengths: [batch] -> encoder output and the decoder's initial state.
  DecoderState start(const torch::Tensor& src, const torch::Tensor& lengths);
  // Teacher forcing: [batch, tgt_len, out_dim] attentional vectors for tgt_in.
  torch::Tensor forward(const torch::Tensor& src, const torch::Tensor& lengths, const torch::Tensor& tgt_in);
  // Output layer: [..., out_dim] -> [..., tgt_vocab] unnormalized scores.
  torch::Tensor logits(const torch::Tensor& hidden);

  ModelConfig config;
  Vocabularies vocabs;
  Encoder encoder{nullptr};
  Decoder decoder{nullptr};
  torch::Tensor out_weight;  // [tgt_vocab, out_dim] (the target embedding when tied)
  torch::Tensor out_bias;    // [tgt_vocab]
};
TORCH_MODULE(Seq2Seq);

// Parameters without repeats: LibTorch's parameters() lists a shared embedding once per owner, which
// would make Adam update it twice per step and break optimizer state (de)serialization.
std::vector<torch::Tensor> unique_parameters(const torch::nn::Module& model);

// Builds a model from the config and initializes parameters uniformly in [-0.1, 0.1] (seeded by the caller).
Seq2Seq build_model(const ModelConfig& config, const Vocabularies& vocabs);

}  // namespace s2s
