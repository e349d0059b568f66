// BLEU and chrF: hand-computed cases, then every vector of ../shared/testdata/bleu/expected.json
// (sacreBLEU 2.6.0).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "metrics/bleu.h"
#include "metrics/chrf.h"
#include "util/error.h"

namespace {

using Lines = std::vector<std::string>;

namespace fs = std::filesystem;
using s2s::metrics::BleuOptions;
using s2s::metrics::ChrfOptions;
using s2s::metrics::corpus_bleu;
using s2s::metrics::corpus_chrf;
using s2s::metrics::sentence_bleu;
using s2s::metrics::sentence_chrf;
using s2s::metrics::tokenize_13a;

constexpr double kTol = 1e-9;

// ---------------------------------------------------------------- 13a tokenizer

TEST(Bleu13a, PunctuationAndNumbers) {
  EXPECT_EQ(tokenize_13a("Hello, world!"), "Hello , world !");
  EXPECT_EQ(tokenize_13a("The U.S. price rose 3.5% to $1,000.50 (about 2-3 times)."),
            "The U . S . price rose 3.5 % to $ 1,000.50 ( about 2 - 3 times ) .");
  EXPECT_EQ(tokenize_13a("well-known man's shop."), "well-known man's shop .");
  EXPECT_EQ(tokenize_13a("It cost 10-20 euros, i.e. cheap!"), "It cost 10 - 20 euros , i . e . cheap !");
  EXPECT_EQ(tokenize_13a(".5 and 5. and a..b"), ". 5 and 5 . and a . . b");
  EXPECT_EQ(tokenize_13a("1.5-2 {x}[y]~`|^_@/"), "1.5 - 2 { x } [ y ] ~ ` | ^ _ @ /");
}

TEST(Bleu13a, EntitiesSkippedAndNewlines) {
  EXPECT_EQ(tokenize_13a("&quot;Hi&quot; &amp; <skipped>bye &lt;b&gt;"), "\" Hi \" & bye < b >");
  EXPECT_EQ(tokenize_13a("&amp;lt;"), "<");  // unescaped in sequence, like sacreBLEU
  EXPECT_EQ(tokenize_13a("x-\ny\nz"), "xy z");
}

TEST(Bleu13a, UnicodeWhitespaceAndLetters) {
  EXPECT_EQ(tokenize_13a("a\xC2\xA0"
                         "b\xE3\x80\x80"
                         "c\td"),
            "a b c d");  // NBSP, U+3000, tab split
  EXPECT_EQ(tokenize_13a("caf\xC3\xA9. na\xC3\xAFve,ok"), "caf\xC3\xA9 . na\xC3\xAFve , ok");
  EXPECT_EQ(tokenize_13a("   "), "");
}

// ---------------------------------------------------------------- BLEU, hand-computed

TEST(BleuHand, ClippingCountsEachRefNgramOnce) {
  // "the" x3 against a reference with "the" x2: 2 of 3 unigrams match.
  const auto s = corpus_bleu(Lines{"the the the"}, Lines{"the cat the"});
  EXPECT_EQ(s.counts, (std::vector<int64_t>{2, 0, 0, 0}));
  EXPECT_EQ(s.totals, (std::vector<int64_t>{3, 2, 1, 0}));
  EXPECT_NEAR(s.precisions[0], 200.0 / 3, kTol);
}

TEST(BleuHand, ExpSmoothingOnTwoLineCorpus) {
  // Line 1: "a b c d" vs "a b x d" -> unigrams 3/4, bigrams 1/3, trigrams 0/2, 4-grams 0/1.
  // Line 2: "e f" vs "e f"         -> unigrams 2/2, bigrams 1/1.
  const auto s = corpus_bleu(Lines{"a b c d", "e f"}, Lines{"a b x d", "e f"});
  EXPECT_EQ(s.counts, (std::vector<int64_t>{5, 2, 0, 0}));
  EXPECT_EQ(s.totals, (std::vector<int64_t>{6, 4, 2, 1}));
  ASSERT_EQ(s.precisions.size(), 4u);
  EXPECT_NEAR(s.precisions[0], 500.0 / 6, kTol);
  EXPECT_NEAR(s.precisions[1], 50.0, kTol);
  EXPECT_NEAR(s.precisions[2], 100.0 / (2 * 2), kTol);  // first zero order: 100 / (2 * total)
  EXPECT_NEAR(s.precisions[3], 100.0 / (4 * 1), kTol);  // second zero order: 100 / (4 * total)
  EXPECT_DOUBLE_EQ(s.bp, 1.0);
  EXPECT_NEAR(s.score, std::pow(500.0 / 6 * 50 * 25 * 25, 0.25), 1e-9);
  EXPECT_EQ(s.format(),
            "BLEU = 40.17 83.3/50.0/25.0/25.0 (BP = 1.000 ratio = 1.000 hyp_len = 6 ref_len = 6)");
  EXPECT_EQ(s.signature, "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
}

TEST(BleuHand, BrevityPenaltyAndEffectiveOrder) {
  // Corpus BLEU has no effective order: no trigrams means a zero score even though everything matches.
  const auto corpus = corpus_bleu(Lines{"a b"}, Lines{"a b c d"});
  EXPECT_EQ(corpus.score, 0.0);
  EXPECT_NEAR(corpus.bp, std::exp(1.0 - 4.0 / 2.0), 1e-15);
  EXPECT_NEAR(corpus.ratio, 0.5, 1e-15);
  EXPECT_EQ(corpus.format(),
            "BLEU = 0.00 100.0/100.0/0.0/0.0 (BP = 0.368 ratio = 0.500 hyp_len = 2 ref_len = 4)");
  // Sentence BLEU averages over the two orders that exist.
  const auto sent = sentence_bleu("a b", "a b c d");
  EXPECT_NEAR(sent.score, 100.0 * std::exp(-1.0), 1e-9);
  EXPECT_EQ(sent.signature, "nrefs:1|case:mixed|eff:yes|tok:13a|smooth:exp|version:2.6.0");
  // A longer hypothesis has no penalty.
  EXPECT_DOUBLE_EQ(sentence_bleu("a b c d e", "a b c d").bp, 1.0);
}

TEST(BleuHand, PerfectAndEmpty) {
  const auto perfect = corpus_bleu(Lines{"A man is riding a horse ."}, Lines{"A man is riding a horse ."});
  EXPECT_NEAR(perfect.score, 100.0, 1e-9);
  EXPECT_EQ(perfect.format(1),
            "BLEU = 100.0 100.0/100.0/100.0/100.0 (BP = 1.000 ratio = 1.000 hyp_len = 7 "
            "ref_len = 7)");
  const auto empty = corpus_bleu(Lines{"", ""}, Lines{"a b", "c"});
  EXPECT_EQ(empty.score, 0.0);
  EXPECT_EQ(empty.bp, 0.0);
  EXPECT_EQ(empty.format(), "BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 0.000 ratio = 0.000 hyp_len = 0 ref_len = 3)");
  const auto nothing = corpus_bleu(Lines{}, Lines{});
  EXPECT_EQ(nothing.score, 0.0);
  EXPECT_EQ(nothing.ratio, 0.0);
  EXPECT_EQ(sentence_bleu("x", "").score, 0.0);  // empty references are allowed, as in sacreBLEU >= 2.1
}

TEST(BleuHand, LowercaseAndTokenizeNone) {
  EXPECT_EQ(corpus_bleu(Lines{"A MAN WALKS ."}, Lines{"a man walks ."}).counts,
            (std::vector<int64_t>{1, 0, 0, 0}));
  BleuOptions lc;
  lc.lowercase = true;
  const auto s = corpus_bleu(Lines{"A MAN WALKS ."}, Lines{"a man walks ."}, lc);
  EXPECT_NEAR(s.score, 100.0, 1e-9);
  EXPECT_EQ(s.signature, "nrefs:1|case:lc|eff:no|tok:13a|smooth:exp|version:2.6.0");
  BleuOptions none;
  none.tokenize = "none";
  const auto n = corpus_bleu(Lines{"a man walks."}, Lines{"a man walks ."}, none);
  EXPECT_EQ(n.sys_len, 3);
  EXPECT_EQ(n.ref_len, 4);
  EXPECT_EQ(n.counts[0], 2);
  EXPECT_NE(n.signature.find("|tok:none|"), std::string::npos);
}

TEST(BleuHand, TrailingWhitespaceIsStripped) {
  const auto s = corpus_bleu(Lines{"a b c d\xE2\x80\xA8 "}, Lines{"\ta\xC2\xA0"
                                                                  "b c  d"});
  EXPECT_NEAR(s.score, 100.0, 1e-9);
  EXPECT_EQ(s.sys_len, 4);
}

TEST(BleuHand, MismatchedLineCountsThrow) {
  try {
    corpus_bleu(Lines{"a", "b", "c"}, Lines{"a", "b"});
    FAIL() << "expected s2s::Error";
  } catch (const s2s::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find('3'), std::string::npos) << msg;
    EXPECT_NE(msg.find('2'), std::string::npos) << msg;
  }
  EXPECT_THROW(corpus_chrf(Lines{"a"}, Lines{}), s2s::Error);
  BleuOptions bad;
  bad.tokenize = "intl";
  EXPECT_THROW(corpus_bleu(Lines{"a"}, Lines{"a"}, bad), s2s::Error);
}

// ---------------------------------------------------------------- chrF, hand-computed

TEST(ChrfHand, TinyPair) {
  // "ab" vs "abc": order 1 P=1 R=2/3, order 2 P=1 R=1/2, order 3 has no hypothesis n-grams (not averaged).
  // P=1, R=7/12, F2 = 5*P*R / (4*P + R) = 7/11.
  const auto s = sentence_chrf("ab", "abc");
  EXPECT_NEAR(s.score, 100.0 * 7 / 11, 1e-12);
  EXPECT_EQ(s.format(), "chrF2 = 63.64");
  EXPECT_EQ(s.signature, "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0");
  // Whitespace is removed before extracting character n-grams.
  EXPECT_NEAR(sentence_chrf("a b",
                            " a\xC2\xA0"
                            "bc ")
                  .score,
              100.0 * 7 / 11, 1e-12);
}

TEST(ChrfHand, HypothesisNgramsWithoutReferenceOrderAreIgnored) {
  // "abcdef" vs "ab": order 1 P=2/6 R=1, order 2 P=1/5 R=1; orders 3-6 have no reference n-grams.
  // P = (1/3 + 1/5)/2 = 4/15, R = 1, F2 = 5*(4/15) / (16/15 + 1) = 20/31.
  EXPECT_NEAR(sentence_chrf("abcdef", "ab").score, 100.0 * 20 / 31, 1e-12);
}

TEST(ChrfHand, CorpusSumsStatisticsBeforeScoring) {
  // Summed stats of ("ab","abc") and ("abcdef","ab"): order 1 hyp 8 ref 5 match 4, order 2 hyp 6 ref 3
  // match 2, order 3 hyp 0 (its reference side has 1 trigram, the other segment's hyp trigrams don't count).
  const double p = (4.0 / 8 + 2.0 / 6) / 2, r = (4.0 / 5 + 2.0 / 3) / 2;
  const auto s = corpus_chrf(Lines{"ab", "abcdef"}, Lines{"abc", "ab"});
  EXPECT_NEAR(s.score, 100 * 5 * p * r / (4 * p + r), 1e-12);
}

TEST(ChrfHand, CodePointsAndCase) {
  EXPECT_NEAR(sentence_chrf("caf\xC3\xA9", "caf\xC3\xA9").score, 100.0, 1e-12);
  EXPECT_EQ(sentence_chrf("", "").score, 0.0);
  EXPECT_EQ(sentence_chrf("", "abc").score, 0.0);
  ChrfOptions lc;
  lc.lowercase = true;
  EXPECT_NEAR(sentence_chrf("\xC3\x89T\xC3\x89", "\xC3\xA9t\xC3\xA9", lc).score, 100.0, 1e-12);
  EXPECT_EQ(sentence_chrf("x", "x", lc).signature,
            "nrefs:1|case:lc|eff:yes|nc:6|nw:0|space:no|version:2.6.0");
}

TEST(ChrfHand, ChrfPlusPlusName) {
  ChrfOptions pp;
  pp.word_order = 2;
  const auto s = sentence_chrf("the cat.", "the cat.", pp);
  EXPECT_NEAR(s.score, 100.0, 1e-12);
  EXPECT_EQ(s.format(), "chrF2++ = 100.00");
  EXPECT_NE(s.signature.find("|nw:2|"), std::string::npos);
}

// ---------------------------------------------------------------- line reading

class MetricsReadLines : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("s2s_metrics_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path write(const std::string& name, const std::string& data) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << data;
    return p;
  }
  fs::path dir_;
};

