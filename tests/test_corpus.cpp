// Parallel corpus loading: line-count checks, filtering (empty, too long, invalid UTF-8), CRLF, missing final
// newline, missing files, TokenStore layout and count_lines. A tiny SentencePiece model is trained once on
// the shipped data/ sample.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/corpus.h"
#include "data/tokenizer.h"
#include "data/vocab.h"
#include "test_util.h"
#include "util/error.h"

namespace {

namespace stdfs = std::filesystem;
using s2s_test::contains;
using s2s_test::error_of;
using s2s_test::unique_temp_dir;
using s2s_test::write_bytes;

std::vector<int32_t> as_i32(const std::vector<int>& v) {
  return {v.begin(), v.end()};
}

// ---------------------------------------------------------------------------------------------------------
// TokenStore and count_lines need no model.

TEST(TokenStore, EmptyStore) {
  s2s::TokenStore store;
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.total_tokens(), 0);
}

TEST(TokenStore, OffsetsAndLengths) {
  s2s::TokenStore store;
  store.add({5, 6, 7});
  store.add({});
  store.add({9});
  store.add({1, 2});
  ASSERT_EQ(store.size(), 4u);
  EXPECT_EQ(store.total_tokens(), 6);
  EXPECT_EQ(store.length(0), 3);
  EXPECT_EQ(store.length(1), 0);
  EXPECT_EQ(store.length(2), 1);
  EXPECT_EQ(store.length(3), 2);
  EXPECT_EQ(store.get(0), (std::vector<int32_t>{5, 6, 7}));
  EXPECT_TRUE(store.get(1).empty());
  EXPECT_EQ(store.get(2), (std::vector<int32_t>{9}));
  EXPECT_EQ(store.get(3), (std::vector<int32_t>{1, 2}));
  // Sentences are stored back to back.
  EXPECT_EQ(store.data(1), store.data(0) + 3);
  EXPECT_EQ(store.data(2), store.data(0) + 3);
  EXPECT_EQ(store.data(3), store.data(0) + 4);
  EXPECT_EQ(store.data(3)[1], 2);
}

TEST(TokenStore, ManySentences) {
  s2s::TokenStore store;
  int64_t total = 0;
  for (int i = 0; i < 1000; ++i) {
    std::vector<int> ids(static_cast<size_t>(i % 17), i);
    store.add(ids);
    total += i % 17;
  }
  ASSERT_EQ(store.size(), 1000u);
  EXPECT_EQ(store.total_tokens(), total);
  for (size_t i = 0; i < 1000; ++i) {
    ASSERT_EQ(store.length(i), static_cast<int64_t>(i % 17));
    for (int32_t id : store.get(i)) ASSERT_EQ(id, static_cast<int32_t>(i));
  }
}

class CountLines : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = unique_temp_dir("count_lines"); }
  void TearDown() override { stdfs::remove_all(dir_); }
  int64_t count(const std::string& content) {
    const auto f = dir_ / "f.txt";
    write_bytes(f, content);
    return s2s::count_lines(f);
  }
  stdfs::path dir_;
};

TEST_F(CountLines, Counts) {
  EXPECT_EQ(count(""), 0);
  EXPECT_EQ(count("\n"), 1);
  EXPECT_EQ(count("a"), 1);  // final line without '\n' counts
  EXPECT_EQ(count("a\n"), 1);
  EXPECT_EQ(count("a\nb"), 2);
  EXPECT_EQ(count("a\nb\n"), 2);
  EXPECT_EQ(count("\n\n\n"), 3);
  EXPECT_EQ(count("a\r\nb\r\n"), 2);
  EXPECT_EQ(count("a\rb\r"), 1);  // a lone CR is not a line break
  EXPECT_EQ(count(std::string("a\0b\nc\n", 6)), 2);
}

TEST_F(CountLines, ShippedData) {
  EXPECT_EQ(s2s::count_lines(stdfs::path(S2S_SOURCE_DIR) / "data" / "train.de"),
            s2s::count_lines(stdfs::path(S2S_SOURCE_DIR) / "data" / "train.en"));
  EXPECT_GT(s2s::count_lines(stdfs::path(S2S_SOURCE_DIR) / "data" / "train.de"), 1000);
}

TEST_F(CountLines, MissingFileAndDirectoryNamed) {
  const auto missing = dir_ / "nope.txt";
  EXPECT_CONTAINS(error_of([&] { s2s::count_lines(missing); }), missing.string());
  EXPECT_CONTAINS(error_of([&] { s2s::count_lines(dir_); }), dir_.string());
}

