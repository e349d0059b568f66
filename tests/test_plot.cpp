// s2s plot's pictures: the curves of a metrics.jsonl and an attention heatmap are real PNGs of the asked
// size; rows that cannot be read are named by file and line.
#include "plot/plot.h"

#include <gtest/gtest.h>

#include "png_check.h"
#include "test_util.h"
#include "util/fs.h"

namespace {

TEST(Plot, CurvesOfAMetricsFile) {
  const auto dir = s2s_test::unique_temp_dir("plot_curves");
  const auto file = dir / "metrics.jsonl";
  s2s::fs::write_file_atomic(
      file,
      "{\"kind\":\"train\",\"step\":100,\"train_loss\":5.1,\"lr\":0.001}\n"
      "{\"kind\":\"train\",\"step\":200,\"train_loss\":4.2,\"lr\":0.002}\n"
      "{\"kind\":\"valid\",\"step\":200,\"valid_ppl\":40.5,\"valid_bleu\":12.5,\"lr\":0.002}\n"
      "{\"step\":300,\"train_loss\":3.9,\"lr\":0.002}\n"  // rows of older runs have no "kind"
      "{\"step\":400,\"valid_ppl\":30.1,\"valid_bleu\":17.25}\n");
  const auto series = s2s::plot::read_curves(file);
  ASSERT_EQ(series.size(), 4u);
  EXPECT_EQ(series[0].values, (std::vector<double>{5.1, 4.2, 3.9}));        // train loss
  EXPECT_EQ(series[1].steps, (std::vector<double>{200, 400}));              // validation perplexity
  EXPECT_EQ(series[2].values, (std::vector<double>{12.5, 17.25}));          // BLEU
  EXPECT_EQ(series[3].values, (std::vector<double>{0.001, 0.002, 0.002}));  // LR from train rows only
  const auto png = s2s_test::decode_png(s2s::plot::draw_curves(series, {800, 600}));
  EXPECT_TRUE(png.ok) << png.why;
  EXPECT_EQ(png.width, 800u);
  EXPECT_EQ(png.height, 600u);
  // A panel without data (a run before its first validation) still draws.
  const auto early =
      s2s_test::decode_png(s2s::plot::draw_curves({series[0], {"validation BLEU", {}, {}}}, {400, 300}));
  EXPECT_TRUE(early.ok) << early.why;

  s2s::fs::write_file_atomic(file, "{\"step\":1,\"train_loss\":2}\nnot json\n");
  EXPECT_NE(
      s2s_test::error_of([&] { s2s::plot::read_curves(file); }).find(file.string() + ":2: not a JSON row"),
      std::string::npos);
}

TEST(Plot, AttentionHeatmap) {
  const std::vector<std::string> src = {"▁ein", "▁Mann", "▁#1", "."}, tgt = {"▁a", "▁man", "</s>"};
  const std::vector<std::vector<float>> attention = {
      {0.7f, 0.1f, 0.1f, 0.1f}, {0.1f, 0.8f, 0.05f, 0.05f}, {0.0f, 0.0f, 0.1f, 0.9f}};
  const auto png = s2s_test::decode_png(s2s::plot::draw_attention(attention, src, tgt, {640, 480}));
  EXPECT_TRUE(png.ok) << png.why;
  EXPECT_EQ(png.width, 640u);
  EXPECT_EQ(png.height, 480u);
  EXPECT_NE(s2s_test::error_of([&] {
              s2s::plot::draw_attention({attention[0]}, src, tgt, {640, 480});
            }).find("not one per target piece"),
            std::string::npos);
}

}  // namespace
