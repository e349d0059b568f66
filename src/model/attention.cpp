#include "model/attention.h"

#include "util/error.h"

namespace s2s {

AttentionType parse_attention(const std::string& name) {
  if (name == "bahdanau") return AttentionType::kBahdanau;
  if (name == "luong-dot") return AttentionType::kLuongDot;
  if (name == "luong-general") return AttentionType::kLuongGeneral;
  throw Error("unknown attention '" + name + "' (expected bahdanau | luong-dot | luong-general)");
}

AttentionKeys AttentionKeys::index_select(const torch::Tensor& rows) const {
  return {memory.index_select(0, rows), keys.index_select(0, rows), mask.index_select(0, rows)};
}

AttentionImpl::AttentionImpl(AttentionType t, int64_t query_dim, int64_t memory_dim) : type(t) {
  using torch::nn::LinearOptions;
  if (type == AttentionType::kLuongGeneral) {
    key_proj =
        register_module("key_proj", torch::nn::Linear(LinearOptions(memory_dim, query_dim).bias(false)));
  } else if (type == AttentionType::kBahdanau) {
    key_proj =
        register_module("key_proj", torch::nn::Linear(LinearOptions(memory_dim, query_dim).bias(false)));
    query_proj =
        register_module("query_proj", torch::nn::Linear(LinearOptions(query_dim, query_dim).bias(true)));
    v = register_module("v", torch::nn::Linear(LinearOptions(query_dim, 1).bias(false)));
  } else if (query_dim != memory_dim) {
    throw Error("luong-dot attention needs decoder hidden size == encoder output size (" +
                std::to_string(query_dim) + " vs " + std::to_string(memory_dim) + ")");
  }
}

AttentionKeys AttentionImpl::precompute(const torch::Tensor& memory, const torch::Tensor& mask) {
  return {memory, key_proj ? key_proj(memory) : memory, mask};
}

std::pair<torch::Tensor, torch::Tensor> AttentionImpl::forward(const torch::Tensor& query,
                                                               const AttentionKeys& k) {
  // Beam search passes `group` hypotheses per sentence: query rows are [sentence * group].
  const auto batch = k.keys.size(0), group = query.size(0) / batch;
  torch::Tensor scores;  // [batch, group, src_len]
  if (type == AttentionType::kBahdanau) {
    auto q = query_proj(query).view({batch, group, 1, -1});       // [batch, group, 1, key]
    scores = v(torch::tanh(k.keys.unsqueeze(1) + q)).squeeze(3);  // [batch, group, src_len]
  } else {
    auto q = query.view({batch, group, -1}).to(k.keys.scalar_type());  // [batch, group, key]
    scores = torch::bmm(q, k.keys.transpose(1, 2));                    // [batch, group, src_len]
  }
  scores = scores.masked_fill(~k.mask.unsqueeze(1), -std::numeric_limits<float>::infinity());
  auto weights = torch::softmax(scores, /*dim=*/2);                         // [batch, group, src_len]
  auto context = torch::bmm(weights.to(k.memory.scalar_type()), k.memory);  // [batch, group, mem]
  return {context.view({batch * group, -1}), weights.view({batch * group, -1})};
}

}  // namespace s2s
