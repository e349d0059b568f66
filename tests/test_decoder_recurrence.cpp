// The fused decoder recurrence (one autograd function for the whole teacher-forced LSTM stack, attention,
// combine layer and input feeding) against the same recurrence composed of autograd ops: outputs and every
// input's gradient in double precision, with dropout masks, padding, one and several layers, luong-general
// keys and luong-dot (keys are the memory); then the decoder module with and without it, and bf16.
#include <gtest/gtest.h>

#include <limits>

#include "libtorch/model/rnn/decoder.h"
#include "libtorch/model/rnn/decoder_recurrence.h"
#include "libtorch/model/rnn/lstm_recurrence.h"
#include "reference_ops.h"

namespace {

using s2s::DecoderRecurrenceInputs;

// The recurrence as differentiable ATen ops, step by step: [len, batch, out_dim].
torch::Tensor reference_recurrence(const DecoderRecurrenceInputs& in) {
  const auto L = static_cast<int64_t>(in.h.size()), len = in.x_gates.size(0);
  auto h = in.h, c = in.c;
  auto feed = torch::zeros({in.x_gates.size(1), in.w_combine.size(0)}, in.x_gates.options());
  std::vector<torch::Tensor> outs;
  for (int64_t t = 0; t < len; ++t) {
    for (int64_t l = 0; l < L; ++l) {
      const auto i = static_cast<size_t>(l);
      torch::Tensor rec;
      if (l == 0) {
        rec = in.input_feeding ? torch::cat({feed, h[0]}, 1) : h[0];
      } else {
        auto below = in.drop_hidden.defined() ? h[i - 1] * in.drop_hidden[t][l - 1] : h[i - 1];
        rec = torch::cat({below, h[i]}, 1);
      }
      auto gates = (l == 0 ? in.x_gates[t] : in.bias[i - 1]) + torch::mm(rec, in.w_rec[i]);
      std::tie(h[i], c[i]) = s2s_test::reference_lstm(gates, c[i]);
    }
    const auto& top = h.back();
    auto scores = torch::bmm(in.keys, top.unsqueeze(2)).squeeze(2);  // [batch, S]
    scores = scores.masked_fill(~in.mask, -std::numeric_limits<double>::infinity());
    auto weights = torch::softmax(scores, 1);
    auto context = torch::bmm(weights.unsqueeze(1), in.memory).squeeze(1);  // [batch, M]
    auto raw = torch::tanh(torch::mm(torch::cat({context, top}, 1), in.w_combine.t()));
    feed = in.drop_out.defined() ? raw * in.drop_out[t] : raw;
    outs.push_back(feed);
  }
  return torch::stack(outs);
}

struct Case {
  int64_t layers, hidden, mem_dim, out_dim;
  bool input_feeding, dropout, dot;  // dot: keys are the memory (mem_dim == hidden)
};

// Leaves of one random problem (double), with padding in the second and third sentences.
DecoderRecurrenceInputs make_inputs(const Case& k) {
  torch::manual_seed(7);
  const int64_t len = 4, B = 3, S = 5, H = k.hidden, M = k.mem_dim, O = k.out_dim, L = k.layers;
  auto leaf = [](const torch::Tensor& t) { return t.to(torch::kDouble).requires_grad_(); };
  DecoderRecurrenceInputs in;
  in.x_gates = leaf(torch::randn({len, B, 4 * H}));
  for (int64_t l = 0; l < L; ++l) {
    in.h.push_back(leaf(torch::randn({B, H}) * 0.5));
    in.c.push_back(leaf(torch::randn({B, H}) * 0.5));
    const auto in_dim = l == 0 ? (k.input_feeding ? O : 0) + H : 2 * H;
    in.w_rec.push_back(leaf(torch::randn({in_dim, 4 * H}) * 0.4));
    if (l > 0) in.bias.push_back(leaf(torch::randn({4 * H}) * 0.3));
  }
  in.memory = leaf(torch::randn({B, S, M}));
  in.keys = k.dot ? in.memory : leaf(torch::randn({B, S, H}));
  in.mask = torch::tensor({1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0}, torch::kBool).view({B, S});
  in.w_combine = leaf(torch::randn({O, M + H}) * 0.3);
  in.input_feeding = k.input_feeding;
  if (k.dropout) {  // masks of 0 and 1 / (1 - p), as the decoder draws them
    if (L > 1) in.drop_hidden = (torch::rand({len, L - 1, B, H}) > 0.3).to(torch::kFloat) / 0.7;
    in.drop_out = (torch::rand({len, B, O}) > 0.3).to(torch::kFloat) / 0.7;
  }
  return in;
}

std::vector<torch::Tensor> leaves(const DecoderRecurrenceInputs& in, bool dot) {
  std::vector<torch::Tensor> all{in.x_gates, in.memory, in.w_combine};
  if (!dot) all.push_back(in.keys);
  for (const auto* list : {&in.h, &in.c, &in.w_rec, &in.bias})
    all.insert(all.end(), list->begin(), list->end());
  return all;
}

class DecoderRecurrenceGrad : public ::testing::TestWithParam<Case> {};

TEST_P(DecoderRecurrenceGrad, OutputAndEveryGradientMatchAutogradInDouble) {
  const auto k = GetParam();
  auto a = make_inputs(k), b = make_inputs(k);
  auto out = s2s::decoder_recurrence(a);
  auto ref = reference_recurrence(b);
  ASSERT_EQ(out.sizes(), ref.sizes());
  EXPECT_TRUE(torch::allclose(out, ref, 1e-10, 1e-12)) << (out - ref).abs().max();
  const auto probe = torch::randn(out.sizes(), out.options());  // a loss that weighs every output
  (out * probe).sum().backward();
  (ref * probe).sum().backward();
  const auto ga = leaves(a, k.dot), gb = leaves(b, k.dot);
  for (size_t i = 0; i < ga.size(); ++i) {
    ASSERT_TRUE(ga[i].grad().defined()) << "input " << i;
    EXPECT_TRUE(torch::allclose(ga[i].grad(), gb[i].grad(), 1e-9, 1e-11))
        << "input " << i << " " << ga[i].sizes() << ": max diff "
        << (ga[i].grad() - gb[i].grad()).abs().max();
  }
}

// Target lengths of make_inputs' three sentences as tgt_in rows (1 = a token, 0 = padding): [batch, len].
torch::Tensor tokens_of_lengths(const std::vector<int64_t>& lengths, int64_t len) {
  auto tokens = torch::ones({static_cast<int64_t>(lengths.size()), len}, torch::kInt64);
  for (size_t b = 0; b < lengths.size(); ++b)
    tokens[static_cast<int64_t>(b)].narrow(0, lengths[b], len - lengths[b]).zero_();
  return tokens;
}

// Padding rows left out (DecoderRecurrenceInputs::active): under a loss that ignores the padding, the real
// outputs and every gradient equal the reference that runs all rows, and the rows left out are zero. Longest
// target first (every padding row left out) and in another order (active_rows keeps the rows up to the last
// real one, so some padding runs).
TEST_P(DecoderRecurrenceGrad, PaddingRowsLeftOutChangeNoRealOutputOrGradient) {
  const auto k = GetParam();
  for (const auto& lengths : {std::vector<int64_t>{4, 3, 1}, std::vector<int64_t>{2, 4, 3}}) {
    SCOPED_TRACE(testing::Message() << "target lengths " << at::IntArrayRef(lengths));
    auto a = make_inputs(k), b = make_inputs(k);
    const auto tokens = tokens_of_lengths(lengths, a.x_gates.size(0));
    a.active = s2s::active_rows(tokens, /*pad_id=*/0);
    const auto real = tokens.t().unsqueeze(2).to(torch::kDouble);  // [len, batch, 1]
    auto out = s2s::decoder_recurrence(a);
    auto ref = reference_recurrence(b);
    EXPECT_TRUE(torch::allclose(out * real, ref * real, 1e-10, 1e-12)) << (out - ref).abs().max();
    for (int64_t t = 0; t < out.size(0); ++t) {
      const auto n = a.active[static_cast<size_t>(t)];
      EXPECT_EQ(out[t].narrow(0, n, out.size(1) - n).abs().sum().item<double>(), 0.0) << "position " << t;
    }
    const auto probe = torch::randn(out.sizes(), out.options()) * real;
    (out * probe).sum().backward();
    (ref * probe).sum().backward();
    const auto ga = leaves(a, k.dot), gb = leaves(b, k.dot);
    for (size_t i = 0; i < ga.size(); ++i) {
      EXPECT_TRUE(torch::allclose(ga[i].grad(), gb[i].grad(), 1e-9, 1e-11))
          << "input " << i << " " << ga[i].sizes() << ": max diff "
          << (ga[i].grad() - gb[i].grad()).abs().max();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Stacks, DecoderRecurrenceGrad,
                         ::testing::Values(Case{2, 6, 8, 7, true, true, false},    // general, dropout
                                           Case{1, 6, 8, 7, true, false, false},   // one layer
                                           Case{3, 5, 5, 4, false, true, true}));  // dot, no feeding

// active[t]: 1 + the last row whose sentence is longer than t; row order is the caller's.
TEST(DecoderRecurrence, ActiveRowsCountTheRowsUpToTheLastRealOne) {
  EXPECT_EQ(s2s::active_rows(tokens_of_lengths({4, 3, 1}, 4), 0), (std::vector<int64_t>{3, 2, 2, 1}));
  EXPECT_EQ(s2s::active_rows(tokens_of_lengths({2, 4, 3}, 4), 0), (std::vector<int64_t>{3, 3, 3, 2}));
  EXPECT_EQ(s2s::active_rows(tokens_of_lengths({5}, 5), 0), (std::vector<int64_t>(5, 1)));
}

TEST(DecoderRecurrence, RejectsRowCountsThatGrow) {
  auto in = make_inputs(Case{1, 6, 8, 7, true, false, false});
  in.active = {2, 3, 3, 1};  // position 1 would run a row that position 0 left out
  try {
    s2s::decoder_recurrence(in);
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("non-increasing"), std::string::npos) << e.what();
  }
}

// The decoder module: the fused training path against the step-by-step autograd path it replaces
// (dropout off, so both see the same function), outputs and parameter gradients.
TEST(DecoderRecurrence, DecoderModuleMatchesTheStepwisePath) {
  s2s::DecoderOptions o;
  o.vocab_size = 20, o.emb_dim = 6, o.hidden = 8, o.layers = 2, o.memory_dim = 10, o.out_dim = 8;
  auto run = [&](bool fused) {
    torch::manual_seed(3);
    o.fused_recurrence = fused;
    s2s::Decoder dec(o);
    dec->to(torch::kDouble);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : dec->parameters()) p.uniform_(-0.3, 0.3);
    }
    s2s::EncoderOutput enc;
    enc.memory = torch::randn({2, 5, 10}, torch::kDouble);
    enc.mask = torch::tensor({1, 1, 1, 1, 1, 1, 1, 0, 0, 0}, torch::kBool).view({2, 5});
    enc.final = torch::randn({2, 10}, torch::kDouble);
    auto state = dec->initial_state(enc);
    const auto tgt_in = torch::tensor({2, 11, 12, 13, 2, 14, 15, 0}, torch::kInt64).view({2, 4});
    const auto real = tgt_in.ne(0).unsqueeze(2).to(torch::kDouble);  // the loss skips the padding (0)
    auto out = dec(tgt_in, state) * real;
    (out * torch::linspace(-1, 1, out.numel(), out.options()).view(out.sizes())).sum().backward();
    std::vector<torch::Tensor> grads{out.detach()};
    for (const auto& p : dec->parameters())
      grads.push_back(p.grad().defined() ? p.grad() : torch::zeros_like(p));
    return grads;
  };
  const auto fused = run(true), stepwise = run(false);
  ASSERT_EQ(fused.size(), stepwise.size());
  for (size_t i = 0; i < fused.size(); ++i)
    EXPECT_TRUE(torch::allclose(fused[i], stepwise[i], 1e-9, 1e-11))
        << (fused[i] - stepwise[i]).abs().max() << (i == 0 ? "output" : "parameter grad ") << i;
}

