#include "model/ops.h"

#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <cstring>

#include "model/kernels.h"

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

}  // namespace

const uint16_t* bf16_bits(const torch::Tensor& t) {
  return reinterpret_cast<const uint16_t*>(t.data_ptr<at::BFloat16>());
}

std::pair<torch::Tensor, torch::Tensor> lstm_update(const torch::Tensor& gates, const torch::Tensor& c) {
  const bool bf16 = gates.scalar_type() == torch::kBFloat16;
  if (torch::GradMode::is_enabled() || !gates.device().is_cpu() ||
      !(bf16 || gates.scalar_type() == torch::kFloat)) {
    return composed_lstm(gates, c);
  }
  const auto H = c.size(-1);
  TORCH_CHECK(gates.numel() == 4 * c.numel(), "lstm_update: gates ", gates.sizes(), " do not match cell ",
              c.sizes());
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

torch::Tensor row_logsumexp(const torch::Tensor& x) {
  if (!x.device().is_cpu() || !(x.scalar_type() == torch::kBFloat16 || x.scalar_type() == torch::kFloat)) {
    return x.to(torch::kFloat).logsumexp(1);
  }
  const auto in = x.contiguous();
  const auto rows = in.size(0), cols = in.size(1);
  auto out = torch::empty({rows}, in.options().dtype(torch::kFloat));
  at::parallel_for(0, rows, /*grain_size=*/std::max<int64_t>(1, 16384 / std::max<int64_t>(1, cols)),
                   [&](int64_t begin, int64_t end) {
                     if (in.scalar_type() == torch::kBFloat16) {
                       kernels::row_logsumexp(bf16_bits(in), cols, begin, end, out.data_ptr<float>());
                     } else {
                       kernels::row_logsumexp(in.data_ptr<float>(), cols, begin, end, out.data_ptr<float>());
                     }
                   });
  return out;
}

}  // namespace s2s
