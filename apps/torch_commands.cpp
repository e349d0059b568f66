// libs2s_torch.so: the commands and engine that need LibTorch (see torch_plugin.h).
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <cmath>
#include <iostream>

#include "common.h"
#include "config/model_dir.h"
#include "data/corpus.h"
#include "libtorch/data/batch.h"
#include "libtorch/decode/torch_engine.h"
#include "libtorch/train/loss.h"
#include "libtorch/train/trainer.h"
#include "libtorch/util/runtime.h"
#include "metrics/bleu.h"
#include "torch_plugin.h"
#include "util/error.h"
#include "util/fs.h"

namespace s2s::app {
namespace {

// Loads the model for decoding with the config's device, threads, precision and allocator settings.
ModelBundle load_for_decoding(const std::filesystem::path& dir, const DecodeConfig& decode) {
  runtime::configure_threads(decode.threads);
  auto bundle = load_model_dir(dir, runtime::to_torch(decode.device),
                               decode.precision == Precision::kBf16 ? torch::kBFloat16 : torch::kFloat);
  runtime::tune_allocator();  // after loading: the float32 copies just freed go back to the system
  bundle.config.decode = decode;
  return bundle;
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

int train_command(const TrainArgs& a) {
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
  TrainRunOptions opt;
  opt.model_dir = dir, opt.quiet = a.quiet, opt.command_line = a.command_line;
  const auto summary = train(config, opt);
  return summary.stop_signal != 0 ? 128 + summary.stop_signal : 0;  // 130 for SIGINT, 143 for SIGTERM
}

int eval_model_command(const EvalArgs& a) {
  std::vector<std::vector<std::string>> refs;
  for (const auto& ref : a.refs) refs.push_back(read_scoring_file(ref));
  const auto config = decode_config(a.decode);
  auto bundle = load_for_decoding(a.decode.model_dir, config.decode);
  const auto sources = fs::read_lines(a.src);
  if (sources.size() != refs[0].size()) {
    throw Error("'" + a.src + "' has " + std::to_string(sources.size()) + " lines but '" + a.refs[0] +
                "' has " + std::to_string(refs[0].size()));
  }
  std::vector<std::string> hyps;
  {  // translate with the engine `s2s translate` would use (both then report the same BLEU), then free it
    auto engine = make_engine(a.decode.model_dir, config, *bundle.src_tok, *bundle.tgt_tok, [&] {
      return std::make_shared<TorchEngine>(bundle.model, bundle.device,
                                           config.decode.precision == Precision::kBf16);
    });
    Translator translator(engine, bundle.src_tok, bundle.tgt_tok,
                          translate_options(config.decode, a.decode, bundle.tgt_tok->vocab_size()));
    hyps = translator.translate(sources);
  }
  if (!a.output.empty()) {
    fs::check_not_same_file(a.src, a.output);
    fs::write_output(a.output, [&](std::ostream& out) {
      for (const auto& h : hyps) out << h << '\n';
    });
  }
  runtime::release_free_memory();  // the workers' arenas: the perplexity pass allocates on this thread
  const double ppl =
      reference_perplexity(bundle, a.src, a.refs[0], config.decode.precision == Precision::kBf16);
  print_scores({hyps}, refs, a, ppl);
  return 0;
}

std::shared_ptr<Engine> load_engine(const std::filesystem::path& dir, const Config& config) {
  auto bundle = load_for_decoding(dir, config.decode);
  return std::make_shared<TorchEngine>(bundle.model, bundle.device,
                                       config.decode.precision == Precision::kBf16);
}

std::shared_ptr<void> start_profile(const std::string& trace_file) {
  return std::make_shared<torch::autograd::profiler::RecordProfile>(trace_file);
}

}  // namespace
}  // namespace s2s::app

extern "C" __attribute__((visibility("default"))) const s2s::app::TorchPlugin* s2s_torch_plugin() {
  static const s2s::app::TorchPlugin plugin{s2s::app::train_command,     s2s::app::eval_model_command,
                                            s2s::app::load_engine,       s2s::app::start_profile,
                                            s2s::runtime::torch_version, s2s::runtime::cuda_available};
  return &plugin;
}
