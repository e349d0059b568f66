// Translator: raw text lines in, one output line per input line out, in input order, whatever the input.
// Lines are sanitized (CR, NUL, invalid UTF-8), cropped to max_length tokens, sorted by length inside a
// read-ahead window for batching and restored to input order. The model side is an Engine (LibTorch or
// the native CPU engine).
#pragma once

#include <filesystem>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "config/types.h"
#include "data/shortlist.h"
#include "data/tokenizer.h"
#include "decode/engine.h"

namespace s2s {

struct TranslateOptions {
  SearchOptions search;        // beam size, n-best, normalization, length limit
  int batch_size = 64;         // sentences per batch
  int batch_tokens = 0;        // source tokens per batch instead (0 = use batch_size)
  int max_length = 256;        // input tokens kept per line (longer lines are cropped with a warning)
  int read_ahead = 1000;       // lines sorted together by length
  int workers = 1;             // batches translated concurrently (CPU), each on its own thread
  int threads_per_worker = 1;  // intra-op threads of each worker (when workers > 1)
  bool scores = false;         // append " ||| F0= score ||| normalized" to 1-best lines
  Alignment alignment = Alignment::kNone;      // append attention alignments (hard: Moses-style i-j pairs)
  bool spm_decode = true;                      // false: print the target pieces, space-separated
  std::shared_ptr<const Shortlist> shortlist;  // restrict the output layer to shortlist candidates (optional)
};

// Sentences per batch when the config leaves it to us: on a CPU about 80 hypothesis rows (16 sentences at
// beam 5, 64 greedy, 8 at least), so that a decoder step's working set (gate products, logits) stays in the
// core's L2 cache: 1.1-1.9x faster than 64 sentences at beam 5 and 40 MB less memory (docs/BENCHMARKS.md,
// session 16). 64 on a GPU.
int auto_batch_size(int beam_size, bool cpu);

class Translator {
 public:
  Translator(std::shared_ptr<Engine> engine, std::shared_ptr<const Tokenizer> src_tok,
             std::shared_ptr<const Tokenizer> tgt_tok, TranslateOptions options);

  // N-best hypotheses per line, input order; `first_line` numbers lines in warnings (1-based).
  std::vector<std::vector<Hypothesis>> translate_lines(const std::vector<std::string>& lines,
                                                       int64_t first_line = 1);
  // Forced decoding of (source, target) line pairs, input order: the log-probability of every target token,
  // EOS last, over the full vocabulary. An empty source line gets no scores (an empty vector).
  std::vector<std::vector<float>> score_lines(const std::vector<std::string>& sources,
                                              const std::vector<std::string>& targets,
                                              int64_t first_line = 1);
  // 1-best detokenized translations, input order.
  std::vector<std::string> translate(const std::vector<std::string>& lines);
  // The output line(s) for one input line (n-best: one per hypothesis, Moses format, 0-based `id`).
  std::string format(int64_t id, const std::vector<Hypothesis>& hyps) const;
  // Reads `in_fd` until EOF, writes to `out` (named `out_name` in errors); answers each line as soon as no
  // more input is pending. Returns the number of lines translated.
  int64_t translate_stream(int in_fd, std::ostream& out, const std::string& out_name = "standard output");

  std::string detokenize(const Hypothesis& h) const;

  // Totals over every call so far, for the timing summary.
  struct Stats {
    int64_t lines = 0;       // input lines (empty ones included)
    int64_t src_tokens = 0;  // subword tokens read
    int64_t tgt_tokens = 0;  // subword tokens of the 1-best outputs (EOS excluded)
  };
  const Stats& stats() const { return stats_; }

 private:
  // A line's token ids: sanitized, cropped to max_length (with a warning), empty for a blank line.
  std::vector<int32_t> prepare(std::string line, int64_t line_no, const Tokenizer& tok,
                               const char* what = "input") const;
  // Runs fn(batch begin, end) over `order` cut into batches by `lengths`, on the configured workers.
  void run_batches(const std::vector<size_t>& lengths, const std::vector<size_t>& order,
                   const std::function<void(size_t, size_t)>& fn);
  // One batch of token ids (similar lengths) -> n-best hypotheses per sentence.
  std::vector<std::vector<Hypothesis>> translate_batch(const std::vector<std::vector<int32_t>>& batch);

  std::shared_ptr<Engine> engine_;
  std::shared_ptr<const Tokenizer> src_tok_, tgt_tok_;
  TranslateOptions options_;
  Stats stats_;
};

}  // namespace s2s
