// Search tests on a tiny fixed (seeded, untrained) model with a 6-token vocabulary:
// - a beam wide enough to keep every prefix finds exactly the best hypothesis of an exhaustive enumeration;
// - every returned score equals the teacher-forced log-probability of its tokens;
// - greedy (beam 1) equals an independent argmax loop; n-best lists are sorted, distinct and sized.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "libtorch/data/batch.h"
#include "libtorch/decode/search.h"
#include "libtorch/model/rnn/seq2seq.h"

namespace {

constexpr int64_t kVocab = 6, kBos = 2, kEos = 3;

s2s::Seq2Seq fixed_model(uint64_t seed) {
  torch::manual_seed(seed);
  s2s::ModelConfig m;
  m.emb_dim = 8, m.enc_hidden = 6, m.dec_hidden = 10, m.enc_layers = 1, m.dec_layers = 1,
  m.tie_output = false;
  m.dropout_emb = m.dropout_hidden = m.dropout_attn = 0;
  auto model = s2s::build_rnn_model(m, {kVocab, kVocab, 0, kBos, kEos});
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.mul_(15);  // peakier distributions: search decisions matter
  }
  model->eval();
  return model;
}

// log P(tokens [+ EOS]) under teacher forcing.
double sequence_logprob(s2s::Seq2SeqImpl& model, const s2s::Batch& src, const std::vector<int64_t>& tokens,
                        bool with_eos) {
  torch::NoGradGuard no_grad;
  auto state = model.start(src.src, src.src_lengths);
  int64_t prev = kBos;
  double total = 0;
  std::vector<int64_t> targets = tokens;
  if (with_eos) targets.push_back(kEos);
  for (auto y : targets) {
    auto out = model.decoder->step(torch::tensor({prev}, torch::kInt64), state);
    total += torch::log_softmax(model.logits(out), 1)[0][y].item<double>();
    prev = y;
  }
  return total;
}

double normalized(double score, size_t length, double alpha) {
  return score / std::pow(static_cast<double>(length), alpha);
}

TEST(Search, WideBeamFindsTheExhaustiveOptimum) {
  for (uint64_t seed : {1, 2, 3}) {
    auto model = fixed_model(seed);
    auto src = s2s::make_source_batch({{4}}, {});
    s2s::SearchOptions opt;
    opt.beam_size = 700;  // > the 5^4 = 625 live prefixes of the longest step: nothing is pruned
    opt.n_best = 1;
    opt.normalize = 0.6;
    opt.max_length_factor = 0.0;  // max output length = 0 * 1 + 5 = 5 tokens incl. EOS
    const int64_t max_len = 5;
    auto result = s2s::beam_search(*model, src.src, src.src_lengths, opt);
    ASSERT_EQ(result.size(), 1u);
    ASSERT_EQ(result[0].size(), 1u);
    // Enumerate: y of length L < max_len followed by EOS, or length max_len cut off without EOS.
    double best = -INFINITY;
    std::vector<int64_t> best_tokens;
    std::function<void(std::vector<int64_t>&)> walk = [&](std::vector<int64_t>& prefix) {
      const auto L = static_cast<int64_t>(prefix.size());
      if (L == max_len) {
        const double s =
            normalized(sequence_logprob(*model, src, prefix, false), prefix.size(), opt.normalize);
        if (s > best) best = s, best_tokens = prefix;
        return;
      }
      const double s =
          normalized(sequence_logprob(*model, src, prefix, true), prefix.size() + 1, opt.normalize);
      if (s > best) best = s, best_tokens = prefix;
      for (int64_t y = 0; y < kVocab; ++y) {
        if (y == kEos) continue;
        prefix.push_back(y);
        walk(prefix);
        prefix.pop_back();
      }
    };
    std::vector<int64_t> empty;
    walk(empty);
    const auto& hyp = result[0][0];
    EXPECT_NEAR(hyp.norm_score, best, 1e-4) << "seed " << seed;
    EXPECT_EQ(std::vector<int64_t>(hyp.tokens.begin(), hyp.tokens.end()), best_tokens) << "seed " << seed;
  }
}

TEST(Search, ScoresAreTeacherForcedLogProbabilities) {
  auto model = fixed_model(4);
  auto src = s2s::make_source_batch({{4, 5}, {5}}, {});
  s2s::SearchOptions opt;
  opt.beam_size = 4, opt.n_best = 4, opt.normalize = 0.0, opt.max_length_factor = 2.0;
  auto result = s2s::beam_search(*model, src.src, src.src_lengths, opt);
  for (size_t b = 0; b < result.size(); ++b) {
    auto one = s2s::make_source_batch({b == 0 ? std::vector<int32_t>{4, 5} : std::vector<int32_t>{5}}, {});
    ASSERT_FALSE(result[b].empty());
    for (const auto& h : result[b]) {
      const bool ended =
          static_cast<int64_t>(h.tokens.size()) < static_cast<int64_t>(2.0 * (b == 0 ? 2 : 1)) + 5;
      std::vector<int64_t> toks(h.tokens.begin(), h.tokens.end());
      EXPECT_NEAR(h.score, sequence_logprob(*model, one, toks, ended), 1e-4);
    }
  }
}

