#include "libtorch/decode/search.h"

#include "libtorch/model/ops.h"
#include "libtorch/util/runtime.h"

namespace s2s {
namespace {

// The output layer for one batch, restricted to a vocabulary subset when one is given. The weight is
// stored transposed and contiguous (a plain [K, N] GEMM operand) and, under autocast, cast once per batch
// instead of once per step.
struct OutputLayer {
  torch::Tensor weight_t, bias;  // [out_dim, vocab'], [vocab']
  std::vector<int64_t> ids;      // local index -> target id (empty: identity)
  torch::Tensor logits(const torch::Tensor& hidden) const { return torch::addmm(bias, hidden, weight_t); }
};

OutputLayer output_layer(NmtModelImpl& model, const std::vector<int64_t>& subset,
                         const torch::Device& device) {
  OutputLayer out{model.out_weight, model.out_bias, subset};
  if (!subset.empty()) {
    auto index = torch::tensor(subset, torch::kInt64).to(device);
    out.weight_t = out.weight_t.index_select(0, index), out.bias = out.bias.index_select(0, index);
  }
  out.weight_t = out.weight_t.t().contiguous();
  if (device.is_cpu() && runtime::autocast_enabled(device)) {
    const auto dtype = runtime::autocast_dtype(device);
    out.weight_t = out.weight_t.to(dtype), out.bias = out.bias.to(dtype);
  }
  return out;
}

torch::Tensor host_float(const torch::Tensor& t) {
  return t.to(torch::kCPU, torch::kFloat).contiguous();
}

template <class T>
std::vector<T> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU).contiguous();
  return {c.data_ptr<T>(), c.data_ptr<T>() + c.numel()};
}

// The LibTorch model as a beam-search scorer: decoder state on the model's device, K rows per sentence.
class TorchScorer : public StepScorer {
 public:
  TorchScorer(NmtModelImpl& model, const torch::Tensor& src, const torch::Tensor& src_lengths,
              const std::vector<int64_t>& subset, int64_t K)
      : model_(model), device_(src.device()), output_(output_layer(model, subset, device_)) {
    cache_ = model.start_search(src, src_lengths, K);
  }

  // The logits of every row and their logsumexp (no log_softmax materialized), on the host as the search
  // selects there.
  StepScores step(const std::vector<int64_t>& tokens, int64_t A, int64_t K, bool keep_attention) override {
    auto input = torch::tensor(tokens, torch::kInt64).to(device_);
    torch::Tensor attn;
    auto out = model_.step(input, *cache_, keep_attention ? &attn : nullptr);  // [A*K, out_dim]
    auto logits = output_.logits(out);                                         // [A*K, vocab']
    lse_ = host_float(row_logsumexp(logits));                                  // [A*K]
    logits_ = host_float(logits);
    StepScores s{logits_.data_ptr<float>(), lse_.data_ptr<float>(), logits_.size(1), &output_.ids};
    if (keep_attention) {
      attn_ = host_float(attn);  // [A*K, src_len]
      s.attention = attn_.data_ptr<float>(), s.attention_cols = attn_.size(1);
    }
    return s;
  }

  void reorder(const std::vector<int64_t>& rows, const std::vector<int64_t>& kept, int64_t A,
               int64_t K) override {
    cache_->reorder(rows, static_cast<int64_t>(kept.size()) < A ? kept : std::vector<int64_t>{});
  }

 private:
  NmtModelImpl& model_;
  torch::Device device_;
  OutputLayer output_;
  std::unique_ptr<DecoderCache> cache_;
  torch::Tensor logits_, lse_, attn_;  // the last step's scores on the host (float32, contiguous)
};

}  // namespace

std::unique_ptr<StepScorer> make_torch_scorer(NmtModelImpl& model, const torch::Tensor& src,
                                              const torch::Tensor& src_lengths,
                                              const std::vector<int64_t>& vocab_subset, int64_t K) {
  return std::make_unique<TorchScorer>(model, src, src_lengths, vocab_subset, K);
}

std::vector<std::vector<Hypothesis>> beam_search(NmtModelImpl& model, const torch::Tensor& src,
                                                 const torch::Tensor& src_lengths, const SearchOptions& opt,
                                                 const std::vector<int64_t>& vocab_subset) {
  torch::NoGradGuard no_grad;
  TorchScorer scorer(model, src, src_lengths, vocab_subset, opt.beam_size);
  return beam_search(scorer, to_vector<int64_t>(src_lengths.to(torch::kInt64)), opt, model.vocabs.bos_id,
                     model.vocabs.eos_id);
}

}  // namespace s2s
