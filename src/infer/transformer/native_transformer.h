// The pre-norm Transformer (libtorch/model/transformer/) re-implemented on plain buffers for CPU inference
// without LibTorch: oneDNN GEMMs for every projection (float32, bf16 or int8 weights), float32 LayerNorm,
// softmax and attention, and per-layer caches of the decoded positions' keys and values for incremental
// decoding (bfloat16 with bf16 or int8 weights), kept as written while each hypothesis row follows its
// ancestry (a beam reorder moves indices).
// The arithmetic is the LibTorch model's eval mode.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "config/config.h"
#include "infer/gemm.h"
#include "infer/native_network.h"
#include "infer/parameters.h"

namespace s2s::infer {

class NativeTransformer : public NativeNetwork {
 public:
  NativeTransformer(const ModelConfig& config, int64_t src_vocab, int64_t tgt_vocab, ParameterSource& params,
                    WeightType type);

  std::unique_ptr<NativeState> start(const std::vector<std::vector<int32_t>>& batch, int64_t pad,
                                     int64_t K) const override;
  void advance(const std::vector<int64_t>& tokens, NativeState& state, int64_t K, std::vector<float>& out,
               std::vector<float>* attn) const override;
  void reorder(NativeState& state, const std::vector<int64_t>& rows, const std::vector<int64_t>& kept,
               int64_t A, int64_t K) const override;
  int64_t out_dim() const override { return dim_; }
  const Matrix& out_weight() const override { return *out_weight_; }
  const std::vector<float>& out_bias() const override { return out_bias_; }

 private:
  struct Linear {
    Matrix w;                 // [out, in], used transposed
    std::vector<float> bias;  // [out]
    // y [rows, out] = x [rows, in] W^T + b
    void apply(const float* x, int64_t rows, float* y) const;
    // y [rows, out] += x [rows, in] W^T + b (a residual connection)
    void add_to(const float* x, int64_t rows, float* y) const;
  };
  struct Norm {
    std::vector<float> gain, bias;  // [D]
    // y [rows, D] = LayerNorm(x [rows, D]) (eps 1e-5, as torch::nn::LayerNorm)
    void apply(const float* x, int64_t rows, float* y) const;
  };
  struct Ffn {
    Linear inner, outer;  // D -> F -> D
  };
  struct EncLayer {
    Norm norm_attn, norm_ffn;
    Linear qkv, out;  // self-attention: D -> 3D, D -> D
    Ffn ffn;
  };
  struct DecLayer {
    Norm norm_self, norm_cross, norm_ffn;
    Linear self_q, self_kv, self_out;  // self-attention: D -> D, D -> 2D (into the step's cache), D -> D
    Linear q, kv, cross_out;           // cross-attention: D -> D, memory D -> 2D, D -> D
    Ffn ffn;
  };
  Linear linear(ParameterSource& w, const std::string& name, int64_t out, int64_t in, WeightType type) const;
  // Output rows [begin, end) of the [out, in] projection `name`, e.g. the keys and values of a fused q/k/v.
  Linear linear_rows(ParameterSource& w, const std::string& name, int64_t out, int64_t in, int64_t begin,
                     int64_t end, WeightType type) const;
  Norm norm(ParameterSource& w, const std::string& name) const;
  // Scaled embeddings plus the sinusoid of `position` (per row, or positions[r]), into x [rows, D].
  void embed(const Matrix& table, const std::vector<int64_t>& tokens, const std::vector<int64_t>& positions,
             float* x) const;
  // x [rows, D] += ffn(norm(x))
  void add_ffn(const Ffn& ffn, const Norm& norm, float* x, int64_t rows) const;

  ModelConfig config_;
  int64_t dim_ = 0, heads_ = 0;
  bool bf16_cache_ = false;  // decoded keys/values kept in bfloat16 (bf16 and int8 weights), else float32
  std::shared_ptr<const Matrix> src_emb_, tgt_emb_;  // [vocab, D] (one table when shared)
  std::vector<EncLayer> enc_layers_;
  std::vector<DecLayer> dec_layers_;
  Norm enc_norm_, dec_norm_;
  std::shared_ptr<const Matrix> out_weight_;  // [tgt_vocab, D] (the target embeddings when tied)
  std::vector<float> out_bias_;
};

}  // namespace s2s::infer
