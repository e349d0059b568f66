// chrF / chrF++ that reproduce sacreBLEU 2.6.0's CHRF exactly (whitespace excluded, no eps smoothing).
#pragma once

#include <string>
#include <vector>

namespace s2s::metrics {

struct ChrfOptions {
  bool lowercase = false;  // lowercase hypothesis and reference (Python str.lower()) first
  int char_order = 6;      // highest character n-gram order
  int word_order = 0;      // highest word n-gram order (2 gives chrF++)
  int beta = 2;            // recall is beta times as important as precision
};

struct ChrfScore {
  double score = 0.0;     // chrF in percent (0..100)
  std::string name;       // "chrF2", or "chrF2++" with word_order 2
  std::string signature;  // e.g. "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0"

  // sacreBLEU's line, e.g. "chrF2 = 57.12".
  std::string format(int width = 2) const;
};

// Corpus chrF: character (and word) n-gram statistics are summed over all lines, then one F-score is
// computed. Throws s2s::Error when the line counts differ or the options are invalid.
ChrfScore corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::string>& refs,
                      const ChrfOptions& opts = {});
// With several reference streams (each line-aligned with `hyps`): per sentence, the statistics of the
// reference with the best F-score count, as in sacreBLEU.
ChrfScore corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                      const ChrfOptions& opts = {});

// Sufficient statistics of one sentence ([hyp, ref, matches] per n-gram order) and the score of summed
// statistics (metrics/stats.h).
std::vector<double> chrf_sentence_stats(const std::string& hyp, const std::vector<std::string>& refs,
                                        const ChrfOptions& opts);
ChrfScore chrf_from_stats(const std::vector<double>& stats, const ChrfOptions& opts, size_t nrefs);

// chrF of a single line pair (sacreBLEU's CHRF().sentence_score).
ChrfScore sentence_chrf(const std::string& hyp, const std::string& ref, const ChrfOptions& opts = {});

}  // namespace s2s::metrics
