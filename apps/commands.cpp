#include "commands.h"
#include "launch.h"

#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>

#include "common.h"
#include "config/model_dir.h"
#include "data/tokenizer.h"
#include "data/vocab.h"
#include "infer/factory/native_models.h"
#include "infer/gemm.h"
#include "infer/weights_file.h"
#include "metrics/bleu.h"
#include "tools_plugin.h"
#include "torch_plugin.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/version.h"

namespace s2s::app {

namespace {

// Opens plugin `file` next to the s2s executable and returns what its one exported function `symbol` returns;
// `what` names the plugin in errors ("the LibTorch part of s2s").
template <typename Plugin>
const Plugin* load_plugin(const char* file, const char* symbol, const std::string& what) {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  const auto path = exe.parent_path() / file;
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    throw Error("cannot load " + what + " (" + ::dlerror() + "): it must sit next to the s2s executable");
  }
  auto get = reinterpret_cast<const Plugin* (*)()>(::dlsym(handle, symbol));
  if (!get) throw Error("'" + path.string() + "' is not " + what);
  return get();
}

}  // namespace

const TorchPlugin& torch_plugin() {
  static const TorchPlugin* plugin =
      load_plugin<TorchPlugin>("libs2s_torch.so", "s2s_torch_plugin", "the LibTorch part of s2s");
  return *plugin;
}

const ToolsPlugin& tools_plugin() {
  static const ToolsPlugin* plugin =
      load_plugin<ToolsPlugin>("libs2s_tools.so", "s2s_tools_plugin", "the serve and plot part of s2s");
  return *plugin;
}

std::string version_text() {
  std::string torch = "not loaded";
  try {
    const auto& p = torch_plugin();
    torch = p.torch_version() + ", CUDA available: " + (p.cuda_available() ? "yes" : "no");
  } catch (const Error& e) {
    torch = e.what();
  }
  return std::string("s2s ") + version() + " (LibTorch " + torch + ")";
}

int run_train(const TrainArgs& a) {
  if (a.nproc > 1 && !a.dump_config) {
    if (a.world_size > 0 || a.rank >= 0 || !a.dist_addr.empty()) {
      throw Error("--nproc starts and connects its own ranks: drop --world-size, --rank and --dist-addr");
    }
    return launch_local_ranks(without_nproc(a.argv), a.nproc);
  }
  return torch_plugin().train(a);
}

namespace {

// "translated 1000 lines (24,512 tokens) in 1.83 s: 546 lines/s, 13,394 tokens/s" at info level.
void log_summary(const char* what, const Translator::Stats& s, std::chrono::steady_clock::time_point start) {
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double per = secs > 0 ? 1 / secs : 0;
  spdlog::info(
      "{} {} lines ({} source, {} target tokens) in {:.2f} s: {:.1f} lines/s, {:.0f} target tokens/s", what,
      s.lines, s.src_tokens, s.tgt_tokens, secs, s.lines * per, s.tgt_tokens * per);
}

// Reads a --src/--tgt/--ref style file ('-': stdin) as raw lines.
std::vector<std::string> read_input_lines(const std::string& path) {
  return fs::read_lines(path == "-" ? "/dev/stdin" : path);
}

}  // namespace

int run_translate(const TranslateArgs& a) {
  const auto start = std::chrono::steady_clock::now();
  auto m = load_models(a.decode);
  // Developer hook: S2S_PROFILE=FILE writes a chrome://tracing profile of the LibTorch translation loop.
  std::shared_ptr<void> profile;
  if (const char* trace = std::getenv("S2S_PROFILE"); trace && m.torch)
    profile = torch_plugin().start_profile(trace);
  Translator translator(m.engine, m.src_tok, m.tgt_tok,
                        translate_options(m.config.decode, a.decode, m.tgt_tok->vocab_size()));
  translate_io(translator, a);
  profile.reset();
  log_summary("translated", translator.stats(), start);
  return 0;
}

