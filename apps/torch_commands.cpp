// libs2s_torch.so: the commands and engine that need LibTorch (see torch_plugin.h).
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <iostream>

#include "config/model_dir.h"
#include "libtorch/decode/torch_engine.h"
#include "libtorch/train/trainer.h"
#include "libtorch/util/runtime.h"
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

// The ranks of a data-parallel run: the --dist-* flags, else torchrun's environment variables.
dist::DistOptions dist_options(const TrainArgs& a) {
  auto d = dist::options_from_env();
  if (!a.dist_addr.empty()) {
    const auto colon = a.dist_addr.rfind(':');
    char* end = nullptr;
    const long port = colon == std::string::npos ? 0 : std::strtol(a.dist_addr.c_str() + colon + 1, &end, 10);
    if (colon == std::string::npos || colon == 0 || *end != '\0' || port < 1 || port > 65535) {
      throw Error("--dist-addr '" + a.dist_addr + "': expected host:port, e.g. 10.0.0.1:29500");
    }
    d.addr = a.dist_addr.substr(0, colon), d.port = static_cast<int>(port);
    if (d.addr.size() > 2 && d.addr.front() == '[' && d.addr.back() == ']')
      d.addr = d.addr.substr(1, d.addr.size() - 2);
  }
  if (a.world_size > 0) d.world_size = a.world_size, d.enabled = true;
  if (a.rank >= 0) d.rank = a.rank;
  d.timeout = std::chrono::seconds(a.dist_timeout);
  d.enabled = d.enabled || d.world_size > 1;
  const bool flags = !a.dist_addr.empty() || a.world_size > 0 || a.rank >= 0;
  dist::validate(d, flags ? "--dist-addr/--world-size/--rank"
                          : "environment (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK)");
  return d;
}

std::shared_ptr<void> start_profile(const std::string& trace_file) {
  return std::make_shared<torch::autograd::profiler::RecordProfile>(trace_file);
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
  Config config;
  try {
    config = load_config(config_file, a.overrides);
  } catch (const Error& e) {  // name the flag the user typed (--threads 0), not its override
    throw Error(name_typed_flags(e.what(), a.typed));
  }
  if (a.dump_config) {
    std::cout << dump_config(config);
    return 0;
  }
  TrainRunOptions opt;
  opt.model_dir = dir, opt.quiet = a.quiet, opt.command_line = a.command_line;
  opt.dist = dist_options(a);
  if (opt.dist.enabled) {  // each line names its rank; ranks > 0 log warnings and errors only
    spdlog::set_pattern(fmt::format("[%Y-%m-%d %H:%M:%S] [%^%l%$] [rank {}] %v", opt.dist.rank));
    if (opt.dist.rank > 0) spdlog::set_level(std::max(spdlog::get_level(), spdlog::level::warn));
  }
  // Developer hook: S2S_PROFILE=FILE writes a chrome://tracing profile of every LibTorch op of the run
  // (keep it short: --max-steps 20).
  std::shared_ptr<void> profile;
  if (const char* trace = std::getenv("S2S_PROFILE")) profile = start_profile(trace);
  const auto summary = train(config, opt);
  profile.reset();
  return summary.stop_signal != 0 ? 128 + summary.stop_signal : 0;  // 130 for SIGINT, 143 for SIGTERM
}

std::shared_ptr<Engine> load_engine(const std::filesystem::path& dir, const Config& config) {
  auto bundle = load_for_decoding(dir, config.decode);
  return std::make_shared<TorchEngine>(bundle.model, bundle.device,
                                       config.decode.precision == Precision::kBf16);
}

}  // namespace
}  // namespace s2s::app

extern "C" __attribute__((visibility("default"))) const s2s::app::TorchPlugin* s2s_torch_plugin() {
  static const s2s::app::TorchPlugin plugin{s2s::app::train_command, s2s::app::load_engine,
                                            s2s::app::start_profile, s2s::runtime::torch_version,
                                            s2s::runtime::cuda_available};
  return &plugin;
}
