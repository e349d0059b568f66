// Loss tests: padding contributes nothing, the NLL matches a hand computation, label smoothing matches
// its definition, and bf16 autocast stays close to fp32.
#include <gtest/gtest.h>

#include "data/batch.h"
#include "train/loss.h"
#include "util/runtime.h"

namespace {

s2s::Seq2Seq model_for_loss() {
  torch::manual_seed(5);
  s2s::ModelConfig m;
  m.emb_dim = 16, m.enc_hidden = 8, m.dec_hidden = 16, m.enc_layers = 1, m.dec_layers = 1,
  m.tie_output = false;
  m.dropout_emb = m.dropout_hidden = m.dropout_attn = 0;
  return s2s::build_model(m, {20, 20, 0, 2, 3});
}

TEST(Loss, PaddingIsMasked) {
  auto model = model_for_loss();
  auto hidden = torch::randn({2, 3, 16});
  auto gold = torch::tensor({5, 6, 3, 7, 3, 0}, torch::kInt64).view({2, 3});
  auto both = s2s::sequence_loss(*model, hidden, gold, 0.0);
  auto first = s2s::sequence_loss(*model, hidden.narrow(0, 0, 1), gold.narrow(0, 0, 1), 0.0);
  auto second = s2s::sequence_loss(*model, hidden.narrow(0, 1, 1).narrow(1, 0, 2),
                                   gold.narrow(0, 1, 1).narrow(1, 0, 2), 0.0);
  EXPECT_EQ(both.tokens, 5);
  EXPECT_NEAR(both.nll, first.nll + second.nll, 1e-4);
  // Changing the hidden state at a padded position changes nothing.
  auto altered = hidden.clone();
  altered[1][2] = 100.0;
  EXPECT_NEAR(s2s::sequence_loss(*model, altered, gold, 0.1).loss.item<double>(),
              s2s::sequence_loss(*model, hidden, gold, 0.1).loss.item<double>(), 1e-6);
}

TEST(Loss, NllAndLabelSmoothingMatchDefinitions) {
  auto model = model_for_loss();
  auto hidden = torch::randn({1, 2, 16});
  auto gold = torch::tensor({4, 3}, torch::kInt64).view({1, 2});
  auto logp = torch::log_softmax(model->logits(hidden[0]), 1).to(torch::kDouble);  // [2, vocab]
  const double nll = -(logp[0][4] + logp[1][3]).item<double>();
  const double eps = 0.1, vocab = 20;
  const double smooth = (1 - eps) * nll + eps / vocab * (-logp.sum().item<double>());
  auto plain = s2s::sequence_loss(*model, hidden, gold, 0.0);
  auto smoothed = s2s::sequence_loss(*model, hidden, gold, eps);
  EXPECT_NEAR(plain.nll, nll, 1e-4);
  EXPECT_NEAR(plain.loss.item<double>(), nll, 1e-4);
  EXPECT_NEAR(smoothed.loss.item<double>(), smooth, 1e-4);
  EXPECT_NEAR(smoothed.nll, nll, 1e-4);  // perplexity never includes the smoothing
}

TEST(Loss, Bf16AutocastIsCloseToFp32) {
  auto model = model_for_loss();
  torch::NoGradGuard no_grad;
  auto batch = s2s::make_source_batch({{5, 6, 7, 8}, {9, 10}}, {});
  auto tgt_in = torch::tensor({2, 11, 12, 2, 14, 0}, torch::kInt64).view({2, 3});
  auto tgt_out = torch::tensor({11, 12, 3, 14, 3, 0}, torch::kInt64).view({2, 3});
  auto fp32 = s2s::sequence_loss(*model, model->forward(batch.src, batch.src_lengths, tgt_in), tgt_out, 0.0);
  s2s::LossResult bf16;
  {
    s2s::runtime::AutocastGuard autocast(true, torch::kCPU);
    bf16 = s2s::sequence_loss(*model, model->forward(batch.src, batch.src_lengths, tgt_in), tgt_out, 0.0);
  }
  EXPECT_NEAR(bf16.nll / bf16.tokens, fp32.nll / fp32.tokens, 0.05);
  EXPECT_FALSE(at::autocast::is_cpu_enabled());  // the guard restores the previous state
}

}  // namespace
