// The one place of the native engine that knows every model family: loads the NativeNetwork that
// `model.type` names. Every family and every configuration of it runs natively.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "config/config.h"
#include "infer/native_network.h"
#include "infer/parameters.h"

namespace s2s::infer {

// Loads the model's parameters from memory or a weights file (best.bin), keeping the weights as `type`
// (bf16: GEMMs in bf16 with fp32 sums; int8: per-channel int8 weights, activations quantized per row).
std::shared_ptr<const NativeNetwork> load_native(const ModelConfig& config, int64_t src_vocab,
                                                 int64_t tgt_vocab, ParameterSource& params, WeightType type);
std::shared_ptr<const NativeNetwork> load_native(const ModelConfig& config, int64_t src_vocab,
                                                 int64_t tgt_vocab, const std::filesystem::path& weights,
                                                 WeightType type);

// Converts the float32 weights file `weights` of a model to `type` (bf16 or int8) for the native engine,
// written atomically to `out` (infer/converted_weights.h): every matrix as a load in `type` makes it.
void convert_native(const ModelConfig& config, int64_t src_vocab, int64_t tgt_vocab,
                    const std::filesystem::path& weights, const std::filesystem::path& out, WeightType type);

}  // namespace s2s::infer
