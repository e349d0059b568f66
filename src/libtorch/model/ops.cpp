#include "libtorch/model/ops.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <cstring>
#include <mutex>
#include <type_traits>

#include "kernels/kernels.h"

namespace s2s {
namespace {

std::pair<torch::Tensor, torch::Tensor> composed_lstm(const torch::Tensor& gates, const torch::Tensor& c) {
  const auto H = c.size(-1);
  auto ifo = gates.narrow(-1, 0, 3 * H).sigmoid();
  auto g = gates.narrow(-1, 3 * H, H).tanh();
  auto c_new = torch::addcmul(ifo.narrow(-1, H, H) * c, ifo.narrow(-1, 0, H), g);
  auto h = ifo.narrow(-1, 2 * H, H) * c_new.tanh();
  return {h, c_new};
}

int64_t cell_grain(int64_t H) {
  return std::max<int64_t>(1, 8192 / H);
}

// T: the gates' element type (float, bf16 bits, double); C: the cell type (float, or double).
template <class T, class C>
void cell_forward(const torch::Tensor& g, const torch::Tensor& cp, const torch::Tensor& c,
                  const torch::Tensor& h, const torch::Tensor& act) {
  const auto H = cp.size(-1);
  at::parallel_for(0, cp.numel() / H, cell_grain(H), [&](int64_t begin, int64_t end) {
    kernels::lstm_cell_train(data_as<T>(g), data_as<C>(cp), data_as<C>(c), data_as<T>(h), data_as<T>(act),
                             begin, end, H);
  });
}

template <class T, class C>
void cell_backward(const torch::Tensor& act, const torch::Tensor& cp, const torch::Tensor& c,
                   const torch::Tensor& dh, const torch::Tensor& dc, const torch::Tensor& dgates,
                   const torch::Tensor& dc_prev) {
  const auto H = cp.size(-1);
  at::parallel_for(0, cp.numel() / H, cell_grain(H), [&](int64_t begin, int64_t end) {
    kernels::lstm_cell_backward(data_as<T>(act), data_as<C>(cp), data_as<C>(c), data_as<T>(dh),
                                data_as<C>(dc), data_as<T>(dgates), data_as<C>(dc_prev), begin, end, H);
  });
}

// The training LSTM cell: one fused pass forward and one backward instead of ~8 ATen ops and their
// autograd nodes per cell and time step. Saves the activated gates and both cell states.
class LstmCell : public torch::autograd::Function<LstmCell> {
 public:
  // gates: [rows..., 4H]; c_prev: [rows..., H] in the cell type. Returns {h [rows..., H], c [rows..., H]}.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                const torch::Tensor& gates, const torch::Tensor& c_prev) {
    const auto g = gates.contiguous(), cp = c_prev.contiguous();
    auto act = torch::empty_like(g), c = torch::empty_like(cp);
    auto h = torch::empty(cp.sizes(), g.options());
    lstm_cell_forward(g, cp, c, h, act);
    ctx->save_for_backward({act, cp, c});
    return {h, c};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &act = saved[0], &cp = saved[1], &c = saved[2];
    const auto dh = grads[0].defined() ? grads[0].to(act.scalar_type()).contiguous()
                                       : torch::zeros(cp.sizes(), act.options());
    const auto dc = grads[1].defined() ? grads[1].to(cp.scalar_type()).contiguous() : torch::zeros_like(cp);
    auto dgates = torch::empty_like(act), dc_prev = torch::empty_like(cp);
    lstm_cell_backward(act, cp, c, dh, dc, dgates, dc_prev);
    return {dgates, dc_prev};
  }
};

}  // namespace

void lstm_cell_forward(const torch::Tensor& gates, const torch::Tensor& c_prev, const torch::Tensor& c,
                       const torch::Tensor& h, const torch::Tensor& act) {
  if (gates.scalar_type() == torch::kBFloat16) {
    cell_forward<uint16_t, float>(gates, c_prev, c, h, act);
  } else if (gates.scalar_type() == torch::kDouble) {
    cell_forward<double, double>(gates, c_prev, c, h, act);
  } else {
    cell_forward<float, float>(gates, c_prev, c, h, act);
  }
}

void lstm_cell_backward(const torch::Tensor& act, const torch::Tensor& c_prev, const torch::Tensor& c,
                        const torch::Tensor& dh, const torch::Tensor& dc, const torch::Tensor& dgates,
                        const torch::Tensor& dc_prev) {
  if (act.scalar_type() == torch::kBFloat16) {
    cell_backward<uint16_t, float>(act, c_prev, c, dh, dc, dgates, dc_prev);
  } else if (act.scalar_type() == torch::kDouble) {
    cell_backward<double, double>(act, c_prev, c, dh, dc, dgates, dc_prev);
  } else {
    cell_backward<float, float>(act, c_prev, c, dh, dc, dgates, dc_prev);
  }
}

const uint16_t* bf16_bits(const torch::Tensor& t) {
  return reinterpret_cast<const uint16_t*>(t.data_ptr<at::BFloat16>());
}

std::pair<torch::Tensor, torch::Tensor> lstm_step(const torch::Tensor& pre, const torch::Tensor& rec_in,
                                                  const torch::Tensor& w_rec, const torch::Tensor& c) {
  TORCH_CHECK(rec_in.dim() == w_rec.dim() && (rec_in.dim() == 2 || rec_in.dim() == 3) &&
                  rec_in.size(-1) == w_rec.size(-2),
              "lstm_step: rec_in ", rec_in.sizes(), " does not fit w_rec ", w_rec.sizes());
  auto gates = rec_in.dim() == 3 ? torch::baddbmm(pre, rec_in, w_rec) : torch::addmm(pre, rec_in, w_rec);
  return lstm_update(gates, c);
}

