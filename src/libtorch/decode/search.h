// Beam search (decode/beam.h) over the LibTorch model's decoder step(), on CPU or CUDA.
#pragma once

#include <torch/types.h>

#include <vector>

#include "decode/beam.h"
#include "libtorch/model/rnn/seq2seq.h"

namespace s2s {

// Translates one batch: returns, per sentence, up to n_best hypotheses, best first. When `vocab_subset`
// (sorted target ids, EOS included) is given, only those tokens are scored (lexical shortlist).
std::vector<std::vector<Hypothesis>> beam_search(Seq2SeqImpl& model, const torch::Tensor& src,
                                                 const torch::Tensor& src_lengths,
                                                 const SearchOptions& options,
                                                 const std::vector<int64_t>& vocab_subset = {});

}  // namespace s2s