// bf16 (the training precision): close to the double recurrence, gradients included.
TEST(DecoderRecurrence, Bf16StaysCloseToDouble) {
  const Case k{2, 16, 16, 16, true, false, false};
  auto a = make_inputs(k), b = make_inputs(k);
  DecoderRecurrenceInputs lo = a;
  lo.x_gates = a.x_gates.to(torch::kBFloat16);
  auto out = s2s::decoder_recurrence(lo);
  EXPECT_EQ(out.scalar_type(), torch::kBFloat16);
  auto ref = s2s::decoder_recurrence(b);
  EXPECT_TRUE(torch::allclose(out.to(torch::kDouble), ref, 3e-2, 3e-2))
      << (out.to(torch::kDouble) - ref).abs().max();
  out.to(torch::kDouble).sum().backward();
  ref.sum().backward();
  for (const auto& [x, y] :
       {std::pair{a.w_rec[0], b.w_rec[0]}, {a.bias[0], b.bias[0]}, {a.memory, b.memory}, {a.keys, b.keys}}) {
    const auto scale = y.grad().abs().max().item<double>();
    EXPECT_LT((x.grad() - y.grad()).abs().max().item<double>(), 0.05 * scale + 1e-3) << x.sizes();
  }
}

}  // namespace

namespace {

// The bi-LSTM encoder layer: lstm_recurrence against the step loop under autograd, in double, outputs and
// the gradients of the input and all three parameters.
TEST(LstmRecurrence, EncoderLayerMatchesTheStepwisePathInDouble) {
  auto run = [](bool fused) {
    torch::manual_seed(5);
    s2s::BiLSTMLayer layer(6, 5);
    layer->to(torch::kDouble);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : layer->parameters()) p.uniform_(-0.4, 0.4);
    }
    layer->fused_recurrence = fused;
    auto x = torch::randn({4, 3, 6}, torch::kDouble).requires_grad_();  // [len, batch, input]
    const auto lengths = torch::tensor({4, 2, 3}, torch::kInt64);
    auto out = layer(x, s2s::reverse_index(lengths, 4));  // [len, batch, 2H]
    (out * torch::linspace(-1, 1, out.numel(), out.options()).view(out.sizes())).sum().backward();
    return std::vector<torch::Tensor>{out.detach(), x.grad(), layer->w_ih.grad(), layer->w_hh.grad(),
                                      layer->bias.grad()};
  };
  const auto fused = run(true), stepwise = run(false);
  for (size_t i = 0; i < fused.size(); ++i) {
    EXPECT_TRUE(torch::allclose(fused[i], stepwise[i], 1e-10, 1e-12))
        << i << ": max diff " << (fused[i] - stepwise[i]).abs().max();
  }
}

TEST(LstmRecurrence, NamesTheShapesThatDoNotFit) {
  try {
    s2s::lstm_recurrence(torch::zeros({2, 3, 4, 16}), torch::zeros({2, 5, 16}));
    FAIL() << "no error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 3, 4, 16]"), std::string::npos) << e.what();
  }
}

}  // namespace
