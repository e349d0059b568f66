#include "commands.h"

#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <map>
#include <memory>

#include "common.h"
#include "config/model_dir.h"
#include "data/vocab.h"
#include "infer/weights_file.h"
#include "metrics/bleu.h"
#include "torch_plugin.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/version.h"

namespace s2s::app {

const TorchPlugin& torch_plugin() {
  static const TorchPlugin* plugin = [] {
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    const auto path = exe.parent_path() / "libs2s_torch.so";
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      throw Error(std::string("cannot load the LibTorch part of s2s (") + ::dlerror() +
                  "): it must sit next to the s2s executable");
    }
    auto get = reinterpret_cast<const TorchPlugin* (*)()>(::dlsym(handle, "s2s_torch_plugin"));
    if (!get) throw Error("'" + path.string() + "' is not the s2s LibTorch plugin");
    return get();
  }();
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
  return torch_plugin().train(a);
}

int run_translate(const TranslateArgs& a) {
  const auto dir = std::filesystem::path(a.decode.model_dir);
  const auto config = decode_config(a.decode);
  auto [src_path, tgt_path] = tokenizer_paths(dir, config);
  std::shared_ptr<const Tokenizer> src_tok = Tokenizer::load(src_path);
  auto tgt_tok = config.vocab.joint ? src_tok : std::shared_ptr<const Tokenizer>(Tokenizer::load(tgt_path));
  std::shared_ptr<void> profile;
  auto engine = make_engine(dir, config, *src_tok, *tgt_tok, [&] {
    auto torch_engine = torch_plugin().load_engine(dir, config);
    // Developer hook: S2S_PROFILE=FILE writes a chrome://tracing profile of the translation loop.
    if (const char* trace = std::getenv("S2S_PROFILE")) profile = torch_plugin().start_profile(trace);
    return torch_engine;
  });
  Translator translator(engine, src_tok, tgt_tok,
                        translate_options(config.decode, a.decode, tgt_tok->vocab_size()));
  const auto lines = translate_io(translator, a);
  profile.reset();
  spdlog::info("translated {} lines", lines);
  return 0;
}

int run_eval(const EvalArgs& a) {
  if (!a.hyps.empty()) {
    if (!a.output.empty())
      throw Error("eval -o keeps the translations of --model/--src; with --hyp there are none");
    std::vector<std::vector<std::string>> systems, refs;
    for (const auto& hyp : a.hyps) systems.push_back(read_scoring_file(hyp));
    for (const auto& ref : a.refs) refs.push_back(read_scoring_file(ref));
    print_scores(systems, refs, a, std::nullopt);
    return 0;
  }
  if (a.decode.model_dir.empty() || a.src.empty()) {
    throw Error("eval needs --hyp FILE, or --model DIR with --src FILE (and --ref FILE)");
  }
  return torch_plugin().eval_model(a);
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
  std::error_code ec;
  if (std::filesystem::equivalent(out, source, ec)) {
    throw Error("-o '" + a.output + "' is the source model dir; average into a new directory");
  }
  if (std::filesystem::exists(out / model_files::kBest) && !a.force) {
    throw Error("'" + (out / model_files::kBest).string() + "' exists; pass --force to replace it");
  }
  fs::ensure_dir(out);
  std::vector<std::filesystem::path> files{model_files::kConfig, model_files::kShortlist};
  const auto [src_spm, tgt_spm] = tokenizer_paths(source, config);
  files.push_back(src_spm.filename()), files.push_back(tgt_spm.filename());
  for (const auto& name : files) {
    if (std::filesystem::exists(source / name))
      fs::write_file_atomic(out / name, fs::read_file(source / name));
  }
  average_weights_files(inputs, out / model_files::kBest);
  spdlog::info("averaged {} weights files into {}", inputs.size(), (out / model_files::kBest).string());
  return 0;
}

}  // namespace s2s::app
