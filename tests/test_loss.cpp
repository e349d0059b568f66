// Loss tests: padding contributes nothing, the NLL matches a hand computation, label smoothing matches
// its definition, bf16 autocast stays close to fp32, and the chunked output-layer loss equals the unchunked
// composition of LibTorch ops in value (fp32) and gradient (double; float32 through the fused kernels).
#include <gtest/gtest.h>

#include "libtorch/data/batch.h"
#include "libtorch/model/rnn/seq2seq.h"
#include "libtorch/train/loss.h"
#include "libtorch/util/runtime.h"

namespace {

s2s::Seq2Seq model_for_loss() {
  torch::manual_seed(5);
  s2s::ModelConfig m;
  m.emb_dim = 16, m.enc_hidden = 8, m.dec_hidden = 16, m.enc_layers = 1, m.dec_layers = 1,
  m.tie_output = false;
  m.dropout_emb = m.dropout_hidden = m.dropout_attn = 0;
  return s2s::build_rnn_model(m, {20, 20, 0, 2, 3});
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
  EXPECT_FALSE(s2s::runtime::autocast_enabled(torch::kCPU));  // the guard restores the previous state
}

// The loss as plain differentiable LibTorch ops over the whole [tokens, vocab] logits.
torch::Tensor composed_loss(const torch::Tensor& rows, const torch::Tensor& w, const torch::Tensor& b,
                            const torch::Tensor& gold, double smoothing) {
  auto logp = torch::log_softmax(torch::addmm(b, rows, w.t()), 1);  // [tokens, vocab]
  auto nll = -logp.gather(1, gold.unsqueeze(1)).sum();
  return nll * (1 - smoothing) - logp.sum() * (smoothing / static_cast<double>(w.size(0)));
}

struct LossInputs {
  torch::Tensor rows, w, b, gold;
};
LossInputs loss_inputs(torch::ScalarType dtype) {
  torch::manual_seed(11);
  auto opt = torch::TensorOptions().dtype(dtype).requires_grad(true);
  return {torch::randn({37, 6}, opt), torch::randn({23, 6}, opt), torch::randn({23}, opt),
          torch::randint(0, 23, {37}, torch::kInt64)};
}

// The gradients of `in` are those given, to rtol / atol.
void expect_gradients(const LossInputs& in, const torch::Tensor& rows, const torch::Tensor& w,
                      const torch::Tensor& b, double rtol, double atol, const std::string& what) {
  EXPECT_TRUE(torch::allclose(in.rows.grad(), rows, rtol, atol)) << "d rows," << what;
  EXPECT_TRUE(torch::allclose(in.w.grad(), w, rtol, atol)) << "d weight," << what;
  EXPECT_TRUE(torch::allclose(in.b.grad(), b, rtol, atol)) << "d bias," << what;
}

TEST(Loss, ChunkedEqualsUnchunkedInFp32) {
  auto in = loss_inputs(torch::kFloat);
  const double expected = composed_loss(in.rows, in.w, in.b, in.gold, 0.1).item<double>();
  for (int64_t chunk : {1, 5, 37, 1000}) {
    auto [loss, nll] = s2s::chunked_output_loss(in.rows, in.w, in.b, in.gold, 0.1, torch::kFloat, chunk);
    EXPECT_NEAR(loss.item<double>() / 37, expected / 37, 1e-6) << "chunk " << chunk;
    EXPECT_NEAR(nll.item<double>(), composed_loss(in.rows, in.w, in.b, in.gold, 0).item<double>(), 1e-4);
    torch::NoGradGuard no_grad;  // validation: the same loss, without the gradients' products
    auto [plain, plain_nll] =
        s2s::chunked_output_loss(in.rows, in.w, in.b, in.gold, 0.1, torch::kFloat, chunk);
    EXPECT_EQ(plain.item<double>(), loss.item<double>()) << "chunk " << chunk;
    EXPECT_EQ(plain_nll.item<double>(), nll.item<double>()) << "chunk " << chunk;
  }
}

// ~4M logits a chunk, in rows that are a multiple of 64 (oneDNN's AMX GEMMs: 512 rows, not 524).
TEST(Loss, ChunkRowsAreAMultipleOf64) {
  EXPECT_EQ(s2s::loss_chunk_rows(8000), 512);
  EXPECT_EQ(s2s::loss_chunk_rows(32000), 128);
  EXPECT_EQ(s2s::loss_chunk_rows(1000000), 64);
  EXPECT_EQ(s2s::loss_chunk_rows(100), 41920);
}

// Chunks of 4 rows leave 1 of the 37 (padded to 4 zero rows), chunks of 100 pad all 37 to 64: the padding
// rows must add nothing to the gradients.
TEST(Loss, ChunkedGradientsMatchAutogradInDouble) {
  for (double smoothing : {0.0, 0.1}) {
    for (int64_t chunk : {4, 100}) {
      auto in = loss_inputs(torch::kDouble);
      composed_loss(in.rows, in.w, in.b, in.gold, smoothing).mul(0.7).backward();
      const auto g_rows = in.rows.grad().clone(), g_w = in.w.grad().clone(), g_b = in.b.grad().clone();
      for (auto* t : {&in.rows, &in.w, &in.b}) t->mutable_grad().zero_();
      auto [loss, nll] =
          s2s::chunked_output_loss(in.rows, in.w, in.b, in.gold, smoothing, torch::kDouble, chunk);
      loss.mul(0.7).backward();  // a non-unit upstream gradient
      expect_gradients(in, g_rows, g_w, g_b, 1e-9, 1e-12,
                       " smoothing " + std::to_string(smoothing) + " chunk " + std::to_string(chunk));
    }
  }
}

// Float32 and bf16 chunks run the fused CPU kernels (the row sums with the log-normalizers; the softmax,
// smoothing and gold terms and the bias gradient in one pass over the logits): float32 gives autograd's
// gradients to float32 rounding, also with padding rows and a non-unit upstream gradient.
TEST(Loss, FusedFp32GradientsMatchAutograd) {
  for (double smoothing : {0.0, 0.1}) {
    for (int64_t chunk : {4, 100}) {
      auto in = loss_inputs(torch::kFloat);
      composed_loss(in.rows, in.w, in.b, in.gold, smoothing).mul(0.7).backward();
      const auto g_rows = in.rows.grad().clone(), g_w = in.w.grad().clone(), g_b = in.b.grad().clone();
      for (auto* t : {&in.rows, &in.w, &in.b}) t->mutable_grad().zero_();
      auto [loss, nll] =
          s2s::chunked_output_loss(in.rows, in.w, in.b, in.gold, smoothing, torch::kFloat, chunk);
      loss.mul(0.7).backward();
      expect_gradients(in, g_rows, g_w, g_b, 1e-4, 1e-6,
                       " smoothing " + std::to_string(smoothing) + " chunk " + std::to_string(chunk));
    }
  }
}

TEST(Loss, ChunkedBf16ComputeIsCloseToFp32) {
  auto in = loss_inputs(torch::kFloat);
  auto [exact, n1] = s2s::chunked_output_loss(in.rows, in.w, in.b, in.gold, 0.1, torch::kFloat, 8);
  exact.backward();
  const auto g_rows = in.rows.grad().clone(), g_w = in.w.grad().clone(), g_b = in.b.grad().clone();
  for (auto* t : {&in.rows, &in.w, &in.b}) t->mutable_grad().zero_();
  auto [bf16, n2] = s2s::chunked_output_loss(in.rows, in.w, in.b, in.gold, 0.1, torch::kBFloat16, 8);
  EXPECT_NEAR(bf16.item<double>() / 37, exact.item<double>() / 37, 0.05);
  bf16.backward();
  EXPECT_EQ(in.w.grad().scalar_type(), torch::kFloat);  // gradients come back in the parameters' dtype
  auto relative = [](const torch::Tensor& a, const torch::Tensor& b) {
    return ((a - b).norm() / b.norm()).item<double>();
  };
  EXPECT_LT(relative(in.rows.grad(), g_rows), 0.03);
  EXPECT_LT(relative(in.w.grad(), g_w), 0.03);
  EXPECT_LT(relative(in.b.grad(), g_b), 0.03);
}

}  // namespace