namespace {

// eval --model: translate --src with the models, score against --ref, and the perplexity of the first
// reference under the same engine (forced decoding over the full vocabulary).
int eval_models(const EvalArgs& a) {
  std::vector<std::vector<std::string>> refs;
  for (const auto& ref : a.refs) refs.push_back(read_scoring_file(ref));
  const auto sources = read_input_lines(a.src);
  if (sources.size() != refs[0].size()) {
    throw Error("'" + a.src + "' has " + std::to_string(sources.size()) + " lines but '" + a.refs[0] +
                "' has " + std::to_string(refs[0].size()));
  }
  if (!a.output.empty()) fs::check_not_same_file(a.src, a.output);
  const auto start = std::chrono::steady_clock::now();
  auto m = load_models(a.decode);
  if (m.config.decode.n_best > 1) throw Error("eval scores the 1-best translation; --n-best does not apply");
  Translator translator(m.engine, m.src_tok, m.tgt_tok,
                        translate_options(m.config.decode, a.decode, m.tgt_tok->vocab_size()));
  const auto hyps = translator.translate(sources);
  log_summary("translated", translator.stats(), start);
  if (!a.output.empty()) {
    fs::write_output(a.output, [&](std::ostream& out) {
      for (const auto& h : hyps) out << h << '\n';
    });
  }
  double nll = 0;
  int64_t tokens = 0;
  for (const auto& scores : translator.score_lines(sources, read_input_lines(a.refs[0]))) {
    for (const auto s : scores) nll -= s, ++tokens;
  }
  print_scores({hyps}, refs, a, std::exp(nll / static_cast<double>(std::max<int64_t>(1, tokens))));
  return 0;
}

std::string format_scores(const std::vector<float>& scores, const ScoreArgs& a) {
  if (scores.empty()) return "nan";  // an empty source line: nothing to condition on
  double total = 0;
  for (const auto s : scores) total += s;
  if (a.normalize) total /= static_cast<double>(scores.size());
  auto line = fmt::format("{:.6f}", total);
  if (a.word_scores) {
    line += " |||";
    for (const auto s : scores) line += fmt::format(" {:.6f}", s);
  }
  return line;
}

}  // namespace

int run_eval(const EvalArgs& a) {
  if (!a.hyps.empty()) {
    if (!a.output.empty())
      throw Error("eval -o keeps the translations of --model/--src; with --hyp there are none");
    if (!a.decode.models.empty()) throw Error("eval: --hyp scores given translations; drop -m/--model");
    if (!a.decode.overrides.empty()) {  // decoding flags would be silently ignored
      const auto& first =
          a.decode.typed.empty() ? "--set " + a.decode.overrides.front() : a.decode.typed.front().second;
      throw Error("eval --hyp scores given translations: '" + first +
                  "' applies only with --model and --src");
    }
    std::vector<std::vector<std::string>> systems, refs;
    for (const auto& hyp : a.hyps) systems.push_back(read_scoring_file(hyp));
    for (const auto& ref : a.refs) refs.push_back(read_scoring_file(ref));
    // Every file has one line per segment: name the first that differs from the first --hyp.
    const auto check = [&](const std::vector<std::string>& lines, const std::string& name) {
      if (lines.size() != systems[0].size()) {
        throw Error("'" + name + "' has " + std::to_string(lines.size()) + " lines but '" + a.hyps[0] +
                    "' has " + std::to_string(systems[0].size()) +
                    ": every --hyp and --ref needs one line per segment");
      }
    };
    for (size_t i = 1; i < systems.size(); ++i) check(systems[i], a.hyps[i]);
    for (size_t i = 0; i < refs.size(); ++i) check(refs[i], a.refs[i]);
    print_scores(systems, refs, a, std::nullopt);
    return 0;
  }
  if (a.decode.models.empty() || a.src.empty()) {
    throw Error("eval needs --hyp FILE, or --model DIR with --src FILE (and --ref FILE)");
  }
  return eval_models(a);
}

int run_score(const ScoreArgs& a) {
  const auto start = std::chrono::steady_clock::now();
  if (a.src == "-" && a.tgt == "-") throw Error("--src and --tgt cannot both be stdin ('-')");
  if (!a.output.empty()) {
    if (a.src != "-") fs::check_not_same_file(a.src, a.output);
    if (a.tgt != "-") fs::check_not_same_file(a.tgt, a.output);
  }
  const auto sources = read_input_lines(a.src), targets = read_input_lines(a.tgt);
  if (sources.size() != targets.size()) {
    throw Error("--src '" + a.src + "' has " + std::to_string(sources.size()) + " lines but --tgt '" + a.tgt +
                "' has " + std::to_string(targets.size()));
  }
  auto m = load_models(a.decode);
  auto options = translate_options(m.config.decode, a.decode, m.tgt_tok->vocab_size());
  options.shortlist = nullptr;  // scores are over the full vocabulary
  Translator translator(m.engine, m.src_tok, m.tgt_tok, options);
  auto write = [&](std::ostream& out) {
    const size_t window = static_cast<size_t>(std::max(1, options.read_ahead));
    for (size_t begin = 0; begin < sources.size(); begin += window) {
      const auto end = std::min(sources.size(), begin + window);
      const std::vector<std::string> src(sources.begin() + begin, sources.begin() + end),
          tgt(targets.begin() + begin, targets.begin() + end);
      const auto scores = translator.score_lines(src, tgt, static_cast<int64_t>(begin) + 1);
      for (size_t i = 0; i < scores.size(); ++i) {
        if (scores[i].empty()) spdlog::warn("source line {} is empty: score nan", begin + i + 1);
        out << format_scores(scores[i], a) << '\n';
      }
      if (!out.flush()) throw Error(std::string("cannot write the scores: ") + std::strerror(errno));
    }
  };
  if (a.output.empty())
    write(std::cout);
  else
    fs::write_output(a.output, write);
  log_summary("scored", translator.stats(), start);
  return 0;
}

