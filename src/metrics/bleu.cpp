// BLEU as sacreBLEU 2.6.0 computes it; every floating-point step follows sacreBLEU's order of operations so
// that scores match to the last bit (see BLEU.compute_bleu in sacrebleu/metrics/bleu.py).
#include "metrics/bleu.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string_view>
#include <unordered_map>

#include "metrics/stats.h"
#include "metrics/tokenize_rules.h"
#include "util/error.h"
#include "util/text.h"

namespace s2s::metrics {
namespace {

using NgramMap = std::unordered_map<std::string_view, int64_t>;

// Segment statistics: lengths plus matches and totals per order (summed over the corpus).
struct Stats {
  int64_t sys_len = 0;          // hypothesis tokens
  int64_t ref_len = 0;          // reference tokens
  std::vector<int64_t> counts;  // clipped matches per order
  std::vector<int64_t> totals;  // hypothesis n-grams per order
};

// Python line.lower() (optional), rstrip() and tokenization; the result is tokens joined by single spaces.
std::string preprocess(std::string_view line, const BleuOptions& opts) {
  const std::string lowered = opts.lowercase ? text::to_lower(line) : std::string();
  const std::string_view stripped = text::rstrip(opts.lowercase ? std::string_view(lowered) : line);
  return opts.tokenize == "13a" ? tokenize_13a(stripped) : rules::join_words(stripped);
}

// Counts n-grams of orders 1..max_order of a space-joined token string; keys view into `line`.
std::vector<NgramMap> count_ngrams(const std::string& line, int max_order, int64_t* num_tokens) {
  std::vector<size_t> starts, ends;
  for (size_t pos = 0; pos < line.size();) {
    size_t end = line.find(' ', pos);
    if (end == std::string::npos) end = line.size();
    starts.push_back(pos);
    ends.push_back(end);
    pos = end + 1;
  }
  *num_tokens = static_cast<int64_t>(starts.size());
  std::vector<NgramMap> maps(max_order);
  for (int n = 1; n <= max_order; ++n) {
    for (size_t i = 0; i + n <= starts.size(); ++i) {
      ++maps[n - 1][std::string_view(line).substr(starts[i], ends[i + n - 1] - starts[i])];
    }
  }
  return maps;
}

// Statistics of one preprocessed hypothesis against its preprocessed references (sacreBLEU: n-gram counts
// clipped by their maximum over the references; the reference length closest to the hypothesis, the
// shorter one on a tie).
Stats segment_stats(const std::string& hyp, const std::vector<std::string>& refs, int max_order) {
  Stats st;
  const std::vector<NgramMap> hyp_ngrams = count_ngrams(hyp, max_order, &st.sys_len);
  std::vector<NgramMap> max_ref(max_order);  // keys view into `refs`
  int64_t best_len = -1;
  for (const auto& ref : refs) {
    int64_t len = 0;
    const std::vector<NgramMap> ngrams = count_ngrams(ref, max_order, &len);
    for (int n = 0; n < max_order; ++n) {
      for (const auto& [ngram, count] : ngrams[n]) {
        auto& m = max_ref[n][ngram];
        m = std::max(m, count);
      }
    }
    const auto distance = [&](int64_t l) { return std::abs(l - st.sys_len); };
    if (best_len < 0 || distance(len) < distance(best_len) ||
        (distance(len) == distance(best_len) && len < best_len)) {
      best_len = len;
    }
  }
  st.ref_len = std::max<int64_t>(best_len, 0);
  st.counts.assign(max_order, 0);
  st.totals.assign(max_order, 0);
  for (int n = 0; n < max_order; ++n) {
    for (const auto& [ngram, count] : hyp_ngrams[n]) {
      st.totals[n] += count;
      const auto it = max_ref[n].find(ngram);
      if (it != max_ref[n].end()) st.counts[n] += std::min(count, it->second);
    }
  }
  return st;
}

// Flat form of Stats: [sys_len, ref_len, counts..., totals...] (the rows that corpora and bootstrap sum).
std::vector<double> flatten(const Stats& st) {
  std::vector<double> row{static_cast<double>(st.sys_len), static_cast<double>(st.ref_len)};
  for (auto c : st.counts) row.push_back(static_cast<double>(c));
  for (auto t : st.totals) row.push_back(static_cast<double>(t));
  return row;
}

Stats unflatten(const std::vector<double>& row, int max_order) {
  if (row.size() != static_cast<size_t>(2 + 2 * max_order)) {
    throw Error("BLEU: statistics of " + std::to_string(row.size()) + " values, expected " +
                std::to_string(2 + 2 * max_order));
  }
  Stats st;
  st.sys_len = static_cast<int64_t>(row[0]), st.ref_len = static_cast<int64_t>(row[1]);
  for (int n = 0; n < max_order; ++n) {
    st.counts.push_back(static_cast<int64_t>(row[2 + n]));
    st.totals.push_back(static_cast<int64_t>(row[2 + max_order + n]));
  }
  return st;
}

// sacreBLEU's my_log(): log with 0 floored to -9999999999.
double floored_log(double x) {
  return x == 0.0 ? -9999999999.0 : std::log(x);
}

std::string signature(const BleuOptions& opts, size_t nrefs) {
  return "nrefs:" + std::to_string(nrefs) + "|case:" + (opts.lowercase ? "lc" : "mixed") +
         "|eff:" + (opts.effective_order ? "yes" : "no") + "|tok:" + opts.tokenize +
         "|smooth:exp|version:" + kSacrebleuVersion;
}

// BLEU.compute_bleu() with smooth_method='exp'.
BleuScore compute_bleu(const Stats& st, const BleuOptions& opts, size_t nrefs) {
  BleuScore s;
  s.sys_len = st.sys_len;
  s.ref_len = st.ref_len;
  s.counts = st.counts;
  s.totals = st.totals;
  s.signature = signature(opts, nrefs);
  s.ratio = st.ref_len > 0 ? static_cast<double>(st.sys_len) / static_cast<double>(st.ref_len) : 0.0;
  if (st.sys_len < st.ref_len) {
    s.bp = st.sys_len > 0 ? std::exp(1.0 - static_cast<double>(st.ref_len) / static_cast<double>(st.sys_len))
                          : 0.0;
  } else {
    s.bp = 1.0;
  }
  const int max_order = opts.max_order;
  s.precisions.assign(max_order, 0.0);
  bool any_match = false;
  for (int64_t c : st.counts) any_match = any_match || c != 0;
  if (!any_match) return s;  // score 0 and all precisions 0 (sacreBLEU's early stop)

  double smooth = 1.0;
  int eff_order = max_order;
  for (int n = 1; n <= max_order; ++n) {
    const auto total = static_cast<double>(st.totals[n - 1]);
    if (st.totals[n - 1] == 0) break;
    if (opts.effective_order) eff_order = n;
    if (st.counts[n - 1] == 0) {
      smooth *= 2;
      s.precisions[n - 1] = 100.0 / (smooth * total);
    } else {
      s.precisions[n - 1] = 100.0 * static_cast<double>(st.counts[n - 1]) / total;
    }
  }
  double log_sum = 0.0;
  for (int n = 0; n < eff_order; ++n) log_sum += floored_log(s.precisions[n]);
  s.score = s.bp * std::exp(log_sum / eff_order);
  return s;
}

void check_options(const BleuOptions& opts) {
  if (opts.max_order < 1) throw Error("BLEU: max_order must be >= 1, got " + std::to_string(opts.max_order));
  if (opts.tokenize != "13a" && opts.tokenize != "none") {
    throw Error("BLEU: unknown tokenizer '" + opts.tokenize + "' (expected 13a or none)");
  }
}

std::string fixed(double x, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, x);
  return buf;
}

}  // namespace

