#include "infer/factory/native_models.h"

#include "infer/rnn/native_model.h"
#include "infer/transformer/native_transformer.h"

namespace s2s::infer {

std::shared_ptr<const NativeNetwork> load_native(const ModelConfig& config, int64_t src_vocab,
                                                 int64_t tgt_vocab, ParameterSource& params,
                                                 WeightType type) {
  switch (config.type) {
    case ModelType::kTransformer:
      return std::make_shared<const NativeTransformer>(config, src_vocab, tgt_vocab, params, type);
    case ModelType::kRnn:
      break;
  }
  return std::make_shared<const NativeModel>(config, src_vocab, tgt_vocab, params, type);
}

std::shared_ptr<const NativeNetwork> load_native(const ModelConfig& config, int64_t src_vocab,
                                                 int64_t tgt_vocab, const std::filesystem::path& weights,
                                                 WeightType type) {
  return load_native(config, src_vocab, tgt_vocab, *open_weights_file(weights), type);
}

}  // namespace s2s::infer
