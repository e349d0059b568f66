// libs2s_tools.so: the HTTP server and the plots, behind apps/tools_plugin.h.
#include "tools_plugin.h"

namespace {

void serve_until_signal(s2s::serve::TranslatorFactory factory, const s2s::serve::ServeOptions& options,
                        const std::function<void(int port)>& on_listening) {
  s2s::serve::Server server(std::move(factory), options);
  s2s::serve::run_until_signal(server, on_listening);
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const s2s::app::ToolsPlugin* s2s_tools_plugin() {
  static const s2s::app::ToolsPlugin plugin{s2s::serve::block_stop_signals, serve_until_signal,
                                            s2s::plot::read_curves, s2s::plot::draw_curves,
                                            s2s::plot::draw_attention};
  return &plugin;
}
