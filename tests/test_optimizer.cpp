// Optimizer tests: the fused CPU step (clipping factor, Adam, moving average) follows LibTorch's
// clip-then-torch::optim::Adam-then-lerp_ step by step and keeps its state where torch::optim::Adam finds
// it; the gradient norm equals LibTorch's and does not depend on the thread count.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/nn/utils/clip_grad.h>

#include "libtorch/train/optimizer.h"

namespace {

// Parameters of several shapes; the largest spans more than one block of the norm's sum (2^16 elements).
std::vector<torch::Tensor> make_params(torch::ScalarType type) {
  torch::manual_seed(11);
  std::vector<torch::Tensor> params;
  for (const auto& shape : std::vector<std::vector<int64_t>>{{3}, {17, 33}, {1000}, {70001}, {5, 1}}) {
    params.push_back(torch::randn(shape, torch::dtype(type)).requires_grad_());
  }
  return params;
}

std::vector<torch::Tensor> clones(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> out;
  for (const auto& t : tensors) out.push_back(t.detach().clone().requires_grad_(t.requires_grad()));
  return out;
}

void set_grads(std::vector<torch::Tensor>& params, int seed) {
  torch::manual_seed(static_cast<uint64_t>(seed));
  for (auto& p : params) p.mutable_grad() = torch::randn_like(p) * 3;
}

torch::optim::AdamOptions adam_options() {
  return torch::optim::AdamOptions(1e-2).betas({0.8, 0.99}).eps(1e-6);
}

// LibTorch's way: gradients scaled in place, torch::optim::Adam, then lerp_ toward the weights.
void reference_step(torch::optim::Adam& adam, std::vector<torch::Tensor>& params,
                    std::vector<torch::Tensor>& average, const s2s::OptimizerStep& step) {
  torch::NoGradGuard no_grad;
  for (auto& p : params) p.grad().mul_(step.grad_scale);
  static_cast<torch::optim::AdamOptions&>(adam.param_groups()[0].options()).lr(step.lr);
  adam.step();
  for (size_t i = 0; i < params.size(); ++i) average[i].lerp_(params[i], 1 - step.average_decay);
}

torch::optim::AdamParamState& state_of(torch::optim::Adam& adam, const torch::Tensor& p) {
  return s2s::adam_state(adam, p);
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, const std::string& what) {
  EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-7))
      << what << ": largest difference " << (a - b).abs().max().item<double>();
}

TEST(Optimizer, FusedStepFollowsLibTorchAdamAndItsState) {
  auto fused = make_params(torch::kFloat), ref = clones(fused);
  auto fused_avg = clones(fused), ref_avg = clones(fused);
  for (auto& t : fused_avg) t.requires_grad_(false);
  for (auto& t : ref_avg) t.requires_grad_(false);
  torch::optim::Adam fused_adam(fused, adam_options()), ref_adam(ref, adam_options());
  for (int k = 0; k < 3; ++k) {
    set_grads(fused, 100 + k), set_grads(ref, 100 + k);
    const s2s::OptimizerStep step{1e-2 * (k + 1), k == 1 ? 0.3 : 1.0, 0.5 + 0.1 * k};
    s2s::optimizer_step(fused_adam, fused, fused_avg, step);
    reference_step(ref_adam, ref, ref_avg, step);
    for (size_t i = 0; i < fused.size(); ++i) {
      const auto name = "step " + std::to_string(k + 1) + ", parameter " + std::to_string(i);
      expect_close(fused[i], ref[i], name + " weights");
      expect_close(fused_avg[i], ref_avg[i], name + " average");
      auto &a = state_of(fused_adam, fused[i]), &b = state_of(ref_adam, ref[i]);
      EXPECT_EQ(a.step(), b.step()) << name;
      expect_close(a.exp_avg(), b.exp_avg(), name + " first moment");
      expect_close(a.exp_avg_sq(), b.exp_avg_sq(), name + " second moment");
    }
  }
  // torch::optim::Adam carries on from the fused steps' state (a state it did not find would restart at
  // zero moments and step 1, and move the weights by ~lr at once).
  set_grads(fused, 7), set_grads(ref, 7);
  fused_adam.step(), ref_adam.step();
  for (size_t i = 0; i < fused.size(); ++i) expect_close(fused[i], ref[i], "torch step after fused steps");
}

TEST(Optimizer, OtherTypesTakeLibTorchsStep) {
  auto params = make_params(torch::kDouble), ref = clones(params);
  auto avg = clones(params), ref_avg = clones(params);
  torch::optim::Adam adam(params, adam_options()), ref_adam(ref, adam_options());
  set_grads(params, 3), set_grads(ref, 3);
  const s2s::OptimizerStep step{2e-3, 0.5, 0.9};
  s2s::optimizer_step(adam, params, avg, step);
  reference_step(ref_adam, ref, ref_avg, step);
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::equal(params[i], ref[i])) << i;
    EXPECT_TRUE(torch::equal(avg[i], ref_avg[i])) << i;
  }
}

TEST(Optimizer, GradientNormMatchesLibTorchWhateverTheThreads) {
  auto params = make_params(torch::kFloat);
  set_grads(params, 5);
  params[2].mutable_grad() = torch::Tensor();  // a parameter without a gradient counts for nothing
  const double expected = torch::nn::utils::clip_grad_norm_(params, 1e30);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const double one = s2s::gradient_norm(params);
  at::set_num_threads(2);
  const double two = s2s::gradient_norm(params);
  at::set_num_threads(threads);
  EXPECT_NEAR(one, expected, 1e-5 * expected);
  EXPECT_EQ(one, two);
  auto doubles = make_params(torch::kDouble);
  set_grads(doubles, 5);
  EXPECT_NEAR(s2s::gradient_norm(doubles), torch::nn::utils::clip_grad_norm_(doubles, 1e30), 1e-9);
}

TEST(Optimizer, ClipFactor) {
  EXPECT_DOUBLE_EQ(s2s::clip_factor(10, 5), 5 / (10 + 1e-6));
  EXPECT_EQ(s2s::clip_factor(2, 5), 1.0);
  EXPECT_EQ(s2s::clip_factor(1e9, 0), 1.0);  // max_norm 0: no clipping
}

}  // namespace
