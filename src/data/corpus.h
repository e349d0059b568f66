// Parallel corpus: reads raw line-aligned files, validates and filters pairs, encodes them with
// SentencePiece and stores token ids in two flat arrays (a few hundred thousand pairs fit easily).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace s2s {

class Tokenizer;

// Token sequences stored back to back: sentence i is ids[offsets[i] .. offsets[i+1]).
class TokenStore {
 public:
  TokenStore() : offsets_{0} {}
  void add(const std::vector<int>& ids);
  size_t size() const { return offsets_.size() - 1; }
  int64_t length(size_t i) const { return offsets_[i + 1] - offsets_[i]; }
  const int32_t* data(size_t i) const { return ids_.data() + offsets_[i]; }
  std::vector<int32_t> get(size_t i) const { return {data(i), data(i) + length(i)}; }
  int64_t total_tokens() const { return offsets_.back(); }

 private:
  std::vector<int32_t> ids_;      // all token ids
  std::vector<int64_t> offsets_;  // size() + 1 entries
};

struct CorpusOptions {
  int max_length = 100;           // drop pairs with more tokens than this on either side
  bool skip_invalid_utf8 = true;  // skip (and warn about) invalid UTF-8 lines; false: throw
  int64_t max_pairs = 0;          // read only the first N pairs (0 = all)
};

struct CorpusStats {
  int64_t read = 0;          // line pairs read
  int64_t kept = 0;          // pairs kept
  int64_t empty = 0;         // dropped: empty (or whitespace-only) on either side
  int64_t too_long = 0;      // dropped: longer than max_length tokens on either side
  int64_t invalid_utf8 = 0;  // dropped: invalid UTF-8 on either side
};

struct ParallelCorpus {
  TokenStore src;     // source token ids (no BOS/EOS)
  TokenStore tgt;     // target token ids (no BOS/EOS)
  CorpusStats stats;  // what was read and dropped
  size_t size() const { return src.size(); }
};

// Reads and encodes a parallel corpus. Throws s2s::Error when a file is missing, the line counts differ
// (naming both files and counts) or, with skip_invalid_utf8 = false, at the first invalid line (file:line).
ParallelCorpus load_parallel(const std::filesystem::path& src_file, const std::filesystem::path& tgt_file,
                             const Tokenizer& src_tok, const Tokenizer& tgt_tok,
                             const CorpusOptions& options);

// Counts the lines of a text file (a final line without '\n' counts).
int64_t count_lines(const std::filesystem::path& file);

}  // namespace s2s
