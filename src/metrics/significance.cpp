#include "metrics/significance.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "util/error.h"

namespace s2s::metrics {
namespace {

// Mean and the half width of the 95% interval: sorted scores, 1/40 cut from each side (sacreBLEU's
// estimate_ci).
std::pair<double, double> mean_and_ci(std::vector<double> scores) {
  std::sort(scores.begin(), scores.end());
  const size_t n = scores.size(), lower = n / 40, upper = n - lower - 1;
  const double mean = std::accumulate(scores.begin(), scores.end(), 0.0) / static_cast<double>(n);
  return {mean, 0.5 * (scores[upper] - scores[lower])};
}

// Score of every bootstrap sample: sample k sums the statistics rows samples[k][0..N).
std::vector<double> sample_scores(const Scorer& scorer, const StatRows& rows,
                                  const std::vector<std::vector<uint32_t>>& samples, size_t nrefs) {
  std::vector<double> scores;
  scores.reserve(samples.size());
  std::vector<double> sum(scorer.stats_width());
  for (const auto& sample : samples) {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (const uint32_t i : sample) {
      for (size_t k = 0; k < sum.size(); ++k) sum[k] += rows[i][k];
    }
    scores.push_back(scorer.from_stats(sum, nrefs).score);
  }
  return scores;
}

}  // namespace

std::vector<std::vector<PairedScore>> paired_bootstrap(const std::vector<const Scorer*>& scorers,
                                                       const std::vector<std::vector<std::string>>& systems,
                                                       const std::vector<std::vector<std::string>>& refs,
                                                       int n_samples, uint64_t seed) {
  if (systems.size() < 2) throw Error("paired bootstrap needs a baseline and at least one other system");
  if (n_samples < 1)
    throw Error("paired bootstrap needs at least 1 sample, got " + std::to_string(n_samples));
  const size_t lines = systems[0].size();
  if (lines == 0) throw Error("paired bootstrap: the test set is empty");
  std::mt19937_64 rng(seed);  // one set of samples, shared by all systems and metrics (paired)
  std::uniform_int_distribution<uint32_t> pick(0, static_cast<uint32_t>(lines - 1));
  std::vector<std::vector<uint32_t>> samples(static_cast<size_t>(n_samples), std::vector<uint32_t>(lines));
  for (auto& sample : samples) {
    for (auto& i : sample) i = pick(rng);
  }
  std::vector<std::vector<PairedScore>> out(systems.size(), std::vector<PairedScore>(scorers.size()));
  for (size_t m = 0; m < scorers.size(); ++m) {
    const Scorer& scorer = *scorers[m];
    std::vector<double> baseline_scores;
    for (size_t s = 0; s < systems.size(); ++s) {
      const auto rows = scorer.sentence_stats_of(systems[s], refs);
      auto& result = out[s][m];
      result.actual = scorer.from_stats(sum_rows(rows, scorer.stats_width()), refs.size());
      const auto scores = sample_scores(scorer, rows, samples, refs.size());
      std::tie(result.mean, result.ci) = mean_and_ci(scores);
      if (s == 0) {
        baseline_scores = scores;
        continue;
      }
      // Centred absolute differences of the samples against the actual absolute difference.
      const double actual = std::abs(out[0][m].actual.score - result.actual.score);
      std::vector<double> diffs(scores.size());
      for (size_t k = 0; k < scores.size(); ++k) diffs[k] = std::abs(scores[k] - baseline_scores[k]);
      const double mean_diff =
          std::accumulate(diffs.begin(), diffs.end(), 0.0) / static_cast<double>(diffs.size());
      const auto larger =
          std::count_if(diffs.begin(), diffs.end(), [&](double d) { return d - mean_diff > actual; });
      result.p_value = static_cast<double>(larger + 1) / static_cast<double>(diffs.size() + 1);
    }
  }
  return out;
}

}  // namespace s2s::metrics
