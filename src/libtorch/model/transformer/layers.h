// The Transformer's layers (Vaswani et al. 2017), pre-norm as in fairseq's normalize_before and Marian's
// "n" preprocess: every sublayer reads a LayerNorm of the residual stream and adds its dropped-out output.
// Training runs whole sequences; search runs one position per step over cached keys and values.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <utility>

#include "config/types.h"

namespace s2s {

// [B, T, H * dh] -> [B, H, T, dh] and back.
torch::Tensor split_heads(const torch::Tensor& x, int64_t heads);
torch::Tensor merge_heads(const torch::Tensor& x);

// Scaled dot-product attention of q [B, H, Tq, dh] over k, v [B, H, Tk, dh]. `keep` (bool, broadcastable to
// [B, H, Tq, Tk], true = may attend; undefined = all) masks scores; the softmax runs in float32. `weights`
// receives the attention weights [B, H, Tq, Tk] (float32, before dropout). Returns [B, H, Tq, dh].
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& keep, double dropout, bool training,
                     torch::Tensor* weights = nullptr);

// Sinusoidal position encodings of positions [from, from + count): [count, dim] float32, sines in the first
// half of the dimensions and cosines in the second (fairseq/tensor2tensor layout).
torch::Tensor sinusoid_positions(int64_t from, int64_t count, int64_t dim);

// Self-attention with one fused query/key/value projection.
class SelfAttentionImpl : public torch::nn::Module {
 public:
  SelfAttentionImpl(int64_t dim, int64_t heads, double dropout);
  // x [B, T, D], keep broadcastable to [B, H, T, T] -> [B, T, D].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& keep);
  // One new position per row: x [R, 1, D] attends over the cached positions and itself; appends its keys
  // and values to k_cache, v_cache [R, H, t, dh] (undefined before the first step). Returns [R, 1, D].
  torch::Tensor step(const torch::Tensor& x, torch::Tensor& k_cache, torch::Tensor& v_cache);

  torch::nn::Linear qkv{nullptr};  // D -> 3D: [q ; k ; v]
  torch::nn::Linear out{nullptr};  // D -> D
  int64_t heads;
  double dropout;

 private:
  // x [B, T, D] -> q, k, v [B, H, T, dh]
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> project(const torch::Tensor& x);
};
TORCH_MODULE(SelfAttention);

// Attention from the decoder over the encoder's output (memory), whose keys and values are projected once.
class CrossAttentionImpl : public torch::nn::Module {
 public:
  CrossAttentionImpl(int64_t dim, int64_t heads, double dropout);
  // memory [B, S, D] -> keys, values [B, H, S, dh]
  std::pair<torch::Tensor, torch::Tensor> project_memory(const torch::Tensor& memory);
  // x [B, Tq, D] over keys, values [B, H, S, dh]; keep [B, 1, 1, S]. `weights` receives [B, H, Tq, S].
  // In search, Tq holds a sentence's K hypotheses: queries are independent of each other.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& keys, const torch::Tensor& values,
                        const torch::Tensor& keep, torch::Tensor* weights = nullptr);

  torch::nn::Linear q{nullptr};   // D -> D
  torch::nn::Linear kv{nullptr};  // D -> 2D: [k ; v]
  torch::nn::Linear out{nullptr};
  int64_t heads;
  double dropout;
};
TORCH_MODULE(CrossAttention);

// Position-wise feed-forward: D -> ffn_dim -> D.
class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t dim, int64_t ffn_dim, Activation activation, double dropout);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear inner{nullptr}, outer{nullptr};
  Activation activation;
  double dropout;
};
TORCH_MODULE(FeedForward);

struct LayerOptions {
  int64_t dim = 512;                          // model width
  int64_t heads = 8;                          // attention heads
  int64_t ffn_dim = 2048;                     // feed-forward inner size
  Activation activation = Activation::kRelu;  // feed-forward activation
  double dropout = 0.1;                       // on each sublayer's output (residual dropout)
  double attention_dropout = 0.1;             // on attention weights
  double ffn_dropout = 0;                     // on the feed-forward activation
};

class EncoderLayerImpl : public torch::nn::Module {
 public:
  explicit EncoderLayerImpl(const LayerOptions& options);
  // x [B, S, D], keep [B, 1, 1, S] -> [B, S, D]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& keep);

  torch::nn::LayerNorm norm_attn{nullptr}, norm_ffn{nullptr};
  SelfAttention self_attn{nullptr};
  FeedForward ffn{nullptr};
  double dropout;
};
TORCH_MODULE(EncoderLayer);

// What one decoder layer keeps during search.
struct DecoderLayerCache {
  torch::Tensor self_k, self_v;  // [rows, H, t, dh] the decoded positions' keys and values
  torch::Tensor mem_k, mem_v;    // [sentences, H, S, dh] the memory's keys and values
};

class DecoderLayerImpl : public torch::nn::Module {
 public:
  explicit DecoderLayerImpl(const LayerOptions& options);
  // y [B, T, D], causal [1, 1, T, T], memory [B, S, D], src_keep [B, 1, 1, S] -> [B, T, D]
  torch::Tensor forward(const torch::Tensor& y, const torch::Tensor& causal, const torch::Tensor& memory,
                        const torch::Tensor& src_keep);
  // One step: y [R, 1, D] with R = sentences * K rows -> [R, 1, D]; `weights` receives the cross-attention
  // weights averaged over heads, [R, S].
  torch::Tensor step(const torch::Tensor& y, DecoderLayerCache& cache, const torch::Tensor& src_keep,
                     torch::Tensor* weights);

  torch::nn::LayerNorm norm_self{nullptr}, norm_cross{nullptr}, norm_ffn{nullptr};
  SelfAttention self_attn{nullptr};
  CrossAttention cross_attn{nullptr};
  FeedForward ffn{nullptr};
  double dropout;

 private:
  // y + dropout(cross-attention of norm(y)): y [B, Tq, D]
  torch::Tensor add_cross(const torch::Tensor& y, const torch::Tensor& keys, const torch::Tensor& values,
                          const torch::Tensor& src_keep, torch::Tensor* weights);
};
TORCH_MODULE(DecoderLayer);

}  // namespace s2s
