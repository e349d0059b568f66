// The files of a model directory (written by `s2s train`, read by translate/eval).
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"

namespace s2s {

namespace model_files {
inline constexpr const char* kConfig = "config.yml";
inline constexpr const char* kLast = "last.pt";
inline constexpr const char* kBest = "best.bin";       // weights only (infer/weights_file.h)
inline constexpr const char* kLegacyBest = "best.pt";  // weights only, LibTorch archive (older model dirs)
inline constexpr const char* kMetrics = "metrics.jsonl";
inline constexpr const char* kLog = "train.log";
inline constexpr const char* kJointSpm = "spm.model";
inline constexpr const char* kSrcSpm = "spm.src.model";
inline constexpr const char* kTgtSpm = "spm.tgt.model";
inline constexpr const char* kShortlist = "shortlist.txt";
inline constexpr const char* kCheckpoints = "checkpoints";  // step-N.bin, with train.keep_checkpoints
inline constexpr const char* kLock = "train.lock";          // flock held by the training that writes the dir
}  // namespace model_files

// Tokenizer paths of a model dir for a config ({joint, joint} or {src, tgt}).
inline std::pair<std::filesystem::path, std::filesystem::path> tokenizer_paths(
    const std::filesystem::path& dir, const Config& config) {
  if (config.vocab.joint) return {dir / model_files::kJointSpm, dir / model_files::kJointSpm};
  return {dir / model_files::kSrcSpm, dir / model_files::kTgtSpm};
}

// Reads DIR/config.yml with `overrides` (section.key=value) applied; throws s2s::Error when DIR is not a
// model directory.
Config read_model_dir_config(const std::filesystem::path& dir,
                             const std::vector<std::string>& overrides = {});

}  // namespace s2s
