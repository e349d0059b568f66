#include "libtorch/model/rnn/seq2seq.h"

#include <torch/nn/init.h>

namespace s2s {

Seq2SeqImpl::Seq2SeqImpl(const ModelConfig& cfg, const Vocabularies& v) : NmtModelImpl(cfg, v) {
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

namespace {

// The RNN decoder state of a batch's hypotheses; keys stay per sentence.
struct RnnCache : DecoderCache {
  DecoderState state;
  void reorder(const std::vector<int64_t>& rows, const std::vector<int64_t>& sentences) override {
    state.index_select(rows);
    if (!sentences.empty()) state.keys = state.keys.index_select(sentences);
  }
};

}  // namespace

std::unique_ptr<DecoderCache> Seq2SeqImpl::start_search(const torch::Tensor& src,
                                                        const torch::Tensor& lengths, int64_t K) {
  auto cache = std::make_unique<RnnCache>();
  cache->state = start(src, lengths);
  std::vector<int64_t> rows;  // every sentence's row repeated for its K hypotheses
  for (int64_t b = 0; b < src.size(0); ++b) rows.insert(rows.end(), static_cast<size_t>(K), b);
  cache->state.index_select(rows);
  return cache;
}

torch::Tensor Seq2SeqImpl::step(const torch::Tensor& tokens, DecoderCache& cache, torch::Tensor* attn) {
  return decoder->step(tokens, static_cast<RnnCache&>(cache).state, attn);
}

void init_parameters(Seq2SeqImpl& model) {
  torch::NoGradGuard no_grad;
  for (auto& p : model.parameters()) p.uniform_(-0.1, 0.1);
  // Padding rows of the embeddings stay zero; LSTM forget gates start open.
  for (auto& emb : {model.encoder->embedding, model.decoder->embedding})
    emb->weight[model.vocabs.pad_id].zero_();
  const auto H = model.config.dec_hidden;
  for (auto& b : model.decoder->bias) b.narrow(0, H, H).fill_(1.0);
  for (auto& layer : model.encoder->layers) layer->bias.narrow(2, layer->hidden, layer->hidden).fill_(1.0);
}

Seq2Seq build_rnn_model(const ModelConfig& config, const Vocabularies& vocabs) {
  Seq2Seq model(config, vocabs);
  init_parameters(*model);
  return model;
}

}  // namespace s2s
