// TER as sacreBLEU 2.6.0 computes it (sacrebleu/metrics/ter.py, lib_ter.py, tokenizers/tokenizer_ter.py).
// The edit distance and the shift search follow lib_ter.py step by step: same beam, same tie-breaking between
// operations, same order of shift candidates, same ranking and the same limits. sacreBLEU's row cache only
// saves time (every row depends on the hypothesis prefix alone), so here a shifted hypothesis instead reuses
// the rows of the unshifted one up to the first word the shift moves.
#include "metrics/ter.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <unordered_map>
#include <utility>

#include "metrics/bleu.h"  // kSacrebleuVersion
#include "metrics/tokenize_rules.h"
#include "util/error.h"
#include "util/text.h"

namespace s2s::metrics {
namespace {

// ---------------------------------------------------------------- tercom tokenizer

// _normalize_general_and_western(), in sacreBLEU's order.
std::string normalize_western(std::string s) {
  rules::replace_all(s, "\n-", "");
  rules::replace_all(s, "\n", " ");
  rules::replace_all(s, "&quot;", "\"");
  rules::replace_all(s, "&amp;", "&");
  rules::replace_all(s, "&lt;", "<");
  rules::replace_all(s, "&gt;", ">");
  std::string padded = rules::pad_symbols(s);
  // Possessives. The second rule ("'s$") never fires: the padded line ends with a space.
  rules::replace_all(padded, "'s ", " 's ");
  return rules::split_dots_commas_dashes(padded);
}

bool in_range(char32_t c, char32_t lo, char32_t hi) {
  return c >= lo && c <= hi;
}

// TercomTokenizer.ASIAN_PUNCT and FULL_WIDTH_PUNCT.
bool is_asian_punct(char32_t c) {
  return c == 0x3001 || c == 0x3002 || in_range(c, 0x3008, 0x3011) || in_range(c, 0x3014, 0x301F) ||
         in_range(c, 0xFF61, 0xFF65) || c == 0x30FB || c == 0xFF0E || c == 0xFF0C || c == 0xFF1F ||
         c == 0xFF1A || c == 0xFF1B || c == 0xFF01 || c == 0xFF02 || c == 0xFF08 || c == 0xFF09;
}

// Ideographs and other CJK blocks that _normalize_asian() splits into single-character words.
bool is_cjk_split(char32_t c) {
  return in_range(c, 0x4E00, 0x9FFF) || in_range(c, 0x3400, 0x4DBF) || in_range(c, 0x31C0, 0x31EF) ||
         in_range(c, 0x2E80, 0x2EFF) || in_range(c, 0x3300, 0x33FF) || in_range(c, 0xF900, 0xFAFF) ||
         in_range(c, 0xFE30, 0xFE4F) || in_range(c, 0x3200, 0x3F22);
}

// _normalize_asian(): pads CJK characters and CJK punctuation with spaces. Its Hiragana/Katakana rules are
// anchored at the start of the line, which after western normalization is always a space, so they never fire.
std::string split_asian(const std::string& s) {
  std::u32string out;
  for (char32_t c : text::decode_utf8(s)) {
    if (is_cjk_split(c) || is_asian_punct(c)) {
      out += U' ';
      out += c;
      out += U' ';
    } else {
      out += c;
    }
  }
  return text::encode_utf8(out);
}

// _remove_punct(): [\.,\?:;!\"\(\)] -> "".
void remove_punct(std::string& s) {
  s.erase(
      std::remove_if(s.begin(), s.end(),
                     [](char c) { return std::string_view(".,?:;!\"()").find(c) != std::string_view::npos; }),
      s.end());
}

// _remove_asian_punct().
std::string remove_asian_punct(const std::string& s) {
  std::u32string cps = text::decode_utf8(s);
  cps.erase(std::remove_if(cps.begin(), cps.end(), is_asian_punct), cps.end());
  return text::encode_utf8(cps);
}

// TER._preprocess_segment(): Python rstrip(), then TercomTokenizer, then str.split().
std::vector<std::string> tercom_words(std::string_view line, const TerOptions& opts) {
  std::string s = text::is_valid_utf8(line) ? std::string(line) : text::encode_utf8(text::decode_utf8(line));
  s.resize(text::rstrip(s).size());
  if (s.empty()) return {};
  if (!opts.case_sensitive) s = text::to_lower(s);
  if (opts.normalized) {
    s = normalize_western(std::move(s));
    if (opts.asian_support) s = split_asian(s);
  }
  if (opts.no_punct) {
    remove_punct(s);
    if (opts.asian_support) s = remove_asian_punct(s);
  }
  return text::split_whitespace(s);
}

// ---------------------------------------------------------------- edit distance (lib_ter.py)

constexpr int kMaxShiftSize = 10;                 // longest block a shift moves (Tercom)
constexpr int kMaxShiftDist = 50;                 // largest |ref start - hyp start| of a block (Tercom)
constexpr int64_t kBeamWidth = 25;                // band half-width around the pseudo-diagonal (Tercom)
constexpr int kMaxShiftCandidates = 1000;         // shifted hypotheses evaluated per sentence pair
constexpr int64_t kInfinity = 10000000000000000;  // int(1e16): cost of cells outside the band

using Words = std::vector<int>;  // words as per-line ids (only equality matters)

// Operation that reaches a matrix cell, rewriting the hypothesis into the reference.
enum class Op : uint8_t {
  kNop,    // words match (diagonal)
  kSub,    // substitution (diagonal)
  kIns,    // reference word without hypothesis word (left)
  kDel,    // hypothesis word without reference word (up)
  kUndef,  // outside the band
};

// lib_ter.py's BeamEditDistance for a fixed reference. Row i holds the costs of rewriting the first i
// hypothesis words into each reference prefix (column j = j reference words); only a band around the
// pseudo-diagonal j = floor(i * n_ref / n_hyp) is filled, the other cells stay kInfinity. The last row is
// full.
class BeamEditDistance {
 public:
  explicit BeamEditDistance(const Words& ref) : ref_(ref), width_(ref.size() + 1) {}