std::string BleuScore::verbose() const {
  std::string out;
  for (size_t i = 0; i < precisions.size(); ++i) out += (i > 0 ? "/" : "") + fixed(precisions[i], 1);
  return out + " (BP = " + fixed(bp, 3) + " ratio = " + fixed(ratio, 3) +
         " hyp_len = " + std::to_string(sys_len) + " ref_len = " + std::to_string(ref_len) + ")";
}

std::string BleuScore::format(int width) const {
  return "BLEU = " + fixed(score, width) + " " + verbose();
}

std::vector<double> bleu_sentence_stats(const std::string& hyp, const std::vector<std::string>& refs,
                                        const BleuOptions& opts) {
  check_options(opts);
  if (refs.empty()) throw Error("BLEU: no reference");
  std::vector<std::string> prepared;
  for (const auto& ref : refs) prepared.push_back(preprocess(ref, opts));
  return flatten(segment_stats(preprocess(hyp, opts), prepared, opts.max_order));
}

BleuScore bleu_from_stats(const std::vector<double>& stats, const BleuOptions& opts, size_t nrefs) {
  check_options(opts);
  return compute_bleu(unflatten(stats, opts.max_order), opts, nrefs);
}

BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                      const BleuOptions& opts) {
  const auto rows = sentence_stats(
      hyps, refs,
      [&](const std::string& hyp, const std::vector<std::string>& r) {
        return bleu_sentence_stats(hyp, r, opts);
      },
      "BLEU");
  return bleu_from_stats(sum_rows(rows, static_cast<size_t>(2 + 2 * opts.max_order)), opts, refs.size());
}

BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs,
                      const BleuOptions& opts) {
  return corpus_bleu(hyps, std::vector<std::vector<std::string>>{refs}, opts);
}

BleuScore sentence_bleu(const std::string& hyp, const std::string& ref, const BleuOptions& opts) {
  return bleu_from_stats(bleu_sentence_stats(hyp, {ref}, opts), opts, 1);
}

std::string tokenize_13a(std::string_view line) {
  // Language-independent part (mteval-v13a).
  std::string s(line);
  rules::replace_all(s, "<skipped>", "");
  rules::replace_all(s, "-\n", "");
  rules::replace_all(s, "\n", " ");
  if (s.find('&') != std::string::npos) {
    rules::replace_all(s, "&quot;", "\"");
    rules::replace_all(s, "&amp;", "&");
    rules::replace_all(s, "&lt;", "<");
    rules::replace_all(s, "&gt;", ">");
  }
  // The regex passes run on " " + line + " ", in sacreBLEU's order.
  return rules::join_words(rules::split_dots_commas_dashes(rules::pad_symbols(s)));
}

std::vector<std::string> read_lines_for_scoring(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw Error("cannot read '" + path.string() + "': is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read '" + path.string() + "': no such file or not readable");
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw Error("cannot read '" + path.string() + "': I/O error");
  const std::string data = buf.str();
  std::vector<std::string> lines;
  for (size_t pos = 0; pos < data.size();) {
    size_t end = data.find('\n', pos);
    if (end == std::string::npos) end = data.size();
    std::string line = data.substr(pos, end - pos);
    if (!text::is_valid_utf8(line)) line = text::encode_utf8(text::decode_utf8(line));
    lines.emplace_back(text::rstrip(line));
    pos = end + 1;
  }
  return lines;
}

}  // namespace s2s::metrics
