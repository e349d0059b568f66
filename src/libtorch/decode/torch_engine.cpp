#include "libtorch/decode/torch_engine.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "config/model_dir.h"
#include "libtorch/data/batch.h"
#include "libtorch/decode/search.h"
#include "libtorch/model/factory/build_model.h"
#include "libtorch/model/weights_io.h"
#include "libtorch/util/runtime.h"
#include "util/error.h"

namespace s2s {

ModelBundle load_model_dir(const std::filesystem::path& dir, const torch::Device& device,
                           torch::Dtype weights) {
  const auto start = std::chrono::steady_clock::now();
  auto ms = [&] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  ModelBundle b;
  b.config = read_model_dir_config(dir);
  auto [src_path, tgt_path] = tokenizer_paths(dir, b.config);
  b.src_tok = Tokenizer::load(src_path);
  b.tgt_tok = b.config.vocab.joint ? b.src_tok : Tokenizer::load(tgt_path);
  Vocabularies v{b.src_tok->vocab_size(), b.tgt_tok->vocab_size(), b.tgt_tok->pad_id(),
                 b.tgt_tok->bos_id(),     b.tgt_tok->eos_id(),     b.tgt_tok->unk_id()};
  spdlog::debug("tokenizers loaded after {:.0f} ms", ms());
  b.model = make_model(b.config.model, v);
  std::error_code ec;
  std::filesystem::path file;
  for (const char* name : {model_files::kBest, model_files::kLegacyBest, model_files::kLast}) {
    if (std::filesystem::exists(dir / name, ec)) {
      file = dir / name;
      break;
    }
  }
  if (file.empty()) {
    throw Error("model directory '" + dir.string() + "' has no checkpoint (" + model_files::kBest + " or " +
                model_files::kLast + "): train it first");
  }
  load_weights(file, *b.model, weights);
  b.model->to(device);
  spdlog::debug("weights loaded after {:.0f} ms", ms());
  b.model->eval();
  b.device = device;
  return b;
}

bool needs_autocast(bool bf16, const NmtModelImpl& model) {
  return bf16 && model.out_bias.scalar_type() == torch::kFloat;
}

TorchEngine::TorchEngine(NmtModel model, torch::Device device, bool bf16)
    : model_(std::move(model)), device_(device), bf16_(bf16) {}

namespace {

// A batch's scorer with the thread's grad mode and autocast set for as long as it lives (both are per
// thread: they are set where the batch runs).
class GuardedScorer : public StepScorer {
 public:
  GuardedScorer(NmtModelImpl& model, const torch::Device& device, bool bf16,
                const std::vector<std::vector<int32_t>>& batch, const std::vector<int64_t>& vocab_subset,
                int64_t K)
      : autocast_(needs_autocast(bf16, model), device) {
    const SpecialIds ids{model.vocabs.pad_id, model.vocabs.bos_id, model.vocabs.eos_id};
    auto tensors = make_source_batch(batch, ids).to(device);
    scorer_ = make_torch_scorer(model, tensors.src, tensors.src_lengths, vocab_subset, K);
  }
  StepScores step(const std::vector<int64_t>& tokens, int64_t A, int64_t K, bool keep_attention) override {
    return scorer_->step(tokens, A, K, keep_attention);
  }
  void reorder(const std::vector<int64_t>& rows, const std::vector<int64_t>& kept, int64_t A,
               int64_t K) override {
    scorer_->reorder(rows, kept, A, K);
  }

 private:
  runtime::AutocastGuard autocast_;
  torch::NoGradGuard no_grad_;
  std::unique_ptr<StepScorer> scorer_;
};

}  // namespace

std::unique_ptr<StepScorer> TorchEngine::start(const std::vector<std::vector<int32_t>>& batch,
                                               const std::vector<int64_t>& vocab_subset, int64_t K) {
  return std::make_unique<GuardedScorer>(*model_, device_, bf16_, batch, vocab_subset, K);
}

void TorchEngine::set_thread_threads(int threads) {
  runtime::set_thread_intra_op_threads(threads);
}

TargetIds TorchEngine::ids() const {
  const auto& v = model_->vocabs;
  return {v.pad_id, v.bos_id, v.eos_id, v.unk_id};
}

Translator make_translator(NmtModel model, std::shared_ptr<const Tokenizer> src_tok,
                           std::shared_ptr<const Tokenizer> tgt_tok, torch::Device device,
                           const TranslateOptions& options, bool bf16) {
  return Translator(std::make_shared<TorchEngine>(std::move(model), device, bf16), std::move(src_tok),
                    std::move(tgt_tok), options);
}

}  // namespace s2s
