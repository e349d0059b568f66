#include "libtorch/train/loss.h"

#include <ATen/Parallel.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/autograd.h>

#include "kernels/kernels.h"
#include "libtorch/model/ops.h"
#include "libtorch/util/runtime.h"

namespace s2s {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The softmax dtype: double stays double (gradient tests), everything else is float32.
at::ScalarType softmax_type(const torch::Tensor& weight) {
  return weight.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
}

// Logits of rows [begin, begin + n) in the compute precision: [n, vocab].
torch::Tensor chunk_logits(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                           int64_t begin, int64_t n) {
  return torch::addmm(b, x.narrow(0, begin, n), w.t());
}

// Rows the products run on: every chunk has `chunk` rows, the last one its remainder rounded up to a
// multiple of 64 (at most `chunk`). oneDNN makes a kernel per row count (a JIT compilation for each new
// one), and its AMX kernels run slower on odd counts; the zero rows added cost at most 63 rows' products.
int64_t padded_rows(int64_t tokens, int64_t chunk) {
  const int64_t full = tokens / chunk * chunk, rest = tokens - full;
  return rest == 0 ? tokens : full + std::min(chunk, (rest + 63) / 64 * 64);
}

// rows [tokens, dim] in the compute precision, zero rows appended up to padded_rows: [padded, dim].
torch::Tensor padded_input(const torch::Tensor& rows, at::ScalarType compute, int64_t chunk) {
  const auto x = rows.to(compute);
  const auto extra = padded_rows(rows.size(0), chunk) - rows.size(0);
  return extra == 0 ? x : torch::constant_pad_nd(x, {0, 0, 0, extra});
}

// Whether the fused CPU kernels take a chunk's logits of `compute` with float32 sums (bf16 or float32
// training; not double, which the gradient tests check against autograd's ops).
bool fused_softmax(const torch::Tensor& x, at::ScalarType compute, at::ScalarType acc) {
  return x.is_cpu() && acc == torch::kFloat && (compute == torch::kBFloat16 || compute == torch::kFloat);
}

// logits [n, vocab] (contiguous, bf16 or float32) = the gradient of the summed label-smoothed loss with
// respect to them (kernels::xent_logit_grad); their column sums are added to grad_b (float32 [vocab]).
void softmax_gradient(torch::Tensor& logits, const torch::Tensor& lse, const torch::Tensor& gold,
                      double smoothing, torch::Tensor& grad_b) {
  const auto n = logits.size(0), vocab = logits.size(1);
  const bool bf16 = logits.scalar_type() == torch::kBFloat16;
  const auto lse_c = lse.contiguous(), gold_c = gold.contiguous();  // [n] each
  at::parallel_for(
      0, vocab, /*grain_size=*/std::max<int64_t>(64, (1 << 16) / std::max<int64_t>(1, n)),
      [&](int64_t c0, int64_t c1) {  // columns: each column's sum stays on one thread
        const auto s = static_cast<float>(smoothing);
        if (bf16) {
          kernels::xent_logit_grad(data_as<uint16_t>(logits), n, vocab, c0, c1, lse_c.data_ptr<float>(),
                                   gold_c.data_ptr<int64_t>(), 1.0f, s, grad_b.data_ptr<float>());
        } else {
          kernels::xent_logit_grad(logits.data_ptr<float>(), n, vocab, c0, c1, lse_c.data_ptr<float>(),
                                   gold_c.data_ptr<int64_t>(), 1.0f, s, grad_b.data_ptr<float>());
        }
      });
}

// The gradient of the summed label-smoothed loss with respect to logits [m, vocab] (compute type; rows n..
// are padding and stay as they are), written over them: softmax - smoothing / vocab - (1 - smoothing)
// [gold]; its column sums over the n rows are added to grad_b (acc type [vocab]).
void logit_gradient(torch::Tensor& logits, int64_t n, const torch::Tensor& lse, const torch::Tensor& gold,
                    double smoothing, at::ScalarType acc, torch::Tensor& grad_b) {
  auto rows = logits.narrow(0, 0, n);
  if (fused_softmax(logits, logits.scalar_type(), acc)) {  // in place, one pass
    softmax_gradient(rows, lse, gold, smoothing, grad_b);
    return;
  }
  auto d = rows.to(acc);  // [n, vocab]
  d.sub_(lse.unsqueeze(1)).exp_().sub_(smoothing / static_cast<double>(logits.size(1)));
  d.scatter_add_(1, gold.unsqueeze(1), torch::full({n, 1}, smoothing - 1, d.options()));
  grad_b.add_(d.sum(0));
  rows.copy_(d);
}

// The loss and, when asked, its gradients, in one pass over the chunks: each chunk's logits turn into their
// gradient as soon as its log-normalizers are known, and its two gradient products run at once, so the
// backward pass only scales the sums by the incoming gradient (the loss is linear in it) and no chunk's
// logits are computed twice.
class OutputLoss : public torch::autograd::Function<OutputLoss> {
 public:
  // Returns {loss, nll} (see chunked_output_loss). with_grad: compute the gradients for the backward pass.
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& rows, const torch::Tensor& weight,
                               const torch::Tensor& bias, const torch::Tensor& gold, double smoothing,
                               at::ScalarType compute, int64_t chunk, bool with_grad) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);  // dtypes chosen here
    const auto acc = softmax_type(weight);
    const auto x = padded_input(rows, compute, chunk);  // [padded, dim]
    const auto w = weight.to(compute), b = bias.to(compute);
    const auto tokens = rows.size(0), vocab = weight.size(0), padded = x.size(0);
    auto nll = torch::zeros({}, rows.options().dtype(acc)), smooth = torch::zeros({}, nll.options());
    torch::Tensor grad_rows, grad_w, grad_b;  // the gradients of the summed loss (with_grad)
    if (with_grad) {
      grad_rows = torch::empty({tokens, rows.size(1)}, rows.options());
      grad_w = torch::zeros_like(weight, torch::MemoryFormat::Contiguous);
      grad_b = torch::zeros({vocab}, bias.options().dtype(acc));
    }
    for (int64_t begin = 0; begin < tokens; begin += chunk) {
      const auto n = std::min(chunk, tokens - begin), m = std::min(chunk, padded - begin);
      auto full = chunk_logits(x, w, b, begin, m);  // [m, vocab]: rows n.. are padding
      auto logits = full.narrow(0, 0, n);           // [n, vocab], contiguous
      torch::Tensor sums;                           // [n] row sums of the logits, for the smoothing term
      auto z = acc == torch::kDouble ? logits.logsumexp(1) : row_logsumexp(logits, &sums);
      if (acc == torch::kDouble) sums = logits.sum(1, false, acc);
      const auto golds = gold.narrow(0, begin, n);
      auto gold_logit = logits.gather(1, golds.unsqueeze(1)).squeeze(1).to(acc);
      nll += (z - gold_logit).sum();
      if (smoothing > 0) smooth += (z * static_cast<double>(vocab) - sums).sum();
      if (!with_grad) continue;
      // x is zero in the padding rows, so whatever their logits hold adds nothing to grad_w.
      logit_gradient(full, n, z, golds, smoothing, acc, grad_b);
      grad_rows.narrow(0, begin, n).copy_(torch::mm(full, w).narrow(0, 0, n));  // [n, dim]
      grad_w.add_(torch::mm(full.t(), x.narrow(0, begin, m)));                  // [vocab, dim]
    }
    if (with_grad) ctx->saved_data["grads"] = std::vector<torch::Tensor>{grad_rows, grad_w, grad_b};
    auto loss = nll * (1 - smoothing) + smooth * (smoothing / static_cast<double>(vocab));
    ctx->mark_non_differentiable({nll});
    return {loss, nll};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    TORCH_CHECK(ctx->saved_data.count("grads") != 0,
                "chunked_output_loss: backward of a loss computed without gradients");
    auto grads = ctx->saved_data["grads"].toTensorVector();  // rows, weight, bias (float or double)
    ctx->saved_data.erase("grads");  // [tokens, dim] + [vocab, dim]: not kept for the rest of the backward
    const auto g = grad_outputs[0].to(grads[2].scalar_type());  // scalar, in the softmax type
    // Scaled in place: the sums are this node's alone now.
    return {grads[0].mul_(g), grads[1].mul_(g), grads[2].mul_(g).to(grads[1].scalar_type()),
            torch::Tensor(),  torch::Tensor(),  torch::Tensor(),
            torch::Tensor(),  torch::Tensor()};
  }
};

