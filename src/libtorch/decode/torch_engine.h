// The LibTorch model as a translation Engine (CPU or CUDA), and loading a model directory into it.
#pragma once

#include <filesystem>
#include <memory>

#include "config/model_dir.h"
#include "decode/engine.h"
#include "decode/translator.h"
#include "libtorch/model/nmt_model.h"

namespace s2s {

// A trained model with its tokenizers, as stored in a model directory.
struct ModelBundle {
  Config config;                             // the model dir's config.yml
  NmtModel model{nullptr};                   // weights loaded, eval mode
  std::shared_ptr<const Tokenizer> src_tok;  // source SentencePiece model
  std::shared_ptr<const Tokenizer> tgt_tok;  // target SentencePiece model (same object when joint)
  torch::Device device{torch::kCPU};         // where the model lives
};

// Loads config.yml, the SentencePiece model(s) and best.bin (or last.pt) from `dir`. With
// weights = kBFloat16 the parameters are converted once after loading (half the memory, no casts per step).
ModelBundle load_model_dir(const std::filesystem::path& dir, const torch::Device& device,
                           torch::Dtype weights = torch::kFloat);

// Whether bf16 matmuls need CPU/GPU autocast for this model: only while its weights are still float32
// (validation during training); weights converted at load run in bf16 natively.
bool needs_autocast(bool bf16, const NmtModelImpl& model);

class TorchEngine : public Engine {
 public:
  // bf16: run the matmuls in bf16 (autocast while the weights are float32).
  TorchEngine(NmtModel model, torch::Device device, bool bf16);
  std::unique_ptr<StepScorer> start(const std::vector<std::vector<int32_t>>& batch,
                                    const std::vector<int64_t>& vocab_subset, int64_t K) override;
  void set_thread_threads(int threads) override;
  bool concurrent() const override { return device_.is_cpu(); }
  TargetIds ids() const override;

 private:
  NmtModel model_;
  torch::Device device_;
  bool bf16_;
};

// A Translator over a LibTorch model.
Translator make_translator(NmtModel model, std::shared_ptr<const Tokenizer> src_tok,
                           std::shared_ptr<const Tokenizer> tgt_tok, torch::Device device,
                           const TranslateOptions& options, bool bf16 = false);

}  // namespace s2s
