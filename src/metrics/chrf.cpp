// chrF as sacreBLEU 2.6.0 computes it (sacrebleu/metrics/chrf.py): statistics per order are
// [hyp n-grams (0 when the reference has none), ref n-grams, matches]; the F-score averages precision and
// recall over the orders where both sides have n-grams, in sacreBLEU's order of floating-point operations.
#include "metrics/chrf.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string_view>
#include <unordered_map>

#include "metrics/bleu.h"
#include "metrics/stats.h"
#include "util/error.h"
#include "util/text.h"

namespace s2s::metrics {
namespace {

using CharNgrams = std::unordered_map<std::string_view, int64_t>;
using WordNgrams = std::unordered_map<std::string, int64_t>;

// A preprocessed line: the text without whitespace (char n-grams) and its words (word n-grams).
struct Segment {
  std::string chars;               // UTF-8 text with all Unicode whitespace removed
  std::vector<size_t> offsets;     // byte offset of every code point in `chars`, plus chars.size()
  std::vector<std::string> words;  // words with one leading/trailing ASCII punctuation split off
};

bool is_ascii_punct(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u >= 0x21 && u <= 0x2F) || (u >= 0x3A && u <= 0x40) || (u >= 0x5B && u <= 0x60) ||
         (u >= 0x7B && u <= 0x7E);
}

size_t num_code_points(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// CHRF._remove_punctuation(): splits one trailing (else one leading) ASCII punctuation mark off each word.
std::vector<std::string> split_punctuation(const std::string& line) {
  std::vector<std::string> out;
  for (std::string& w : text::split_whitespace(line)) {
    if (num_code_points(w) == 1) {
      out.push_back(std::move(w));
    } else if (is_ascii_punct(w.back())) {
      out.push_back(w.substr(0, w.size() - 1));
      out.push_back(w.substr(w.size() - 1));
    } else if (is_ascii_punct(w.front())) {
      out.push_back(w.substr(0, 1));
      out.push_back(w.substr(1));
    } else {
      out.push_back(std::move(w));
    }
  }
  return out;
}

Segment preprocess(const std::string& line, const ChrfOptions& opts) {
  std::string s = opts.lowercase ? text::to_lower(line) : line;
  if (!text::is_valid_utf8(s)) s = text::encode_utf8(text::decode_utf8(s));
  Segment seg;
  if (opts.word_order > 0) seg.words = split_punctuation(s);
  for (const std::string& w : text::split_whitespace(s)) seg.chars += w;
  for (size_t i = 0; i < seg.chars.size(); ++i) {
    if ((static_cast<unsigned char>(seg.chars[i]) & 0xC0) != 0x80) seg.offsets.push_back(i);
  }
  seg.offsets.push_back(seg.chars.size());
  return seg;
}

CharNgrams char_ngrams(const Segment& seg, int n) {
  CharNgrams counts;
  const size_t len = seg.offsets.size() - 1;
  counts.reserve(len);
  for (size_t i = 0; i + n <= len; ++i) {
    ++counts[std::string_view(seg.chars).substr(seg.offsets[i], seg.offsets[i + n] - seg.offsets[i])];
  }
  return counts;
}

WordNgrams word_ngrams(const std::vector<std::string>& words, int n) {
  WordNgrams counts;
  for (size_t i = 0; i + n <= words.size(); ++i) {
    std::string key = words[i];
    for (int k = 1; k < n; ++k) key.append(" ").append(words[i + k]);
    ++counts[key];
  }
  return counts;
}

// CHRF._get_match_statistics(): appends [hyp count (0 without ref n-grams), ref count, matches].
template <typename Map>
void match_stats(const Map& hyp, const Map& ref, std::vector<int64_t>& stats) {
  int64_t hyp_count = 0, ref_count = 0, matches = 0;
  for (const auto& [ngram, count] : ref) ref_count += count;
  for (const auto& [ngram, count] : hyp) {
    hyp_count += count;
    const auto it = ref.find(ngram);
    if (it != ref.end()) matches += std::min(count, it->second);
  }
  stats.push_back(ref_count > 0 ? hyp_count : 0);
  stats.push_back(ref_count);
  stats.push_back(matches);
}

std::vector<int64_t> segment_stats(const Segment& hyp, const Segment& ref, const ChrfOptions& opts) {
  std::vector<int64_t> stats;
  stats.reserve(3 * (opts.char_order + opts.word_order));
  for (int n = 1; n <= opts.char_order; ++n) match_stats(char_ngrams(hyp, n), char_ngrams(ref, n), stats);
  for (int n = 1; n <= opts.word_order; ++n) {
    match_stats(word_ngrams(hyp.words, n), word_ngrams(ref.words, n), stats);
  }
  return stats;
}

// CHRF._compute_f_score() without eps smoothing.
double f_score(const std::vector<int64_t>& stats, int beta) {
  const int factor = beta * beta;
  double avg_prec = 0.0, avg_rec = 0.0;
  int effective_order = 0;
  for (size_t i = 0; i + 2 < stats.size(); i += 3) {
    const int64_t n_hyp = stats[i], n_ref = stats[i + 1], n_match = stats[i + 2];
    if (n_hyp > 0 && n_ref > 0) {
      avg_prec += static_cast<double>(n_match) / static_cast<double>(n_hyp);
      avg_rec += static_cast<double>(n_match) / static_cast<double>(n_ref);
      ++effective_order;
    }
  }
  if (effective_order == 0) return 0.0;
  avg_prec /= effective_order;
  avg_rec /= effective_order;
  if (avg_prec + avg_rec == 0.0) return 0.0;
  double score = (1 + factor) * avg_prec * avg_rec;
  score /= (factor * avg_prec) + avg_rec;
  return 100 * score;
}

void check_options(const ChrfOptions& opts) {
  if (opts.char_order < 0 || opts.word_order < 0 || opts.char_order + opts.word_order == 0 || opts.beta < 0) {
    throw Error("chrF: invalid options (char_order " + std::to_string(opts.char_order) + ", word_order " +
                std::to_string(opts.word_order) + ", beta " + std::to_string(opts.beta) + ")");
  }
}

ChrfScore make_score(const std::vector<int64_t>& stats, const ChrfOptions& opts, size_t nrefs) {
  ChrfScore s;
  s.score = f_score(stats, opts.beta);
  s.name = "chrF" + std::to_string(opts.beta) + std::string(opts.word_order, '+');
  s.signature = "nrefs:" + std::to_string(nrefs) + "|case:" + (opts.lowercase ? "lc" : "mixed") +
                "|eff:yes|nc:" + std::to_string(opts.char_order) + "|nw:" + std::to_string(opts.word_order) +
                "|space:no|version:" + kSacrebleuVersion;
  return s;
}

}  // namespace

std::string ChrfScore::format(int width) const {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", width, score);
  return name + " = " + buf;
}

std::vector<double> chrf_sentence_stats(const std::string& hyp, const std::vector<std::string>& refs,
                                        const ChrfOptions& opts) {
  check_options(opts);
  if (refs.empty()) throw Error("chrF: no reference");
  const Segment h = preprocess(hyp, opts);
  std::vector<int64_t> best;
  double best_f = -1.0;
  for (const auto& ref : refs) {  // sacreBLEU keeps the statistics of the reference with the best F-score
    auto stats = segment_stats(h, preprocess(ref, opts), opts);
    const double f = f_score(stats, opts.beta);
    if (f > best_f) best_f = f, best = std::move(stats);
  }
  return std::vector<double>(best.begin(), best.end());
}

ChrfScore chrf_from_stats(const std::vector<double>& stats, const ChrfOptions& opts, size_t nrefs) {
  check_options(opts);
  if (stats.size() != static_cast<size_t>(3 * (opts.char_order + opts.word_order))) {
    throw Error("chrF: statistics of " + std::to_string(stats.size()) + " values do not fit the options");
  }
  return make_score(std::vector<int64_t>(stats.begin(), stats.end()), opts, nrefs);
}

ChrfScore corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                      const ChrfOptions& opts) {
  check_options(opts);
  const auto rows = sentence_stats(
      hyps, refs,
      [&](const std::string& hyp, const std::vector<std::string>& r) {
        return chrf_sentence_stats(hyp, r, opts);
      },
      "chrF");
  return chrf_from_stats(sum_rows(rows, static_cast<size_t>(3 * (opts.char_order + opts.word_order))), opts,
                         refs.size());
}

ChrfScore corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::string>& refs,
                      const ChrfOptions& opts) {
  return corpus_chrf(hyps, std::vector<std::vector<std::string>>{refs}, opts);
}

ChrfScore sentence_chrf(const std::string& hyp, const std::string& ref, const ChrfOptions& opts) {
  return chrf_from_stats(chrf_sentence_stats(hyp, {ref}, opts), opts, 1);
}

}  // namespace s2s::metrics
