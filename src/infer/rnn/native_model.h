// The attentional LSTM encoder-decoder (libtorch/model/rnn/seq2seq.h) re-implemented on plain buffers for CPU
// inference without LibTorch: oneDNN GEMMs (float32 or bf16 weights), the fused kernels of kernels/kernels.h,
// and the same arithmetic as the LibTorch model's eval mode. Reads best.bin directly, or parameters handed
// over in memory (validation during training). Supports Luong (general, dot) and Bahdanau attention.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "infer/gemm.h"
#include "infer/native_network.h"
#include "infer/parameters.h"

namespace s2s::infer {

// Encoder output for a batch of B sentences, padded to S positions. The attention reads memory and keys in
// float32 (float32 weights: LibTorch's arithmetic) or as bfloat16 bits (bf16 and int8 weights: half the
// bytes read at every step and kept for the batch); the other pair is empty. The buffers keep all B
// sentences until the batch ends: when the search drops finished ones, only `live` shrinks.
struct Encoded {
  int64_t batch = 0, src_len = 0;          // B, S
  std::vector<int64_t> live;               // [A]: where the search's sentence a is in the buffers below
  std::vector<int64_t> lengths;            // [B]
  std::vector<float> memory, keys;         // [B, S, M] zero at padding; [B, S, D] attention keys (memory
                                           // projected; empty: the memory itself, or queries projected)
  std::vector<uint16_t> memory16, keys16;  // the same in bfloat16
  std::vector<uint8_t> mask;               // [B, S] 1 at real tokens (as bool for the attention kernel)
  std::vector<float> final;                // [B, M] top-layer summary (forward at last token ; backward at 0)

  int64_t mem_dim() const { return static_cast<int64_t>(final.size()) / batch; }  // M
  int64_t key_dim() const {                                                       // D
    const auto n = std::max(keys.size(), keys16.size());
    return n == 0 ? mem_dim() : static_cast<int64_t>(n) / (batch * src_len);
  }
};

// Decoder state of R hypothesis rows.
struct DecoderRows {
  std::vector<std::vector<float>> h, c;  // per layer [R, H]
  std::vector<float> feed;               // [R, out_dim] previous attentional vector
};

class NativeModel : public NativeNetwork {
 public:
  // Loads a weights file (best.bin) for `config`, keeping the weights as `type` (bf16: GEMMs in bf16 with
  // fp32 sums; int8: per-channel int8 weights, activations quantized per row, int32 sums).
  NativeModel(const ModelConfig& config, int64_t src_vocab, int64_t tgt_vocab,
              const std::filesystem::path& weights, WeightType type);
  // The same from parameters in memory (e.g. a training model's, converted without a file).
  NativeModel(const ModelConfig& config, int64_t src_vocab, int64_t tgt_vocab, ParameterSource& params,
              WeightType type);

  // `keys`: whether the attention keys are computed (a model without a key projection has none).
  Encoded encode(const std::vector<std::vector<int32_t>>& batch, int64_t pad, bool keys = true) const;
  // Initial state: one row per sentence (the scorer spreads them to the beam).
  DecoderRows initial_state(const Encoded& enc) const;
  // One step for rows = sentences(enc) * group: tokens [R] -> attentional vectors out [R, out_dim]; the
  // attention weights [R, S] go to `attn` when it is not null.
  void step(const std::vector<int64_t>& tokens, DecoderRows& state, const Encoded& enc, int64_t group,
            std::vector<float>& out, std::vector<float>* attn) const;

  std::unique_ptr<NativeState> start(const std::vector<std::vector<int32_t>>& batch, int64_t pad,
                                     int64_t K) const override;
  void advance(const std::vector<int64_t>& tokens, NativeState& state, int64_t K, std::vector<float>& out,
               std::vector<float>* attn) const override;
  void reorder(NativeState& state, const std::vector<int64_t>& rows, const std::vector<int64_t>& kept,
               int64_t A, int64_t K) const override;
  int64_t out_dim() const override { return combine_.rows; }
  const Matrix& out_weight() const override { return *out_weight_; }  // [tgt_vocab, out_dim]
  const std::vector<float>& out_bias() const override { return out_bias_; }

 private:
  struct BiLayer {
    Matrix w_ih[2], w_hh[2];     // per direction [in, 4H], [H, 4H]
    std::vector<float> bias[2];  // per direction [4H]
  };
  struct DecLayer {
    Matrix w;                 // [input, 4H]: layer 0 stacks [emb ; feed ; h], others [h_below ; h]
    std::vector<float> bias;  // [4H]
  };
  void load(ParameterSource& w, int64_t src_vocab, int64_t tgt_vocab, WeightType type);
  std::vector<float> run_bilayer(const BiLayer& layer, const std::vector<float>& x, int64_t in,
                                 const Encoded& enc, bool batch_major, bool residual) const;
  // The one LSTM cell step every layer runs: gates [rows, 4H] = bias [4H] + rec_in [rows, in] x w_rec [in,
  // 4H], or, with no bias, gates (holding the input-side products and bias) += that product; then c, h [rows,
  // H] are updated in place.
  static void lstm_step(const float* rec_in, int64_t rows, int64_t in, const Matrix& w_rec, const float* bias,
                        float* gates, float* c, float* h, int64_t H);

  // The attention of one sentence's `group` rows (queries [group, D]) over its encoded positions (sentence
  // b of the buffers).
  void attend(const Encoded& enc, int64_t b, const float* query, int64_t group, float* weights,
              float* context) const;

  ModelConfig config_;
  bool bf16_memory_ = false;  // the encoder's memory and keys kept in bfloat16 (bf16 and int8 weights)
  std::shared_ptr<const Matrix> src_emb_, tgt_emb_;  // [vocab, emb] (one table when shared)
  std::vector<BiLayer> enc_layers_;
  std::vector<DecLayer> dec_layers_;
  Matrix bridge_;  // [2 * layers * H, M] (used transposed)
  std::vector<float> bridge_bias_;
  Matrix key_proj_;         // [H, M] (luong-general and bahdanau; used transposed)
  Matrix query_to_memory_;  // [H, M] luong-general's key projection for the query (bf16 and int8; see start)
  Matrix query_proj_;       // [H, H] bahdanau W_q (used transposed)
  std::vector<float> query_bias_;             // [H] bahdanau b_q
  std::vector<float> score_v_;                // [H] bahdanau v (empty: dot-product scores)
  Matrix combine_;                            // [out_dim, M + H] (used transposed)
  std::shared_ptr<const Matrix> out_weight_;  // the target embeddings when tied
  std::vector<float> out_bias_;
};

}  // namespace s2s::infer
