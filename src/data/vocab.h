// Training SentencePiece models from raw text (the `s2s vocab` step). Special ids are fixed for every
// model s2s trains: pad=0, unk=1, bos=2, eos=3.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "config/types.h"

namespace s2s {

struct SpmTrainOptions {
  std::vector<std::filesystem::path> inputs;  // raw text files, one sentence per line (no ',' in paths)
  std::filesystem::path model_prefix;         // writes <prefix>.model and <prefix>.vocab
  int vocab_size = 8000;                      // exact size of the vocabulary, special pieces included
  SubwordModel model_type = SubwordModel::kUnigram;  // unigram | bpe | char | word
  double character_coverage = 1.0;                   // share of characters covered, in (0, 1]
  uint32_t seed = 1234;             // SentencePiece's random seed (0.1.97 samples with a fixed one)
  int64_t max_sentences = 1000000;  // at most this many lines are sampled for training
  int num_threads = 2;              // training threads; part of the result (float sum order)
};

// Trains a model and writes <prefix>.model and <prefix>.vocab atomically (trained under a temporary prefix
// in the same directory, then renamed; .model is renamed last). Byte-for-byte deterministic for the same
// options and input files (whose paths are recorded in the model); a different num_threads gives
// slightly different scores (float summation order), so keep it fixed where models must match.
// Throws s2s::Error naming the option or file at fault; when vocab_size is too large for the data the
// message carries SentencePiece's maximum and asks for a smaller vocab_size.
void train_sentencepiece(const SpmTrainOptions& options);

}  // namespace s2s
