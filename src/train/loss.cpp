#include "train/loss.h"

namespace s2s {

LossResult sequence_loss(Seq2SeqImpl& model, const torch::Tensor& hidden, const torch::Tensor& tgt_out,
                         double label_smoothing) {
  auto gold = tgt_out.reshape({-1});                                                // [batch * tgt_len]
  auto keep = gold.ne(model.vocabs.pad_id).nonzero().squeeze(1);                    // [tokens]
  auto rows = hidden.reshape({-1, hidden.size(2)}).index_select(0, keep);           // [tokens, out_dim]
  auto y = gold.index_select(0, keep);                                              // [tokens]
  auto logp = torch::log_softmax(model.logits(rows).to(torch::kFloat), /*dim=*/1);  // [tokens, vocab]
  auto nll = -logp.gather(1, y.unsqueeze(1)).squeeze(1);                            // [tokens]
  LossResult result;
  result.tokens = y.size(0);
  auto nll_sum = nll.sum();
  if (label_smoothing > 0) {
    const auto vocab = static_cast<double>(logp.size(1));
    auto smooth = -logp.sum(1);  // [tokens]
    result.loss = (1 - label_smoothing) * nll_sum + (label_smoothing / vocab) * smooth.sum();
  } else {
    result.loss = nll_sum;
  }
  result.nll = nll_sum.item<double>();
  return result;
}

}  // namespace s2s
