// What every model family offers the trainer and the search: teacher-forced decoder outputs for training,
// and initial state + step for search (CTranslate2's contract: the search alone selects and reorders
// hypotheses; the model only scores and keeps its per-row state in a DecoderCache).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <vector>

#include "config/config.h"

namespace s2s {

struct Vocabularies {
  int64_t src_size = 0;  // source vocabulary size
  int64_t tgt_size = 0;  // target vocabulary size
  int64_t pad_id = 0;    // padding id (both sides)
  int64_t bos_id = 2;    // target begin-of-sentence id
  int64_t eos_id = 3;    // target end-of-sentence id
  int64_t unk_id = 1;    // target unknown-token id
};

// A batch's search state: K hypothesis rows per sentence (a sentence's rows adjacent), plus what each
// sentence's rows share (the encoded source).
class DecoderCache {
 public:
  virtual ~DecoderCache() = default;
  // Keeps/reorders hypothesis rows (beam backpointers: new row i continues old row rows[i]). When
  // `sentences` is non-empty, only those sentences (old indices, ascending) stay in the batch.
  virtual void reorder(const std::vector<int64_t>& rows, const std::vector<int64_t>& sentences) = 0;
};

class NmtModelImpl : public torch::nn::Module {
 public:
  NmtModelImpl(const ModelConfig& config, const Vocabularies& vocabs) : config(config), vocabs(vocabs) {}

  // Teacher forcing: src [batch, src_len], lengths [batch], tgt_in [batch, tgt_len] (BOS first)
  // -> [batch, tgt_len, out_dim] decoder outputs, the output layer's input.
  virtual torch::Tensor forward(const torch::Tensor& src, const torch::Tensor& lengths,
                                const torch::Tensor& tgt_in) = 0;
  // Encodes src and returns the state of K rows per sentence, before the first step.
  virtual std::unique_ptr<DecoderCache> start_search(const torch::Tensor& src, const torch::Tensor& lengths,
                                                     int64_t K) = 0;
  // One step: tokens [rows] -> [rows, out_dim]; `attn` receives [rows, src_len] source attention weights.
  virtual torch::Tensor step(const torch::Tensor& tokens, DecoderCache& cache, torch::Tensor* attn) = 0;

  // Output layer: [..., out_dim] -> [..., tgt_vocab] unnormalized scores.
  torch::Tensor logits(const torch::Tensor& hidden);

  ModelConfig config;
  Vocabularies vocabs;
  torch::Tensor out_weight;  // [tgt_vocab, out_dim] (the target embedding when tied)
  torch::Tensor out_bias;    // [tgt_vocab]
};
TORCH_MODULE(NmtModel);

// Parameters without repeats: LibTorch's parameters() lists a shared embedding once per owner, which
// would make Adam update it twice per step and break optimizer state (de)serialization.
std::vector<torch::Tensor> unique_parameters(const torch::nn::Module& model);

}  // namespace s2s
