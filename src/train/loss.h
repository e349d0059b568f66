// Masked, label-smoothed cross-entropy over the whole target sequence at once. Padded positions are
// dropped before the output layer, so no logits are computed for padding.
#pragma once

#include <torch/types.h>

#include "model/seq2seq.h"

namespace s2s {

struct LossResult {
  torch::Tensor loss;  // scalar: label-smoothed loss summed over target tokens (backprop this / tokens)
  double nll = 0;      // summed negative log-likelihood (no smoothing), for perplexity
  int64_t tokens = 0;  // target tokens counted (including EOS)
};

// hidden: [batch, tgt_len, out_dim] decoder outputs; tgt_out: [batch, tgt_len] gold ids (pad where padded).
LossResult sequence_loss(Seq2SeqImpl& model, const torch::Tensor& hidden, const torch::Tensor& tgt_out,
                         double label_smoothing);

}  // namespace s2s