TEST(Search, GreedyEqualsBeamOne) {
  auto model = fixed_model(5);
  auto src = s2s::make_source_batch({{4, 5, 1}, {5}, {1, 4}}, {});
  s2s::SearchOptions opt;
  opt.beam_size = 1, opt.normalize = 0.0, opt.max_length_factor = 2.0;
  auto result = s2s::beam_search(*model, src.src, src.src_lengths, opt);
  torch::NoGradGuard no_grad;
  for (int64_t b = 0; b < 3; ++b) {
    auto one = s2s::make_source_batch(
        {std::vector<int32_t>(src.src[b].data_ptr<int64_t>(),
                              src.src[b].data_ptr<int64_t>() + src.src_lengths[b].item<int64_t>())},
        {});
    auto state = model->start(one.src, one.src_lengths);
    std::vector<int32_t> greedy;
    int64_t prev = kBos;
    const int64_t max_len = static_cast<int64_t>(2.0 * one.src_lengths[0].item<int64_t>()) + 5;
    for (int64_t t = 0; t < max_len; ++t) {
      auto out = model->decoder->step(torch::tensor({prev}, torch::kInt64), state);
      prev = model->logits(out).argmax(1).item<int64_t>();
      if (prev == kEos) break;
      greedy.push_back(static_cast<int32_t>(prev));
    }
    ASSERT_EQ(result[static_cast<size_t>(b)].size(), 1u);
    EXPECT_EQ(result[static_cast<size_t>(b)][0].tokens, greedy) << "sentence " << b;
  }
}

TEST(Search, NBestIsSortedDistinctAndSized) {
  auto model = fixed_model(6);
  auto src = s2s::make_source_batch({{4, 5}, {1}}, {});
  s2s::SearchOptions opt;
  opt.beam_size = 5, opt.n_best = 3, opt.normalize = 0.6;
  opt.keep_attention = true;
  auto result = s2s::beam_search(*model, src.src, src.src_lengths, opt);
  ASSERT_EQ(result.size(), 2u);
  for (size_t b = 0; b < 2; ++b) {
    ASSERT_EQ(result[b].size(), 3u);
    for (size_t k = 1; k < 3; ++k) {
      EXPECT_GE(result[b][k - 1].norm_score, result[b][k].norm_score);
      EXPECT_NE(result[b][k - 1].tokens, result[b][k].tokens);
    }
    for (const auto& h : result[b]) {
      EXPECT_GE(h.attention.size(), h.tokens.size());  // one row per output token (+ EOS)
      for (const auto& row : h.attention) {
        EXPECT_EQ(row.size(), b == 0 ? 2u : 1u);
        float sum = 0;
        for (float w : row) sum += w;
        EXPECT_NEAR(sum, 1.0f, 1e-4);
      }
    }
  }
}

}  // namespace

namespace {

TEST(Search, EarlyExitKeepsTheBestHypothesisWithoutNormalization) {
  // Without length normalization scores only fall as hypotheses grow: once the best candidate of a step
  // is finished, nothing still searching can beat it, so stopping there keeps the 1-best.
  for (uint64_t seed : {3, 4, 5, 6, 7}) {
    auto model = fixed_model(seed);
    auto src = s2s::make_source_batch({{4, 5, 1}, {2}, {5, 5}}, {});
    s2s::SearchOptions opt;
    opt.beam_size = 4, opt.normalize = 0;
    auto full = s2s::beam_search(*model, src.src, src.src_lengths, opt);
    opt.early_exit = true;
    auto early = s2s::beam_search(*model, src.src, src.src_lengths, opt);
    ASSERT_EQ(early.size(), full.size());
    for (size_t b = 0; b < full.size(); ++b) {
      ASSERT_EQ(early[b].size(), 1u);
      EXPECT_EQ(early[b][0].tokens, full[b][0].tokens) << "seed " << seed << " sentence " << b;
      EXPECT_NEAR(early[b][0].score, full[b][0].score, 1e-5);
    }
  }
}

TEST(Search, VocabularySubsetRestrictsOutputs) {
  auto model = fixed_model(7);
  auto src = s2s::make_source_batch({{4, 5}, {1, 4, 4}}, {});
  s2s::SearchOptions opt;
  opt.beam_size = 3, opt.n_best = 3;
  auto full = s2s::beam_search(*model, src.src, src.src_lengths, opt);
  auto same = s2s::beam_search(*model, src.src, src.src_lengths, opt, {0, 1, 2, 3, 4, 5});
  for (size_t b = 0; b < full.size(); ++b) {
    ASSERT_EQ(full[b].size(), same[b].size());
    for (size_t k = 0; k < full[b].size(); ++k) EXPECT_EQ(full[b][k].tokens, same[b][k].tokens);
  }
  auto restricted = s2s::beam_search(*model, src.src, src.src_lengths, opt, {kEos, 5});
  for (const auto& hyps : restricted) {
    for (const auto& h : hyps) {
      for (auto t : h.tokens) EXPECT_EQ(t, 5);
    }
  }
}

}  // namespace
