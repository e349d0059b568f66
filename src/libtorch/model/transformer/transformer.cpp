#include "libtorch/model/transformer/transformer.h"

#include <torch/nn/init.h>

#include <cmath>

#include "libtorch/model/ops.h"

namespace s2s {

TransformerImpl::TransformerImpl(const ModelConfig& cfg, const Vocabularies& v) : NmtModelImpl(cfg, v) {
  const auto emb = torch::nn::EmbeddingOptions(v.src_size, cfg.emb_dim).padding_idx(v.pad_id);
  if (cfg.share_embeddings) {
    src_embedding = tgt_embedding = register_module("embedding", torch::nn::Embedding(emb));
  } else {
    src_embedding = register_module("src_embedding", torch::nn::Embedding(emb));
    tgt_embedding = register_module(
        "tgt_embedding",
        torch::nn::Embedding(torch::nn::EmbeddingOptions(v.tgt_size, cfg.emb_dim).padding_idx(v.pad_id)));
  }
  LayerOptions layer;
  layer.dim = cfg.emb_dim, layer.heads = cfg.heads, layer.ffn_dim = cfg.ffn_dim;
  layer.activation = cfg.ffn_activation, layer.dropout = cfg.dropout_hidden;
  layer.attention_dropout = cfg.attention_dropout, layer.ffn_dropout = cfg.ffn_dropout;
  for (int i = 0; i < cfg.enc_layers; ++i)
    encoder.push_back(register_module("encoder_" + std::to_string(i), EncoderLayer(layer)));
  for (int i = 0; i < cfg.dec_layers; ++i)
    decoder.push_back(register_module("decoder_" + std::to_string(i), DecoderLayer(layer)));
  const auto norm = torch::nn::LayerNormOptions({cfg.emb_dim});
  encoder_norm = register_module("encoder_norm", torch::nn::LayerNorm(norm));
  decoder_norm = register_module("decoder_norm", torch::nn::LayerNorm(norm));
  if (cfg.tie_output) {
    out_weight = tgt_embedding->weight;
  } else {
    out_weight = register_parameter("out_weight", torch::empty({v.tgt_size, cfg.emb_dim}));
  }
  out_bias = register_parameter("out_bias", torch::zeros({v.tgt_size}));
}

torch::Tensor TransformerImpl::embed(torch::nn::Embedding& table, const torch::Tensor& tokens, int64_t from) {
  const auto D = config.emb_dim;
  auto x = table(tokens) * std::sqrt(static_cast<double>(D));  // [B, len, D]
  x = x + sinusoid_positions(from, tokens.size(1), D).to(x.device(), x.scalar_type());
  return s2s::dropout(x, config.dropout_emb, is_training());
}

std::pair<torch::Tensor, torch::Tensor> TransformerImpl::encode(const torch::Tensor& src,
                                                                const torch::Tensor& lengths) {
  const auto S = src.size(1);
  auto keep = torch::arange(S, src.options()).unsqueeze(0) < lengths.to(src.device()).unsqueeze(1);  // [B, S]
  keep = keep.view({src.size(0), 1, 1, S});
  auto x = embed(src_embedding, src, 0);
  for (auto& layer : encoder) x = layer(x, keep);
  return {encoder_norm(x), keep};  // [B, S, D], [B, 1, 1, S]
}

torch::Tensor TransformerImpl::forward(const torch::Tensor& src, const torch::Tensor& lengths,
                                       const torch::Tensor& tgt_in) {
  auto [memory, src_keep] = encode(src, lengths);
  const auto T = tgt_in.size(1);
  auto causal = torch::ones({T, T}, tgt_in.options().dtype(torch::kBool)).tril().view({1, 1, T, T});
  auto y = embed(tgt_embedding, tgt_in, 0);
  for (auto& layer : decoder) y = layer(y, causal, memory, src_keep);
  return decoder_norm(y);  // [B, T, D]
}

namespace {

struct TransformerCache : DecoderCache {
  std::vector<DecoderLayerCache> layers;
  torch::Tensor src_keep;  // [sentences, 1, 1, S]
  int64_t position = 0;    // target positions decoded so far

  void reorder(const std::vector<int64_t>& rows, const std::vector<int64_t>& sentences) override {
    const auto row_index = torch::tensor(rows, torch::kInt64).to(src_keep.device());
    torch::Tensor sentence_index;
    if (!sentences.empty()) sentence_index = torch::tensor(sentences, torch::kInt64).to(src_keep.device());
    for (auto& l : layers) {
      if (l.self_k.defined())
        l.self_k = l.self_k.index_select(0, row_index), l.self_v = l.self_v.index_select(0, row_index);
      if (sentence_index.defined())
        l.mem_k = l.mem_k.index_select(0, sentence_index), l.mem_v = l.mem_v.index_select(0, sentence_index);
    }
    if (sentence_index.defined()) src_keep = src_keep.index_select(0, sentence_index);
  }
};

}  // namespace

std::unique_ptr<DecoderCache> TransformerImpl::start_search(const torch::Tensor& src,
                                                            const torch::Tensor& lengths, int64_t) {
  auto cache = std::make_unique<TransformerCache>();
  auto [memory, keep] = encode(src, lengths);
  cache->src_keep = keep;
  for (auto& layer : decoder) {
    auto [k, v] = layer->cross_attn->project_memory(memory);
    cache->layers.push_back({{}, {}, k, v});
  }
  return cache;
}

torch::Tensor TransformerImpl::step(const torch::Tensor& tokens, DecoderCache& base, torch::Tensor* attn) {
  auto& cache = static_cast<TransformerCache&>(base);
  auto y = embed(tgt_embedding, tokens.view({-1, 1}), cache.position++);  // [R, 1, D]
  for (size_t l = 0; l < decoder.size(); ++l) {
    const bool last = l + 1 == decoder.size();
    y = decoder[l]->step(y, cache.layers[l], cache.src_keep, last ? attn : nullptr);
  }
  return decoder_norm(y).squeeze(1);  // [R, D]
}

void init_parameters(TransformerImpl& model) {
  torch::NoGradGuard no_grad;
  const double D = model.config.emb_dim;
  for (auto& item : model.named_parameters()) {
    const auto& name = item.key();
    auto& p = item.value();
    const bool norm = name.find("norm") != std::string::npos;
    if (norm) continue;  // LayerNorm: weight 1, bias 0 as constructed
    if (name.find("embedding") != std::string::npos || name == "out_weight") {
      p.normal_(0, 1 / std::sqrt(D));
    } else if (p.dim() == 2) {
      torch::nn::init::xavier_uniform_(p);
    } else {
      p.zero_();  // projection biases and the output bias
    }
  }
  for (auto* table : {&model.src_embedding, &model.tgt_embedding})
    (*table)->weight[model.vocabs.pad_id].zero_();
}

}  // namespace s2s
