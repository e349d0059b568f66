#include "libtorch/train/optimizer.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <type_traits>

#include "kernels/kernels.h"

namespace s2s {
namespace {

// Whether the fused CPU passes take `t`: a defined, contiguous float32 CPU tensor.
bool fusable(const torch::Tensor& t) {
  return t.defined() && t.is_cpu() && t.scalar_type() == torch::kFloat && t.is_contiguous();
}

// Prefix sums of the tensors' sizes: starts[k] is tensor k's first element in their concatenation, and
// starts.back() the total.
std::vector<int64_t> element_starts(const std::vector<torch::Tensor>& tensors) {
  std::vector<int64_t> starts{0};
  for (const auto& t : tensors) starts.push_back(starts.back() + t.numel());
  return starts;
}

// Calls f(k, lo, hi) for each piece of the elements [begin, end) of the tensors' concatenation: tensor k's
// elements [lo, hi).
template <class F>
void for_pieces(const std::vector<int64_t>& starts, int64_t begin, int64_t end, F&& f) {
  auto k = static_cast<size_t>(std::upper_bound(starts.begin(), starts.end(), begin) - starts.begin()) - 1;
  for (; begin < end && k + 1 < starts.size(); ++k) {
    const int64_t hi = std::min(end, starts[k + 1]);
    if (hi > begin) f(k, begin - starts[k], hi - starts[k]);
    begin = std::max(begin, hi);
  }
}

// Elements per block of the gradient norm's sum: the blocks, not the threads, fix its summation order.
constexpr int64_t kNormBlock = int64_t{1} << 16;

double fused_gradient_norm(const std::vector<torch::Tensor>& grads) {
  const auto starts = element_starts(grads);
  const int64_t blocks = (starts.back() + kNormBlock - 1) / kNormBlock;
  std::vector<double> partial(static_cast<size_t>(blocks));  // [blocks] sums of squares
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      double sum = 0;
      for_pieces(starts, b * kNormBlock, std::min(starts.back(), (b + 1) * kNormBlock),
                 [&](size_t k, int64_t lo, int64_t hi) {
                   sum += kernels::sum_of_squares(grads[k].data_ptr<float>() + lo, hi - lo);
                 });
      partial[static_cast<size_t>(b)] = sum;
    }
  });
  double total = 0;
  for (const double s : partial) total += s;
  return std::sqrt(total);
}

// Whether the fused step runs this optimizer: one parameter group holding `params`, every parameter and
// its gradient, moments and average fusable, no weight decay or amsgrad.
bool fused_step_applies(torch::optim::Adam& adam, const std::vector<torch::Tensor>& params,
                        const std::vector<torch::Tensor>& average) {
  if (adam.param_groups().size() != 1) return false;
  const auto& group = adam.param_groups()[0];
  const auto& o = static_cast<const torch::optim::AdamOptions&>(group.options());
  if (o.weight_decay() != 0 || o.amsgrad() || group.params().size() != params.size()) return false;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    if (!group.params()[i].is_same(p) || !fusable(p) || !fusable(p.grad())) return false;
    if (!average.empty() && (!fusable(average[i]) || average[i].numel() != p.numel())) return false;
  }
  return true;
}

void fused_step(torch::optim::Adam& adam, const std::vector<torch::Tensor>& params,
                const std::vector<torch::Tensor>& average, const OptimizerStep& step) {
  const auto& o = static_cast<const torch::optim::AdamOptions&>(adam.param_groups()[0].options());
  const auto [beta1, beta2] = o.betas();
  std::vector<kernels::AdamStep> constants;  // per parameter: its step count sets the bias corrections
  std::vector<torch::Tensor> m, v;
  for (const auto& p : params) {
    auto& state = adam_state(adam, p);
    state.step(state.step() + 1);
    const auto t = static_cast<double>(state.step());
    kernels::AdamStep s;
    s.beta1 = static_cast<float>(beta1), s.beta2 = static_cast<float>(beta2),
    s.eps = static_cast<float>(o.eps());
    s.step_size = static_cast<float>(step.lr / (1 - std::pow(beta1, t)));
    s.sqrt_bc2 = static_cast<float>(std::sqrt(1 - std::pow(beta2, t)));
    s.grad_scale = static_cast<float>(step.grad_scale);
    s.average_weight = static_cast<float>(1 - step.average_decay);
    constants.push_back(s);
    m.push_back(state.exp_avg()), v.push_back(state.exp_avg_sq());
  }
  const auto starts = element_starts(params);
  at::parallel_for(0, starts.back(), int64_t{1} << 14, [&](int64_t begin, int64_t end) {
    for_pieces(starts, begin, end, [&](size_t k, int64_t lo, int64_t hi) {
      float* avg = average.empty() ? nullptr : average[k].data_ptr<float>() + lo;
      kernels::adam_step(params[k].data_ptr<float>() + lo, params[k].grad().data_ptr<float>() + lo,
                         m[k].data_ptr<float>() + lo, v[k].data_ptr<float>() + lo, avg, hi - lo,
                         constants[k]);
    });
  });
}

}  // namespace

namespace {

// torch::optim::Adam's own key for p's state: the address of p's TensorImpl, printed in LibTorch 1.13 and
// the pointer itself in 2.x.
template <class Key>
Key state_key(const torch::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream s;  // c10::guts::to_string
    s << p.unsafeGetTensorImpl();
    return s.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

}  // namespace

// torch::optim::Adam's state of parameter p, made as its first step would make it.
torch::optim::AdamParamState& adam_state(torch::optim::Adam& adam, const torch::Tensor& p) {
  using Key = std::decay_t<decltype(adam.state())>::key_type;
  auto& slot = adam.state()[state_key<Key>(p)];
  if (!slot) {
    auto state = std::make_unique<torch::optim::AdamParamState>();
    state->step(0);
    state->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    state->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    slot = std::move(state);
  }
  return static_cast<torch::optim::AdamParamState&>(*slot);
}

double gradient_norm(const std::vector<torch::Tensor>& params) {
  RECORD_FUNCTION("s2s::gradient_norm", std::vector<c10::IValue>());  // a span of its own in S2S_PROFILE
  std::vector<torch::Tensor> grads;
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return 0;
  if (std::all_of(grads.begin(), grads.end(), fusable)) return fused_gradient_norm(grads);
  std::vector<torch::Tensor> norms;
  for (const auto& g : grads) norms.push_back(g.norm().to(torch::kDouble).cpu());
  return torch::stack(norms).norm().item<double>();
}

double clip_factor(double norm, double max_norm) {
  return max_norm > 0 ? std::min(1.0, max_norm / (norm + 1e-6)) : 1.0;
}

void optimizer_step(torch::optim::Adam& adam, const std::vector<torch::Tensor>& params,
                    const std::vector<torch::Tensor>& average, const OptimizerStep& step) {
  RECORD_FUNCTION("s2s::optimizer_step", std::vector<c10::IValue>());
  torch::NoGradGuard no_grad;
  for (auto& group : adam.param_groups())
    static_cast<torch::optim::AdamOptions&>(group.options()).lr(step.lr);
  if (fused_step_applies(adam, params, average)) {
    fused_step(adam, params, average, step);
    return;
  }
  if (step.grad_scale != 1) {
    for (const auto& p : params) {
      if (p.grad().defined()) p.grad().mul_(step.grad_scale);
    }
  }
  adam.step();
  for (size_t i = 0; i < average.size(); ++i) average[i].lerp_(params[i], 1 - step.average_decay);
}

}  // namespace s2s
