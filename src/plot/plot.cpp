#include "plot/plot.h"

#include <plplot/plplot.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/fs.h"

namespace s2s::plot {
namespace {

// PLplot has one global state: one picture at a time.
std::mutex& plplot_mutex() {
  static std::mutex m;
  return m;
}

// PLplot's text escape is '#': a piece such as "#1" must not become a control sequence.
std::string escape(const std::string& text) {
  std::string out;
  for (const char c : text) out += c == '#' ? std::string("##") : std::string(1, c);
  return out;
}

void require_png_driver() {
  const char* menu[256];
  const char* names[256];
  const char** m = menu;
  const char** n = names;
  int count = 256;
  plgDevs(&m, &n, &count);
  for (int i = 0; i < count; ++i) {
    if (std::string(names[i]) == "pngcairo") return;
  }
  throw Error("plot: PLplot has no 'pngcairo' driver here (install the Debian package plplot-driver-cairo)");
}

// A PLplot session drawing into a temporary PNG; png() ends it and returns the file's bytes.
class Canvas {
 public:
  Canvas(Size size, int panels_x, int panels_y) : lock_(plplot_mutex()) {
    if (size.width < 100 || size.height < 100 || size.width > 10000 || size.height > 10000)
      throw Error("plot: the picture size must be 100 to 10000 pixels per side");
    require_png_driver();
    char name[] = "/tmp/s2s-plot-XXXXXX";
    const int fd = ::mkstemp(name);
    if (fd < 0) throw Error("plot: cannot create a temporary file in /tmp");
    ::close(fd);
    file_ = name;
    plsdev("pngcairo");
    plsfnam(file_.c_str());
    plspage(0, 0, size.width, size.height, 0, 0);
    plscolbg(255, 255, 255);  // white background
    plssub(panels_x, panels_y);
    plinit();
    plscol0(1, 0, 0, 0);       // axes and text: black
    plscol0(2, 31, 119, 180);  // curves: blue
    plscol0(3, 214, 39, 40);   // points: red
  }
  ~Canvas() {
    if (!ended_) plend();
    std::error_code ec;
    std::filesystem::remove(file_, ec);
  }
  Canvas(const Canvas&) = delete;
  Canvas& operator=(const Canvas&) = delete;

  std::string png() {
    plend();
    ended_ = true;
    return fs::read_file(file_);
  }

 private:
  std::lock_guard<std::mutex> lock_;
  std::string file_;
  bool ended_ = false;
};

// [lo, hi] of `v` with a margin, never empty.
std::pair<double, double> padded_range(const std::vector<double>& v) {
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  double a = *lo, b = *hi;
  const double pad = b > a ? 0.05 * (b - a) : std::max(1e-12, 0.05 * std::abs(a) + (a == 0 ? 1 : 0));
  return {a - pad, b + pad};
}

void draw_series(const Series& s) {
  plcol0(1);
  if (s.steps.empty()) {
    pladv(0);  // (plenv advances to the next panel itself)
    plvpor(0.1, 0.9, 0.1, 0.9);
    plwind(0, 1, 0, 1);
    plbox("bc", 0, 0, "bc", 0, 0);
    plmtex("t", 1.5, 0.5, 0.5, escape(s.title).c_str());
    plptex(0.5, 0.5, 1, 0, 0.5, "no data yet");
    return;
  }
  const auto [x0, x1] = padded_range(s.steps);
  const auto [y0, y1] = padded_range(s.values);
  plenv(x0, x1, y0, y1, 0, 2);  // box, ticks, labels and a grid
  pllab("step", "", escape(s.title).c_str());
  const auto n = static_cast<PLINT>(s.steps.size());
  plcol0(2);
  plwidth(2);
  plline(n, s.steps.data(), s.values.data());
  if (n <= 60) {
    plcol0(3);
    plpoin(n, s.steps.data(), s.values.data(), 17);
  }
  plwidth(1);
}

}  // namespace

std::vector<Series> read_curves(const std::filesystem::path& metrics_jsonl) {
  std::vector<Series> series{{"train loss", {}, {}},
                             {"validation perplexity", {}, {}},
                             {"validation BLEU", {}, {}},
                             {"learning rate", {}, {}}};
  const char* keys[] = {"train_loss", "valid_ppl", "valid_bleu", "lr"};
  const auto lines = fs::read_lines(metrics_jsonl);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    nlohmann::json row;
    try {
      row = nlohmann::json::parse(lines[i]);
    } catch (const nlohmann::json::parse_error&) {
      throw Error(metrics_jsonl.string() + ":" + std::to_string(i + 1) + ": not a JSON row");
    }
    if (!row.is_object() || !row.contains("step") || !row["step"].is_number()) {
      throw Error(metrics_jsonl.string() + ":" + std::to_string(i + 1) + ": a row without a \"step\"");
    }
    const double step = row["step"].get<double>();
    const bool valid = row.value("kind", row.contains("valid_ppl") ? "valid" : "train") == "valid";
    for (size_t k = 0; k < series.size(); ++k) {
      if (k == 3 && valid) continue;  // the rate once per logged step: from the train rows
      if (row.contains(keys[k]) && row[keys[k]].is_number()) {
        series[k].steps.push_back(step);
        series[k].values.push_back(row[keys[k]].get<double>());
      }
    }
  }
  return series;
}

