// The optimizer step of a training run: gradient clipping, Adam and the weights' moving average. For CPU
// float32 parameters these are two passes over all parameters at once, each one parallel region (the
// gradient norm, then one fused update per element, kernels::adam_step), instead of ~10 LibTorch ops and
// their temporaries per parameter. Elsewhere (CUDA, double, Adam options the kernel lacks) they run as
// LibTorch ops. Either way the moments are torch::optim::Adam's state, so checkpoints do not change.
#pragma once

#include <torch/optim/adam.h>

#include <vector>

namespace s2s {

// torch::optim::Adam's state of parameter p, made as its first step would make it.
torch::optim::AdamParamState& adam_state(torch::optim::Adam& adam, const torch::Tensor& p);

// The L2 norm of the defined gradients of `params`, all of them taken as one vector (what
// torch::nn::utils::clip_grad_norm_ returns). On CPU float32 its sum runs in double, in fixed blocks, so
// it does not depend on the thread count.
double gradient_norm(const std::vector<torch::Tensor>& params);

// The factor gradient clipping scales the gradients by: min(1, max_norm / (norm + 1e-6)); 1 when
// max_norm is 0 (no clipping).
double clip_factor(double norm, double max_norm);

struct OptimizerStep {
  double lr = 0;             // this step's learning rate
  double grad_scale = 1;     // every gradient is scaled by this first (clip_factor)
  double average_decay = 0;  // the moving average's decay this step (when there is one)
};

// One Adam step of `params`, the optimizer's parameters in its order; parameters without a gradient keep
// their weights. With `average` (one tensor per parameter, else empty), then average = decay * average +
// (1 - decay) * weights. The gradients may be scaled in place (LibTorch's path clips them so).
void optimizer_step(torch::optim::Adam& adam, const std::vector<torch::Tensor>& params,
                    const std::vector<torch::Tensor>& average, const OptimizerStep& step);

}  // namespace s2s