std::pair<torch::Tensor, torch::Tensor> lstm_update(const torch::Tensor& gates, const torch::Tensor& c) {
  const auto type = gates.scalar_type();
  const bool bf16 = type == torch::kBFloat16;
  TORCH_CHECK(gates.size(-1) == 4 * c.size(-1) && gates.numel() == 4 * c.numel(), "lstm_update: gates ",
              gates.sizes(), " do not match cell ", c.sizes());
  if (!gates.device().is_cpu() || !(bf16 || type == torch::kFloat || type == torch::kDouble)) {
    return composed_lstm(gates, c);
  }
  if (torch::GradMode::is_enabled()) {
    auto out = LstmCell::apply(gates, c.to(type == torch::kDouble ? torch::kDouble : torch::kFloat));
    return {out[0], out[1]};
  }
  if (type == torch::kDouble) return composed_lstm(gates, c);
  const auto H = c.size(-1);
  const auto g = gates.contiguous();                     // [rows..., 4H]
  const auto c_prev = c.to(torch::kFloat).contiguous();  // [rows..., H]
  auto c_new = torch::empty_like(c_prev);
  auto h = torch::empty(c_prev.sizes(), g.options());
  const int64_t rows = c_prev.numel() / H;
  at::parallel_for(0, rows, /*grain_size=*/std::max<int64_t>(1, 8192 / H), [&](int64_t begin, int64_t end) {
    if (bf16) {
      kernels::lstm_cell(bf16_bits(g), c_prev.data_ptr<float>(), c_new.data_ptr<float>(),
                         reinterpret_cast<uint16_t*>(h.data_ptr<at::BFloat16>()), begin, end, H);
    } else {
      kernels::lstm_cell(g.data_ptr<float>(), c_prev.data_ptr<float>(), c_new.data_ptr<float>(),
                         h.data_ptr<float>(), begin, end, H);
    }
  });
  return {h, c_new};
}

torch::Tensor select_rows(const torch::Tensor& t, const std::vector<int64_t>& rows) {
  if (!t.device().is_cpu() || !t.is_contiguous() || t.dim() == 0) {
    return t.index_select(0, torch::tensor(rows, torch::kInt64).to(t.device()));
  }
  auto sizes = t.sizes().vec();
  sizes[0] = static_cast<int64_t>(rows.size());
  auto out = torch::empty(sizes, t.options());
  const auto row_bytes = static_cast<size_t>(t.numel() / std::max<int64_t>(1, t.size(0))) * t.element_size();
  const auto* src = static_cast<const char*>(t.data_ptr());
  auto* dst = static_cast<char*>(out.data_ptr());
  for (size_t i = 0; i < rows.size(); ++i) {
    TORCH_CHECK(rows[i] >= 0 && rows[i] < t.size(0), "select_rows: row ", rows[i], " out of range");
    std::memcpy(dst + i * row_bytes, src + static_cast<size_t>(rows[i]) * row_bytes, row_bytes);
  }
  return out;
}

torch::Tensor row_logsumexp(const torch::Tensor& x, torch::Tensor* row_sums) {
  if (!x.device().is_cpu() || !(x.scalar_type() == torch::kBFloat16 || x.scalar_type() == torch::kFloat)) {
    if (row_sums) *row_sums = x.sum(1, false, torch::kFloat);
    return x.to(torch::kFloat).logsumexp(1);
  }
  const auto in = x.contiguous();
  const auto rows = in.size(0), cols = in.size(1);
  auto out = torch::empty({rows}, in.options().dtype(torch::kFloat));
  if (row_sums) *row_sums = torch::empty_like(out);
  float* sums = row_sums ? row_sums->data_ptr<float>() : nullptr;
  at::parallel_for(0, rows, /*grain_size=*/std::max<int64_t>(1, 16384 / std::max<int64_t>(1, cols)),
                   [&](int64_t begin, int64_t end) {
                     if (in.scalar_type() == torch::kBFloat16) {
                       kernels::row_logsumexp(bf16_bits(in), cols, begin, end, out.data_ptr<float>(), sums);
                     } else {
                       kernels::row_logsumexp(in.data_ptr<float>(), cols, begin, end, out.data_ptr<float>(),
                                              sums);
                     }
                   });
  return out;
}

torch::Tensor dropout_mask(at::IntArrayRef sizes, double p) {
  uint64_t seed = 0;
  {
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    seed = at::check_generator<at::CPUGeneratorImpl>(generator)->random64();
  }
  auto mask = torch::empty(sizes, torch::kFloat);  // 0 or 1 / (1 - p)
  float* m = mask.data_ptr<float>();
  const auto keep = static_cast<float>(1 - p), scale = static_cast<float>(1 / (1 - p));
  at::parallel_for(0, mask.numel(), /*grain_size=*/1 << 16, [&](int64_t begin, int64_t end) {
    kernels::dropout_mask(seed, keep, scale, m, begin, end);
  });
  return mask;
}

torch::Tensor dropout(const torch::Tensor& x, double p, bool training) {
  if (!training || p <= 0) return x;
  if (!x.device().is_cpu()) return torch::dropout(x, p, /*train=*/true);
  return x * dropout_mask(x.sizes(), p).to(x.scalar_type());
}

}  // namespace s2s