TEST_F(MetricsReadLines, SplitsOnNewlineOnlyAndRstrips) {
  const auto p = write("a.txt", "a b  \nc\xE2\x80\xA8\n\n  lead\r\nx\ry\nlast");
  EXPECT_EQ(s2s::metrics::read_lines_for_scoring(p),
            (std::vector<std::string>{"a b", "c", "", "  lead", "x\ry", "last"}));
}

TEST_F(MetricsReadLines, FinalNewlineAddsNoLine) {
  EXPECT_EQ(s2s::metrics::read_lines_for_scoring(write("b.txt", "x\ny\n")),
            (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(s2s::metrics::read_lines_for_scoring(write("c.txt", "x\n\n")),
            (std::vector<std::string>{"x", ""}));
  EXPECT_TRUE(s2s::metrics::read_lines_for_scoring(write("d.txt", "")).empty());
}

TEST_F(MetricsReadLines, MalformedUtf8BecomesReplacementChar) {
  EXPECT_EQ(s2s::metrics::read_lines_for_scoring(write("e.txt", "a\xFF\n")),
            (std::vector<std::string>{"a\xEF\xBF\xBD"}));
}

TEST_F(MetricsReadLines, MissingFileThrowsNamingIt) {
  const fs::path missing = dir_ / "nope.txt";
  try {
    s2s::metrics::read_lines_for_scoring(missing);
    FAIL() << "expected s2s::Error";
  } catch (const s2s::Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing.string()), std::string::npos) << e.what();
  }
  EXPECT_THROW(s2s::metrics::read_lines_for_scoring(dir_), s2s::Error);
}