int run_serve(const ServeArgs& a) {
  const auto& tools = tools_plugin();
  tools.block_stop_signals();  // before the model's threads start: SIGTERM must reach our waiter alone
  auto m = load_models(a.decode);
  const auto options = translate_options(m.config.decode, a.decode, m.tgt_tok->vocab_size());
  serve::ServeOptions so;
  so.host = a.host, so.port = a.port, so.max_lines = static_cast<size_t>(a.max_lines);
  so.max_request_bytes = static_cast<size_t>(a.max_request_kb) * 1024, so.batch_wait_ms = a.batch_wait_ms;
  so.default_beam_size = options.search.beam_size;
  const serve::TranslatorFactory factory = [&](int beam_size) {
    auto o = options;
    o.search.beam_size = beam_size, o.search.n_best = 1;
    return std::make_unique<Translator>(m.engine, m.src_tok, m.tgt_tok, o);
  };
  tools.serve(factory, so, [&](int port) {
    spdlog::info("serving {} on http://{}:{} (POST /translate, GET /health)", a.decode.model_dir(), a.host,
                 port);
  });
  spdlog::info("server stopped");
  return 0;
}

int run_plot(const PlotArgs& a) {
  const auto& tools = tools_plugin();
  const plot::Size size{a.width, a.height};
  std::string png;
  if (a.attention.empty()) {
    const auto metrics = std::filesystem::path(a.decode.model_dir()) / model_files::kMetrics;
    png = tools.draw_curves(tools.read_curves(metrics), size);
  } else {
    auto m = load_models(a.decode);
    auto options = translate_options(m.config.decode, a.decode, m.tgt_tok->vocab_size());
    options.search.keep_attention = true, options.search.n_best = 1;
    Translator translator(m.engine, m.src_tok, m.tgt_tok, options);
    const auto hyps = translator.translate_lines({a.attention});
    if (hyps[0].empty()) throw Error("--attention: the sentence is empty");
    const auto& best = hyps[0][0];
    std::vector<std::string> src, tgt;
    for (const auto id : m.src_tok->encode(a.attention)) src.push_back(m.src_tok->id_to_piece(id));
    src.resize(std::min<size_t>(src.size(), static_cast<size_t>(options.max_length)));
    for (const auto id : best.tokens) tgt.push_back(m.tgt_tok->id_to_piece(id));
    if (best.attention.size() > best.tokens.size())
      tgt.push_back("</s>");  // not when cut at the length limit
    png = tools.draw_attention(best.attention, src, tgt, size);
    spdlog::info("translation: {}", translator.detokenize(best));
  }
  fs::write_output(
      a.output, [&](std::ostream& out) { out.write(png.data(), static_cast<std::streamsize>(png.size())); });
  spdlog::info("wrote {} ({}x{} PNG)", a.output, a.width, a.height);
  return 0;
}

int run_vocab(const VocabArgs& a) {
  const auto model = a.model_prefix + ".model";
  std::error_code ec;
  if (!a.force && std::filesystem::exists(model, ec)) {
    throw Error("'" + model + "' exists (a model dir's vocabulary?); pass --force to replace it");
  }
  SpmTrainOptions o;
  for (const auto& i : a.inputs) o.inputs.emplace_back(i);
  o.model_prefix = a.model_prefix, o.vocab_size = a.vocab_size,
  o.model_type = parse_enum<SubwordModel>(a.model_type, "--model-type");
  o.character_coverage = a.character_coverage, o.seed = static_cast<uint32_t>(a.seed);
  o.max_sentences = a.max_sentences, o.num_threads = a.threads;
  train_sentencepiece(o);
  spdlog::info("wrote {}.model and {}.vocab", a.model_prefix, a.model_prefix);
  return 0;
}

namespace {

// The most recent `n` checkpoints/step-N.bin of a model dir, oldest first.
std::vector<std::filesystem::path> last_checkpoints(const std::filesystem::path& dir, int n) {
  std::map<int64_t, std::filesystem::path> steps;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir / model_files::kCheckpoints, ec)) {
    const auto name = entry.path().filename().string();
    if (name.rfind("step-", 0) == 0 && entry.path().extension() == ".bin") {
      steps.emplace(std::atoll(name.c_str() + 5), entry.path());
    }
  }
  if (static_cast<int>(steps.size()) < n) {
    throw Error("model dir '" + dir.string() + "' has " + std::to_string(steps.size()) + " checkpoints in " +
                model_files::kCheckpoints + "/, --last asks for " + std::to_string(n) +
                " (train with train.keep_checkpoints: " + std::to_string(n) + ")");
  }
  std::vector<std::filesystem::path> out;
  for (auto it = std::prev(steps.end(), n); it != steps.end(); ++it) out.push_back(it->second);
  return out;
}

