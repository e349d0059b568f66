// Pictures of a model (PLplot with its cairo PNG driver; Debian libplplot-dev, plplot-driver-cairo):
// training curves from metrics.jsonl, and the attention of one translation as a heatmap.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace s2s::plot {

struct Size {
  int width = 1200;  // pixels
  int height = 900;  // pixels
};

// One metric against the step, e.g. train_loss from the "train" rows.
struct Series {
  std::string title;           // panel title, e.g. "train loss"
  std::vector<double> steps;   // x
  std::vector<double> values;  // y
};

// The curves of a model dir's metrics.jsonl: train loss, validation perplexity, validation BLEU and the
// learning rate against the step. Throws s2s::Error naming the file and line of a row it cannot read.
std::vector<Series> read_curves(const std::filesystem::path& metrics_jsonl);

// Draws up to four series as a 2x2 grid of panels into a PNG (bytes returned).
std::string draw_curves(const std::vector<Series>& series, Size size);

// Draws `attention` [target tokens, source tokens] as a heatmap with the pieces on the axes (bytes of a
// PNG). Rows and labels must agree in size.
std::string draw_attention(const std::vector<std::vector<float>>& attention,
                           const std::vector<std::string>& source_pieces,
                           const std::vector<std::string>& target_pieces, Size size);

}  // namespace s2s::plot
