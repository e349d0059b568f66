// Token-based batching with length bucketing. The plan for an epoch is a pure function of
// (lengths, options, seed, epoch), so a resumed run regenerates it and skips to its saved position.
#pragma once

#include <cstdint>
#include <vector>

namespace s2s {

struct BatchOptions {
  int64_t batch_tokens = 4096;    // max padded tokens per batch: n * max(src_len, tgt_len + 1)
  int pool_batches = 64;          // sentences are sorted by length inside pools of this many batches
  bool shuffle = true;            // shuffle pairs before pooling and batches after (deterministic by seed)
  int64_t sentence_multiple = 1;  // a batch of at least 4x this many sentences holds a multiple of it (the
                                  // rest of the length-sorted run starts the next batch): oneDNN's AMX
                                  // GEMMs run up to 3x faster on multiples of 16 rows (docs/BENCHMARKS.md)
};

// Sentence indices of each batch for one epoch.
using BatchPlan = std::vector<std::vector<int64_t>>;

// Builds the epoch's batches over sentences with the given source/target lengths. Every index appears
// exactly once; a single pair longer than batch_tokens forms a batch of its own. Each batch lists its
// sentences by target length, longest first (ties in source-length order).
BatchPlan plan_batches(const std::vector<int32_t>& src_lengths, const std::vector<int32_t>& tgt_lengths,
                       const BatchOptions& options, uint64_t seed, int64_t epoch);

// Splits one batch into `parts` contiguous shares of about equal target tokens (length + 1 each), one per
// data-parallel rank; shares are empty when the batch has fewer sentences than parts.
BatchPlan split_batch(const std::vector<int64_t>& batch, const std::vector<int32_t>& tgt_lengths, int parts);

}  // namespace s2s