  // Fills the whole matrix for `hyp` (kept as the base that distance() reuses). Returns the distance and
  // sets `trace` to the operations along the best path, in hypothesis order.
  int64_t set_base(const Words& hyp, std::vector<Op>* trace) {
    const size_t n = hyp.size();
    cost_.assign((n + 1) * width_, kInfinity);
    ops_.assign((n + 1) * width_, Op::kUndef);
    for (size_t j = 0; j < width_; ++j) {  // row 0: insert j reference words
      cost_[j] = static_cast<int64_t>(j);
      ops_[j] = Op::kIns;
    }
    for (size_t i = 1; i <= n; ++i) {
      fill_row(i, n, hyp[i - 1], &cost_[(i - 1) * width_], &cost_[i * width_], &ops_[i * width_]);
    }
    // Walk back from the bottom-right cell.
    trace->clear();
    size_t i = n, j = width_ - 1;
    while (i > 0 || j > 0) {
      const Op op = ops_[i * width_ + j];
      trace->push_back(op);
      if (op == Op::kNop || op == Op::kSub) {
        --i, --j;
      } else if (op == Op::kIns) {
        --j;
      } else if (op == Op::kDel) {
        --i;
      } else {
        throw Error("TER: the edit-distance beam lost the path (hypothesis of " + std::to_string(n) +
                    " words, reference of " + std::to_string(width_ - 1) + ")");
      }
    }
    std::reverse(trace->begin(), trace->end());
    return cost_[n * width_ + width_ - 1];
  }

  // Distance of `hyp` (as long as the base) whose first `prefix` words equal the base's: rows up to `prefix`
  // are the base's.
  int64_t distance(const Words& hyp, size_t prefix) {
    const size_t n = hyp.size();
    if (prefix >= n) return cost_[n * width_ + width_ - 1];
    prev_.assign(cost_.begin() + static_cast<std::ptrdiff_t>(prefix * width_),
                 cost_.begin() + static_cast<std::ptrdiff_t>((prefix + 1) * width_));
    for (size_t i = prefix + 1; i <= n; ++i) {
      cur_.assign(width_, kInfinity);
      fill_row(i, n, hyp[i - 1], prev_.data(), cur_.data(), nullptr);
      prev_.swap(cur_);
    }
    return prev_[width_ - 1];
  }

