// Typed configuration: one struct per YAML section with defaults. Loading rejects unknown keys (suggesting
// the closest known one), wrong types and out-of-range values with one line naming the file, line and key.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "config/types.h"

namespace s2s {

struct DataConfig {
  std::string train_src;  // source side of the training corpus (raw text, one sentence per line)
  std::string train_tgt;  // target side, line-aligned with train_src
  std::string valid_src;  // validation source (optional: no validation when empty)
  std::string valid_tgt;  // validation target
  int max_length = 100;   // pairs with more subword tokens on either side are dropped
  InvalidUtf8 invalid_utf8 =
      InvalidUtf8::kSkip;       // invalid UTF-8 line pair: skip (warn with file:line) | error
  int valid_max_sentences = 0;  // use only the first N validation pairs (0 = all)

  template <class V>
  void visit(V&& v) {
    v("train_src", train_src), v("train_tgt", train_tgt), v("valid_src", valid_src);
    v("valid_tgt", valid_tgt), v("max_length", max_length), v("invalid_utf8", invalid_utf8);
    v("valid_max_sentences", valid_max_sentences);
  }
};

struct VocabConfig {
  bool joint = true;                                 // one SentencePiece model for both sides
  int size = 8000;                                   // vocabulary size per model
  SubwordModel model_type = SubwordModel::kUnigram;  // unigram | bpe | char | word
  double character_coverage = 1.0;                   // SentencePiece character coverage
  std::string src_model;            // existing SentencePiece model (joint model when joint); trained if empty
  std::string tgt_model;            // existing target model (ignored when joint)
  int64_t max_sentences = 1000000;  // sentences sampled for SentencePiece training

  template <class V>
  void visit(V&& v) {
    v("joint", joint), v("size", size), v("model_type", model_type);
    v("character_coverage", character_coverage), v("src_model", src_model), v("tgt_model", tgt_model);
    v("max_sentences", max_sentences);
  }
};

struct ModelConfig {
  ModelType type = ModelType::kRnn;  // rnn | transformer
  int emb_dim = 256;                 // embedding size (source and target); the Transformer's width
  bool share_embeddings = false;     // one embedding table for both sides (needs a joint vocabulary)
  bool tie_output = false;    // output layer shares the target embedding (attentional vector = emb_dim)
  int enc_layers = 2;         // encoder layers (rnn: bidirectional LSTM layers)
  int enc_hidden = 256;       // rnn: encoder hidden size per direction
  bool enc_residual = false;  // rnn: residual connections between encoder layers (from layer 2 on)
  int dec_layers = 2;         // decoder layers (rnn: LSTM layers)
  int dec_hidden = 512;       // rnn: decoder hidden size
  AttentionType attention = AttentionType::kLuongGeneral;  // rnn: bahdanau | luong-dot | luong-general
  bool input_feeding = true;    // rnn: feed the previous attentional vector into the decoder input
  double dropout_emb = 0.1;     // dropout on embeddings (transformer: on embeddings + positions)
  double dropout_hidden = 0.3;  // rnn: between LSTM layers; transformer: on every sublayer's output
  double dropout_attn = 0.3;    // rnn: on the attentional output before the output layer
  int heads = 8;                // transformer: attention heads (must divide emb_dim)
  int ffn_dim = 2048;           // transformer: feed-forward inner size
  Activation ffn_activation = Activation::kRelu;  // transformer: relu | gelu
  double attention_dropout = 0.1;                 // transformer: dropout on attention weights
  double ffn_dropout = 0.0;                       // transformer: dropout on the feed-forward activation

  template <class V>
  void visit(V&& v) {
    v("type", type), v("emb_dim", emb_dim), v("share_embeddings", share_embeddings);
    v("tie_output", tie_output);
    v("enc_layers", enc_layers), v("enc_hidden", enc_hidden), v("enc_residual", enc_residual);
    v("dec_layers", dec_layers), v("dec_hidden", dec_hidden), v("attention", attention);
    v("input_feeding", input_feeding), v("dropout_emb", dropout_emb);
    v("dropout_hidden", dropout_hidden), v("dropout_attn", dropout_attn), v("heads", heads);
    v("ffn_dim", ffn_dim), v("ffn_activation", ffn_activation), v("attention_dropout", attention_dropout);
    v("ffn_dropout", ffn_dropout);
  }
};

struct TrainConfig {
  int batch_tokens = 4096;  // target tokens per batch (approximate; batches are length-bucketed)
  int batch_multiple = 16;  // batches of >= 4x this many sentences hold a multiple of it (GEMM-friendly rows)
  int accum_steps = 1;      // batches whose gradients are summed before one optimizer step
  int64_t max_steps = 0;    // stop after this many optimizer steps (0 = no limit)
  int max_epochs = 20;      // stop after this many epochs (0 = no limit)
  double max_minutes = 0;   // stop after this much wall-clock time (0 = no limit)
  double lr = 0.001;        // Adam learning rate after warmup
  int warmup_steps = 400;   // linear warmup from 0 to lr
  LrSchedule lr_schedule = LrSchedule::kPlateau;  // plateau | constant | inverse-sqrt
  double lr_decay = 0.5;                          // plateau: factor applied when validation stops improving
  int lr_patience = 1;                            // plateau: validations without improvement before decaying
  double min_lr = 1e-5;                           // lower bound for the decayed learning rate
  double label_smoothing = 0.1;                   // label smoothing epsilon
  double clip_norm = 5.0;                         // gradient-norm clipping (0 = off)
  double adam_beta1 = 0.9;                        // Adam beta1
  double adam_beta2 = 0.999;                      // Adam beta2
  int64_t seed = 1234;                            // seed for parameters, dropout and data order
  int threads = 2;                                // CPU threads (LibTorch intra-op / OpenMP), at most
  bool share_cores = true;                 // fewer threads while other processes take our cores (README)
  Device device;                           // cpu | cuda | cuda:N
  Precision precision = Precision::kFp32;  // fp32 | bf16 | auto (bf16 autocast, master weights fp32;
                                           // auto: bf16 on CUDA and bf16 CPUs, else fp32)
  int log_every = 100;                     // steps between progress lines / metrics.jsonl records
  int valid_every = 1000;                  // steps between validations and checkpoints
  EarlyStopMetric early_stop_metric = EarlyStopMetric::kBleu;  // bleu | ppl
  int patience = 5;           // validations without improvement before stopping (0 = never)
  int valid_beam_size = 1;    // beam size for validation BLEU (1 = greedy)
  int valid_batch_size = 64;  // sentences per validation translation batch
  int keep_checkpoints = 0;  // weights of the last N validations kept in checkpoints/step-N.bin (s2s average)
  double ema_decay = 0;  // > 0: validate and save a moving average of the weights (README: Training); 0 = off

