// TER (translation edit rate) that reproduces sacreBLEU 2.6.0's TER exactly: tercom tokenization, a
// beam-limited word edit distance plus greedy block shifts (sacrebleu/metrics/lib_ter.py), best reference per
// line, multiple references.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace s2s::metrics {

struct TerOptions {
  bool case_sensitive = false;  // keep case (by default both sides are lowercased with Python str.lower())
  bool normalized = false;      // tercom normalization: unescape &quot; &amp; &lt; &gt;, split punctuation
  bool no_punct = false;        // remove . , ? : ; ! " ( ) (and CJK punctuation with asian_support)
  bool asian_support = false;   // with normalized: split CJK characters; with no_punct: drop CJK punctuation
};

struct TerScore {
  double score = 0.0;       // TER in percent (above 100 when there are more edits than reference words)
  double num_edits = 0.0;   // edits summed over lines (fewest over the references; a block shift is one edit)
  double ref_length = 0.0;  // reference words summed over lines (averaged over the references of a line)
  std::string signature;    // e.g. "nrefs:1|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:2.6.0"

  // sacreBLEU's line, e.g. "TER = 57.30".
  std::string format(int width = 2) const;
};

// Corpus TER: refs holds one stream per reference, each line-aligned with hyps (refs.size() >= 1).
// Throws s2s::Error when there is no reference stream or a stream's line count differs from hyps.
TerScore corpus_ter(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                    const TerOptions& opts = {});

// Sufficient statistics of one sentence ([edits against the closest reference, mean reference length]) and
// the score of summed statistics (metrics/stats.h): corpus_ter is ter_from_stats of the summed rows.
std::vector<double> ter_sentence_stats(const std::string& hyp, const std::vector<std::string>& refs,
                                       const TerOptions& opts);
TerScore ter_from_stats(const std::vector<double>& stats, const TerOptions& opts, size_t nrefs);

// TER of one hypothesis against one or more references (sacreBLEU's TER().sentence_score).
TerScore sentence_ter(const std::string& hyp, const std::vector<std::string>& refs,
                      const TerOptions& opts = {});

// sacreBLEU's TercomTokenizer applied to a Python-rstripped line: returns the words joined by single spaces.
std::string tokenize_tercom(std::string_view line, const TerOptions& opts = {});

}  // namespace s2s::metrics