 private:
  // Computes row i (1 <= i <= n) for hypothesis word `word` from row i - 1. `cur` holds kInfinity on entry;
  // `ops` (optional) receives the operation of every filled cell. On equal costs the diagonal wins, then
  // deletion, then insertion (lib_ter.py's order, chosen so that the flipped trace matches Tercom's).
  void fill_row(size_t i, size_t n, int word, const int64_t* prev, int64_t* cur, Op* ops) const {
    const double ratio = n > 0 ? static_cast<double>(width_ - 1) / static_cast<double>(n) : 1.0;
    // Very unequal lengths widen the band so that consecutive rows still overlap.
    const int64_t beam =
        kBeamWidth < ratio / 2 ? static_cast<int64_t>(std::ceil(ratio / 2 + kBeamWidth)) : kBeamWidth;
    const auto diag = static_cast<int64_t>(std::floor(static_cast<double>(i) * ratio));
    const auto width = static_cast<int64_t>(width_);
    const int64_t begin = std::max<int64_t>(0, diag - beam);
    const int64_t end = i == n ? width : std::min(width, diag + beam);
    for (int64_t j = begin; j < end; ++j) {
      if (j == 0) {
        cur[0] = prev[0] + 1;
        if (ops) ops[0] = Op::kDel;
        continue;
      }
      const bool match = word == ref_[j - 1];
      const int64_t options[3] = {prev[j - 1] + (match ? 0 : 1), prev[j] + 1, cur[j - 1] + 1};
      const Op names[3] = {match ? Op::kNop : Op::kSub, Op::kDel, Op::kIns};
      for (int k = 0; k < 3; ++k) {
        if (cur[j] > options[k]) {
          cur[j] = options[k];
          if (ops) ops[j] = names[k];
        }
      }
    }
  }

  const Words& ref_;
  size_t width_;                     // reference words + 1
  std::vector<int64_t> cost_;        // base matrix, (n_hyp + 1) rows of width_
  std::vector<Op> ops_;              // operation that reached each base cell
  std::vector<int64_t> prev_, cur_;  // rolling rows of distance()
};

// lib_ter.py's trace_to_alignment() of the flipped trace, with error counts as prefix sums.
struct Alignment {
  std::vector<int> ref_to_hyp;  // per reference word: its aligned hypothesis word, or the last one before it
                                // (-1 when none precedes it)
  std::vector<int> hyp_errors;  // hyp_errors[k]: hypothesis words among the first k that are not matches
  std::vector<int> ref_errors;  // ref_errors[k]: the same for the first k reference words

  bool hyp_has_error(int start, int len) const { return hyp_errors[start + len] > hyp_errors[start]; }
  bool ref_has_error(int start, int len) const { return ref_errors[start + len] > ref_errors[start]; }
};

Alignment align_trace(const std::vector<Op>& trace) {
  Alignment al;
  al.hyp_errors.push_back(0);
  al.ref_errors.push_back(0);
  int hyp_pos = -1;
  for (Op op : trace) {
    if (op == Op::kNop || op == Op::kSub) {
      const int err = op == Op::kSub ? 1 : 0;
      al.ref_to_hyp.push_back(++hyp_pos);
      al.hyp_errors.push_back(al.hyp_errors.back() + err);
      al.ref_errors.push_back(al.ref_errors.back() + err);
    } else if (op == Op::kDel) {  // extra hypothesis word
      ++hyp_pos;
      al.hyp_errors.push_back(al.hyp_errors.back() + 1);
    } else {  // missing reference word: aligned to the hypothesis word before it
      al.ref_to_hyp.push_back(hyp_pos);
      al.ref_errors.push_back(al.ref_errors.back() + 1);
    }
  }
  return al;
}

// lib_ter.py's _perform_shift(): moves words[start, start + len) so that it begins before words[target].
void perform_shift(const Words& words, int start, int len, int target, Words* out) {
  const auto put = [&](int begin, int end) {
    out->insert(out->end(), words.begin() + begin, words.begin() + end);
  };
  const int n = static_cast<int>(words.size());
  out->clear();
  if (target < start) {
    put(0, target), put(start, start + len), put(target, start), put(start + len, n);
  } else if (target > start + len) {
    put(0, start), put(start + len, target), put(start, start + len), put(target, n);
  } else {
    // A target inside [start, start + len] moves the block past the `target - start` words that follow it
    // (Python slices clamp at the end of the list).
    const int mid = std::min(target + len, n);
    put(0, start), put(start + len, mid), put(start, start + len), put(mid, n);
  }
}

// A shift candidate, ranked as Tercom does: largest gain, then longest block, then earliest hypothesis start,
// then earliest target.
struct Shift {
  int64_t gain = 0;  // edit distance before minus after the shift
  int len = 0;
  int start = 0;
  int target = 0;

