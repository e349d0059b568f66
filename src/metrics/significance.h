// Paired bootstrap resampling between systems (sacreBLEU's --paired-bs, after Koehn 2004 and Moses'
// bootstrap-hypothesis-difference-significance.pl): the line indices of the test set are resampled with
// replacement n times, every system is scored on every sample, and the p-value of a system's difference to
// the baseline is the share of samples whose centred difference exceeds the actual one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "metrics/scorer.h"

namespace s2s::metrics {

struct PairedScore {
  MetricResult actual;  // the system's score on the test set
  double mean = 0.0;    // mean score over the bootstrap samples
  double ci = 0.0;      // half width of the 95% interval of the bootstrap scores
  double p_value = -1;  // of the difference to the baseline (-1 for the baseline itself)
};

// result[s][m]: system s (0 = the baseline) under scorer m. `systems` are line-aligned with every reference
// stream of `refs`. sacreBLEU's defaults: n_samples 1000, seed 12345 (the samples are ours, not numpy's, so
// p-values agree with sacreBLEU's in distribution, not digit for digit).
std::vector<std::vector<PairedScore>> paired_bootstrap(const std::vector<const Scorer*>& scorers,
                                                       const std::vector<std::vector<std::string>>& systems,
                                                       const std::vector<std::vector<std::string>>& refs,
                                                       int n_samples = 1000, uint64_t seed = 12345);

}  // namespace s2s::metrics
