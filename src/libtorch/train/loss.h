// Masked, label-smoothed cross-entropy over the whole target sequence at once. Padded positions are
// dropped before the output layer, so no logits are computed for padding. The output projection,
// log-softmax, loss and their gradients run in row chunks inside one autograd function
// (chunked_output_loss), so the [tokens, vocab] logits never exist whole: when gradients are wanted, the
// forward pass turns each chunk's logits into their gradient and runs its two gradient products at once,
// and the backward pass only scales the sums (the loss is linear in its incoming gradient).
#pragma once

#include <torch/types.h>

#include "libtorch/model/nmt_model.h"

namespace s2s {

struct LossResult {
  torch::Tensor loss;  // scalar: label-smoothed loss summed over target tokens (backprop this / tokens)
  double nll = 0;      // summed negative log-likelihood (no smoothing), for perplexity
  int64_t tokens = 0;  // target tokens counted (including EOS)
};

// hidden: [batch, tgt_len, out_dim] decoder outputs; tgt_out: [batch, tgt_len] gold ids (pad where padded).
LossResult sequence_loss(NmtModelImpl& model, const torch::Tensor& hidden, const torch::Tensor& tgt_out,
                         double label_smoothing);

// The summed label-smoothed loss of logits = rows W^T + b against gold, computed `chunk_rows` rows at a
// time. rows: [tokens, dim]; weight: [vocab, dim]; bias: [vocab]; gold: [tokens] int64.
// The products run in `compute` precision (bf16 under autocast, else the weight's dtype), the softmax in
// float32 (or double). Returns {loss, nll}: both summed over tokens; nll has no gradient.
std::pair<torch::Tensor, torch::Tensor> chunked_output_loss(const torch::Tensor& rows,
                                                            const torch::Tensor& weight,
                                                            const torch::Tensor& bias,
                                                            const torch::Tensor& gold, double label_smoothing,
                                                            at::ScalarType compute, int64_t chunk_rows);

// Rows per chunk for a vocabulary: about 4 M logits (16 MB in float32) per chunk.
int64_t loss_chunk_rows(int64_t vocab);

}  // namespace s2s
