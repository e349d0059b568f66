// The native CPU engine: beam-search scorers over any NativeNetwork (the output layer, optionally restricted
// to a shortlist, with the logits' log-normalizers), and the Engine that makes one per batch.
#pragma once

#include <memory>
#include <vector>

#include "decode/beam.h"
#include "decode/engine.h"
#include "infer/native_network.h"

namespace s2s::infer {

// A beam-search scorer over a NativeNetwork for one batch.
class NativeScorer : public StepScorer {
 public:
  NativeScorer(const NativeNetwork& model, const std::vector<std::vector<int32_t>>& batch, int64_t pad,
               const std::vector<int64_t>& vocab_subset, int64_t K);
  NativeScorer(const NativeScorer&) = delete;  // out_w_ may point into this object
  NativeScorer& operator=(const NativeScorer&) = delete;
  StepScores step(const std::vector<int64_t>& tokens, int64_t A, int64_t K, bool keep_attention) override;
  void reorder(const std::vector<int64_t>& rows, const std::vector<int64_t>& kept, int64_t A,
               int64_t K) override;

 private:
  const NativeNetwork& model_;
  std::unique_ptr<NativeState> state_;
  std::vector<int64_t> ids_;                      // local -> target id (empty: identity)
  Matrix subset_w_;                               // output layer rows of the subset (empty: all)
  std::vector<float> subset_b_;                   // [V'] their biases
  const Matrix* out_w_;                           // subset_w_ or the model's whole output layer
  const std::vector<float>* out_b_;               // [V']
  std::vector<float> out_, logits_, lse_, attn_;  // per-step buffers, reused
  bool spread_;  // the state holds K rows per sentence (false until the first step, when K > 1)

  // The first step with K > 1: the network decodes one row per sentence, then its state and outputs are
  // spread to all K rows (a sentence's K rows start alike).
  void spread_first_step(const std::vector<int64_t>& tokens, int64_t A, int64_t K, std::vector<float>* attn);
};

// Engine over a NativeNetwork: batches may run concurrently (the model is read-only).
class NativeEngine : public Engine {
 public:
  NativeEngine(std::shared_ptr<const NativeNetwork> model, TargetIds ids)
      : model_(std::move(model)), ids_(ids) {}
  std::unique_ptr<StepScorer> start(const std::vector<std::vector<int32_t>>& batch,
                                    const std::vector<int64_t>& vocab_subset, int64_t K) override;
  // OpenMP team size of the calling thread (oneDNN's GEMMs), and denormals flushed to zero.
  void set_thread_threads(int threads) override;
  bool concurrent() const override { return true; }
  TargetIds ids() const override { return ids_; }

 private:
  std::shared_ptr<const NativeNetwork> model_;
  TargetIds ids_;
};

}  // namespace s2s::infer
