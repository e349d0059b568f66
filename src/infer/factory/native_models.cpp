#include "infer/factory/native_models.h"

#include "infer/converted_weights.h"
#include "infer/rnn/native_model.h"
#include "infer/transformer/native_transformer.h"
#include "util/error.h"

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

void convert_native(const ModelConfig& config, int64_t src_vocab, int64_t tgt_vocab,
                    const std::filesystem::path& weights, const std::filesystem::path& out, WeightType type) {
  if (type == WeightType::kF32) throw Error("nothing to convert: the weights are float32 already");
  if (converted_weight_type(weights))
    throw Error("'" + weights.string() +
                "' is converted already; convert the float32 model dir it came from");
  const auto source = open_weights_file(weights);
  ConvertingSource converting(*source);
  load_native(config, src_vocab, tgt_vocab, converting, type);
  converting.write(out, type);
}

}  // namespace s2s::infer
