// Shared fixture for the LibTorch tests: a temp directory, a small SentencePiece model trained on the
// shipped demo data (once per test binary), and tiny models built from it.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/model_dir.h"
#include "data/tokenizer.h"
#include "data/vocab.h"
#include "libtorch/model/factory/build_model.h"
#include "libtorch/model/rnn/seq2seq.h"
#include "libtorch/model/weights_io.h"
#include "test_util.h"
#include "util/fs.h"

namespace s2s_test {

// A fresh directory under the system temp dir, removed with everything in it when the test process exits.
inline std::filesystem::path temp_dir(const std::string& name) {
  struct Registry {
    std::vector<std::filesystem::path> dirs;
    ~Registry() {
      std::error_code ec;
      for (const auto& d : dirs) std::filesystem::remove_all(d, ec);
    }
  };
  static Registry registry;
  registry.dirs.push_back(unique_temp_dir(name));
  return registry.dirs.back();
}

inline std::string source_path(const std::string& rel) {
  return std::string(S2S_SOURCE_DIR) + "/" + rel;
}

// A joint 300-piece SentencePiece model of the shipped data, trained once per process.
inline std::shared_ptr<const s2s::Tokenizer> demo_tokenizer() {
  static std::shared_ptr<const s2s::Tokenizer> tok = [] {
    const auto dir = temp_dir("nn_spm");
    s2s::SpmTrainOptions o;
    o.inputs = {source_path("data/train.de"), source_path("data/train.en")};
    o.model_prefix = dir / "spm";
    o.vocab_size = 300;
    o.max_sentences = 4000;
    s2s::train_sentencepiece(o);
    return s2s::Tokenizer::load(dir / "spm.model");
  }();
  return tok;
}

// A small config: 1-layer model, tiny sizes, fast to train on the shipped data.
inline s2s::Config tiny_config() {
  s2s::Config c;
  c.data.train_src = source_path("data/train.de");
  c.data.train_tgt = source_path("data/train.en");
  c.data.valid_src = source_path("data/valid.de");
  c.data.valid_tgt = source_path("data/valid.en");
  c.data.valid_max_sentences = 50;
  c.data.max_length = 30;
  c.vocab.size = 300;
  c.vocab.max_sentences = 4000;
  c.model.emb_dim = 32, c.model.enc_hidden = 32, c.model.dec_hidden = 64;
  c.model.enc_layers = 1, c.model.dec_layers = 1;
  c.model.share_embeddings = true, c.model.tie_output = false;
  c.train.batch_tokens = 600, c.train.lr = 0.003, c.train.warmup_steps = 10;
  c.train.log_every = 10, c.train.valid_every = 1000, c.train.threads = 1;
  return c;
}

inline s2s::Vocabularies vocabs_of(const s2s::Tokenizer& tok) {
  return {tok.vocab_size(), tok.vocab_size(), tok.pad_id(), tok.bos_id(), tok.eos_id(), tok.unk_id()};
}

// A model dir (config.yml, spm.model, best.bin) holding an untrained model of `config`, seeded with `seed`.
inline std::filesystem::path seeded_model_dir(const std::string& name, uint64_t seed,
                                              const s2s::Config& config = tiny_config()) {
  const auto dir = temp_dir(name);
  auto tok = demo_tokenizer();
  s2s::fs::write_file_atomic(dir / "config.yml", s2s::dump_config(config));
  s2s::fs::write_file_atomic(dir / "spm.model", s2s::fs::read_file(tok->path()));
  torch::manual_seed(seed);
  s2s::save_weights(dir / s2s::model_files::kBest, *s2s::build_model(config.model, vocabs_of(*tok)));
  return dir;
}

}  // namespace s2s_test