// ---------------------------------------------------------------- sacreBLEU 2.6.0 vectors

const fs::path kVectorDir = fs::path(S2S_SHARED_DIR) / "testdata" / "bleu";

nlohmann::json load_expected() {
  std::ifstream in(kVectorDir / "expected.json");
  return nlohmann::json::parse(in);
}

void expect_bleu_matches(const s2s::metrics::BleuScore& got, const nlohmann::json& want,
                         const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_NEAR(got.score, want["score"].get<double>(), kTol);
  ASSERT_EQ(got.precisions.size(), want["precisions"].size());
  for (size_t i = 0; i < got.precisions.size(); ++i) {
    EXPECT_NEAR(got.precisions[i], want["precisions"][i].get<double>(), kTol) << "order " << i + 1;
  }
  EXPECT_NEAR(got.bp, want["bp"].get<double>(), kTol);
  EXPECT_NEAR(got.ratio, want["ratio"].get<double>(), kTol);
  EXPECT_EQ(got.sys_len, want["sys_len"].get<int64_t>());
  EXPECT_EQ(got.ref_len, want["ref_len"].get<int64_t>());
  EXPECT_EQ(got.counts, want["counts"].get<std::vector<int64_t>>());
  EXPECT_EQ(got.totals, want["totals"].get<std::vector<int64_t>>());
  EXPECT_EQ(got.format(), want["formatted"].get<std::string>());
}

