// Batched beam search (greedy = beam 1) over the decoder's step(). Search only reorders decoder state
// by index; finished hypotheses are kept aside on the host and finished sentences leave the batch.
#pragma once

#include <torch/types.h>

#include <vector>

#include "model/seq2seq.h"

namespace s2s {

struct SearchOptions {
  int beam_size = 5;               // hypotheses kept per sentence (1 = greedy)
  int n_best = 1;                  // hypotheses returned per sentence (<= beam_size)
  double normalize = 0.6;          // rank finished hypotheses by score / length^normalize (0 = raw score)
  double max_length_factor = 2.0;  // at most factor * source length + 5 output tokens
  bool keep_attention = false;     // return attention weights (for --alignment)
  bool early_exit = false;         // a sentence ends once its best candidate is finished (and n_best are);
                                   // false: it searches on until beam_size hypotheses are finished
};

struct Hypothesis {
  std::vector<int32_t> tokens;                // output ids without EOS
  double score = 0;                           // sum of token log-probabilities (EOS included)
  double norm_score = 0;                      // score / length^normalize, used for ranking
  std::vector<std::vector<float>> attention;  // per output token (EOS included): weights over source tokens
};

// Translates one batch: returns, per sentence, up to n_best hypotheses, best first. When `vocab_subset`
// (sorted target ids, EOS included) is given, only those tokens are scored (lexical shortlist).
std::vector<std::vector<Hypothesis>> beam_search(Seq2SeqImpl& model, const torch::Tensor& src,
                                                 const torch::Tensor& src_lengths,
                                                 const SearchOptions& options,
                                                 const std::vector<int64_t>& vocab_subset = {});

}  // namespace s2s
