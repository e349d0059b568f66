// Corpus and sentence BLEU that reproduce sacreBLEU 2.6.0 exactly (13a tokenizer, exp smoothing), plus the
// line reader that sacreBLEU's command line uses.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace s2s::metrics {

// sacreBLEU version reproduced by these metrics (it appears in the signatures).
inline constexpr const char* kSacrebleuVersion = "2.6.0";

struct BleuOptions {
  bool lowercase = false;        // lowercase hypothesis and reference (Python str.lower()) before tokenizing
  bool effective_order = false;  // average only over orders with n-grams (sacreBLEU's sentence-level mode)
  int max_order = 4;             // highest n-gram order
  std::string tokenize = "13a";  // "13a" or "none" (whitespace split only)
};

struct BleuScore {
  double score = 0.0;              // BLEU in percent (0..100)
  std::vector<double> precisions;  // n-gram precisions in percent, one per order (smoothed)
  double bp = 0.0;                 // brevity penalty
  double ratio = 0.0;              // sys_len / ref_len (0 when ref_len is 0)
  int64_t sys_len = 0;             // hypothesis tokens
  int64_t ref_len = 0;             // reference tokens
  std::vector<int64_t> counts;     // clipped n-gram matches per order
  std::vector<int64_t> totals;     // hypothesis n-grams per order
  std::string signature;           // e.g. "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"

  // sacreBLEU's line: "BLEU = 34.12 65.3/41.2/28.1/19.4 (BP = 1.000 ratio = 1.000 hyp_len = 9 ref_len = 9)".
  std::string format(int width = 2) const;
  // The part after the score: "65.3/41.2/28.1/19.4 (BP = 1.000 ratio = 1.000 hyp_len = 9 ref_len = 9)".
  std::string verbose() const;
};

// Corpus BLEU of line-aligned hypotheses and references: `refs` holds one stream per reference, each
// line-aligned with `hyps` (sacreBLEU: clipping by the most frequent reference n-gram, the closest reference
// length). Throws s2s::Error when the line counts differ or the options are invalid.
BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                      const BleuOptions& opts = {});
// The same with one reference stream.
BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs,
                      const BleuOptions& opts = {});

// Sufficient statistics of one sentence ([hyp_len, ref_len, matches per order, totals per order]) and the
// score of summed statistics (metrics/stats.h): corpus_bleu is bleu_from_stats of the summed rows.
std::vector<double> bleu_sentence_stats(const std::string& hyp, const std::vector<std::string>& refs,
                                        const BleuOptions& opts);
BleuScore bleu_from_stats(const std::vector<double>& stats, const BleuOptions& opts, size_t nrefs);

// Sentence BLEU as `sacrebleu --sentence-level` computes it (default options: effective order on).
BleuScore sentence_bleu(const std::string& hyp, const std::string& ref,
                        const BleuOptions& opts = BleuOptions{/*lowercase=*/false, /*effective_order=*/true});

// sacreBLEU's 13a tokenizer (mteval-v13a): returns the tokens joined by single spaces.
std::string tokenize_13a(std::string_view line);

// Reads a file as sacreBLEU's command line does: UTF-8 (malformed bytes become U+FFFD), split on '\n' only
// (no empty line after a final '\n'), each line Python-rstripped. Throws s2s::Error naming the file.
std::vector<std::string> read_lines_for_scoring(const std::filesystem::path& path);

}  // namespace s2s::metrics
