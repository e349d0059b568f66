// An ensemble of engines: each step's log-probabilities are the weighted average of the members', inside
// the one shared search (beam search or forced decoding). Members must share the vocabularies (checked by
// the caller, which knows the SentencePiece models) and may run on different engines.
#pragma once

#include <memory>
#include <vector>

#include "decode/engine.h"

namespace s2s {

class EnsembleEngine : public Engine {
 public:
  // `weights`: one per member, positive; normalized to sum to 1 (empty: equal weights).
  EnsembleEngine(std::vector<std::shared_ptr<Engine>> members, std::vector<double> weights);
  std::unique_ptr<StepScorer> start(const std::vector<std::vector<int32_t>>& batch,
                                    const std::vector<int64_t>& vocab_subset, int64_t K) override;
  void set_thread_threads(int threads) override;
  bool concurrent() const override;
  TargetIds ids() const override { return members_.front()->ids(); }
  const std::vector<double>& weights() const { return weights_; }

 private:
  std::vector<std::shared_ptr<Engine>> members_;
  std::vector<double> weights_;
};

}  // namespace s2s
