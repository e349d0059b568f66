// What the Translator needs from a model: translate one batch of source token ids. Implemented by the
// LibTorch model (CPU or CUDA; libtorch/decode/torch_engine.h) and by the native CPU engine
// (infer/rnn/native_model.h).
#pragma once

#include <cstdint>
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
  // N-best hypotheses per sentence of one batch (token ids, similar lengths), on the calling thread.
  // `vocab_subset` (sorted target ids, EOS included; empty = all) restricts the output layer.
  virtual std::vector<std::vector<Hypothesis>> translate_batch(const std::vector<std::vector<int32_t>>& batch,
                                                               const std::vector<int64_t>& vocab_subset,
                                                               const SearchOptions& options) = 0;
  // Intra-op threads of the calling thread (a translation worker); called once per worker thread.
  virtual void set_thread_threads(int threads) = 0;
  // Whether batches may run concurrently on several CPU threads.
  virtual bool concurrent() const = 0;
  virtual TargetIds ids() const = 0;
};

}  // namespace s2s