  template <class V>
  void visit(V&& v) {
    v("batch_tokens", batch_tokens), v("batch_multiple", batch_multiple), v("accum_steps", accum_steps);
    v("max_steps", max_steps);
    v("max_epochs", max_epochs), v("max_minutes", max_minutes), v("lr", lr);
    v("warmup_steps", warmup_steps), v("lr_schedule", lr_schedule), v("lr_decay", lr_decay);
    v("lr_patience", lr_patience), v("min_lr", min_lr), v("label_smoothing", label_smoothing);
    v("clip_norm", clip_norm), v("adam_beta1", adam_beta1), v("adam_beta2", adam_beta2);
    v("seed", seed), v("threads", threads), v("share_cores", share_cores), v("device", device);
    v("precision", precision), v("log_every", log_every), v("valid_every", valid_every),
        v("early_stop_metric", early_stop_metric);
    v("patience", patience), v("valid_beam_size", valid_beam_size);
    v("valid_batch_size", valid_batch_size), v("keep_checkpoints", keep_checkpoints);
    v("ema_decay", ema_decay);
  }
};

struct DecodeConfig {
  int beam_size = 5;               // beam width (1 = greedy)
  int n_best = 1;                  // hypotheses printed per sentence (Moses n-best format when > 1)
  int batch_size = 0;              // sentences per batch (0 = auto_batch_size(): 16 at beam 5 on a CPU)
  int batch_tokens = 0;            // source tokens per batch instead of batch_size (0 = off)
  double normalize = 0.6;          // length normalization: score / length^alpha (0 = off)
  bool early_exit = false;         // stop a sentence once its best candidate ends (true: faster, -0.27 BLEU)
  int max_length = 256;            // input longer than this (subword tokens) is cropped, with a warning
  double max_length_factor = 2.0;  // output is at most factor * source length + 5 tokens
  int read_ahead = 1000;           // lines read ahead and sorted by length for batching
  Precision precision = Precision::kAuto;  // auto | fp32 | bf16 | int8 (auto: int8 on VNNI CPUs with the
                                           // native engine, else bf16 with AVX512-BF16, else fp32)
  Switch shortlist =
      Switch::kAuto;              // score only lexical-shortlist candidates (auto: when the model dir has
                                  // shortlist.txt; true: required; false: exact search over the vocabulary)
  int shortlist_per_source = 10;  // shortlist: best candidates used per source token (train stores 50)
  int shortlist_frequent = 100;   // shortlist: most frequent target tokens always scored (train stores 500)
  int threads = 2;                // CPU threads
  int workers = 0;                // batches decoded concurrently, threads/workers threads each (0 = auto:
                                  // one per thread on CPU, 1 on GPU)
  Device device;                  // cpu | cuda | cuda:N
  EngineKind engine = EngineKind::kAuto;  // auto | native | torch: native = LibTorch-free CPU engine
                                          // (oneDNN); auto picks it on CPU when the model dir has best.bin

  template <class V>
  void visit(V&& v) {
    v("engine", engine), v("beam_size", beam_size), v("n_best", n_best), v("batch_size", batch_size);
    v("batch_tokens", batch_tokens), v("normalize", normalize), v("max_length", max_length);
    v("max_length_factor", max_length_factor), v("read_ahead", read_ahead), v("precision", precision);
    v("shortlist", shortlist), v("threads", threads), v("device", device), v("early_exit", early_exit);
    v("workers", workers), v("shortlist_per_source", shortlist_per_source);
    v("shortlist_frequent", shortlist_frequent);
  }
};

struct Config {
  DataConfig data;
  VocabConfig vocab;
  ModelConfig model;
  TrainConfig train;
  DecodeConfig decode;

  template <class V>
  void visit(V&& v) {
    v("data", data), v("vocab", vocab), v("model", model), v("train", train), v("decode", decode);
  }
};

// Loads a YAML config file, applies `overrides` ("section.key=value", later wins) and validates.
// Relative paths in the file are resolved against the file's directory; paths given in overrides
// against the current directory. Throws s2s::Error naming the file, line and key.
Config load_config(const std::filesystem::path& file, const std::vector<std::string>& overrides = {});

// Parses config text (`origin` names it in errors; relative paths resolve against `base_dir`).
Config parse_config(const std::string& yaml_text, const std::string& origin,
                    const std::filesystem::path& base_dir, const std::vector<std::string>& overrides = {});

// Checks ranges, enumerations and required paths; throws s2s::Error naming the key.
void validate(const Config& config);

// Serializes the full effective config as YAML (every key, so a model dir is self-contained).
std::string dump_config(const Config& config);

}  // namespace s2s
