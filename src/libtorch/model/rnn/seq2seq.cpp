#include "libtorch/model/rnn/seq2seq.h"

#include <torch/nn/init.h>

namespace s2s {

Seq2SeqImpl::Seq2SeqImpl(const ModelConfig& cfg, const Vocabularies& v) : config(cfg), vocabs(v) {
  torch::nn::Embedding shared{nullptr};
  if (cfg.share_embeddings) {
    shared = torch::nn::Embedding(torch::nn::EmbeddingOptions(v.tgt_size, cfg.emb_dim).padding_idx(v.pad_id));
  }
  EncoderOptions enc;
  enc.vocab_size = v.src_size, enc.emb_dim = cfg.emb_dim, enc.hidden = cfg.enc_hidden;
  enc.layers = cfg.enc_layers, enc.residual = cfg.enc_residual, enc.dropout_emb = cfg.dropout_emb;
  enc.dropout_hidden = cfg.dropout_hidden, enc.pad_id = v.pad_id;
  encoder = register_module("encoder", Encoder(enc, shared));

  DecoderOptions dec;
  dec.vocab_size = v.tgt_size, dec.emb_dim = cfg.emb_dim, dec.hidden = cfg.dec_hidden;
  dec.layers = cfg.dec_layers, dec.memory_dim = 2 * cfg.enc_hidden;
  dec.out_dim = cfg.tie_output ? cfg.emb_dim : cfg.dec_hidden;
  dec.attention = cfg.attention, dec.input_feeding = cfg.input_feeding;
  dec.dropout_emb = cfg.dropout_emb, dec.dropout_hidden = cfg.dropout_hidden;
  dec.dropout_attn = cfg.dropout_attn, dec.pad_id = v.pad_id;
  decoder = register_module("decoder", Decoder(dec, shared));

  if (cfg.tie_output) {
    out_weight = decoder->embedding->weight;
  } else {
    out_weight = register_parameter("out_weight", torch::empty({v.tgt_size, dec.out_dim}));
  }
  out_bias = register_parameter("out_bias", torch::zeros({v.tgt_size}));
}

DecoderState Seq2SeqImpl::start(const torch::Tensor& src, const torch::Tensor& lengths) {
  return decoder->initial_state(encoder(src, lengths));
}

torch::Tensor Seq2SeqImpl::forward(const torch::Tensor& src, const torch::Tensor& lengths,
                                   const torch::Tensor& tgt_in) {
  auto state = start(src, lengths);
  return decoder(tgt_in, state);
}

torch::Tensor Seq2SeqImpl::logits(const torch::Tensor& hidden) {
  return torch::nn::functional::linear(hidden, out_weight, out_bias);
}

std::vector<torch::Tensor> unique_parameters(const torch::nn::Module& model) {
  std::vector<torch::Tensor> unique;
  for (const auto& p : model.parameters()) {
    const bool seen =
        std::any_of(unique.begin(), unique.end(), [&](const torch::Tensor& q) { return q.is_same(p); });
    if (!seen) unique.push_back(p);
  }
  return unique;
}

Seq2Seq build_model(const ModelConfig& config, const Vocabularies& vocabs) {
  Seq2Seq model(config, vocabs);
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.uniform_(-0.1, 0.1);
  // Padding rows of the embeddings stay zero; LSTM forget gates start open.
  for (auto& emb : {model->encoder->embedding, model->decoder->embedding}) emb->weight[vocabs.pad_id].zero_();
  const auto H = config.dec_hidden;
  for (auto& b : model->decoder->bias) b.narrow(0, H, H).fill_(1.0);
  for (auto& layer : model->encoder->layers) layer->bias.narrow(2, layer->hidden, layer->hidden).fill_(1.0);
  return model;
}

}  // namespace s2s