  bool ranks_above(const Shift& o) const {
    if (gain != o.gain) return gain > o.gain;
    if (len != o.len) return len > o.len;
    if (start != o.start) return start < o.start;
    return target < o.target;
  }
};

struct ShiftSearch {
  int64_t distance = 0;  // edit distance of the hypothesis searched
  int64_t gain = 0;      // gain of the best shift (0 when there is no candidate)
  Words shifted;         // hypothesis after the best shift
};

// lib_ter.py's _shift(): evaluates every block that matches the reference somewhere else and is wrong where
// it is, moved in front of the hypothesis word aligned to each reference position from just before the match
// to its last word. `checked` counts evaluated candidates over the whole sentence pair; the search stops
// after the block during which it reaches kMaxShiftCandidates (only to save time: the caller then drops the
// result of this round anyway).
ShiftSearch best_shift(const Words& hyp, const Words& ref, BeamEditDistance& ed, int* checked) {
  std::vector<Op> trace;
  ShiftSearch res;
  res.distance = ed.set_base(hyp, &trace);
  const Alignment al = align_trace(trace);
  const int n_hyp = static_cast<int>(hyp.size());
  const int n_ref = static_cast<int>(ref.size());
  Shift best;
  bool found = false;
  Words candidate;
  bool budget_spent = false;
  for (int sh = 0; sh < n_hyp && !budget_spent; ++sh) {
    for (int sr = 0; sr < n_ref && !budget_spent; ++sr) {
      if (std::abs(sr - sh) > kMaxShiftDist) continue;
      // Blocks hyp[sh, sh + len) == ref[sr, sr + len), shortest first.
      for (int len = 1; !budget_spent && len <= kMaxShiftSize && sh + len <= n_hyp && sr + len <= n_ref &&
                        hyp[sh + len - 1] == ref[sr + len - 1];
           ++len) {
        if (!al.hyp_has_error(sh, len) || !al.ref_has_error(sr, len)) continue;
        const int aligned = al.ref_to_hyp[sr];
        if (sh <= aligned && aligned < sh + len) continue;  // would shift within the block itself
        int prev_target = -1;
        for (int r = sr - 1; r < sr + len && r < n_ref; ++r) {
          const int target = r < 0 ? 0 : al.ref_to_hyp[r] + 1;  // insert before this hypothesis position
          if (target == prev_target) continue;  // alignment is monotone: repeats are consecutive
          prev_target = target;
          perform_shift(hyp, sh, len, target, &candidate);
          // The shifted words agree with `hyp` before min(sh, target).
          const Shift shift{res.distance - ed.distance(candidate, static_cast<size_t>(std::min(sh, target))),
                            len, sh, target};
          ++*checked;
          if (!found || shift.ranks_above(best)) best = shift, found = true;
        }
        budget_spent = *checked >= kMaxShiftCandidates;
      }
    }
  }
  if (found) {
    res.gain = best.gain;
    perform_shift(hyp, best.start, best.len, best.target, &res.shifted);
  }
  return res;
}

struct EditCount {
  int64_t edits = 0;    // shifts + edit distance after the shifts
  int64_t ref_len = 0;  // reference words
};

// lib_ter.py's translation_edit_rate(): greedy shifts while they reduce the edit distance.
EditCount translation_edit_rate(const Words& hyp, const Words& ref) {
  if (ref.empty()) return {static_cast<int64_t>(hyp.size()), 0};
  BeamEditDistance ed(ref);
  Words words = hyp;
  int64_t shifts = 0;
  int checked = 0;
  while (true) {
    ShiftSearch s = best_shift(words, ref, ed, &checked);
    // Once the candidate budget is spent the best shift of this round is dropped, as in lib_ter.py.
    if (checked >= kMaxShiftCandidates || s.gain <= 0) {
      return {shifts + s.distance, static_cast<int64_t>(ref.size())};
    }
    ++shifts;
    words = std::move(s.shifted);
  }
}

// ---------------------------------------------------------------- corpus statistics (ter.py)

// Maps the words of one line (hypothesis and references) to ids.
class WordIds {
 public:
  Words encode(const std::vector<std::string>& words) {
    Words out;
    out.reserve(words.size());
    for (const std::string& w : words) {
      out.push_back(ids_.emplace(w, static_cast<int>(ids_.size())).first->second);
    }
    return out;
  }

