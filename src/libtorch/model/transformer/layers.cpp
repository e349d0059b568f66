#include "libtorch/model/transformer/layers.h"

#include "libtorch/model/ops.h"

#include <torch/nn/functional/activation.h>

#include <c10/util/Exception.h>

#include <cmath>
#include <limits>

namespace s2s {
namespace F = torch::nn::functional;

namespace {

torch::Tensor drop(const torch::Tensor& x, double p, bool training) {
  return s2s::dropout(x, p, training);
}

}  // namespace

torch::Tensor split_heads(const torch::Tensor& x, int64_t heads) {
  const auto B = x.size(0), T = x.size(1), D = x.size(2);
  return x.view({B, T, heads, D / heads}).transpose(1, 2);  // [B, H, T, dh]
}

torch::Tensor merge_heads(const torch::Tensor& x) {
  const auto B = x.size(0), H = x.size(1), T = x.size(2), dh = x.size(3);
  return x.transpose(1, 2).reshape({B, T, H * dh});  // [B, T, D]
}

torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& keep, double dropout, bool training, torch::Tensor* weights) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.sizes() == k.sizes() && q.size(3) == k.size(3), "attend: q ",
              q.sizes(), ", k ", k.sizes(), ", v ", v.sizes(),
              " must be [B, H, Tq, dh], [B, H, Tk, dh] twice");
  auto scores = torch::matmul(q * (1.0 / std::sqrt(static_cast<double>(q.size(3)))),
                              k.transpose(-2, -1));  // [B, H, Tq, Tk]
  if (keep.defined())
    scores = scores.masked_fill(keep.logical_not(), -std::numeric_limits<float>::infinity());
  auto p = torch::softmax(scores, -1, torch::kFloat);  // [B, H, Tq, Tk]
  if (weights) *weights = p;
  return torch::matmul(drop(p, dropout, training).to(v.scalar_type()), v);  // [B, H, Tq, dh]
}

torch::Tensor sinusoid_positions(int64_t from, int64_t count, int64_t dim) {
  const auto half = dim / 2;
  auto pos = torch::arange(from, from + count, torch::kFloat).unsqueeze(1);  // [count, 1]
  auto freq = torch::exp(torch::arange(half, torch::kFloat) *
                         (-std::log(10000.0) / static_cast<double>(std::max<int64_t>(half - 1, 1))));
  auto angles = pos * freq.unsqueeze(0);  // [count, half]
  auto enc = torch::cat({angles.sin(), angles.cos()}, 1);
  if (dim % 2) enc = torch::cat({enc, torch::zeros({count, 1})}, 1);  // [count, dim]
  return enc;
}

SelfAttentionImpl::SelfAttentionImpl(int64_t dim, int64_t heads, double dropout)
    : heads(heads), dropout(dropout) {
  qkv = register_module("qkv", torch::nn::Linear(dim, 3 * dim));
  out = register_module("out", torch::nn::Linear(dim, dim));
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> SelfAttentionImpl::project(const torch::Tensor& x) {
  const auto B = x.size(0), T = x.size(1), D = x.size(2);
  auto qkv_heads = qkv(x).view({B, T, 3, heads, D / heads}).permute({2, 0, 3, 1, 4});  // [3, B, H, T, dh]
  return {qkv_heads[0], qkv_heads[1], qkv_heads[2]};
}

torch::Tensor SelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& keep) {
  auto [q, k, v] = project(x);
  return out(merge_heads(attend(q, k, v, keep, dropout, is_training())));
}

torch::Tensor SelfAttentionImpl::step(const torch::Tensor& x, torch::Tensor& k_cache,
                                      torch::Tensor& v_cache) {
  auto [q, k, v] = project(x);                                                 // [R, H, 1, dh]
  k_cache = k_cache.defined() ? torch::cat({k_cache, k}, 2) : k.contiguous();  // [R, H, t + 1, dh]
  v_cache = v_cache.defined() ? torch::cat({v_cache, v}, 2) : v.contiguous();
  return out(merge_heads(attend(q, k_cache, v_cache, {}, 0, false)));
}

CrossAttentionImpl::CrossAttentionImpl(int64_t dim, int64_t heads, double dropout)
    : heads(heads), dropout(dropout) {
  q = register_module("q", torch::nn::Linear(dim, dim));
  kv = register_module("kv", torch::nn::Linear(dim, 2 * dim));
  out = register_module("out", torch::nn::Linear(dim, dim));
}

