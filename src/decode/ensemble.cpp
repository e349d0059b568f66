#include "decode/ensemble.h"

#include <numeric>
#include <string>

#include "util/error.h"

namespace s2s {
namespace {

// Combines the members' scorers: log p(j | row) = sum_m w_m * log p_m(j | row).
class EnsembleScorer : public StepScorer {
 public:
  EnsembleScorer(std::vector<std::unique_ptr<StepScorer>> members, const std::vector<double>& weights)
      : members_(std::move(members)), weights_(weights) {}

  StepScores step(const std::vector<int64_t>& tokens, int64_t A, int64_t K, bool keep_attention) override {
    const auto rows = A * K;
    StepScores out;
    for (size_t m = 0; m < members_.size(); ++m) {
      const auto s = members_[m]->step(tokens, A, K, keep_attention);
      const auto w = static_cast<float>(weights_[m]);
      if (m == 0) {
        out = s;
        logits_.assign(static_cast<size_t>(rows * s.vocab), 0.f);  // [rows, vocab]
        lse_.assign(static_cast<size_t>(rows), 0.f);               // log-probabilities: logsumexp 0
        attention_.assign(s.attention ? static_cast<size_t>(rows * s.attention_cols) : 0, 0.f);
      } else if (s.vocab != out.vocab || (s.attention != nullptr) != (out.attention != nullptr) ||
                 s.attention_cols != out.attention_cols) {
        throw Error("ensemble members score different output layers (" + std::to_string(out.vocab) + " vs " +
                    std::to_string(s.vocab) + " columns)");
      }
      for (int64_t r = 0; r < rows; ++r) {
        const float* in = s.logits + r * s.vocab;  // [vocab] of row r
        float* acc = logits_.data() + r * s.vocab;
        for (int64_t j = 0; j < s.vocab; ++j) acc[j] += w * (in[j] - s.logsumexp[r]);
      }
      for (size_t i = 0; i < attention_.size(); ++i) attention_[i] += w * s.attention[i];
    }
    out.logits = logits_.data(), out.logsumexp = lse_.data();
    out.attention = attention_.empty() ? nullptr : attention_.data();
    return out;
  }

  void reorder(const std::vector<int64_t>& rows, const std::vector<int64_t>& kept, int64_t A,
               int64_t K) override {
    for (auto& m : members_) m->reorder(rows, kept, A, K);
  }

 private:
  std::vector<std::unique_ptr<StepScorer>> members_;
  std::vector<double> weights_;
  std::vector<float> logits_, lse_, attention_;  // the combined step, reused
};

}  // namespace

EnsembleEngine::EnsembleEngine(std::vector<std::shared_ptr<Engine>> members, std::vector<double> weights)
    : members_(std::move(members)), weights_(std::move(weights)) {
  if (members_.empty()) throw Error("an ensemble needs at least one model");
  if (weights_.empty()) weights_.assign(members_.size(), 1.0);
  if (weights_.size() != members_.size()) {
    throw Error("--weights has " + std::to_string(weights_.size()) + " values for " +
                std::to_string(members_.size()) + " models");
  }
  for (const auto w : weights_) {
    if (!(w > 0)) throw Error("--weights must be positive numbers, got " + std::to_string(w));
  }
  const double sum = std::accumulate(weights_.begin(), weights_.end(), 0.0);
  for (auto& w : weights_) w /= sum;
  const auto first = members_.front()->ids();
  for (const auto& m : members_) {
    const auto i = m->ids();
    if (i.pad != first.pad || i.bos != first.bos || i.eos != first.eos || i.unk != first.unk)
      throw Error("ensemble members use different special token ids (pad/bos/eos/unk)");
  }
}

std::unique_ptr<StepScorer> EnsembleEngine::start(const std::vector<std::vector<int32_t>>& batch,
                                                  const std::vector<int64_t>& vocab_subset, int64_t K) {
  std::vector<std::unique_ptr<StepScorer>> scorers;
  for (auto& m : members_) scorers.push_back(m->start(batch, vocab_subset, K));
  return std::make_unique<EnsembleScorer>(std::move(scorers), weights_);
}

void EnsembleEngine::set_thread_threads(int threads) {
  for (auto& m : members_) m->set_thread_threads(threads);
}

bool EnsembleEngine::concurrent() const {
  for (const auto& m : members_) {
    if (!m->concurrent()) return false;
  }
  return true;
}

}  // namespace s2s
