#include "libtorch/model/rnn/lstm_recurrence.h"

#include <torch/autograd.h>

#include "libtorch/model/ops.h"

namespace s2s {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class LstmRecurrence : public torch::autograd::Function<LstmRecurrence> {
 public:
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& pre, const torch::Tensor& w_hh) {
    const auto dirs = pre.size(0), len = pre.size(1), B = pre.size(2), H = pre.size(3) / 4;
    const auto opt = pre.options();
    const auto copt = opt.dtype(pre.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat);
    auto hs = torch::zeros({len + 1, dirs, B, H}, opt);   // h before each step (0: the zero state)
    auto cs = torch::zeros({len + 1, dirs, B, H}, copt);  // c likewise
    auto act = torch::empty({len, dirs, B, 4 * H}, opt);  // activated gates, for the backward
    for (int64_t t = 0; t < len; ++t) {
      auto gates = torch::baddbmm(pre.select(1, t), hs[t], w_hh);  // [dirs, batch, 4H]
      lstm_cell_forward(gates, cs[t], cs[t + 1], hs[t + 1], act[t]);
    }
    ctx->saved_data["tensors"] = std::vector<torch::Tensor>{w_hh, hs, cs, act};
    return {hs.narrow(0, 1, len).permute({1, 0, 2, 3}).contiguous()};  // [dirs, len, batch, H]
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->saved_data["tensors"].toTensorVector();
    const auto &w_hh = saved[0], &hs = saved[1], &cs = saved[2], &act = saved[3];
    const auto len = act.size(0), dirs = act.size(1), B = act.size(2), H = act.size(3) / 4;
    const auto dtype = act.scalar_type(), ctype = cs.scalar_type();
    const auto d_out =
        grads[0].defined() ? grads[0].to(ctype) : torch::zeros({dirs, len, B, H}, cs.options());
    // [dirs, len, batch, 4H]: pre's layout, so the gradient goes back as it is, and each direction's rows
    // over all steps are one matrix for the weight gradient.
    auto d_gates = torch::empty({dirs, len, B, 4 * H}, act.options());
    auto dh_next = torch::zeros({dirs, B, H}, cs.options()),
         dc_next = torch::zeros({dirs, B, H}, cs.options());
    for (int64_t t = len - 1; t >= 0; --t) {
      const auto dh = (d_out.select(1, t) + dh_next).to(dtype).contiguous();
      auto dc_prev = torch::empty_like(dc_next);
      auto dh_prev = torch::empty({dirs, B, H}, act.options());  // one mm per direction: bf16 bmm is slow
      for (int64_t d = 0; d < dirs; ++d) {
        const auto dg = d_gates[d][t];  // [batch, 4H]
        lstm_cell_backward(act[t][d], cs[t][d], cs[t + 1][d], dh[d], dc_next[d], dg, dc_prev[d]);
        auto row = dh_prev[d];
        torch::mm_out(row, dg, w_hh[d].t());
      }
      dc_next = dc_prev;
      dh_next = dh_prev.to(ctype);
    }
    // dW_hh[d] = sum_t h_{t-1}[d]^T dgates_t[d]: one GEMM per direction over all steps (mm, not bf16 bmm).
    const auto h_prev = hs.narrow(0, 0, len).permute({1, 0, 2, 3}).reshape({dirs, len * B, H});
    auto d_w = torch::empty({dirs, H, 4 * H}, act.options());
    for (int64_t d = 0; d < dirs; ++d) {
      auto out = d_w[d];
      torch::mm_out(out, h_prev[d].t(), d_gates[d].view({len * B, 4 * H}));
    }
    return {d_gates, d_w};
  }
};

}  // namespace

bool recurrence_supported(const torch::Tensor& input) {
  const auto t = input.scalar_type();
  return input.device().is_cpu() && (t == torch::kFloat || t == torch::kBFloat16 || t == torch::kDouble);
}

torch::Tensor lstm_recurrence(const torch::Tensor& pre, const torch::Tensor& w_hh) {
  TORCH_CHECK(recurrence_supported(pre), "lstm_recurrence: pre must be a float CPU tensor, got ",
              pre.options());
  TORCH_CHECK(pre.dim() == 4 && w_hh.dim() == 3 && pre.size(0) == w_hh.size(0) &&
                  pre.size(3) == w_hh.size(2) && w_hh.size(2) == 4 * w_hh.size(1),
              "lstm_recurrence: pre ", pre.sizes(), " [dirs, len, batch, 4H] does not fit w_hh ",
              w_hh.sizes(), " [dirs, H, 4H]");
  return LstmRecurrence::apply(pre.contiguous(), w_hh.to(pre.scalar_type()).contiguous())[0];
}

}  // namespace s2s