// ---------------------------------------------------------------------------------------------------------
// load_parallel with a real (tiny) SentencePiece model.

class Corpus : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_dir_ = new stdfs::path(unique_temp_dir("corpus_spm"));
    s2s::SpmTrainOptions o;
    o.inputs = {stdfs::path(S2S_SOURCE_DIR) / "data" / "train.de",
                stdfs::path(S2S_SOURCE_DIR) / "data" / "train.en"};
    o.model_prefix = *model_dir_ / "spm";
    o.vocab_size = 500;
    o.max_sentences = 5000;
    s2s::train_sentencepiece(o);
    tok_ = new std::shared_ptr<const s2s::Tokenizer>(s2s::Tokenizer::load(*model_dir_ / "spm.model"));
  }
  static void TearDownTestSuite() {
    delete tok_;
    tok_ = nullptr;
    std::error_code ec;
    stdfs::remove_all(*model_dir_, ec);
    delete model_dir_;
    model_dir_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(tok_, nullptr);
    ASSERT_NE(*tok_, nullptr);
    dir_ = unique_temp_dir("corpus");
  }
  void TearDown() override {
    std::error_code ec;
    stdfs::remove_all(dir_, ec);
  }

  const s2s::Tokenizer& tok() const { return **tok_; }

  // Writes the two sides (raw bytes) and loads them.
  s2s::ParallelCorpus load(const std::string& src, const std::string& tgt,
                           const s2s::CorpusOptions& opt = {}) {
    write_bytes(src_path(), src);
    write_bytes(tgt_path(), tgt);
    return s2s::load_parallel(src_path(), tgt_path(), tok(), tok(), opt);
  }
  stdfs::path src_path() const { return dir_ / "corpus.de"; }
  stdfs::path tgt_path() const { return dir_ / "corpus.en"; }

  static void expect_stats_add_up(const s2s::CorpusStats& st) {
    EXPECT_EQ(st.read, st.kept + st.empty + st.too_long + st.invalid_utf8);
  }

  static stdfs::path* model_dir_;
  static std::shared_ptr<const s2s::Tokenizer>* tok_;
  stdfs::path dir_;
};

stdfs::path* Corpus::model_dir_ = nullptr;
std::shared_ptr<const s2s::Tokenizer>* Corpus::tok_ = nullptr;

TEST_F(Corpus, ModelHasRequestedSize) {
  EXPECT_EQ(tok().vocab_size(), 500);
  EXPECT_EQ(tok().pad_id(), 0);
  EXPECT_EQ(tok().eos_id(), 3);
}

TEST_F(Corpus, StoresEncodedIdsInOrder) {
  const std::vector<std::string> de = {"Ich habe Hunger.", "Das ist ein Haus.", "Wo ist der Bahnhof?"};
  const std::vector<std::string> en = {"I am hungry.", "This is a house.", "Where is the station?"};
  const auto c = load(de[0] + "\n" + de[1] + "\n" + de[2] + "\n", en[0] + "\n" + en[1] + "\n" + en[2] + "\n");
  ASSERT_EQ(c.size(), 3u);
  ASSERT_EQ(c.tgt.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(c.src.get(i), as_i32(tok().encode(de[i])));
    EXPECT_EQ(c.tgt.get(i), as_i32(tok().encode(en[i])));
    EXPECT_GT(c.src.length(i), 0);
    // No BOS/EOS are added.
    for (int32_t id : c.src.get(i)) {
      EXPECT_NE(id, tok().bos_id());
      EXPECT_NE(id, tok().eos_id());
    }
  }
  EXPECT_EQ(c.stats.read, 3);
  EXPECT_EQ(c.stats.kept, 3);
  expect_stats_add_up(c.stats);
}

TEST_F(Corpus, LineCountMismatchNamesBothFilesAndCounts) {
  const auto msg = error_of([&] { load("a\nb\nc\n", "x\ny\n"); });
  EXPECT_CONTAINS(msg, src_path().string());
  EXPECT_CONTAINS(msg, tgt_path().string());
  EXPECT_CONTAINS(msg, "3");
  EXPECT_CONTAINS(msg, "2");
  EXPECT_EQ(msg.find('\n'), std::string::npos);
}

TEST_F(Corpus, TrailingEmptyLineCountsAsALine) {
  // "a\nb\n\n" has three lines (the last empty): a real mismatch with a two-line file.
  const auto msg = error_of([&] { load("a\nb\n\n", "x\ny\n"); });
  EXPECT_CONTAINS(msg, "3");
}