 private:
  std::unordered_map<std::string, int> ids_;
};

struct LineStats {
  int64_t edits = 0;        // edits against the closest reference
  double ref_length = 0.0;  // mean reference length
};

// TER._compute_segment_statistics().
LineStats line_stats(std::string_view hyp, const std::vector<std::string_view>& refs,
                     const TerOptions& opts) {
  WordIds ids;
  const Words hyp_words = ids.encode(tercom_words(hyp, opts));
  LineStats st;
  st.edits = std::numeric_limits<int64_t>::max();
  int64_t ref_words = 0;
  for (std::string_view ref : refs) {
    const EditCount c = translation_edit_rate(hyp_words, ids.encode(tercom_words(ref, opts)));
    ref_words += c.ref_len;
    st.edits = std::min(st.edits, c.edits);
  }
  st.ref_length = static_cast<double>(ref_words) / static_cast<double>(refs.size());
  return st;
}

std::string signature(size_t num_refs, const TerOptions& opts) {
  const auto yes_no = [](bool b) { return b ? "yes" : "no"; };
  return "nrefs:" + std::to_string(num_refs) + "|case:" + (opts.case_sensitive ? "mixed" : "lc") +
         "|tok:tercom|norm:" + yes_no(opts.normalized) + "|punct:" + yes_no(!opts.no_punct) +
         "|asian:" + yes_no(opts.asian_support) + "|version:" + kSacrebleuVersion;
}

// TER._compute_score_from_stats().
TerScore make_score(double edits, double ref_length, size_t num_refs, const TerOptions& opts) {
  TerScore s;
  s.num_edits = edits;
  s.ref_length = ref_length;
  double rate = 0.0;  // both reference(s) and hypothesis empty
  if (ref_length > 0) {
    rate = edits / ref_length;
  } else if (edits > 0) {
    rate = 1.0;  // empty reference(s), non-empty hypothesis
  }
  s.score = 100 * rate;
  s.signature = signature(num_refs, opts);
  return s;
}

}  // namespace

std::string TerScore::format(int width) const {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "TER = %.*f", width, score);
  return buf;
}

TerScore corpus_ter(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                    const TerOptions& opts) {
  if (refs.empty()) throw Error("TER: no reference given (pass at least one reference stream)");
  for (size_t k = 0; k < refs.size(); ++k) {
    if (refs[k].size() != hyps.size()) {
      throw Error("TER: the hypothesis has " + std::to_string(hyps.size()) + " lines but reference " +
                  std::to_string(k + 1) + " has " + std::to_string(refs[k].size()));
    }
  }
  int64_t edits = 0;
  double ref_length = 0.0;
  std::vector<std::string_view> line_refs(refs.size());
  for (size_t i = 0; i < hyps.size(); ++i) {
    for (size_t k = 0; k < refs.size(); ++k) line_refs[k] = refs[k][i];
    const LineStats st = line_stats(hyps[i], line_refs, opts);
    edits += st.edits;
    ref_length += st.ref_length;
  }
  return make_score(static_cast<double>(edits), ref_length, refs.size(), opts);
}

std::vector<double> ter_sentence_stats(const std::string& hyp, const std::vector<std::string>& refs,
                                       const TerOptions& opts) {
  if (refs.empty()) throw Error("TER: no reference given for the sentence (pass at least one)");
  const LineStats st = line_stats(hyp, std::vector<std::string_view>(refs.begin(), refs.end()), opts);
  return {static_cast<double>(st.edits), st.ref_length};
}

TerScore ter_from_stats(const std::vector<double>& stats, const TerOptions& opts, size_t nrefs) {
  if (stats.size() != 2) {
    throw Error("TER: expected 2 statistics (edits, reference length), got " + std::to_string(stats.size()));
  }
  return make_score(stats[0], stats[1], nrefs, opts);
}

TerScore sentence_ter(const std::string& hyp, const std::vector<std::string>& refs, const TerOptions& opts) {
  return ter_from_stats(ter_sentence_stats(hyp, refs, opts), opts, refs.size());
}

std::string tokenize_tercom(std::string_view line, const TerOptions& opts) {
  std::string out;
  for (const std::string& w : tercom_words(line, opts)) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

}  // namespace s2s::metrics
