// The engine-independent parts of beam search: host-side candidate selection, and the search loop driven
// by a scripted scorer whose distributions are known, so the expected hypotheses are computed by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "decode/beam.h"
#include "kernels/kernels.h"

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

TEST(SelectCandidates, ExactTopExtensionsPerSentence) {
  // 2 sentences x K=2 rows, V=3 tokens. log p = logit - logsumexp; row 1 is dead (-inf), so sentence 0
  // draws only from row 0; sentence 1 mixes rows 2 and 3.
  const std::vector<float> logits = {1, 3, 2, /**/ 9, 9, 9, /**/ 0, 0, 5, /**/ 4, 1, 0};
  const std::vector<float> lse = {3.4076f, 10.0986f, 5.0134f, 4.0659f};
  const std::vector<float> scores = {-1, kNegInf, -2, -0.5f};
  const std::vector<int64_t> ids = {10, 11, 12};
  const auto c = s2s::select_candidates({logits.data(), lse.data(), 3, &ids}, scores, /*A=*/2, /*K=*/2);
  ASSERT_EQ(c.per_sentence, 4);
  // Sentence 0: row 0 tokens 1 (3-3.4076-1), 2 (2-3.4076-1), 0 (1-3.4076-1), then a dead-row candidate.
  EXPECT_EQ(c.tokens[0], 11);
  EXPECT_EQ(c.tokens[1], 12);
  EXPECT_EQ(c.rows[0], 0);
  EXPECT_NEAR(c.values[0], 3 - 3.4076 - 1, 1e-4);
  EXPECT_NEAR(c.values[2], 1 - 3.4076 - 1, 1e-4);
  EXPECT_EQ(c.values[3], kNegInf);
  // Sentence 1: row 3 token 0 (4-4.0659-0.5 = -0.566), row 2 token 2 (5-5.0134-2 = -2.013),
  // row 3 token 1 (1-4.0659-0.5 = -3.566), row 3 token 2 (-4.566) > row 2 token 0 (-7.013).
  EXPECT_EQ(c.rows[4], 3);
  EXPECT_EQ(c.tokens[4], 10);
  EXPECT_NEAR(c.values[4], -0.5659, 1e-3);
  EXPECT_EQ(c.rows[5], 2);
  EXPECT_EQ(c.tokens[5], 12);
  EXPECT_EQ(c.rows[6], 3);
  EXPECT_EQ(c.tokens[6], 11);
  EXPECT_NEAR(c.values[7], -4.5659, 1e-3);
}

// The vectorized top-n scan (blocks of 16 skipped when none beats the n-th best) against a stable sort:
// the same indices in the same order, ties to the lower index, on sizes around the block width, with many
// ties and -inf (dead hypotheses).
TEST(TopN, EqualsAStableSortWithTiesAndInfinities) {
  std::mt19937 rng(5);
  for (int64_t size : {1, 2, 15, 16, 17, 31, 32, 33, 100, 1500}) {
    for (int64_t n : {1, 2, 10}) {
      if (n > size) continue;
      for (int trial = 0; trial < 20; ++trial) {
        std::vector<float> v(static_cast<size_t>(size));
        const bool ascending = trial % 3 == 0;  // every new value beats the list: the slow path throughout
        for (int64_t j = 0; j < size; ++j)
          v[j] = ascending ? static_cast<float>(j) : rng() % 5 == 0 ? kNegInf : static_cast<float>(rng() % 7);
        std::vector<int64_t> want(v.size());
        std::iota(want.begin(), want.end(), 0);
        std::stable_sort(want.begin(), want.end(), [&](int64_t a, int64_t b) { return v[a] > v[b]; });
        want.resize(static_cast<size_t>(n));
        std::vector<int64_t> got(static_cast<size_t>(n));
        s2s::kernels::top_n(v.data(), size, n, got.data());
        EXPECT_EQ(got, want) << "size " << size << " n " << n << " trial " << trial;
      }
    }
  }
}

// A scorer with a fixed next-token distribution per last token: greedy takes 5 (0.6) then EOS (0.55), total
// 0.33; but 6 (0.4) -> 7 (1.0) -> EOS (1.0) has the higher total 0.4, which beam search (K >= 2) must find.
class ScriptedScorer : public s2s::StepScorer {
 public:
  static constexpr int64_t kBos = 2, kEos = 3, kVocab = 8;
  s2s::StepScores step(const std::vector<int64_t>& tokens, int64_t A, int64_t K, bool) override {
    logits.assign(static_cast<size_t>(A * K * kVocab), -30.f);
    lse.assign(static_cast<size_t>(A * K), 0.f);
    for (int64_t r = 0; r < A * K; ++r) {
      float* row = &logits[static_cast<size_t>(r * kVocab)];
      const auto last = tokens[static_cast<size_t>(r)];
      if (last == kBos) row[5] = std::log(0.6f), row[6] = std::log(0.4f);
      if (last == 5) row[kEos] = std::log(0.55f), row[7] = std::log(0.45f);
      if (last == 6) row[7] = 0.f;
      if (last == 7) row[kEos] = 0.f;
      double sum = 0;
      for (int64_t j = 0; j < kVocab; ++j) sum += std::exp(static_cast<double>(row[j]));
      lse[static_cast<size_t>(r)] = static_cast<float>(std::log(sum));
    }
    ++steps;
    return {logits.data(), lse.data(), kVocab};
  }
  void reorder(const std::vector<int64_t>&, const std::vector<int64_t>&, int64_t, int64_t) override {}
  int steps = 0;
  std::vector<float> logits, lse;  // the last step's scores
};

TEST(BeamSearch, GreedyTakesTheLocalBestBeamFindsTheBetterPath) {
  s2s::SearchOptions opt;
  opt.normalize = 0;
  opt.beam_size = 1;
  ScriptedScorer greedy_scorer;
  const auto greedy = s2s::beam_search(greedy_scorer, {4}, opt, ScriptedScorer::kBos, ScriptedScorer::kEos);
  ASSERT_EQ(greedy.size(), 1u);
  ASSERT_EQ(greedy[0].size(), 1u);
  EXPECT_EQ(greedy[0][0].tokens, (std::vector<int32_t>{5}));
  EXPECT_NEAR(greedy[0][0].score, std::log(0.6 * 0.55), 1e-5);
  EXPECT_EQ(greedy_scorer.steps, 2);

  opt.beam_size = 2, opt.n_best = 2;
  ScriptedScorer beam_scorer;
  const auto beam = s2s::beam_search(beam_scorer, {4}, opt, ScriptedScorer::kBos, ScriptedScorer::kEos);
  ASSERT_EQ(beam[0].size(), 2u);
  EXPECT_EQ(beam[0][0].tokens, (std::vector<int32_t>{6, 7}));
  EXPECT_NEAR(beam[0][0].score, std::log(0.4), 1e-5);
  EXPECT_EQ(beam[0][1].tokens, (std::vector<int32_t>{5}));
  EXPECT_NEAR(beam[0][1].score, std::log(0.33), 1e-5);
}

}  // namespace
