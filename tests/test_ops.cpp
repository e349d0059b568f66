// Fused inference kernels against the differentiable ATen compositions they replace: LSTM cell (float32
// and bf16), dot-product attention with masks and beam groups, row logsumexp, row selection. Each fused
// path is what runs under NoGradGuard on the CPU; the reference runs with autograd on.
#include <gtest/gtest.h>

#include "model/attention.h"
#include "model/ops.h"

namespace {

TEST(Ops, FusedLstmMatchesComposedFloat32) {
  torch::manual_seed(3);
  auto gates = torch::randn({7, 4 * 24}) * 3;
  auto c = torch::randn({7, 24});
  auto [h_ref, c_ref] = s2s::lstm_update(gates, c);  // autograd on: ATen ops
  torch::NoGradGuard no_grad;
  auto [h, c_new] = s2s::lstm_update(gates, c);
  EXPECT_EQ(h.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::allclose(h, h_ref.detach(), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(c_new, c_ref.detach(), 1e-5, 1e-5));
}

TEST(Ops, FusedLstmTakesBf16GatesAndKeepsAFloatCell) {
  torch::manual_seed(4);
  auto gates = (torch::randn({2, 5, 4 * 16}) * 3).to(torch::kBFloat16);  // encoder layout [dirs, batch, 4H]
  auto c = torch::randn({2, 5, 16});
  auto [h_ref, c_ref] = s2s::lstm_update(gates.to(torch::kFloat), c);
  torch::NoGradGuard no_grad;
  auto [h, c_new] = s2s::lstm_update(gates, c);
  EXPECT_EQ(h.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(c_new.scalar_type(), torch::kFloat);
  EXPECT_EQ(h.sizes(), c.sizes());
  EXPECT_TRUE(torch::allclose(c_new, c_ref.detach(), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(h.to(torch::kFloat), h_ref.detach(), 1e-2, 1e-2));  // bf16 rounding of h
}

class FusedAttention : public ::testing::TestWithParam<std::string> {};

TEST_P(FusedAttention, MatchesBmmPathWithMasksAndGroups) {
  torch::manual_seed(5);
  s2s::Attention attn(s2s::parse_attention(GetParam()), 16, 16);
  auto memory = torch::randn({3, 6, 16});
  auto mask =
      torch::tensor({1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0}, torch::kBool).view({3, 6});
  auto query = torch::randn({3 * 4, 16});  // 4 hypotheses per sentence
  auto keys = attn->precompute(memory, mask);
  auto [ctx_ref, w_ref] = attn(query, keys);  // autograd on: bmm + masked softmax
  torch::NoGradGuard no_grad;
  auto [ctx, w] = attn(query, keys);
  EXPECT_TRUE(torch::allclose(ctx, ctx_ref.detach(), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(w, w_ref.detach(), 1e-5, 1e-6));
  EXPECT_EQ(w.view({3, 4, 6})[1].narrow(1, 2, 4).abs().sum().item<float>(), 0.0f);  // padding: weight 0

  // bf16 keys and memory (a model converted to bf16) stay within bf16 rounding.
  attn->to(torch::kBFloat16);
  auto keys16 = attn->precompute(memory.to(torch::kBFloat16), mask);
  auto [ctx16, w16] = attn(query.to(torch::kBFloat16), keys16);
  EXPECT_EQ(ctx16.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::allclose(w16, w_ref.detach(), 0.05, 0.02));
  EXPECT_TRUE(torch::allclose(ctx16, ctx_ref.detach(), 0.05, 0.05));
}

INSTANTIATE_TEST_SUITE_P(DotTypes, FusedAttention, ::testing::Values("luong-dot", "luong-general"));

TEST(Ops, RowLogsumexpMatchesAten) {
  torch::manual_seed(6);
  auto x = torch::randn({9, 301}) * 20;  // spread large enough that exp() underflows for most entries
  EXPECT_TRUE(torch::allclose(s2s::row_logsumexp(x), x.logsumexp(1), 1e-5, 1e-4));
  auto x16 = x.to(torch::kBFloat16);
  EXPECT_TRUE(torch::allclose(s2s::row_logsumexp(x16), x16.to(torch::kFloat).logsumexp(1), 1e-5, 1e-4));
}

TEST(Ops, SelectRowsEqualsIndexSelect) {
  auto t = torch::arange(24, torch::kFloat).view({4, 3, 2}).to(torch::kBFloat16);
  const std::vector<int64_t> rows = {3, 0, 0, 2};
  EXPECT_TRUE(torch::equal(s2s::select_rows(t, rows), t.index_select(0, torch::tensor(rows))));
  auto mask = torch::tensor({1, 0, 1, 1}, torch::kBool).view({2, 2});
  EXPECT_TRUE(torch::equal(s2s::select_rows(mask, {1, 1}), mask.index_select(0, torch::tensor({1, 1}))));
  EXPECT_EQ(s2s::select_rows(t, {}).size(0), 0);
  EXPECT_THROW(s2s::select_rows(t, {4}), c10::Error);
}

}  // namespace
