// `s2s serve` (cpp-httplib, which links OpenSSL) and `s2s plot` (PLplot, cairo, freetype) live in
// libs2s_tools.so, next to the s2s executable, opened on first use like libs2s_torch.so: every other command,
// translation first, runs without mapping those libraries (4.5 MB of resident memory and their relocations
// at every start, see docs/BENCHMARKS.md).
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "plot/plot.h"
#include "serve/server.h"

namespace s2s::app {

struct ToolsPlugin {
  void (*block_stop_signals)();  // serve::block_stop_signals
  // serve::Server over `factory`, run until SIGINT or SIGTERM (serve::run_until_signal).
  void (*serve)(serve::TranslatorFactory factory, const serve::ServeOptions& options,
                const std::function<void(int port)>& on_listening);
  std::vector<plot::Series> (*read_curves)(const std::filesystem::path& metrics_jsonl);
  std::string (*draw_curves)(const std::vector<plot::Series>& series, plot::Size size);
  std::string (*draw_attention)(const std::vector<std::vector<float>>& attention,
                                const std::vector<std::string>& source_pieces,
                                const std::vector<std::string>& target_pieces, plot::Size size);
};

// The plugin, loaded on first use; throws s2s::Error when it cannot be loaded.
const ToolsPlugin& tools_plugin();

}  // namespace s2s::app

// The plugin's one exported symbol.
extern "C" const s2s::app::ToolsPlugin* s2s_tools_plugin();
