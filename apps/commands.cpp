#include "commands.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "config/config.h"
#include "data/batch.h"
#include "data/corpus.h"
#include "data/vocab.h"
#include "decode/translator.h"
#include "metrics/bleu.h"
#include "metrics/chrf.h"
#include "train/checkpoint.h"
#include "train/loss.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/runtime.h"

namespace s2s::app {
namespace {

// The model dir's stored config with decode.* overrides from the command line applied.
ModelBundle load_for_decoding(const DecodeArgs& d, DecodeConfig& decode) {
  const auto dir = std::filesystem::path(d.model_dir);
  const auto config_file = dir / model_files::kConfig;
  std::error_code ec;
  if (!std::filesystem::exists(config_file, ec)) {
    throw Error("'" + d.model_dir + "' is not an s2s model directory (no " + model_files::kConfig + ")");
  }
  const auto config = parse_config(fs::read_file(config_file), config_file.string(), dir, d.overrides);
  decode = config.decode;
  runtime::configure_threads(decode.threads);
  auto bundle = load_model_dir(dir, runtime::parse_device(decode.device),
                               decode.precision == "bf16" ? torch::kBFloat16 : torch::kFloat);
  runtime::tune_allocator();  // after loading: the float32 copies just freed go back to the system
  bundle.config.decode = decode;
  return bundle;
}

TranslateOptions translate_options(const DecodeConfig& c, const DecodeArgs& d) {
  TranslateOptions o;
  o.search.beam_size = c.beam_size, o.search.n_best = c.n_best, o.search.normalize = c.normalize;
  o.search.max_length_factor = c.max_length_factor, o.search.keep_attention = !d.alignment.empty();
  o.search.early_exit = c.early_exit;
  const bool cpu = runtime::parse_device(c.device).is_cpu();
  o.workers = c.workers > 0 ? c.workers : (cpu ? c.threads : 1);
  o.threads_per_worker = std::max(1, c.threads / o.workers);
  o.batch_size = c.batch_size, o.batch_tokens = c.batch_tokens, o.max_length = c.max_length;
  o.read_ahead = c.read_ahead, o.bf16 = c.precision == "bf16", o.scores = d.scores, o.alignment = d.alignment;
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

// Perplexity of `ref` given `src` under the model (teacher forced, per target token incl. EOS).
double reference_perplexity(ModelBundle& b, const std::string& src, const std::string& ref, bool bf16) {
  CorpusOptions opt;
  opt.max_length = 1 << 20;
  auto corpus = load_parallel(src, ref, *b.src_tok, *b.tgt_tok, opt);
  const SpecialIds ids{b.model->vocabs.pad_id, b.model->vocabs.bos_id, b.model->vocabs.eos_id};
  torch::NoGradGuard no_grad;
  runtime::AutocastGuard autocast(needs_autocast(bf16, *b.model), b.device);
  double nll = 0;
  int64_t tokens = 0;
  // Small batches: each one's full-vocabulary float logits (rows x vocab) are the peak of this pass.
  constexpr size_t kSentences = 16;
  for (size_t begin = 0; begin < corpus.size(); begin += kSentences) {
    std::vector<int64_t> idx;
    for (size_t i = begin; i < std::min(corpus.size(), begin + kSentences); ++i)
      idx.push_back(static_cast<int64_t>(i));
    auto batch = make_batch(corpus, idx, ids).to(b.device);
    auto loss = sequence_loss(*b.model, b.model->forward(batch.src, batch.src_lengths, batch.tgt_in),
                              batch.tgt_out, 0);
    nll += loss.nll, tokens += loss.tokens;
  }
  return std::exp(nll / std::max<int64_t>(1, tokens));
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

}  // namespace

std::string version_text() {
  return std::string("s2s ") + S2S_APP_VERSION + " (LibTorch " + runtime::torch_version() +
         ", CUDA available: " + (runtime::cuda_available() ? "yes" : "no") + ")";
}

int run_train(const TrainArgs& a) {
  const auto dir = std::filesystem::path(a.model_dir);
  std::filesystem::path config_file = a.config;
  if (config_file.empty()) {
    config_file = dir / model_files::kConfig;
    if (!std::filesystem::exists(config_file)) {
      throw Error("no config: pass -c/--config FILE (model dir '" + a.model_dir + "' has no config.yml yet)");
    }
  }
  const auto config = load_config(config_file, a.overrides);
  if (a.dump_config) {
    std::cout << dump_config(config);
    return 0;
  }
  runtime::tune_allocator();
  TrainRunOptions opt;
  opt.model_dir = dir, opt.quiet = a.quiet;
  const auto summary = train(config, opt);
  return summary.interrupted ? 130 : 0;
}

int run_translate(const TranslateArgs& a) {
  DecodeConfig decode;
  auto bundle = load_for_decoding(a.decode, decode);
  Translator translator(bundle.model, bundle.src_tok, bundle.tgt_tok, bundle.device,
                        translate_options(decode, a.decode));
  int fd = STDIN_FILENO;
  if (!a.input.empty()) {
    fd = ::open(a.input.c_str(), O_RDONLY);
    if (fd < 0) throw Error("cannot open input '" + a.input + "'");
  }
  int64_t lines = 0;
  // Developer hook: S2S_PROFILE=FILE writes a chrome://tracing profile of the translation loop.
  std::optional<torch::autograd::profiler::RecordProfile> profile;
  if (const char* trace = std::getenv("S2S_PROFILE")) profile.emplace(std::string(trace));
  if (a.output.empty()) {
    lines = translator.translate_stream(fd, std::cout);
  } else {
    fs::write_atomic(a.output, [&](std::ostream& out) { lines = translator.translate_stream(fd, out); });
  }
  if (fd != STDIN_FILENO) ::close(fd);
  spdlog::info("translated {} lines", lines);
  return 0;
}

int run_eval(const EvalArgs& a) {
  const auto refs = metrics::read_lines_for_scoring(a.ref);
  if (!a.hyp.empty()) {
    print_scores(metrics::read_lines_for_scoring(a.hyp), refs, a, std::nullopt);
    return 0;
  }
  if (a.decode.model_dir.empty() || a.src.empty()) {
    throw Error("eval needs --hyp FILE, or --model DIR with --src FILE (and --ref FILE)");
  }
  DecodeConfig decode;
  auto bundle = load_for_decoding(a.decode, decode);
  Translator translator(bundle.model, bundle.src_tok, bundle.tgt_tok, bundle.device,
                        translate_options(decode, a.decode));
  const auto sources = fs::read_lines(a.src);
  if (sources.size() != refs.size()) {
    throw Error("'" + a.src + "' has " + std::to_string(sources.size()) + " lines but '" + a.ref + "' has " +
                std::to_string(refs.size()));
  }
  const auto hyps = translator.translate(sources);
  runtime::release_free_memory();  // the workers' arenas: the perplexity pass allocates on this thread
  const double ppl = reference_perplexity(bundle, a.src, a.ref, decode.precision == "bf16");
  print_scores(hyps, refs, a, ppl);
  return 0;
}

int run_vocab(const VocabArgs& a) {
  SpmTrainOptions o;
  for (const auto& i : a.inputs) o.inputs.emplace_back(i);
  o.model_prefix = a.model_prefix, o.vocab_size = a.vocab_size, o.model_type = a.model_type;
  o.character_coverage = a.character_coverage, o.seed = static_cast<uint32_t>(a.seed);
  o.max_sentences = a.max_sentences, o.num_threads = a.threads;
  train_sentencepiece(o);
  spdlog::info("wrote {}.model and {}.vocab", a.model_prefix, a.model_prefix);
  return 0;
}

}  // namespace s2s::app
