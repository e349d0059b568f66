#include "libtorch/model/nmt_model.h"

#include <torch/nn/functional/linear.h>

#include <algorithm>

namespace s2s {

torch::Tensor NmtModelImpl::logits(const torch::Tensor& hidden) {
  return torch::nn::functional::linear(hidden, out_weight, out_bias);
}

std::vector<torch::Tensor> unique_parameters(const torch::nn::Module& model) {
  std::vector<torch::Tensor> unique;
  for (const auto& p : model.parameters()) {
    const bool seen =
        std::any_of(unique.begin(), unique.end(), [&](const torch::Tensor& q) { return q.is_same(p); });
    if (!seen) unique.push_back(p);
  }
  return unique;
}

}  // namespace s2s