std::pair<torch::Tensor, torch::Tensor> CrossAttentionImpl::project_memory(const torch::Tensor& memory) {
  const auto B = memory.size(0), S = memory.size(1), D = memory.size(2);
  auto kv_heads = kv(memory).view({B, S, 2, heads, D / heads}).permute({2, 0, 3, 1, 4});  // [2, B, H, S, dh]
  return {kv_heads[0].contiguous(), kv_heads[1].contiguous()};
}

torch::Tensor CrossAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& keys,
                                          const torch::Tensor& values, const torch::Tensor& keep,
                                          torch::Tensor* weights) {
  auto context = attend(split_heads(q(x), heads), keys, values, keep, dropout, is_training(), weights);
  return out(merge_heads(context));  // [B, Tq, D]
}

FeedForwardImpl::FeedForwardImpl(int64_t dim, int64_t ffn_dim, Activation activation, double dropout)
    : activation(activation), dropout(dropout) {
  inner = register_module("inner", torch::nn::Linear(dim, ffn_dim));
  outer = register_module("outer", torch::nn::Linear(ffn_dim, dim));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  auto h = inner(x);
  h = activation == Activation::kGelu ? F::gelu(h) : torch::relu(h);
  return outer(drop(h, dropout, is_training()));
}

namespace {

torch::nn::LayerNorm layer_norm(torch::nn::Module& owner, const std::string& name, int64_t dim) {
  return owner.register_module(name, torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
}

}  // namespace

EncoderLayerImpl::EncoderLayerImpl(const LayerOptions& o) : dropout(o.dropout) {
  norm_attn = layer_norm(*this, "norm_attn", o.dim);
  self_attn = register_module("self_attn", SelfAttention(o.dim, o.heads, o.attention_dropout));
  norm_ffn = layer_norm(*this, "norm_ffn", o.dim);
  ffn = register_module("ffn", FeedForward(o.dim, o.ffn_dim, o.activation, o.ffn_dropout));
}

torch::Tensor EncoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& keep) {
  auto h = x + drop(self_attn(norm_attn(x), keep), dropout, is_training());
  return h + drop(ffn(norm_ffn(h)), dropout, is_training());
}

DecoderLayerImpl::DecoderLayerImpl(const LayerOptions& o) : dropout(o.dropout) {
  norm_self = layer_norm(*this, "norm_self", o.dim);
  self_attn = register_module("self_attn", SelfAttention(o.dim, o.heads, o.attention_dropout));
  norm_cross = layer_norm(*this, "norm_cross", o.dim);
  cross_attn = register_module("cross_attn", CrossAttention(o.dim, o.heads, o.attention_dropout));
  norm_ffn = layer_norm(*this, "norm_ffn", o.dim);
  ffn = register_module("ffn", FeedForward(o.dim, o.ffn_dim, o.activation, o.ffn_dropout));
}

torch::Tensor DecoderLayerImpl::add_cross(const torch::Tensor& y, const torch::Tensor& keys,
                                          const torch::Tensor& values, const torch::Tensor& src_keep,
                                          torch::Tensor* weights) {
  return y + drop(cross_attn(norm_cross(y), keys, values, src_keep, weights), dropout, is_training());
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& y, const torch::Tensor& causal,
                                        const torch::Tensor& memory, const torch::Tensor& src_keep) {
  auto h = y + drop(self_attn(norm_self(y), causal), dropout, is_training());
  auto [keys, values] = cross_attn->project_memory(memory);
  h = add_cross(h, keys, values, src_keep, nullptr);
  return h + drop(ffn(norm_ffn(h)), dropout, is_training());
}

torch::Tensor DecoderLayerImpl::step(const torch::Tensor& y, DecoderLayerCache& cache,
                                     const torch::Tensor& src_keep, torch::Tensor* weights) {
  const auto R = y.size(0), D = y.size(2), A = cache.mem_k.size(0);
  TORCH_CHECK(y.dim() == 3 && y.size(1) == 1 && R % A == 0, "decoder step: y ", y.sizes(),
              " must be [rows, 1, D] with rows a multiple of the ", A, " sentences");
  auto h = y + self_attn->step(norm_self(y), cache.self_k, cache.self_v);  // [R, 1, D]
  // A sentence's K hypotheses are K queries over its memory: [A, K, D].
  torch::Tensor w;
  h = add_cross(h.view({A, R / A, D}), cache.mem_k, cache.mem_v, src_keep, weights ? &w : nullptr)
          .view({R, 1, D});
  if (weights) *weights = w.mean(1).reshape({R, -1});  // [A, H, K, S] -> [R, S]
  return h + ffn(norm_ffn(h));
}

}  // namespace s2s
