#include "libtorch/decode/search.h"

#include <ATen/autocast_mode.h>

#include "libtorch/model/ops.h"

namespace s2s {
namespace {

// The output layer for one batch, restricted to a vocabulary subset when one is given. The weight is
// stored transposed and contiguous (a plain [K, N] GEMM operand) and, under autocast, cast once per batch
// instead of once per step.
struct OutputLayer {
  torch::Tensor weight_t, bias;  // [out_dim, vocab'], [vocab']
  std::vector<int64_t> ids;      // local index -> target id (empty: identity)
  int64_t to_global(int64_t local) const { return ids.empty() ? local : ids[static_cast<size_t>(local)]; }
  torch::Tensor logits(const torch::Tensor& hidden) const { return torch::addmm(bias, hidden, weight_t); }
};

OutputLayer output_layer(Seq2SeqImpl& model, const std::vector<int64_t>& subset,
                         const torch::Device& device) {
  OutputLayer out{model.out_weight, model.out_bias, subset};
  if (!subset.empty()) {
    auto index = torch::tensor(subset, torch::kInt64).to(device);
    out.weight_t = out.weight_t.index_select(0, index), out.bias = out.bias.index_select(0, index);
  }
  out.weight_t = out.weight_t.t().contiguous();
  if (device.is_cpu() && at::autocast::is_cpu_enabled()) {
    const auto dtype = at::autocast::get_autocast_cpu_dtype();
    out.weight_t = out.weight_t.to(dtype), out.bias = out.bias.to(dtype);
  }
  return out;
}

template <class T>
std::vector<T> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU).contiguous();
  return {c.data_ptr<T>(), c.data_ptr<T>() + c.numel()};
}

// The LibTorch model as a beam-search scorer: decoder state on the model's device, K rows per sentence.
class TorchScorer : public StepScorer {
 public:
  TorchScorer(Seq2SeqImpl& model, const torch::Tensor& src, const torch::Tensor& src_lengths,
              const std::vector<int64_t>& subset, int64_t K)
      : model_(model), device_(src.device()), output_(output_layer(model, subset, device_)) {
    state_ = model.start(src, src_lengths);
    std::vector<int64_t> beams;  // every sentence's row repeated for its K hypotheses
    for (int64_t b = 0; b < src.size(0); ++b) beams.insert(beams.end(), static_cast<size_t>(K), b);
    state_.index_select(beams);
  }

  // Each row's 2K best logits minus the row's logsumexp (no log_softmax materialized), plus the row's
  // score, then the best 2K of those K * 2K per sentence: exact top-2K extensions.
  StepCandidates step(const std::vector<int64_t>& tokens, const std::vector<float>& scores, int64_t A,
                      int64_t K, bool keep_attention) override {
    auto input = torch::tensor(tokens, torch::kInt64).to(device_);
    torch::Tensor attn;
    auto out = model_.decoder->step(input, state_, keep_attention ? &attn : nullptr);  // [A*K, out_dim]
    auto logits = output_.logits(out);                                                 // [A*K, vocab']
    const auto per_row = std::min<int64_t>(2 * K, logits.size(1));
    auto [row_v, row_i] = logits.topk(per_row, /*dim=*/1);  // [A*K, per_row]
    auto prev = torch::tensor(scores, torch::kFloat).view({A * K, 1}).to(device_);
    auto cand = row_v.to(torch::kFloat) - row_logsumexp(logits).unsqueeze(1) + prev;  // [A*K, per_row]
    auto [values, flat] = cand.view({A, K * per_row}).topk(std::min<int64_t>(2 * K, K * per_row), 1);
    const auto base = torch::arange(A, flat.options()).unsqueeze(1) * K;  // [A, 1]
    StepCandidates c;
    c.per_sentence = values.size(1);
    c.values = to_vector<float>(values);
    c.rows = to_vector<int64_t>(base + flat.div(per_row, /*rounding_mode=*/"floor"));
    c.tokens = to_vector<int64_t>(row_i.view({A, K * per_row}).gather(1, flat));
    for (auto& tok : c.tokens) tok = output_.to_global(tok);
    if (keep_attention) {
      c.attention = to_vector<float>(attn.to(torch::kFloat));
      c.attention_cols = attn.size(1);
    }
    return c;
  }

  void reorder(const std::vector<int64_t>& rows, const std::vector<int64_t>& kept, int64_t A,
               int64_t K) override {
    state_.index_select(rows);
    if (static_cast<int64_t>(kept.size()) < A) state_.keys = state_.keys.index_select(kept);
  }

 private:
  Seq2SeqImpl& model_;
  torch::Device device_;
  OutputLayer output_;
  DecoderState state_;
};

}  // namespace

std::vector<std::vector<Hypothesis>> beam_search(Seq2SeqImpl& model, const torch::Tensor& src,
                                                 const torch::Tensor& src_lengths, const SearchOptions& opt,
                                                 const std::vector<int64_t>& vocab_subset) {
  torch::NoGradGuard no_grad;
  TorchScorer scorer(model, src, src_lengths, vocab_subset, opt.beam_size);
  return beam_search(scorer, to_vector<int64_t>(src_lengths.to(torch::kInt64)), opt, model.vocabs.bos_id,
                     model.vocabs.eos_id);
}

}  // namespace s2s
