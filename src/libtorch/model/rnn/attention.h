// Attention over the encoder memory with a padding mask: bahdanau (MLP), luong-dot, luong-general.
// Keys are computed once per batch (`precompute`), so each decoder step costs one bmm for the scores
// and one for the context.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <string>

#include "config/types.h"

namespace s2s {

struct AttentionKeys {
  torch::Tensor memory;  // [batch, src_len, mem_dim] values
  torch::Tensor keys;    // [batch, src_len, key_dim] projected once per batch
  torch::Tensor mask;    // [batch, src_len] bool, true at real tokens

  // Selects batch rows (beam reordering / dropping finished sentences).
  AttentionKeys index_select(const std::vector<int64_t>& rows) const;
};

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(AttentionType type, int64_t query_dim, int64_t memory_dim);
  AttentionKeys precompute(const torch::Tensor& memory, const torch::Tensor& mask);
  // query: [batch * group, query_dim] (group hypotheses per sentence, consecutive rows) ->
  // context [batch * group, mem_dim] and weights [batch * group, src_len] (zero at padding).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& query, const AttentionKeys& keys);

  AttentionType type;
  torch::nn::Linear key_proj{nullptr};    // general: W_a on memory; bahdanau: W_k
  torch::nn::Linear query_proj{nullptr};  // bahdanau: W_q
  torch::nn::Linear v{nullptr};           // bahdanau: scoring vector
};
TORCH_MODULE(Attention);

}  // namespace s2s
