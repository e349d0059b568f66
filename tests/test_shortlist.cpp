// Lexical shortlist: associated targets are found, frequent targets are always candidates, and the file
// format round-trips.
#include <gtest/gtest.h>
#include <unistd.h>

#include "data/shortlist.h"
#include "util/error.h"
#include "util/fs.h"

namespace {

s2s::ParallelCorpus toy_corpus() {
  // Source 10 always co-occurs with target 20, source 11 with target 21; target 5 is in every sentence.
  s2s::ParallelCorpus c;
  for (int i = 0; i < 20; ++i) {
    c.src.add({10, 12 + i % 3});
    c.tgt.add({20, 5});
    c.src.add({11});
    c.tgt.add({21, 5, 30 + i % 5});
  }
  return c;
}

TEST(Shortlist, FindsAssociatedAndFrequentTargets) {
  s2s::ShortlistOptions opt;
  opt.per_source = 1, opt.frequent = 1;
  const auto list = s2s::build_shortlist(toy_corpus(), 40, 40, opt);
  ASSERT_EQ(list.by_source.size(), 40u);
  EXPECT_EQ(list.by_source[10], std::vector<int32_t>{20});
  EXPECT_EQ(list.by_source[11], std::vector<int32_t>{21});
  EXPECT_TRUE(list.by_source[39].empty());  // unseen source token
  EXPECT_EQ(list.frequent, std::vector<int32_t>{5});
  const auto cands = list.candidates({{10}, {39}}, {3});
  EXPECT_EQ(cands, (std::vector<int64_t>{3, 5, 20}));  // sorted, unique, EOS included
}

TEST(Shortlist, LimitKeepsTheBestPrefixes) {
  s2s::Shortlist list;
  list.frequent = {9, 4, 7};
  list.by_source = {{12, 11, 10}, {13}, {}};
  list.limit(/*per_source=*/2, /*frequent=*/1);
  EXPECT_EQ(list.frequent, std::vector<int32_t>{9});
  EXPECT_EQ(list.by_source[0], (std::vector<int32_t>{12, 11}));
  EXPECT_EQ(list.by_source[1], std::vector<int32_t>{13});
  EXPECT_EQ(list.candidates({{0, 2}}, {3}), (std::vector<int64_t>{3, 9, 11, 12}));
  list.limit(50, 500);  // larger than stored: unchanged
  EXPECT_EQ(list.by_source[0].size(), 2u);
}

TEST(Shortlist, SaveLoadRoundTripAndBadFile) {
  const auto dir = std::filesystem::temp_directory_path() / ("s2s_shortlist_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto list = s2s::build_shortlist(toy_corpus(), 40, 40, {});
  s2s::save_shortlist(dir / "shortlist.txt", list);
  const auto back = s2s::load_shortlist(dir / "shortlist.txt", 1 << 20);
  EXPECT_EQ(back.frequent, list.frequent);
  EXPECT_EQ(back.by_source, list.by_source);
  s2s::fs::write_file_atomic(dir / "bad.txt", "hello\n");
  try {
    s2s::load_shortlist(dir / "bad.txt", 1 << 20);
    FAIL() << "expected an error";
  } catch (const s2s::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt"), std::string::npos);
  }
  // Damage found by tests/fuzz/fuzz_model_files: a negative count wrapped around; ids beyond the vocabulary
  // would select rows outside the output layer.
  for (const std::string bad :
       {"s2s-shortlist 1-1", "s2s-shortlist 1 9223372036854775807", "s2s-shortlist 1 0\n3 99",
        "s2s-shortlist 1 0\n3 x", "s2s-shortlist 1 1\n3\n-2"}) {
    s2s::fs::write_file_atomic(dir / "bad.txt", bad + "\n");
    EXPECT_THROW(s2s::load_shortlist(dir / "bad.txt", 40), s2s::Error) << bad;
  }
  EXPECT_EQ(s2s::load_shortlist(dir / "shortlist.txt", 40).by_source, list.by_source);
  std::filesystem::remove_all(dir);
}

}  // namespace