TEST_F(Corpus, EmptyAndWhitespacePairsAreDroppedAndCounted) {
  const std::string src = std::string("Hallo Welt.\n") +  // kept
                          "\n" +                          // empty source
                          "Guten Morgen.\n" +             // empty target
                          "   \t \n" +                    // whitespace-only source
                          "Ein Hund.\n" +                 // whitespace-only target (NBSP, ideographic space)
                          "Eine Katze.\n";                // kept
  const std::string tgt = std::string("Hello world.\n") + "Something.\n" + "\n" + "Tabs.\n" +
                          "\xc2\xa0\xe3\x80\x80 \n" + "A cat.\n";
  const auto c = load(src, tgt);
  EXPECT_EQ(c.stats.read, 6);
  EXPECT_EQ(c.stats.empty, 4);
  EXPECT_EQ(c.stats.kept, 2);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c.src.get(0), as_i32(tok().encode("Hallo Welt.")));
  EXPECT_EQ(c.tgt.get(1), as_i32(tok().encode("A cat.")));
  expect_stats_add_up(c.stats);
}

TEST_F(Corpus, OverlongPairsAreDroppedAndCounted) {
  const std::string short_de = "Ich bin hier.", short_en = "I am here.";
  std::string long_text;
  for (int i = 0; i < 30; ++i) long_text += "Das ist ein sehr langer Satz ";
  const auto short_len =
      std::max(tok().encode(short_de).size(), tok().encode(short_en).size());  // the longer short side
  ASSERT_LT(short_len, tok().encode(long_text).size());

  s2s::CorpusOptions opt;
  opt.max_length = static_cast<int>(short_len);  // exactly max_length tokens is still kept
  const auto c = load(short_de + "\n" + long_text + "\n" + short_de + "\n" + short_de + "\n",
                      short_en + "\n" + short_en + "\n" + long_text + "\n" + short_en + "\n", opt);
  EXPECT_EQ(c.stats.read, 4);
  EXPECT_EQ(c.stats.too_long, 2);  // one too long on the source side, one on the target side
  EXPECT_EQ(c.stats.kept, 2);
  ASSERT_EQ(c.size(), 2u);
  for (size_t i = 0; i < c.size(); ++i) {
    EXPECT_LE(c.src.length(i), opt.max_length);
    EXPECT_LE(c.tgt.length(i), opt.max_length);
  }
  expect_stats_add_up(c.stats);

  opt.max_length = static_cast<int>(short_len) - 1;  // now every pair is too long
  const auto none = load(short_de + "\n", short_en + "\n", opt);
  EXPECT_EQ(none.size(), 0u);
  EXPECT_EQ(none.stats.too_long, 1);
}

TEST_F(Corpus, InvalidUtf8SkippedAndCounted) {
  const std::string src =
      "Gut.\n" + std::string("Schlecht \xff\xfe Bytes.\n") + "Auch gut.\n" + "Noch gut.\n";
  const std::string tgt =
      std::string("Good.\n") + "Bad bytes.\n" + "Overlong \xc0\xaf slash.\n" + "Still good.\n";
  const auto c = load(src, tgt);
  EXPECT_EQ(c.stats.read, 4);
  EXPECT_EQ(c.stats.invalid_utf8, 2);
  EXPECT_EQ(c.stats.kept, 2);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c.src.get(0), as_i32(tok().encode("Gut.")));
  EXPECT_EQ(c.src.get(1), as_i32(tok().encode("Noch gut.")));
  EXPECT_EQ(c.tgt.get(1), as_i32(tok().encode("Still good.")));
  expect_stats_add_up(c.stats);
}

TEST_F(Corpus, InvalidUtf8ErrorModeNamesFileAndLine) {
  s2s::CorpusOptions opt;
  opt.skip_invalid_utf8 = false;
  // Source side, line 3 (after an empty pair, which still counts as a line).
  auto msg = error_of([&] { load("Gut.\n\nSchlecht \xff.\n", "Good.\n\nBad.\n", opt); });
  EXPECT_CONTAINS(msg, src_path().string() + ":3");
  EXPECT_CONTAINS(msg, "UTF-8");
  // Target side, line 2.
  msg = error_of([&] { load("Gut.\nAuch gut.\n", "Good.\nTruncated \xe2\x82\n", opt); });
  EXPECT_CONTAINS(msg, tgt_path().string() + ":2");
}

