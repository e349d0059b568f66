// TER: hand-checked cases, 220 sentence pairs scored by sacreBLEU 2.6.0 (tests/data/ter_random.json, whose
// generator_script field holds the Python that wrote it: random pairs with shifts, deletions, insertions,
// punctuation, casing, Unicode, option combinations and multiple references; long lines that hit the shift
// candidate limit; pairs picked because a one-detail variant of lib_ter.py scores them differently; very
// unequal lengths for the widened beam), and every vector of
// ../shared/testdata/bleu/expected_ter_chrfpp.json.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "metrics/bleu.h"
#include "metrics/ter.h"
#include "util/error.h"

namespace {

namespace fs = std::filesystem;
using s2s::metrics::corpus_ter;
using s2s::metrics::sentence_ter;
using s2s::metrics::TerOptions;
using s2s::metrics::TerScore;
using s2s::metrics::tokenize_tercom;

constexpr double kTol = 1e-9;
constexpr const char* kDefaultSignature =
    "nrefs:1|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:2.6.0";

void expect_ter(const TerScore& s, double edits, double ref_length, double score) {
  EXPECT_NEAR(s.num_edits, edits, kTol);
  EXPECT_NEAR(s.ref_length, ref_length, kTol);
  EXPECT_NEAR(s.score, score, kTol);
}

// ---------------------------------------------------------------- hand-checked

TEST(TerHand, IdenticalHasNoEdits) {
  const auto s = sentence_ter("A man rides a horse .", {"A man rides a horse ."});
  expect_ter(s, 0, 6, 0.0);
  EXPECT_EQ(s.format(), "TER = 0.00");
  EXPECT_EQ(s.signature, kDefaultSignature);
}

TEST(TerHand, EmptyHypothesisDeletesEveryReferenceWord) {
  expect_ter(sentence_ter("", {"a b c"}), 3, 3, 100.0);
  expect_ter(sentence_ter(" \t", {"a b c"}), 3, 3, 100.0);  // rstripped to empty
}

TEST(TerHand, EmptyReference) {
  // sacreBLEU: no reference words and some edits scores 100, nothing at all scores 0.
  const auto s = sentence_ter("a b", {""});
  expect_ter(s, 2, 0, 100.0);
  EXPECT_EQ(s.format(), "TER = 100.00");
  expect_ter(sentence_ter("", {""}), 0, 0, 0.0);
  expect_ter(corpus_ter({"a b", "c"}, {{"", "c"}}), 2, 1, 200.0);
}

TEST(TerHand, BlockShiftCostsOneEdit) {
  // Plain edit distance would be 4 (or 5); one shift of "c d e" fixes everything.
  expect_ter(sentence_ter("a b c d e", {"c d e a b"}), 1, 5, 20.0);
  expect_ter(sentence_ter("b a", {"a b"}), 1, 2, 50.0);
  expect_ter(sentence_ter("a b c d e f", {"d e f a b c"}), 1, 6, 100.0 / 6);
  // A shift plus a substitution.
  expect_ter(sentence_ter("a b c d e f g", {"e f g a b c y"}), 2, 7, 200.0 / 7);
  // Tercom's heuristic only moves blocks that the edit-distance alignment marks wrong: "c d x" is aligned,
  // so "a" is moved instead (1 shift + delete "b" + insert "y"), not "c d x" (1 shift + 1 substitution).
  expect_ter(sentence_ter("a b c d x", {"c d x a y"}), 3, 5, 60.0);
}

TEST(TerHand, CaseInsensitiveByDefault) {
  expect_ter(sentence_ter("THE Dog", {"the dog"}), 0, 2, 0.0);
  TerOptions cs;
  cs.case_sensitive = true;
  const auto s = sentence_ter("THE Dog", {"the dog"}, cs);
  expect_ter(s, 2, 2, 100.0);
  EXPECT_EQ(s.signature, "nrefs:1|case:mixed|tok:tercom|norm:no|punct:yes|asian:no|version:2.6.0");
}

TEST(TerHand, MultipleReferencesTakeFewestEditsAndMeanLength) {
  // Edits: 4 against the first reference, 1 against the second; length is the mean (4 + 3) / 2.
  for (const auto& refs : {std::vector<std::string>{"x y z w", "a b d"}, {"a b d", "x y z w"}}) {
    const auto s = sentence_ter("a b c", refs);
    expect_ter(s, 1, 3.5, 100.0 / 3.5);
    EXPECT_EQ(s.format(), "TER = 28.57");
    EXPECT_EQ(s.signature, "nrefs:2|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:2.6.0");
  }
  // Corpus: line 1 best 0 (second stream), line 2 best 1 (first stream); lengths 3 + 1.5.
  expect_ter(corpus_ter({"a b c", "x"}, {{"a b d", "z"}, {"a b c", "y z"}}), 1, 4.5, 100.0 / 4.5);
}

TEST(TerHand, BadInputThrows) {
  EXPECT_THROW(corpus_ter({"a", "b"}, {{"a"}}), s2s::Error);
  EXPECT_THROW(corpus_ter({"a", "b"}, {{"a", "b"}, {"a"}}), s2s::Error);
  EXPECT_THROW(corpus_ter({"a"}, {}), s2s::Error);
  EXPECT_THROW(sentence_ter("a", {}), s2s::Error);
  try {
    corpus_ter({"a", "b"}, {{"a", "b"}, {"a"}});
    ADD_FAILURE() << "no exception";
  } catch (const s2s::Error& e) {
    EXPECT_EQ(std::string(e.what()), "TER: the hypothesis has 2 lines but reference 2 has 1");
  }
}

TEST(TerHand, FormatWidth) {
  const auto s = sentence_ter("a b c", {"a b d"});
  EXPECT_EQ(s.format(), "TER = 33.33");
  EXPECT_EQ(s.format(1), "TER = 33.3");
  EXPECT_EQ(s.format(4), "TER = 33.3333");
}

TEST(TerTokenizer, TercomOptions) {
  EXPECT_EQ(tokenize_tercom("  Hello,  World! \t"), "hello, world!");  // default: lowercase + whitespace only
  TerOptions norm;
  norm.normalized = true;
  EXPECT_EQ(tokenize_tercom("John's car, costs 3.5 &amp; (x) 10-20 e.g. end.", norm),
            "john 's car , costs 3.5 & ( x ) 10 - 20 e . g . end .");
  TerOptions np;
  np.no_punct = true;
  EXPECT_EQ(tokenize_tercom("Hello, (world)! \"x\" a.b 3.5 ?", np), "hello world x ab 35");
  np.normalized = true;
  EXPECT_EQ(tokenize_tercom("Hello, (world)! \"x\" a.b 3.5 ?", np), "hello world x a b 35");
  TerOptions asian;
  asian.normalized = true;
  asian.asian_support = true;
  EXPECT_EQ(tokenize_tercom("東京は日本語。ひらがな、カタカナ（大）", asian),
            "東 京 は 日 本 語 。 ひらがな 、 カタカナ （ 大 ）");
  asian.normalized = false;
  asian.no_punct = true;
  EXPECT_EQ(tokenize_tercom("東京は日本語。ひらがな、カタカナ（大）", asian),
            "東京は日本語ひらがなカタカナ大");
}

// ---------------------------------------------------------------- random pairs scored by sacreBLEU

const fs::path kRandomFile = fs::path(S2S_SOURCE_DIR) / "tests" / "data" / "ter_random.json";

TerOptions options_from(const nlohmann::json& j) {
  TerOptions o;
  o.normalized = j.value("normalized", false);
  o.no_punct = j.value("no_punct", false);
  o.case_sensitive = j.value("case_sensitive", false);
  o.asian_support = j.value("asian_support", false);
  return o;
}

nlohmann::json load_random() {
  std::ifstream in(kRandomFile);
  return nlohmann::json::parse(in);
}

TEST(TerRandom, SentencesMatchSacrebleu) {
  const nlohmann::json data = load_random();
  ASSERT_EQ(data["cases"].size(), 220u);
  int index = 0;
  for (const auto& c : data["cases"]) {
    SCOPED_TRACE("case " + std::to_string(index++) + ": " + c["hyp"].get<std::string>());
    const TerOptions opts = options_from(c["options"]);
    EXPECT_EQ(tokenize_tercom(c["hyp"].get<std::string>(), opts), c["hyp_tokenized"].get<std::string>());
    const auto s = sentence_ter(c["hyp"].get<std::string>(), c["refs"].get<std::vector<std::string>>(), opts);
    expect_ter(s, c["num_edits"].get<double>(), c["ref_length"].get<double>(), c["score"].get<double>());
  }
}

TEST(TerRandom, TwoReferenceCorpusMatchesSacrebleu) {
  const nlohmann::json data = load_random();
  const auto& c = data["corpus"];
  const auto s = corpus_ter(c["hyps"].get<std::vector<std::string>>(),
                            c["refs"].get<std::vector<std::vector<std::string>>>());
  expect_ter(s, c["num_edits"].get<double>(), c["ref_length"].get<double>(), c["score"].get<double>());
  EXPECT_EQ(s.format(), c["formatted"].get<std::string>());
  EXPECT_EQ(s.signature, c["signature"].get<std::string>());
}

// ---------------------------------------------------------------- shared sacreBLEU vectors

const fs::path kVectorDir = fs::path(S2S_SHARED_DIR) / "testdata" / "bleu";

TEST(TerSacrebleuVectors, AllVectorsMatch) {
  if (!fs::exists(kVectorDir / "expected_ter_chrfpp.json")) {
    GTEST_SKIP() << "sacreBLEU TER vectors not found at " << kVectorDir << " (needs ../shared/testdata/bleu)";
  }
  std::ifstream in(kVectorDir / "expected_ter_chrfpp.json");
  const nlohmann::json expected = nlohmann::json::parse(in);
  ASSERT_FALSE(expected["vectors"].empty());
  double slowest = 0.0;
  for (const auto& v : expected["vectors"]) {
    const std::string name = v["name"].get<std::string>();
    SCOPED_TRACE(name);
    const auto hyps = s2s::metrics::read_lines_for_scoring(kVectorDir / v["hyp"].get<std::string>());
    const auto refs = s2s::metrics::read_lines_for_scoring(kVectorDir / v["ref"].get<std::string>());
    ASSERT_EQ(refs.size(), hyps.size());
    const auto start = std::chrono::steady_clock::now();
    const auto ter = corpus_ter(hyps, {refs});
    slowest =
        std::max(slowest, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    const auto& want = v["ter"];
    expect_ter(ter, want["num_edits"].get<double>(), want["ref_length"].get<double>(),
               want["score"].get<double>());
    EXPECT_EQ(ter.format(), want["formatted"].get<std::string>());
    EXPECT_EQ(ter.signature, want["signature"].get<std::string>());
  }
  // 1014 lines must score well under a second even in a debug build.
  EXPECT_LT(slowest, 2.0);
  std::printf("slowest TER vector: %.3f s\n", slowest);
}

}  // namespace
