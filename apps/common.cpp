#include "common.h"

#include <fcntl.h>

#include <spdlog/spdlog.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>

#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include <spdlog/fmt/ranges.h>
#include "config/model_dir.h"
#include "decode/ensemble.h"
#include "infer/converted_weights.h"
#include "infer/factory/native_models.h"
#include "infer/gemm.h"
#include "infer/native_engine.h"
#include "metrics/bleu.h"
#include "metrics/chrf.h"
#include "metrics/scorer.h"
#include "metrics/significance.h"
#include "torch_plugin.h"
#include "util/allocator.h"
#include "util/error.h"
#include "util/fs.h"

namespace s2s::app {
namespace {

// Whether translate runs on the native CPU engine; `why` says why not when it does not. A model dir whose
// best.bin is converted (s2s convert) runs there or nowhere.
bool use_native(const Config& config, const std::filesystem::path& dir, bool converted, std::string& why) {
  const auto& d = config.decode;
  if (d.engine == EngineKind::kTorch) {
    if (d.precision == Precision::kInt8)
      throw Error("--precision int8 runs on the native CPU engine only, not --engine torch");
    why = "--engine torch";
  } else if (!d.device.is_cpu()) {
    why = "device " + to_string(d.device);
  } else if (!std::filesystem::exists(dir / model_files::kBest)) {
    why = std::string("no ") + model_files::kBest;
  } else {
    return true;
  }
  if (converted) {
    throw Error("'" + (dir / model_files::kBest).string() +
                "' holds weights converted for the native CPU engine (s2s convert), which cannot run here (" +
                why + "); use the float32 model dir it was converted from");
  }
  if (d.engine == EngineKind::kNative)
    throw Error("--engine native: cannot use the native CPU engine here (" + why + ")");
  if (d.precision == Precision::kInt8)
    throw Error("--precision int8 runs on the native CPU engine only, which cannot run here (" + why + ")");
  return false;
}

std::shared_ptr<Engine> native_engine(const std::filesystem::path& dir, const Config& config,
                                      const Tokenizer& src_tok, const Tokenizer& tgt_tok) {
  runtime::tune_allocator();  // heap, not fresh mmaps: load temporaries and per-batch buffers are reused
  runtime::use_one_arena();   // before the translation workers start
  auto model =
      infer::load_native(config.model, src_tok.vocab_size(), tgt_tok.vocab_size(), dir / model_files::kBest,
                         config.decode.precision == Precision::kInt8   ? infer::WeightType::kInt8
                         : config.decode.precision == Precision::kBf16 ? infer::WeightType::kBf16
                                                                       : infer::WeightType::kF32);
  TargetIds ids{tgt_tok.pad_id(), tgt_tok.bos_id(), tgt_tok.eos_id(), tgt_tok.unk_id()};
  auto engine = std::make_shared<infer::NativeEngine>(std::move(model), ids);
  engine->set_thread_threads(config.decode.threads);  // batches run on this thread with one worker
  return engine;
}

// A model dir's stored config with the decode flags applied.
Config decode_config(const std::string& dir, const DecodeArgs& d) {
  Config config;  // decode.precision may stay auto: resolved once the engine is known (resolve_auto)
  try {
    config = read_model_dir_config(dir, d.overrides);
  } catch (const Error& e) {  // name the flag the user typed, not the override it maps onto
    throw Error(name_typed_flags(e.what(), d.typed));
  }
  return config;
}

// decode.precision auto: the fastest precision within 0.3 BLEU of the exact fp32 search (docs/BENCHMARKS.md):
// int8 where the CPU has VNNI (native engine only), else bf16 where it has AVX512-BF16, else fp32. Weights
// converted ahead (`converted`: their precision) run in their precision only.
void resolve_auto(DecodeConfig& d, bool native, const std::optional<Precision>& converted,
                  const std::filesystem::path& weights, bool log) {
  if (converted) {
    if (d.precision != Precision::kAuto && d.precision != *converted) {
      throw Error("--precision " + to_string(d.precision) + ": '" + weights.string() + "' holds " +
                  to_string(*converted) + " weights (s2s convert); use --precision " + to_string(*converted) +
                  " or auto, or the float32 model dir it was converted from");
    }
    if (log && d.precision == Precision::kAuto)
      spdlog::info("precision auto: {} (the weights are converted to it)", to_string(*converted));
    d.precision = *converted;
    return;
  }
  if (d.precision != Precision::kAuto) return;
  const char* why = "no native int8 or bf16 GEMMs here; --precision int8|bf16 forces them";
  d.precision = Precision::kFp32;
  if (d.device.is_cpu() && native && infer::int8_is_fast()) {
    d.precision = Precision::kInt8, why = "the CPU has VNNI int8 dot products";
  } else if (d.device.is_cpu() && infer::bf16_is_fast()) {
    d.precision = Precision::kBf16, why = "the CPU has AVX512-BF16";
  }
  if (log) spdlog::info("precision auto: {} ({})", to_string(d.precision), why);
}

// The precision of a model dir's best.bin when it is converted (s2s convert).
std::optional<Precision> converted_precision(const std::filesystem::path& weights) {
  const auto type = infer::converted_weight_type(weights);
  if (!type) return std::nullopt;
  return *type == infer::WeightType::kInt8 ? Precision::kInt8 : Precision::kBf16;
}

// Throws unless the SentencePiece model `mine` of -m `dir` has the same bytes as `first`'s.
void check_same_vocab(const std::filesystem::path& first, const std::filesystem::path& mine,
                      const std::string& dir, const char* side) {
  if (fs::read_file(first) != fs::read_file(mine)) {
    throw Error("-m '" + dir + "': its " + side + " SentencePiece model '" + mine.string() +
                "' differs from '" + first.string() + "'; ensemble members must share the vocabularies");
  }
}

}  // namespace

Models load_models(const DecodeArgs& d) {
  if (d.models.empty()) throw Error("no model: pass -m/--model DIR");
  if (!d.weights.empty() && d.weights.size() != d.models.size()) {
    throw Error("--weights has " + std::to_string(d.weights.size()) + " values for " +
                std::to_string(d.models.size()) + " models (-m)");
  }
  Models m;
  std::vector<std::shared_ptr<Engine>> engines;
  std::filesystem::path first_src, first_tgt;
  for (size_t i = 0; i < d.models.size(); ++i) {
    const std::filesystem::path dir = d.models[i];
    auto config = decode_config(dir, d);
    const auto [src_path, tgt_path] = tokenizer_paths(dir, config);
    if (i == 0) {
      m.config = config, first_src = src_path, first_tgt = tgt_path;
      m.src_tok = Tokenizer::load(src_path);
      m.tgt_tok =
          config.vocab.joint ? m.src_tok : std::shared_ptr<const Tokenizer>(Tokenizer::load(tgt_path));
    } else {
      check_same_vocab(first_src, src_path, dir.string(), "source");
      check_same_vocab(first_tgt, tgt_path, dir.string(), "target");
    }
    std::string why;
    const auto converted = converted_precision(dir / model_files::kBest);
    const bool native = use_native(config, dir, converted.has_value(), why);
    resolve_auto(config.decode, native, converted, dir / model_files::kBest, /*log=*/i == 0);
    if (i == 0) m.config.decode.precision = config.decode.precision;
    if (native) {
      spdlog::debug("engine: native CPU ({}) for {}", to_string(config.decode.precision), dir.string());
      engines.push_back(native_engine(dir, config, *m.src_tok, *m.tgt_tok));
    } else {
      spdlog::debug("engine: LibTorch ({}) for {}", why, dir.string());
      engines.push_back(torch_plugin().load_engine(dir, config));
      m.torch = true;
    }
  }
  if (engines.size() == 1) {
    m.engine = engines.front();
  } else {
    auto ensemble = std::make_shared<EnsembleEngine>(std::move(engines), d.weights);
    spdlog::info("ensemble of {} models, weights {}", d.models.size(), fmt::join(ensemble->weights(), ","));
    m.engine = ensemble;
  }
  return m;
}

TranslateOptions translate_options(const DecodeConfig& c, const DecodeArgs& d, int64_t tgt_vocab) {
  TranslateOptions o;
  o.search.beam_size = c.beam_size, o.search.n_best = c.n_best, o.search.normalize = c.normalize;
  o.search.max_length_factor = c.max_length_factor,
  o.alignment = parse_enum<Alignment>(d.alignment, "--alignment");
  o.search.keep_attention = o.alignment != Alignment::kNone;
  o.search.early_exit = c.early_exit;
  const bool cpu = c.device.is_cpu();
  o.workers = c.workers > 0 ? c.workers : (cpu ? c.threads : 1);
  o.threads_per_worker = std::max(1, c.threads / o.workers);
  o.batch_size = c.batch_size > 0 ? c.batch_size : auto_batch_size(c.beam_size, cpu);
  o.batch_tokens = c.batch_tokens, o.max_length = c.max_length;
  o.read_ahead = c.read_ahead, o.scores = d.scores, o.spm_decode = d.spm_decode;
  const bool own = !d.shortlist_file.empty();
  const auto file = own ? std::filesystem::path(d.shortlist_file)
                        : std::filesystem::path(d.model_dir()) / model_files::kShortlist;
  const bool use =
      own || c.shortlist == Switch::kOn || (c.shortlist == Switch::kAuto && std::filesystem::exists(file));
  if (use) {
    if (!std::filesystem::exists(file)) {
      if (own) throw Error("--shortlist '" + d.shortlist_file + "' does not exist");
      throw Error("--shortlist: model dir '" + d.model_dir() + "' has no " + model_files::kShortlist +
                  " (written by s2s train; run train on it again to create it)");
    }
    auto shortlist = load_shortlist(file, tgt_vocab);
    shortlist.limit(c.shortlist_per_source, c.shortlist_frequent);
    o.shortlist = std::make_shared<const Shortlist>(std::move(shortlist));
  }
  return o;
}

namespace {

// The metrics to compute, in sacreBLEU's order (BLEU, chrF, TER); --sentence-level text takes exactly one.
std::vector<std::string> chosen_metrics(const EvalArgs& a) {
  const bool one_metric = a.sentence_level && !a.json;  // the JSON rows may hold several
  std::vector<std::string> m = a.metrics;
  if (m.empty()) m = one_metric ? std::vector<std::string>{"bleu"} : std::vector<std::string>{"bleu", "chrf"};
  std::sort(m.begin(), m.end());
  m.erase(std::unique(m.begin(), m.end()), m.end());
  if (one_metric && m.size() > 1) {
    throw Error(
        "--sentence-level scores one metric at a time (as sacreBLEU): pass --metrics bleu, chrf or ter");
  }
  return m;
}

// Scorers for corpus scores, or for sentence scores (BLEU with effective order, as sacreBLEU's
// --sentence-level).
std::vector<std::unique_ptr<metrics::Scorer>> make_scorers(const std::vector<std::string>& names,
                                                           const EvalArgs& a, bool sentences = false) {
  metrics::ScorerOptions o;
  o.lowercase = a.lowercase, o.chrf_word_order = a.chrf_word_order,
  o.ter_case_sensitive = a.ter_case_sensitive;
  o.effective_order = sentences;
  std::vector<std::unique_ptr<metrics::Scorer>> scorers;
  for (const auto& name : names) scorers.push_back(metrics::make_scorer(name, o));
  return scorers;
}

nlohmann::json result_json(const metrics::MetricResult& r) {
  return {{"name", r.name}, {"score", r.score}, {"signature", r.signature}};
}

// s2s's JSON: full-precision numbers (BLEU with its n-gram details), per-sentence scores when asked.
void print_json(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                const std::vector<std::string>& names, const EvalArgs& a, std::optional<double> ppl) {
  nlohmann::json j;
  const auto scorers = make_scorers(names, a);
  for (size_t m = 0; m < names.size(); ++m) j[names[m]] = result_json(scorers[m]->corpus(hyps, refs));
  if (j.contains("bleu")) {
    metrics::BleuOptions bopt;
    bopt.lowercase = a.lowercase;
    const auto bleu = metrics::corpus_bleu(hyps, refs, bopt);
    j["bleu"].update({{"precisions", bleu.precisions},
                      {"bp", bleu.bp},
                      {"ratio", bleu.ratio},
                      {"sys_len", bleu.sys_len},
                      {"ref_len", bleu.ref_len}});
  }
  if (ppl) j["ppl"] = *ppl;
  if (a.sentence_level) {
    const auto per_sentence = make_scorers(names, a, /*sentences=*/true);
    auto& rows = j["sentences"] = nlohmann::json::array();
    for (size_t i = 0; i < hyps.size(); ++i) rows.push_back(nlohmann::json::object());
    for (size_t m = 0; m < names.size(); ++m) {
      const auto scores = per_sentence[m]->sentences(hyps, refs);
      for (size_t i = 0; i < scores.size(); ++i) rows[i][names[m]] = scores[i].score;
    }
  }
  std::cout << j.dump(1) << "\n";
}

// --paired-bs: one row per system (the first is the baseline), score (bootstrap mean ± 95% CI) (p-value).
void print_paired(const std::vector<std::vector<std::string>>& systems,
                  const std::vector<std::vector<std::string>>& refs, const std::vector<std::string>& names,
                  const EvalArgs& a) {
  const auto scorers = make_scorers(names, a);
  std::vector<const metrics::Scorer*> view;
  for (const auto& s : scorers) view.push_back(s.get());
  const auto results = metrics::paired_bootstrap(view, systems, refs, a.paired_bs_n);
  const auto fixed = [&](double x) { return fmt::format("{:.{}f}", x, a.width); };
  std::cout << "Paired bootstrap resampling test with " << a.paired_bs_n
            << " resampling trials; each system is compared to the baseline (first --hyp).\n"
            << "Score (bootstrap mean ± 95% CI); p < 0.05 is marked with *.\n";
  for (size_t s = 0; s < systems.size(); ++s) {
    std::cout << (s == 0 ? "Baseline: " : "          ") << a.hyps[s] << "\n";
    for (size_t m = 0; m < names.size(); ++m) {
      const auto& r = results[s][m];
      std::cout << "  " << r.actual.name << " = " << fixed(r.actual.score) << " (" << fixed(r.mean) << " ± "
                << fixed(r.ci) << ")";
      if (r.p_value >= 0) std::cout << fmt::format(" (p = {:.4f}){}", r.p_value, r.p_value < 0.05 ? "*" : "");
      std::cout << "\n";
    }
  }
  for (size_t m = 0; m < names.size(); ++m) {
    std::cout << fmt::format(" - {:<10} {}\n", results[0][m].actual.name, results[0][m].actual.signature);
  }
}

}  // namespace

std::vector<std::string> read_scoring_file(const std::string& path) {
  return metrics::read_lines_for_scoring(path == "-" ? "/dev/stdin" : path);
}

void print_scores(const std::vector<std::vector<std::string>>& systems,
                  const std::vector<std::vector<std::string>>& refs, const EvalArgs& a,
                  std::optional<double> ppl) {
  const auto names = chosen_metrics(a);
  if (systems.size() > 1 && !a.paired_bs)
    throw Error("several --hyp files need --paired-bs (the first is the baseline)");
  if (a.paired_bs) {
    if (systems.size() < 2) throw Error("--paired-bs needs a baseline and at least one more --hyp file");
    if (a.sentence_level || a.json)
      throw Error("--paired-bs cannot be combined with --sentence-level or --json");
    return print_paired(systems, refs, names, a);
  }
  const auto& hyps = systems.at(0);
  if (a.json) return print_json(hyps, refs, names, a, ppl);
  const auto scorers = make_scorers(names, a, a.sentence_level);
  if (a.sentence_level) {  // sacreBLEU --sentence-level: one line per sentence, nothing else
    for (const auto& r : scorers[0]->sentences(hyps, refs)) {
      std::cout << metrics::format_result(r, a.width, a.score_only) << "\n";
    }
    return;
  }
  std::vector<std::string> lines;
  for (const auto& scorer : scorers)
    lines.push_back(metrics::format_result(scorer->corpus(hyps, refs), a.width, a.score_only));
  for (const auto& line : metrics::align_results(lines)) std::cout << line << "\n";
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
    fs::write_output(a.output, [&](std::ostream& out) {
      lines = translator.translate_stream(fd, out, "'" + a.output + "'");
    });
  }
  if (fd != STDIN_FILENO) ::close(fd);
  return lines;
}

}  // namespace s2s::app
