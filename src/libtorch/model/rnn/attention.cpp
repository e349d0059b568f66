#include "libtorch/model/rnn/attention.h"

#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include "kernels/kernels.h"
#include "libtorch/model/ops.h"
#include "util/error.h"

namespace s2s {

AttentionKeys AttentionKeys::index_select(const std::vector<int64_t>& rows) const {
  return {select_rows(memory, rows), select_rows(keys, rows), select_rows(mask, rows)};
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

namespace {

// Inference on CPU for dot-product scores: one fused pass per sentence (scores, masked softmax, context)
// instead of bmm + masked_fill + softmax + bmm, whose oneDNN primitives are JIT-compiled (and cached, ~85 KB
// each) for every new (sentences, source length) shape. Returns float32 context and weights.
std::pair<torch::Tensor, torch::Tensor> fused_dot_attention(const torch::Tensor& query,
                                                            const AttentionKeys& k) {
  const auto batch = k.keys.size(0), S = k.keys.size(1), D = k.keys.size(2), M = k.memory.size(2);
  const auto group = query.size(0) / batch;
  const auto q = query.to(torch::kFloat).contiguous();  // [batch * group, D]
  const auto keys = k.keys.contiguous(), memory = k.memory.contiguous();
  const auto mask = k.mask.to(torch::kBool).contiguous();
  auto weights = torch::empty({batch * group, S}, q.options());
  auto context = torch::empty({batch * group, M}, q.options());
  const bool bf16 = keys.scalar_type() == torch::kBFloat16;
  at::parallel_for(0, batch, /*grain_size=*/8, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const float* qb = q.data_ptr<float>() + b * group * D;
      const bool* mb = mask.data_ptr<bool>() + b * S;
      float* wb = weights.data_ptr<float>() + b * group * S;
      float* cb = context.data_ptr<float>() + b * group * M;
      if (bf16) {
        kernels::attention(qb, bf16_bits(keys) + b * S * D, bf16_bits(memory) + b * S * M, mb, group, S, D, M,
                           wb, cb);
      } else {
        kernels::attention(qb, keys.data_ptr<float>() + b * S * D, memory.data_ptr<float>() + b * S * M, mb,
                           group, S, D, M, wb, cb);
      }
    }
  });
  return {context, weights};
}

bool use_fused(AttentionType type, const torch::Tensor& query, const AttentionKeys& k) {
  const auto dtype = k.keys.scalar_type();
  return type != AttentionType::kBahdanau && !torch::GradMode::is_enabled() && query.device().is_cpu() &&
         (dtype == torch::kFloat || dtype == torch::kBFloat16) && k.memory.scalar_type() == dtype;
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> AttentionImpl::forward(const torch::Tensor& query,
                                                               const AttentionKeys& k) {
  if (use_fused(type, query, k)) return fused_dot_attention(query, k);
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
  const auto type =
      scores.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;  // float or better
  auto weights = torch::softmax(scores, /*dim=*/2, type);                       // [batch, group, src_len]
  auto context = torch::bmm(weights.to(k.memory.scalar_type()), k.memory);      // [batch, group, mem]
  return {context.view({batch * group, -1}), weights.view({batch * group, -1})};
}

}  // namespace s2s
