// The Transformer encoder-decoder: scaled embeddings (optionally shared) plus sinusoidal positions, N
// pre-norm encoder layers and N pre-norm decoder layers, each stack closed by a LayerNorm, and the output
// layer (optionally tied to the target embeddings).
#pragma once

#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

#include "libtorch/model/nmt_model.h"
#include "libtorch/model/transformer/layers.h"

namespace s2s {

class TransformerImpl : public NmtModelImpl {
 public:
  TransformerImpl(const ModelConfig& config, const Vocabularies& vocabs);

  // src [batch, src_len], lengths [batch] -> memory [batch, src_len, D] and its mask [batch, 1, 1, src_len].
  std::pair<torch::Tensor, torch::Tensor> encode(const torch::Tensor& src, const torch::Tensor& lengths);
  torch::Tensor forward(const torch::Tensor& src, const torch::Tensor& lengths,
                        const torch::Tensor& tgt_in) override;
  std::unique_ptr<DecoderCache> start_search(const torch::Tensor& src, const torch::Tensor& lengths,
                                             int64_t K) override;
  torch::Tensor step(const torch::Tensor& tokens, DecoderCache& cache, torch::Tensor* attn) override;

  torch::nn::Embedding src_embedding{nullptr}, tgt_embedding{nullptr};  // the same module when shared
  std::vector<EncoderLayer> encoder;
  std::vector<DecoderLayer> decoder;
  torch::nn::LayerNorm encoder_norm{nullptr}, decoder_norm{nullptr};

 private:
  // Scaled embeddings plus positions [from, from + len): tokens [B, len] -> [B, len, D], dropped out.
  torch::Tensor embed(torch::nn::Embedding& table, const torch::Tensor& tokens, int64_t from);
};
TORCH_MODULE(Transformer);

// Initializes parameters as fairseq does (seeded by the caller): Xavier-uniform projections, zero biases,
// N(0, 1/D) embeddings with a zero padding row, unit LayerNorms.
void init_parameters(TransformerImpl& model);

}  // namespace s2s