TEST_F(Corpus, CrlfIsHandledLikeLf) {
  const std::string de = "Ich habe Hunger.\nDas ist ein Haus.\nWo ist der Bahnhof?\n";
  const std::string en = "I am hungry.\nThis is a house.\nWhere is the station?\n";
  auto crlf = [](const std::string& s) {
    std::string out;
    for (char ch : s) out += ch == '\n' ? std::string("\r\n") : std::string(1, ch);
    return out;
  };
  const auto lf_corpus = load(de, en);
  const auto crlf_corpus = load(crlf(de), crlf(en));
  ASSERT_EQ(lf_corpus.size(), 3u);
  ASSERT_EQ(crlf_corpus.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(crlf_corpus.src.get(i), lf_corpus.src.get(i));
    EXPECT_EQ(crlf_corpus.tgt.get(i), lf_corpus.tgt.get(i));
  }
  // Mixed line endings in the two files are fine too.
  const auto mixed = load(crlf(de), en);
  ASSERT_EQ(mixed.size(), 3u);
  EXPECT_EQ(mixed.src.get(2), lf_corpus.src.get(2));
  // A line holding only "\r" is empty.
  const auto only_cr = load("\r\nHallo.\r\n", "Something.\r\nHello.\r\n");
  EXPECT_EQ(only_cr.stats.empty, 1);
  EXPECT_EQ(only_cr.stats.kept, 1);
}

TEST_F(Corpus, MissingFinalNewline) {
  const auto c = load("Eins.\nZwei.", "One.\nTwo.");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c.src.get(1), as_i32(tok().encode("Zwei.")));
  EXPECT_EQ(c.tgt.get(1), as_i32(tok().encode("Two.")));
  // One side with, the other without the final newline: same line count, same result.
  const auto c2 = load("Eins.\nZwei.\n", "One.\nTwo.");
  ASSERT_EQ(c2.size(), 2u);
  EXPECT_EQ(c2.tgt.get(1), as_i32(tok().encode("Two.")));
}

TEST_F(Corpus, EmptyFilesGiveEmptyCorpus) {
  const auto c = load("", "");
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.stats.read, 0);
  EXPECT_EQ(c.src.total_tokens(), 0);
}

TEST_F(Corpus, MissingFileIsNamed) {
  write_bytes(src_path(), "a\n");
  const auto missing = dir_ / "missing.en";
  auto msg = error_of([&] { s2s::load_parallel(src_path(), missing, tok(), tok(), {}); });
  EXPECT_CONTAINS(msg, missing.string());
  msg = error_of([&] { s2s::load_parallel(missing, src_path(), tok(), tok(), {}); });
  EXPECT_CONTAINS(msg, missing.string());
  msg = error_of([&] { s2s::load_parallel(dir_, src_path(), tok(), tok(), {}); });  // a directory
  EXPECT_CONTAINS(msg, dir_.string());
}

TEST_F(Corpus, MaxPairsReadsOnlyTheFirstPairs) {
  s2s::CorpusOptions opt;
  opt.max_pairs = 2;
  const auto c = load("Eins.\n\nDrei.\nVier.\n", "One.\nTwo.\nThree.\nFour.\n", opt);
  EXPECT_EQ(c.stats.read, 2);
  EXPECT_EQ(c.stats.empty, 1);
  EXPECT_EQ(c.size(), 1u);
}

TEST_F(Corpus, NulByteInLineDoesNotCrash) {
  const auto c = load(std::string("Hallo\0Welt.\nZwei.\n", 18), "Hello world.\nTwo.\n");
  EXPECT_EQ(c.stats.read, 2);
  expect_stats_add_up(c.stats);
}

TEST_F(Corpus, ShippedSampleLoads) {
  s2s::CorpusOptions opt;
  opt.max_length = 50;
  opt.max_pairs = 2000;
  const auto c = s2s::load_parallel(stdfs::path(S2S_SOURCE_DIR) / "data" / "train.de",
                                    stdfs::path(S2S_SOURCE_DIR) / "data" / "train.en", tok(), tok(), opt);
  EXPECT_EQ(c.stats.read, 2000);
  EXPECT_GT(c.stats.kept, 1900);
  EXPECT_EQ(c.src.size(), c.tgt.size());
  expect_stats_add_up(c.stats);
  int64_t total = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    ASSERT_GT(c.src.length(i), 0);
    ASSERT_LE(c.src.length(i), 50);
    ASSERT_LE(c.tgt.length(i), 50);
    for (int32_t id : c.src.get(i)) ASSERT_TRUE(id >= 0 && id < tok().vocab_size());
    total += c.src.length(i);
  }
  EXPECT_EQ(total, c.src.total_tokens());
}

}  // namespace
