// Lexical shortlist: for each source token, the target tokens most associated with it in the training
// corpus (Dice coefficient of sentence co-occurrence), plus the most frequent target tokens. Decoding a batch
// then scores only the union of these candidates instead of the whole target vocabulary.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "data/corpus.h"

namespace s2s {

struct Shortlist {
  std::vector<int32_t> frequent;                // most frequent target ids, always candidates
  std::vector<std::vector<int32_t>> by_source;  // per source id: associated target ids, best first

  // Sorted unique candidate target ids for a batch of source sentences; `always` ids (EOS...) are added.
  std::vector<int64_t> candidates(const std::vector<std::vector<int32_t>>& sources,
                                  const std::vector<int64_t>& always) const;
  // Keeps the best `per_source` candidates of each source token and the `frequent` most frequent ids.
  void limit(int per_source, int frequent);
};

struct ShortlistOptions {
  int per_source = 50;  // associated target tokens kept per source token
  int frequent = 500;   // most frequent target tokens always kept
};

// Builds the shortlist from an encoded parallel corpus.
Shortlist build_shortlist(const ParallelCorpus& corpus, int64_t src_vocab, int64_t tgt_vocab,
                          const ShortlistOptions& options);

// Text file: "s2s-shortlist 1", the frequent ids, then one line of target ids per source id. Atomic write.
void save_shortlist(const std::filesystem::path& file, const Shortlist& shortlist);
// Every target id must be in [0, tgt_vocab): a damaged file is an error naming the file and line.
Shortlist load_shortlist(const std::filesystem::path& file, int64_t tgt_vocab);

}  // namespace s2s