// The precision autocast would give the output layer's product on this device, else the weight's.
at::ScalarType compute_type(const torch::Tensor& weight) {
  if (weight.scalar_type() != torch::kFloat) return weight.scalar_type();
  if (runtime::autocast_enabled(weight.device())) return runtime::autocast_dtype(weight.device());
  return weight.scalar_type();
}

}  // namespace

int64_t loss_chunk_rows(int64_t vocab) {
  // A multiple of 64 rows: oneDNN's AMX GEMMs take 2/3 of the time per row on 512 rows that they take on 524
  // (docs/BENCHMARKS.md).
  return std::max<int64_t>(64, (int64_t{4} << 20) / std::max<int64_t>(1, vocab) / 64 * 64);
}

std::pair<torch::Tensor, torch::Tensor> chunked_output_loss(const torch::Tensor& rows,
                                                            const torch::Tensor& weight,
                                                            const torch::Tensor& bias,
                                                            const torch::Tensor& gold, double label_smoothing,
                                                            at::ScalarType compute, int64_t chunk_rows) {
  TORCH_CHECK(rows.dim() == 2 && weight.dim() == 2 && rows.size(1) == weight.size(1) &&
                  bias.size(0) == weight.size(0) && gold.size(0) == rows.size(0),
              "chunked_output_loss: rows ", rows.sizes(), ", weight ", weight.sizes(), ", bias ",
              bias.sizes(), ", gold ", gold.sizes(), " do not fit");
  const bool with_grad = torch::GradMode::is_enabled() &&
                         (rows.requires_grad() || weight.requires_grad() || bias.requires_grad());
  auto out = OutputLoss::apply(rows, weight, bias, gold, label_smoothing, compute,
                               std::max<int64_t>(1, chunk_rows), with_grad);
  return {out[0], out[1]};
}

LossResult sequence_loss(NmtModelImpl& model, const torch::Tensor& hidden, const torch::Tensor& tgt_out,
                         double label_smoothing) {
  auto gold = tgt_out.reshape({-1});                                       // [batch * tgt_len]
  auto keep = gold.ne(model.vocabs.pad_id).nonzero().squeeze(1);           // [tokens]
  auto rows = hidden.reshape({-1, hidden.size(2)}).index_select(0, keep);  // [tokens, out_dim]
  auto y = gold.index_select(0, keep);                                     // [tokens]
  auto [loss, nll] =
      chunked_output_loss(rows, model.out_weight, model.out_bias, y, label_smoothing,
                          compute_type(model.out_weight), loss_chunk_rows(model.out_weight.size(0)));
  LossResult result;
  result.tokens = y.size(0);
  result.loss = loss;
  result.nll = nll.item<double>();
  return result;
}

}  // namespace s2s