TEST(MetricsSacrebleuVectors, AllVectorsMatch) {
  if (!fs::exists(kVectorDir / "expected.json")) {
    GTEST_SKIP() << "sacreBLEU test vectors not found at " << kVectorDir
                 << " (needs ../shared/testdata/bleu)";
  }
  const nlohmann::json expected = load_expected();
  ASSERT_FALSE(expected["vectors"].empty());
  for (const auto& v : expected["vectors"]) {
    const std::string name = v["name"].get<std::string>();
    SCOPED_TRACE(name);
    const auto hyps = s2s::metrics::read_lines_for_scoring(kVectorDir / v["hyp"].get<std::string>());
    const auto refs = s2s::metrics::read_lines_for_scoring(kVectorDir / v["ref"].get<std::string>());
    ASSERT_EQ(hyps.size(), v["num_lines"].get<size_t>());
    ASSERT_EQ(refs.size(), hyps.size());

    const auto bleu = corpus_bleu(hyps, refs);
    expect_bleu_matches(bleu, v["bleu"], "corpus BLEU");
    EXPECT_EQ(bleu.signature, v["bleu"]["signature"].get<std::string>());

    const auto chrf = corpus_chrf(hyps, refs);
    EXPECT_NEAR(chrf.score, v["chrf"]["score"].get<double>(), kTol);
    EXPECT_EQ(chrf.signature, v["chrf"]["signature"].get<std::string>());
    if (v["chrf"].contains("formatted")) {
      EXPECT_EQ(chrf.format(), v["chrf"]["formatted"].get<std::string>());
    }

    const auto& first5 = v["sentence_bleu_first5"];
    for (const auto& line : first5["lines"]) {
      const size_t idx = line["line"].get<size_t>() - 1;
      ASSERT_LT(idx, hyps.size());
      const std::string what = "sentence line " + std::to_string(idx + 1);
      const auto sb = sentence_bleu(hyps[idx], refs[idx]);
      expect_bleu_matches(sb, line, what);
      EXPECT_EQ(sb.signature, first5["signature"].get<std::string>());
      const auto sc = sentence_chrf(hyps[idx], refs[idx]);
      EXPECT_NEAR(sc.score, line["chrf"].get<double>(), kTol) << what;
      EXPECT_EQ(sc.signature, first5["chrf_signature"].get<std::string>());
    }
  }
}

}  // namespace

