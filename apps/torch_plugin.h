// What needs LibTorch (training, the LibTorch translation engine, perplexity) lives in libs2s_torch.so,
// next to the s2s executable, and is loaded on first use: translating with the native CPU engine and
// scoring files never pay LibTorch's start-up (0.7 s and 165 MB here, see docs/BENCHMARKS.md).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "commands.h"
#include "config/config.h"
#include "decode/engine.h"

namespace s2s::app {

struct TorchPlugin {
  int (*train)(const TrainArgs& args);
  // The LibTorch engine for a model dir (device, threads and precision from config.decode).
  std::shared_ptr<Engine> (*load_engine)(const std::filesystem::path& dir, const Config& config);
  // S2S_PROFILE: a chrome-trace profile of everything LibTorch runs until the returned guard is released.
  std::shared_ptr<void> (*start_profile)(const std::string& trace_file);
  std::string (*torch_version)();
  bool (*cuda_available)();
};

// The plugin, loaded on first use; throws s2s::Error when it cannot be loaded.
const TorchPlugin& torch_plugin();

}  // namespace s2s::app

// The plugin's one exported symbol.
extern "C" const s2s::app::TorchPlugin* s2s_torch_plugin();
