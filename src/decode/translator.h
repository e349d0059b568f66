// Translator: raw text lines in, one output line per input line out, in input order, whatever the input.
// Lines are sanitized (CR, NUL, invalid UTF-8), cropped to max_length tokens, sorted by length inside a
// read-ahead window for batching and restored to input order.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/shortlist.h"
#include "data/tokenizer.h"
#include "decode/search.h"
#include "model/seq2seq.h"

namespace s2s {

struct TranslateOptions {
  SearchOptions search;        // beam size, n-best, normalization, length limit
  int batch_size = 64;         // sentences per batch
  int batch_tokens = 0;        // source tokens per batch instead (0 = use batch_size)
  int max_length = 256;        // input tokens kept per line (longer lines are cropped with a warning)
  int read_ahead = 1000;       // lines sorted together by length
  int workers = 1;             // batches translated concurrently (CPU), each on its own thread
  int threads_per_worker = 1;  // intra-op threads of each worker (when workers > 1)
  bool bf16 = false;      // bf16 matmuls: autocast when the weights are float32 (validation during training)
  bool scores = false;    // append " ||| F0= score ||| normalized" to 1-best lines
  std::string alignment;  // "" | hard | soft: append attention alignments
  std::shared_ptr<const Shortlist> shortlist;  // restrict the output layer to shortlist candidates (optional)
};

// A trained model with its tokenizers, as stored in a model directory.
struct ModelBundle {
  Config config;                             // the model dir's config.yml
  Seq2Seq model{nullptr};                    // weights loaded, eval mode
  std::shared_ptr<const Tokenizer> src_tok;  // source SentencePiece model
  std::shared_ptr<const Tokenizer> tgt_tok;  // target SentencePiece model (same object when joint)
  torch::Device device{torch::kCPU};         // where the model lives
};

// Loads config.yml, the SentencePiece model(s) and best.bin (or last.pt) from `dir`. With
// weights = kBFloat16 the parameters are converted once after loading (half the memory, no casts per step).
ModelBundle load_model_dir(const std::filesystem::path& dir, const torch::Device& device,
                           torch::Dtype weights = torch::kFloat);

// Whether bf16 matmuls need CPU/GPU autocast for this model: only while its weights are still float32
// (validation during training); weights converted at load run in bf16 natively.
bool needs_autocast(bool bf16, const Seq2SeqImpl& model);

// Tokenizer paths of a model dir for a config ({joint, joint} or {src, tgt}).
std::pair<std::filesystem::path, std::filesystem::path> tokenizer_paths(const std::filesystem::path& dir,
                                                                        const Config& config);

class Translator {
 public:
  Translator(Seq2Seq model, std::shared_ptr<const Tokenizer> src_tok,
             std::shared_ptr<const Tokenizer> tgt_tok, torch::Device device, TranslateOptions options);

  // N-best hypotheses per line, input order; `first_line` numbers lines in warnings (1-based).
  std::vector<std::vector<Hypothesis>> translate_lines(const std::vector<std::string>& lines,
                                                       int64_t first_line = 1);
  // 1-best detokenized translations, input order.
  std::vector<std::string> translate(const std::vector<std::string>& lines);
  // The output line(s) for one input line (n-best: one per hypothesis, Moses format, 0-based `id`).
  std::string format(int64_t id, const std::vector<Hypothesis>& hyps) const;
  // Reads `in_fd` until EOF, writes to `out`; answers each line as soon as no more input is pending.
  // Returns the number of lines translated.
  int64_t translate_stream(int in_fd, std::ostream& out);

  std::string detokenize(const Hypothesis& h) const;

 private:
  std::vector<int32_t> prepare(std::string line, int64_t line_no) const;
  // One batch of token ids (similar lengths) -> n-best hypotheses per sentence.
  std::vector<std::vector<Hypothesis>> translate_batch(const std::vector<std::vector<int32_t>>& batch);

  Seq2Seq model_;
  std::shared_ptr<const Tokenizer> src_tok_, tgt_tok_;
  torch::Device device_;
  TranslateOptions options_;
};

}  // namespace s2s
