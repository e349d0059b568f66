// The metrics of the sacreBLEU command line behind one interface: BLEU, chrF (chrF++ with word order 2) and
// TER. A scorer turns a sentence into sufficient statistics and summed statistics into a score, so corpus
// scores, sentence scores and paired bootstrap resampling (metrics/significance.h) share one code path.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "metrics/stats.h"

namespace s2s::metrics {

struct ScorerOptions {
  bool lowercase = false;  // BLEU and chrF: case-insensitive (TER is case-insensitive by default)
  bool effective_order =
      false;                // BLEU: only orders with n-grams count (sacreBLEU's --sentence-level sets it)
  int chrf_word_order = 0;  // chrF: word n-gram order (2 = chrF++)
  bool ter_case_sensitive = false;  // TER: --ter-case-sensitive
};

// One score as sacreBLEU reports it.
struct MetricResult {
  std::string name;       // "BLEU", "chrF2", "chrF2++", "TER"
  double score = 0.0;     // in percent
  std::string verbose;    // details after the score (BLEU: precisions, BP, lengths); may be empty
  std::string signature;  // "nrefs:1|case:mixed|..."
};

class Scorer {
 public:
  virtual ~Scorer() = default;
  // Statistics of one hypothesis against its references (one per reference stream).
  virtual std::vector<double> sentence_stats(const std::string& hyp,
                                             const std::vector<std::string>& refs) const = 0;
  // The score of statistics summed over sentences, with `nrefs` references per sentence.
  virtual MetricResult from_stats(const std::vector<double>& stats, size_t nrefs) const = 0;
  // Number of statistics per sentence.
  virtual size_t stats_width() const = 0;
  // Whether a lower score is better (TER).
  virtual bool lower_is_better() const { return false; }

  // Statistics of every sentence (refs: one stream per reference, line-aligned with hyps).
  StatRows sentence_stats_of(const std::vector<std::string>& hyps,
                             const std::vector<std::vector<std::string>>& refs) const;
  MetricResult corpus(const std::vector<std::string>& hyps,
                      const std::vector<std::vector<std::string>>& refs) const;
  MetricResult sentence(const std::string& hyp, const std::vector<std::string>& refs) const;
  // The score of every sentence (refs: one stream per reference, line-aligned with hyps).
  std::vector<MetricResult> sentences(const std::vector<std::string>& hyps,
                                      const std::vector<std::vector<std::string>>& refs) const;
};

// "bleu", "chrf" or "ter"; throws s2s::Error naming the choices otherwise.
std::unique_ptr<Scorer> make_scorer(const std::string& metric, const ScorerOptions& options);

// sacreBLEU's text line: "BLEU|<signature> = 34.1 <verbose>", or only "34.1" with `score_only`.
std::string format_result(const MetricResult& result, int width, bool score_only);

// Lines of several results with their '=' aligned, as sacreBLEU prints them (`-f text`).
std::vector<std::string> align_results(const std::vector<std::string>& lines);

}  // namespace s2s::metrics