// The model dir that -i files belong to: their directory, or its parent for files in checkpoints/.
std::filesystem::path model_dir_of(const std::filesystem::path& weights) {
  auto dir = weights.parent_path();
  if (dir.filename() == model_files::kCheckpoints) dir = dir.parent_path();
  return dir.empty() ? "." : dir;
}

}  // namespace

namespace {

// Prepares `out` as a new model dir made from `source` by `command` (its best.bin is the caller's to write):
// refuses the source itself, and an existing best.bin unless `force`.
void prepare_model_dir(const std::filesystem::path& source, const std::filesystem::path& out, bool force,
                       const char* command) {
  std::error_code ec;
  if (std::filesystem::equivalent(out, source, ec)) {
    throw Error("-o '" + out.string() + "' is the source model dir; " + command + " into a new directory");
  }
  if (std::filesystem::exists(out / model_files::kBest) && !force) {
    throw Error("'" + (out / model_files::kBest).string() + "' exists; pass --force to replace it");
  }
  fs::ensure_dir(out);
}

// Copies the files of model dir `source` but its weights into `out`: config.yml, the shortlist and the
// SentencePiece model(s).
void copy_model_files(const std::filesystem::path& source, const std::filesystem::path& out,
                      const Config& config) {
  std::vector<std::filesystem::path> files{model_files::kConfig, model_files::kShortlist};
  const auto [src_spm, tgt_spm] = tokenizer_paths(source, config);
  files.push_back(src_spm.filename()), files.push_back(tgt_spm.filename());
  for (const auto& name : files) {
    if (std::filesystem::exists(source / name))
      fs::write_file_atomic(out / name, fs::read_file(source / name));
  }
}

}  // namespace

int run_average(const AverageArgs& a) {
  if (a.inputs.empty() && (a.model_dir.empty() || a.last < 1)) {
    throw Error("average needs -m DIR --last N, or -i FILE (repeated) with the files to average");
  }
  std::vector<std::filesystem::path> inputs(a.inputs.begin(), a.inputs.end());
  const std::filesystem::path source =
      !a.model_dir.empty() ? std::filesystem::path(a.model_dir) : model_dir_of(inputs.front());
  if (inputs.empty()) inputs = last_checkpoints(source, a.last);
  const auto config = read_model_dir_config(source);
  const std::filesystem::path out = a.output;
  prepare_model_dir(source, out, a.force, "average");
  copy_model_files(source, out, config);
  average_weights_files(inputs, out / model_files::kBest);
  spdlog::info("averaged {} weights files into {}", inputs.size(), (out / model_files::kBest).string());
  return 0;
}

int run_convert(const ConvertArgs& a) {
  const std::filesystem::path source = a.model_dir, out = a.output;
  const auto config = read_model_dir_config(source);
  auto precision = parse_enum<Precision>(a.precision, "--precision");
  if (precision == Precision::kAuto) {
    if (!infer::int8_is_fast() && !infer::bf16_is_fast()) {
      throw Error(
          "--precision auto: this CPU has neither VNNI int8 nor bf16 GEMMs; name the precision to "
          "convert to (int8 | bf16)");
    }
    precision = infer::int8_is_fast() ? Precision::kInt8 : Precision::kBf16;
  }
  if (precision == Precision::kFp32)
    throw Error("--precision fp32: best.bin holds float32 weights already; convert to int8 or bf16");
  const auto weights = source / model_files::kBest;
  if (!std::filesystem::exists(weights)) throw Error("model dir '" + source.string() + "' has no best.bin");
  const auto [src_spm, tgt_spm] = tokenizer_paths(source, config);
  const auto src_vocab = Tokenizer::load(src_spm)->vocab_size(),
             tgt_vocab = Tokenizer::load(tgt_spm)->vocab_size();
  prepare_model_dir(source, out, a.force, "convert");
  infer::convert_native(config.model, src_vocab, tgt_vocab, weights, out / model_files::kBest,
                        precision == Precision::kInt8 ? infer::WeightType::kInt8 : infer::WeightType::kBf16);
  copy_model_files(source, out, config);
  spdlog::info("converted {} to {}: {} ({:.1f} MB -> {:.1f} MB)", weights.string(), to_string(precision),
               (out / model_files::kBest).string(), std::filesystem::file_size(weights) / 1e6,
               std::filesystem::file_size(out / model_files::kBest) / 1e6);
  return 0;
}

}  // namespace s2s::app
