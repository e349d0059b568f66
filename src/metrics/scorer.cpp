#include "metrics/scorer.h"

#include <algorithm>
#include <cstdio>

#include "metrics/bleu.h"
#include "metrics/chrf.h"
#include "metrics/ter.h"
#include "util/error.h"

namespace s2s::metrics {
namespace {

class BleuScorer : public Scorer {
 public:
  explicit BleuScorer(const ScorerOptions& o) {
    opts_.lowercase = o.lowercase;
    opts_.effective_order = o.effective_order;
  }
  std::vector<double> sentence_stats(const std::string& hyp,
                                     const std::vector<std::string>& refs) const override {
    return bleu_sentence_stats(hyp, refs, opts_);
  }
  MetricResult from_stats(const std::vector<double>& stats, size_t nrefs) const override {
    const auto s = bleu_from_stats(stats, opts_, nrefs);
    return {"BLEU", s.score, s.verbose(), s.signature};
  }
  size_t stats_width() const override { return static_cast<size_t>(2 + 2 * opts_.max_order); }

 private:
  BleuOptions opts_;
};

class ChrfScorer : public Scorer {
 public:
  explicit ChrfScorer(const ScorerOptions& o) {
    opts_.lowercase = o.lowercase;
    opts_.word_order = o.chrf_word_order;
  }
  std::vector<double> sentence_stats(const std::string& hyp,
                                     const std::vector<std::string>& refs) const override {
    return chrf_sentence_stats(hyp, refs, opts_);
  }
  MetricResult from_stats(const std::vector<double>& stats, size_t nrefs) const override {
    const auto s = chrf_from_stats(stats, opts_, nrefs);
    return {s.name, s.score, "", s.signature};
  }
  size_t stats_width() const override {
    return static_cast<size_t>(3 * (opts_.char_order + opts_.word_order));
  }

 private:
  ChrfOptions opts_;
};

class TerScorer : public Scorer {
 public:
  explicit TerScorer(const ScorerOptions& o) { opts_.case_sensitive = o.ter_case_sensitive; }
  std::vector<double> sentence_stats(const std::string& hyp,
                                     const std::vector<std::string>& refs) const override {
    return ter_sentence_stats(hyp, refs, opts_);
  }
  MetricResult from_stats(const std::vector<double>& stats, size_t nrefs) const override {
    const auto s = ter_from_stats(stats, opts_, nrefs);
    return {"TER", s.score, "", s.signature};
  }
  size_t stats_width() const override { return 2; }
  bool lower_is_better() const override { return true; }

 private:
  TerOptions opts_;
};

}  // namespace

MetricResult Scorer::corpus(const std::vector<std::string>& hyps,
                            const std::vector<std::vector<std::string>>& refs) const {
  const auto rows = sentence_stats_of(hyps, refs);
  return from_stats(sum_rows(rows, stats_width()), refs.size());
}

StatRows Scorer::sentence_stats_of(const std::vector<std::string>& hyps,
                                   const std::vector<std::vector<std::string>>& refs) const {
  return metrics::sentence_stats(
      hyps, refs,
      [this](const std::string& h, const std::vector<std::string>& r) { return sentence_stats(h, r); },
      "scoring");
}

MetricResult Scorer::sentence(const std::string& hyp, const std::vector<std::string>& refs) const {
  return from_stats(sentence_stats(hyp, refs), refs.size());
}

std::vector<MetricResult> Scorer::sentences(const std::vector<std::string>& hyps,
                                            const std::vector<std::vector<std::string>>& refs) const {
  std::vector<MetricResult> out;
  for (const auto& row : sentence_stats_of(hyps, refs)) out.push_back(from_stats(row, refs.size()));
  return out;
}

std::unique_ptr<Scorer> make_scorer(const std::string& metric, const ScorerOptions& options) {
  if (metric == "bleu") return std::make_unique<BleuScorer>(options);
  if (metric == "chrf") return std::make_unique<ChrfScorer>(options);
  if (metric == "ter") return std::make_unique<TerScorer>(options);
  throw Error("unknown metric '" + metric + "' (expected bleu, chrf or ter)");
}

std::string format_result(const MetricResult& result, int width, bool score_only) {
  char score[64];
  std::snprintf(score, sizeof score, "%.*f", std::max(0, width), result.score);
  if (score_only) return score;
  std::string line = result.name + "|" + result.signature + " = " + score;
  return result.verbose.empty() ? line : line + " " + result.verbose;
}

std::vector<std::string> align_results(const std::vector<std::string>& lines) {
  if (lines.size() < 2) return lines;
  size_t width = 0;
  for (const auto& line : lines) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) width = std::max(width, eq == 0 ? 0 : eq - 1);
  }
  std::vector<std::string> out;
  for (const auto& line : lines) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) {
      out.push_back(line);  // a score alone (score_only): nothing to align
      continue;
    }
    const size_t left = eq == 0 ? 0 : eq - 1;
    out.push_back(std::string(width - left, ' ') + line);
  }
  return out;
}

}  // namespace s2s::metrics
