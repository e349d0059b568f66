// Helpers shared by the commands in the s2s executable and in the LibTorch plugin (both link them).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.h"
#include "config/config.h"
#include "decode/translator.h"

namespace s2s::app {

// The models of -m ready to decode: one engine, or an ensemble of one engine per model.
struct Models {
  Config config;                             // the first model's config with the decode flags applied
  std::shared_ptr<const Tokenizer> src_tok;  // shared by every model (checked)
  std::shared_ptr<const Tokenizer> tgt_tok;
  std::shared_ptr<Engine> engine;
  bool torch = false;  // some model runs on the LibTorch engine
};

// Loads every -m model dir. Each runs on the native CPU engine when decode.engine and the device allow it and
// the dir has best.bin, else on the LibTorch engine; --engine native where it cannot run is
// a one-line error naming the reason. Ensemble members must share the SentencePiece models.
Models load_models(const DecodeArgs& d);

// Translator options from the decode config and flags (loads the shortlist when asked for).
TranslateOptions translate_options(const DecodeConfig& c, const DecodeArgs& d, int64_t tgt_vocab);

// Prints BLEU and chrF (and the perplexity, when given) as text or JSON.
// `systems`: one hypothesis stream per --hyp (several only with --paired-bs); `refs`: one stream per --ref.
void print_scores(const std::vector<std::vector<std::string>>& systems,
                  const std::vector<std::vector<std::string>>& refs, const EvalArgs& a,
                  std::optional<double> ppl);

// The lines of an --hyp or --ref file as sacreBLEU reads them ('-' is stdin).
std::vector<std::string> read_scoring_file(const std::string& path);

// Runs `translator` from -i/stdin to -o/stdout (the file written atomically); returns the line count.
int64_t translate_io(Translator& translator, const TranslateArgs& a);

}  // namespace s2s::app