namespace {

// Several reference streams, against the sacreBLEU 2.6.0 command line (`sacrebleu REF1 REF2 [REF3] -i HYP
// -m bleu chrf [--chrf-word-order 2] -w 12 -f text`, run on the shared vectors).
TEST(MetricsSacrebleuVectors, SeveralReferencesMatchTheCommandLine) {
  if (!fs::exists(kVectorDir / "ref.valid.en"))
    GTEST_SKIP() << "sacreBLEU test vectors not found at " << kVectorDir;
  auto read = [](const char* name) { return s2s::metrics::read_lines_for_scoring(kVectorDir / name); };
  const auto hyp = read("hyp.drop_every_3rd_word.en");
  const std::vector<Lines> two{read("ref.valid.en"), read("hyp.punct_detached.en")};
  const auto bleu = corpus_bleu(hyp, two);
  EXPECT_NEAR(bleu.score, 5.436830161192, 1e-11);
  EXPECT_EQ(bleu.sys_len, 9214);
  EXPECT_EQ(bleu.ref_len, 13289);  // the closest reference length, line by line
  EXPECT_EQ(bleu.signature, "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
  EXPECT_NEAR(corpus_chrf(hyp, two).score, 53.810688658372, 1e-11);
  s2s::metrics::ChrfOptions pp;
  pp.word_order = 2;
  const auto chrf_pp = corpus_chrf(hyp, two, pp);
  EXPECT_NEAR(chrf_pp.score, 54.841778961314, 1e-11);
  EXPECT_EQ(chrf_pp.name + "|" + chrf_pp.signature,
            "chrF2++|nrefs:2|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0");

  const auto shuffled = read("hyp.shuffle_words.en");
  const std::vector<Lines> three{read("ref.valid.en"), read("hyp.lowercase.en"), read("hyp.first_half.en")};
  EXPECT_NEAR(corpus_bleu(shuffled, three).score, 5.752906645412, 1e-11);
  EXPECT_NEAR(corpus_chrf(shuffled, three).score, 59.125296303741, 1e-11);

  auto short_stream = two;
  short_stream[1].pop_back();
  EXPECT_THROW(corpus_bleu(hyp, short_stream), s2s::Error);
}

}  // namespace
