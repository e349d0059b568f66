// Fused kernels against the differentiable ATen compositions they replace: the LSTM cell for inference
// (float32 and bf16) and for training (forward, and its backward against autograd in double precision),
// dot-product attention with masks and beam groups, row logsumexp, row selection; the native Transformer's
// multi-head attention and LayerNorm kernels against torch.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "kernels/kernels.h"
#include "libtorch/model/ops.h"
#include "libtorch/model/rnn/attention.h"
#include "reference_ops.h"

namespace {

TEST(Ops, FusedLstmMatchesComposedFloat32) {
  torch::manual_seed(3);
  auto gates = torch::randn({7, 4 * 24}) * 3;
  auto c = torch::randn({7, 24});
  auto [h_ref, c_ref] = s2s_test::reference_lstm(gates, c);
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
  auto [h_ref, c_ref] = s2s_test::reference_lstm(gates.to(torch::kFloat), c);
  torch::NoGradGuard no_grad;
  auto [h, c_new] = s2s::lstm_update(gates, c);
  EXPECT_EQ(h.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(c_new.scalar_type(), torch::kFloat);
  EXPECT_EQ(h.sizes(), c.sizes());
  EXPECT_TRUE(torch::allclose(c_new, c_ref.detach(), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(h.to(torch::kFloat), h_ref.detach(), 1e-2, 1e-2));  // bf16 rounding of h
}

// Two chained training cells (the second one's gates depend on the first h through W), so that the
// backward sees gradients through h and c, and a final c without gradient.
struct CellChain {
  torch::Tensor g1, g2, c0, w;  // leaves
  torch::Tensor loss(bool fused, bool use_final_c) const {
    auto cell = [&](const torch::Tensor& g, const torch::Tensor& c) {
      return fused ? s2s::lstm_update(g, c) : s2s_test::reference_lstm(g, c);
    };
    auto [h1, c1] = cell(g1, c0);
    auto [h2, c2] = cell(g2 + torch::mm(h1, w), c1);
    auto loss = (h2 * torch::linspace(-1, 2, h2.size(1), h2.options())).sum() + h1.pow(2).sum() * 0.3;
    return use_final_c ? loss + (c2 * c2).sum() * 0.5 : loss;
  }
};

CellChain cell_chain(torch::ScalarType dtype) {
  torch::manual_seed(21);
  auto leaf = [dtype](const torch::Tensor& t) { return t.to(dtype).requires_grad_(); };
  const int64_t rows = 5, H = 7;
  return {leaf(torch::randn({rows, 4 * H}) * 2), leaf(torch::randn({rows, 4 * H}) * 2),
          leaf(torch::randn({rows, H})), leaf(torch::randn({H, 4 * H}) * 0.5)};
}

TEST(Ops, TrainingLstmCellGradientsMatchAutogradInDouble) {
  for (bool use_final_c : {true, false}) {
    auto a = cell_chain(torch::kDouble), b = cell_chain(torch::kDouble);
    a.loss(/*fused=*/true, use_final_c).backward();
    b.loss(/*fused=*/false, use_final_c).backward();
    EXPECT_TRUE(torch::allclose(a.g1.grad(), b.g1.grad(), 1e-10, 1e-12)) << "d gates (first cell)";
    EXPECT_TRUE(torch::allclose(a.g2.grad(), b.g2.grad(), 1e-10, 1e-12)) << "d gates (second cell)";
    EXPECT_TRUE(torch::allclose(a.c0.grad(), b.c0.grad(), 1e-10, 1e-12)) << "d c_prev";
    EXPECT_TRUE(torch::allclose(a.w.grad(), b.w.grad(), 1e-10, 1e-12)) << "d W through h";
  }
}

TEST(Ops, TrainingLstmCellBf16StaysCloseAndKeepsAFloatCell) {
  auto chain = cell_chain(torch::kFloat);
  auto [h, c] = s2s::lstm_update(chain.g1.to(torch::kBFloat16), chain.c0);
  auto [h_ref, c_ref] = s2s_test::reference_lstm(chain.g1, chain.c0);
  EXPECT_EQ(h.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(c.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::allclose(c, c_ref, 2e-2, 2e-2));
  (h.to(torch::kFloat).sum() + c.sum()).backward();
  auto g_fused = chain.g1.grad().clone();
  chain.g1.mutable_grad().zero_();
  (h_ref.sum() + c_ref.sum()).backward();
  EXPECT_TRUE(torch::allclose(g_fused, chain.g1.grad(), 5e-2, 5e-2));
}

class FusedAttention : public ::testing::TestWithParam<std::string> {};

TEST_P(FusedAttention, MatchesBmmPathWithMasksAndGroups) {
  torch::manual_seed(5);
  s2s::Attention attn(s2s::parse_enum<s2s::AttentionType>(GetParam(), "attention"), 16, 16);
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

// The counter-based dropout: inverted scaling, the keep rate, repeatable under a seed, and the same mask
// whatever the thread count.
TEST(Ops, DropoutKeepsOneMinusPScaledAndRepeatsUnderASeed) {
  auto x = torch::ones({1000, 1000});
  EXPECT_TRUE(s2s::dropout(x, 0.3, /*training=*/false).is_same(x));
  torch::manual_seed(5);
  auto a = s2s::dropout(x, 0.3, true);
  const double kept = (a > 0).to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(kept, 0.7, 0.002);
  EXPECT_NEAR(a.max().item<double>(), 1 / 0.7, 1e-6);
  EXPECT_NEAR(a.mean().item<double>(), 1.0, 0.003);  // inverted dropout keeps the expectation
  torch::manual_seed(5);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  auto b = s2s::dropout(x, 0.3, true);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, s2s::dropout(x, 0.3, true)));  // the next draw differs
  auto h = torch::ones({64, 64}, torch::kBFloat16);           // keeps the input's dtype
  EXPECT_EQ(s2s::dropout(h, 0.1, true).scalar_type(), torch::kBFloat16);
}

TEST(Ops, MultiHeadAttentionKernelMatchesTorch) {
  torch::manual_seed(11);
  for (const auto& [dh, n] :
       std::vector<std::pair<int64_t, int64_t>>{{64, 9}, {64, 37}, {32, 16}, {12, 21}}) {
    // the unrolled head widths and the general loop; keys within one, exactly one and several 16-wide exp
    // blocks
    SCOPED_TRACE("dh = " + std::to_string(dh) + ", n = " + std::to_string(n));
    const int64_t heads = 3, D = heads * dh;
    auto q = torch::randn({D}), keys = torch::randn({n, D}), values = torch::randn({n, D});
    std::vector<const float*> k_rows, v_rows;  // [n] row pointers, as the decoder passes its cached steps
    for (int64_t j = 0; j < n; ++j) {
      k_rows.push_back(keys.data_ptr<float>() + j * D), v_rows.push_back(values.data_ptr<float>() + j * D);
    }
    std::vector<float> p((n + 15) / 16 * 16), out(D), weights(n, 1.f);
    const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
    s2s::kernels::multi_head_attention(q.data_ptr<float>(), k_rows.data(), v_rows.data(), n, heads, dh, scale,
                                       p.data(), out.data(), weights.data());
    auto qh = q.view({heads, 1, dh}), kh = keys.view({n, heads, dh}).transpose(0, 1);  // [heads, n, dh]
    auto w = torch::softmax(torch::matmul(qh, kh.transpose(1, 2)) * scale, -1);        // [heads, 1, n]
    auto expected = torch::matmul(w, values.view({n, heads, dh}).transpose(0, 1)).reshape({D});
    EXPECT_TRUE(torch::allclose(torch::from_blob(out.data(), {D}), expected, 1e-5, 1e-5));
    auto expected_w = 1 + w.mean(0).reshape({n});  // accumulated onto the 1s already there
    EXPECT_TRUE(torch::allclose(torch::from_blob(weights.data(), {n}), expected_w, 1e-5, 1e-5));

    // bfloat16 keys and values (a bf16 decoder cache): the float32 result of the rounded inputs
    auto keys16 = keys.to(torch::kBFloat16), values16 = values.to(torch::kBFloat16);
    std::vector<const uint16_t*> k16, v16;
    for (int64_t j = 0; j < n; ++j) {
      k16.push_back(reinterpret_cast<const uint16_t*>(keys16.data_ptr<at::BFloat16>()) + j * D);
      v16.push_back(reinterpret_cast<const uint16_t*>(values16.data_ptr<at::BFloat16>()) + j * D);
    }
    s2s::kernels::multi_head_attention(q.data_ptr<float>(), k16.data(), v16.data(), n, heads, dh, scale,
                                       p.data(), out.data(), nullptr);
    auto kr = keys16.to(torch::kFloat).view({n, heads, dh}).transpose(0, 1);
    auto wr = torch::softmax(torch::matmul(qh, kr.transpose(1, 2)) * scale, -1);
    auto expected16 = torch::matmul(wr, values16.to(torch::kFloat).view({n, heads, dh}).transpose(0, 1));
    EXPECT_TRUE(torch::allclose(torch::from_blob(out.data(), {D}), expected16.reshape({D}), 1e-5, 1e-5));
    EXPECT_FALSE(torch::allclose(torch::from_blob(out.data(), {D}), expected, 1e-5, 1e-5));  // rounded
  }
}

TEST(Ops, LayerNormKernelMatchesTorch) {
  torch::manual_seed(12);
  const int64_t rows = 5, D = 40;
  auto x = torch::randn({rows, D}) * 3 + 1, gain = torch::randn({D}), bias = torch::randn({D});
  std::vector<float> y(rows * D);
  s2s::kernels::layer_norm(x.data_ptr<float>(), rows, D, gain.data_ptr<float>(), bias.data_ptr<float>(),
                           1e-5f, y.data());
  auto expected = torch::layer_norm(x, {D}, gain, bias, 1e-5);
  EXPECT_TRUE(torch::allclose(torch::from_blob(y.data(), {rows, D}), expected, 1e-4, 1e-5));
}
