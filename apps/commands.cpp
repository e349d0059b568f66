#include "commands.h"

#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <memory>

#include "common.h"
#include "config/model_dir.h"
#include "data/vocab.h"
#include "infer/native_model.h"
#include "metrics/bleu.h"
#include "torch_plugin.h"
#include "util/allocator.h"
#include "util/error.h"

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

namespace {

// Whether translate runs on the native CPU engine; `why` says why not when it does not.
bool use_native(const Config& config, const std::filesystem::path& dir, std::string& why) {
  const auto& d = config.decode;
  if (d.engine == "torch") {
    why = "--engine torch";
    return false;
  }
  if (d.device != "cpu")
    why = "device " + d.device;
  else if (!std::filesystem::exists(dir / model_files::kBest))
    why = std::string("no ") + model_files::kBest;
  else if (!infer::NativeModel::supports(config.model, &why))
    why += " is not supported natively";
  else
    return true;
  if (d.engine == "native")
    throw Error("--engine native: cannot use the native CPU engine here (" + why + ")");
  return false;
}

std::shared_ptr<Engine> native_engine(const std::filesystem::path& dir, const Config& config,
                                      const Tokenizer& src_tok, const Tokenizer& tgt_tok) {
  runtime::tune_allocator();  // heap, not fresh mmaps: load temporaries and per-batch buffers are reused
  auto model = std::make_shared<const infer::NativeModel>(config.model, src_tok.vocab_size(),
                                                          tgt_tok.vocab_size(), dir / model_files::kBest,
                                                          /*bf16=*/config.decode.precision == "bf16");
  TargetIds ids{tgt_tok.pad_id(), tgt_tok.bos_id(), tgt_tok.eos_id(), tgt_tok.unk_id()};
  auto engine = std::make_shared<infer::NativeEngine>(std::move(model), ids);
  engine->set_thread_threads(config.decode.threads);  // batches run on this thread with one worker
  return engine;
}

}  // namespace

std::string version_text() {
  std::string torch = "not loaded";
  try {
    const auto& p = torch_plugin();
    torch = p.torch_version() + ", CUDA available: " + (p.cuda_available() ? "yes" : "no");
  } catch (const Error& e) {
    torch = e.what();
  }
  return std::string("s2s ") + S2S_APP_VERSION + " (LibTorch " + torch + ")";
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
  std::string why;
  std::shared_ptr<Engine> engine;
  std::shared_ptr<void> profile;
  if (use_native(config, dir, why)) {
    engine = native_engine(dir, config, *src_tok, *tgt_tok);
    spdlog::debug("engine: native CPU ({})", config.decode.precision);
  } else {
    spdlog::debug("engine: LibTorch ({})", why);
    engine = torch_plugin().load_engine(dir, config);
    // Developer hook: S2S_PROFILE=FILE writes a chrome://tracing profile of the translation loop.
    if (const char* trace = std::getenv("S2S_PROFILE")) profile = torch_plugin().start_profile(trace);
  }
  Translator translator(engine, src_tok, tgt_tok, translate_options(config.decode, a.decode));
  const auto lines = translate_io(translator, a);
  profile.reset();
  spdlog::info("translated {} lines", lines);
  return 0;
}

int run_eval(const EvalArgs& a) {
  if (!a.hyp.empty()) {
    const auto refs = metrics::read_lines_for_scoring(a.ref);
    print_scores(metrics::read_lines_for_scoring(a.hyp), refs, a, std::nullopt);
    return 0;
  }
  if (a.decode.model_dir.empty() || a.src.empty()) {
    throw Error("eval needs --hyp FILE, or --model DIR with --src FILE (and --ref FILE)");
  }
  return torch_plugin().eval_model(a);
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