std::string draw_curves(const std::vector<Series>& series, Size size) {
  Canvas canvas(size, 2, 2);
  for (size_t i = 0; i < std::min<size_t>(series.size(), 4); ++i) draw_series(series[i]);
  return canvas.png();
}

std::string draw_attention(const std::vector<std::vector<float>>& attention,
                           const std::vector<std::string>& source_pieces,
                           const std::vector<std::string>& target_pieces, Size size) {
  const auto S = static_cast<PLINT>(source_pieces.size()), T = static_cast<PLINT>(target_pieces.size());
  if (S == 0 || T == 0 || attention.size() != target_pieces.size())
    throw Error("plot: the attention has no rows, or not one per target piece");
  for (const auto& row : attention) {
    if (row.size() < source_pieces.size()) throw Error("plot: an attention row is shorter than the source");
  }
  size_t longest_src = 0, longest_tgt = 0;  // in bytes: a margin estimate for the labels
  for (const auto& p : source_pieces) longest_src = std::max(longest_src, p.size());
  for (const auto& p : target_pieces) longest_tgt = std::max(longest_tgt, p.size());
  Canvas canvas(size, 1, 1);
  pladv(0);
  const double scale = std::clamp(30.0 / std::max(S, T), 0.45, 1.0);
  plschr(0, scale);
  plvpor(std::min(0.4, 0.04 + 0.012 * scale * static_cast<double>(longest_tgt)), 0.97,
         std::min(0.4, 0.04 + 0.016 * scale * static_cast<double>(longest_src)), 0.92);
  plwind(0, S, 0, T);
  const PLFLT pos[] = {0, 1}, r[] = {1, 0.03}, g[] = {1, 0.19}, b[] = {1, 0.42};  // white to dark blue
  plscmap1l(1, 2, pos, r, g, b, nullptr);
  for (PLINT t = 0; t < T; ++t) {  // one filled cell per weight; target row t drawn from the top
    for (PLINT j = 0; j < S; ++j) {
      const double w = std::clamp<double>(attention[static_cast<size_t>(t)][static_cast<size_t>(j)], 0, 1);
      if (w < 0.005) continue;  // white background
      PLFLT x[] = {PLFLT(j), PLFLT(j + 1), PLFLT(j + 1), PLFLT(j)};
      PLFLT y[] = {PLFLT(T - 1 - t), PLFLT(T - 1 - t), PLFLT(T - t), PLFLT(T - t)};
      plcol1(w);
      plfill(4, x, y);
    }
  }
  plcol0(1);
  plbox("bc", 0, 0, "bc", 0, 0);
  for (PLINT j = 0; j < S; ++j)  // source pieces under the columns, written upwards
    plmtex("bv", 0.5, (j + 0.5) / S, 1.0, escape(source_pieces[static_cast<size_t>(j)]).c_str());
  for (PLINT t = 0; t < T; ++t)  // target pieces left of the rows, top to bottom
    plmtex("lv", 0.5, (T - 1 - t + 0.5) / T, 1.0, escape(target_pieces[static_cast<size_t>(t)]).c_str());
  plmtex("t", 1.0, 0.5, 0.5, "attention (source pieces across, target pieces down)");
  return canvas.png();
}

}  // namespace s2s::plot
