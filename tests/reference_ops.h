// Differentiable ATen compositions that tests hold the fused kernels against.
#pragma once

#include <torch/types.h>

#include <utility>

namespace s2s_test {

// The LSTM cell as ATen ops; gate order [input, forget, output, cell]. Returns {h, c}.
inline std::pair<torch::Tensor, torch::Tensor> reference_lstm(const torch::Tensor& gates,
                                                              const torch::Tensor& c) {
  const auto H = c.size(-1);
  auto i = gates.narrow(-1, 0, H).sigmoid(), f = gates.narrow(-1, H, H).sigmoid();
  auto o = gates.narrow(-1, 2 * H, H).sigmoid(), g = gates.narrow(-1, 3 * H, H).tanh();
  auto c_new = f * c + i * g;
  return {o * c_new.tanh(), c_new};
}

}  // namespace s2s_test
