// Turns sentence indices of a corpus into padded LibTorch tensors.
#pragma once

#include <torch/types.h>

#include <vector>

#include "data/corpus.h"

namespace s2s {

struct Batch {
  torch::Tensor src;          // [batch, src_len] int64, padded with pad_id
  torch::Tensor src_lengths;  // [batch] int64
  torch::Tensor tgt_in;       // [batch, tgt_len] BOS y1 .. yn, padded
  torch::Tensor tgt_out;      // [batch, tgt_len] y1 .. yn EOS, padded
  int64_t tgt_tokens = 0;     // real target tokens (including EOS)
  int64_t size() const { return src.size(0); }
  Batch to(const torch::Device& device) const;
};

struct SpecialIds {
  int64_t pad = 0;  // padding
  int64_t bos = 2;  // begin of sentence (decoder input only)
  int64_t eos = 3;  // end of sentence
};

// Source-only batch (translation): rows are the given token sequences.
Batch make_source_batch(const std::vector<std::vector<int32_t>>& sources, const SpecialIds& ids);

// Training batch from corpus indices.
Batch make_batch(const ParallelCorpus& corpus, const std::vector<int64_t>& indices, const SpecialIds& ids);

}  // namespace s2s
