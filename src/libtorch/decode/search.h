// Beam search (decode/beam.h) over the LibTorch model's decoder step(), on CPU or CUDA.
#pragma once

#include <torch/types.h>

#include <memory>
#include <vector>

#include "decode/beam.h"
#include "libtorch/model/nmt_model.h"

namespace s2s {

// The LibTorch model as a StepScorer over one batch: decoder state on the model's device, K rows per
// sentence, scores copied to the host. Grad mode and autocast are the caller's (per thread).
std::unique_ptr<StepScorer> make_torch_scorer(NmtModelImpl& model, const torch::Tensor& src,
                                              const torch::Tensor& src_lengths,
                                              const std::vector<int64_t>& vocab_subset, int64_t K);

// Translates one batch: returns, per sentence, up to n_best hypotheses, best first. When `vocab_subset`
// (sorted target ids, EOS included) is given, only those tokens are scored (lexical shortlist).
std::vector<std::vector<Hypothesis>> beam_search(NmtModelImpl& model, const torch::Tensor& src,
                                                 const torch::Tensor& src_lengths,
                                                 const SearchOptions& options,
                                                 const std::vector<int64_t>& vocab_subset = {});

}  // namespace s2s
