#include "common.h"

#include <fcntl.h>

#include <spdlog/spdlog.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

#include <iostream>
#include <nlohmann/json.hpp>

#include "config/model_dir.h"
#include "infer/rnn/native_model.h"
#include "metrics/bleu.h"
#include "metrics/chrf.h"
#include "util/allocator.h"
#include "util/error.h"
#include "util/fs.h"

namespace s2s::app {
namespace {

// Whether translate runs on the native CPU engine; `why` says why not when it does not.
bool use_native(const Config& config, const std::filesystem::path& dir, std::string& why) {
  const auto& d = config.decode;
  if (d.engine == EngineKind::kTorch) {
    why = "--engine torch";
    return false;
  }
  if (!d.device.is_cpu())
    why = "device " + to_string(d.device);
  else if (!std::filesystem::exists(dir / model_files::kBest))
    why = std::string("no ") + model_files::kBest;
  else if (!infer::NativeModel::supports(config.model, &why))
    why += " is not supported natively";
  else
    return true;
  if (d.engine == EngineKind::kNative)
    throw Error("--engine native: cannot use the native CPU engine here (" + why + ")");
  return false;
}

std::shared_ptr<Engine> native_engine(const std::filesystem::path& dir, const Config& config,
                                      const Tokenizer& src_tok, const Tokenizer& tgt_tok) {
  runtime::tune_allocator();  // heap, not fresh mmaps: load temporaries and per-batch buffers are reused
  auto model = std::make_shared<const infer::NativeModel>(
      config.model, src_tok.vocab_size(), tgt_tok.vocab_size(), dir / model_files::kBest,
      /*bf16=*/config.decode.precision == Precision::kBf16);
  TargetIds ids{tgt_tok.pad_id(), tgt_tok.bos_id(), tgt_tok.eos_id(), tgt_tok.unk_id()};
  auto engine = std::make_shared<infer::NativeEngine>(std::move(model), ids);
  engine->set_thread_threads(config.decode.threads);  // batches run on this thread with one worker
  return engine;
}

}  // namespace

std::shared_ptr<Engine> make_engine(const std::filesystem::path& dir, const Config& config,
                                    const Tokenizer& src_tok, const Tokenizer& tgt_tok,
                                    const std::function<std::shared_ptr<Engine>()>& load_torch) {
  std::string why;
  if (use_native(config, dir, why)) {
    spdlog::debug("engine: native CPU ({})", to_string(config.decode.precision));
    return native_engine(dir, config, src_tok, tgt_tok);
  }
  spdlog::debug("engine: LibTorch ({})", why);
  return load_torch();
}

Config decode_config(const DecodeArgs& d) {
  return read_model_dir_config(d.model_dir, d.overrides);
}

TranslateOptions translate_options(const DecodeConfig& c, const DecodeArgs& d) {
  TranslateOptions o;
  o.search.beam_size = c.beam_size, o.search.n_best = c.n_best, o.search.normalize = c.normalize;
  o.search.max_length_factor = c.max_length_factor,
  o.alignment = parse_enum<Alignment>(d.alignment, "--alignment");
  o.search.keep_attention = o.alignment != Alignment::kNone;
  o.search.early_exit = c.early_exit;
  const bool cpu = c.device.is_cpu();
  o.workers = c.workers > 0 ? c.workers : (cpu ? c.threads : 1);
  o.threads_per_worker = std::max(1, c.threads / o.workers);
  o.batch_size = c.batch_size, o.batch_tokens = c.batch_tokens, o.max_length = c.max_length;
  o.read_ahead = c.read_ahead, o.scores = d.scores;
  if (c.shortlist) {
    const auto file = std::filesystem::path(d.model_dir) / model_files::kShortlist;
    if (!std::filesystem::exists(file)) {
      throw Error("--shortlist: model dir '" + d.model_dir + "' has no " + model_files::kShortlist +
                  " (written by s2s train; run train on it again to create it)");
    }
    auto shortlist = load_shortlist(file);
    shortlist.limit(c.shortlist_per_source, c.shortlist_frequent);
    o.shortlist = std::make_shared<const Shortlist>(std::move(shortlist));
  }
  return o;
}

void print_scores(const std::vector<std::string>& hyps, const std::vector<std::string>& refs,
                  const EvalArgs& a, std::optional<double> ppl) {
  metrics::BleuOptions bopt;
  bopt.lowercase = a.lowercase;
  metrics::ChrfOptions copt;
  copt.lowercase = a.lowercase;
  const auto bleu = metrics::corpus_bleu(hyps, refs, bopt);
  const auto chrf = metrics::corpus_chrf(hyps, refs, copt);
  if (a.json) {
    nlohmann::json j;
    j["bleu"] = {{"score", bleu.score},        {"precisions", bleu.precisions}, {"bp", bleu.bp},
                 {"ratio", bleu.ratio},        {"sys_len", bleu.sys_len},       {"ref_len", bleu.ref_len},
                 {"signature", bleu.signature}};
    j["chrf"] = {{"score", chrf.score}, {"signature", chrf.signature}};
    if (ppl) j["ppl"] = *ppl;
    if (a.sentence_level) {
      auto& rows = j["sentences"] = nlohmann::json::array();
      for (size_t i = 0; i < hyps.size(); ++i) {
        rows.push_back({{"bleu", metrics::sentence_bleu(hyps[i], refs[i], bopt).score},
                        {"chrf", metrics::sentence_chrf(hyps[i], refs[i], copt).score}});
      }
    }
    std::cout << j.dump(1) << "\n";
    return;
  }
  if (a.sentence_level) {
    for (size_t i = 0; i < hyps.size(); ++i) {
      std::cout << i << "\t" << metrics::sentence_bleu(hyps[i], refs[i], bopt).format() << "\t"
                << metrics::sentence_chrf(hyps[i], refs[i], copt).format() << "\n";
    }
  }
  std::cout << bleu.format() << "\n"
            << bleu.signature << "\n"
            << chrf.format() << "\n"
            << chrf.signature << "\n";
  if (ppl) std::cout << "ppl = " << *ppl << "\n";
}

int64_t translate_io(Translator& translator, const TranslateArgs& a) {
  int fd = STDIN_FILENO;
  if (!a.input.empty()) {
    std::error_code ec;
    if (std::filesystem::is_directory(a.input, ec))
      throw Error("input '" + a.input + "' is a directory, not a file");
    fd = ::open(a.input.c_str(), O_RDONLY);
    if (fd < 0) throw Error("cannot open input '" + a.input + "': " + std::strerror(errno));
  }
  int64_t lines = 0;
  if (a.output.empty()) {
    lines = translator.translate_stream(fd, std::cout);
  } else {
    if (!a.input.empty()) fs::check_not_same_file(a.input, a.output);
    fs::write_output(a.output, [&](std::ostream& out) { lines = translator.translate_stream(fd, out); });
  }
  if (fd != STDIN_FILENO) ::close(fd);
  return lines;
}

}  // namespace s2s::app
