// What the Translator needs from a model: a StepScorer over one batch of source token ids. Implemented by
// the LibTorch model (CPU or CUDA; libtorch/decode/torch_engine.h), the native CPU engine
// (infer/native_engine.h) and an ensemble of either (decode/ensemble.h). The search (beam search, forced
// decoding) is written once, here, over that contract.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "decode/beam.h"

namespace s2s {

struct TargetIds {
  int64_t pad = 0;  // padding
  int64_t bos = 2;  // begin of sentence
  int64_t eos = 3;  // end of sentence
  int64_t unk = 1;  // unknown token
};

class Engine {
 public:
  virtual ~Engine() = default;
  // Encodes one batch (token ids, non-empty sentences) and returns its decoder: K rows per sentence, all
  // at their initial state. `vocab_subset` (sorted target ids, EOS included; empty = all) restricts the
  // output layer. Runs on the calling thread; the scorer is used and destroyed there.
  virtual std::unique_ptr<StepScorer> start(const std::vector<std::vector<int32_t>>& batch,
                                            const std::vector<int64_t>& vocab_subset, int64_t K) = 0;
  // Intra-op threads of the calling thread (a translation worker); called once per worker thread.
  virtual void set_thread_threads(int threads) = 0;
  // Whether batches may run concurrently on several CPU threads.
  virtual bool concurrent() const = 0;
  virtual TargetIds ids() const = 0;

  // N-best hypotheses per sentence of one batch (beam search over start()).
  std::vector<std::vector<Hypothesis>> translate_batch(const std::vector<std::vector<int32_t>>& batch,
                                                       const std::vector<int64_t>& vocab_subset,
                                                       const SearchOptions& options);
  // Forced decoding: log p(token) of every target token, EOS last, per sentence of one batch
  // (`targets` without BOS/EOS; the full output vocabulary).
  std::vector<std::vector<float>> score_batch(const std::vector<std::vector<int32_t>>& sources,
                                              const std::vector<std::vector<int32_t>>& targets);
};

// Forced decoding over a scorer that holds one row per sentence: feeds BOS and each target token, and
// returns log p(next target token) per step, EOS included. Rows drop out of the batch as they finish.
std::vector<std::vector<float>> force_decode(StepScorer& scorer,
                                             const std::vector<std::vector<int32_t>>& targets, int64_t bos,
                                             int64_t eos);

}  // namespace s2s
