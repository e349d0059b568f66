// Sufficient statistics, the form all corpus metrics here share (sacreBLEU's _extract_corpus_statistics): one
// row of numbers per sentence, summed over the corpus (or a bootstrap sample of it) before one score is
// computed from the sum.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace s2s::metrics {

using StatRows = std::vector<std::vector<double>>;  // [sentences, width]

// Statistics of one hypothesis against its references (one per reference stream).
using SentenceStatsFn =
    std::function<std::vector<double>(const std::string& hyp, const std::vector<std::string>& refs)>;

// rows[i] = fn(hyps[i], {refs[0][i], refs[1][i], ...}). Throws s2s::Error naming `metric` when there is no
// reference stream or a stream's line count differs from the hypothesis'.
StatRows sentence_stats(const std::vector<std::string>& hyps,
                        const std::vector<std::vector<std::string>>& refs, const SentenceStatsFn& fn,
                        const std::string& metric);

// Column sums of `rows` (all `width` wide); zeros when there are no rows.
std::vector<double> sum_rows(const StatRows& rows, size_t width);

}  // namespace s2s::metrics
