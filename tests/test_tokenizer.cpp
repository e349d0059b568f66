// Tokenizer (SentencePiece through the dlmopen'd shim) and SentencePiece training.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "data/tokenizer.h"
#include "data/vocab.h"
#include "util/error.h"

namespace {

namespace stdfs = std::filesystem;

const std::vector<std::string> kUmlautSentences = {
    "Ein Mädchen läuft über die Straße.",
    "Zwei Männer öffnen große Türen.",
    "Österreichische Bäume blühen im Frühling.",
    "Ärger über Übungen macht müde.",
};

std::string read_bytes(const stdfs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const stdfs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary);
  out << s;
}

// A few hundred sentences: Multi30k German when ../shared is there, generated text otherwise.
std::vector<std::string> corpus_lines() {
  std::vector<std::string> lines;
  const stdfs::path shared = stdfs::path(S2S_SHARED_DIR) / "data" / "multi30k" / "train.de";
  if (stdfs::exists(shared)) {
    std::ifstream in(shared);
    std::string line;
    while (lines.size() < 600 && std::getline(in, line)) lines.push_back(line);
  } else {
    const std::vector<std::string> words = {
        "ein",  "eine",    "Mann",   "Frau",    "Kind",     "Hund",  "läuft", "spielt",  "über",   "die",
        "der",  "Straße",  "im",     "Park",    "mit",      "einem", "Ball",  "Mädchen", "Männer", "große",
        "grün", "schöne",  "Brücke", "Fußball", "Wasser",   "sitzt", "auf",   "Bank",    "vor",    "Haus",
        "zwei", "Gitarre", "steht",  "neben",   "Frühling", "Bäume", "Türen", "öffnen",  "müde",   "Übungen"};
    std::mt19937 rng(7);
    std::uniform_int_distribution<size_t> pick(0, words.size() - 1), len(4, 12);
    for (int i = 0; i < 600; ++i) {
      std::string s;
      const size_t n = len(rng);
      for (size_t j = 0; j < n; ++j) s += (j ? " " : "") + words[pick(rng)];
      lines.push_back(s + ".");
    }
  }
  lines.insert(lines.end(), kUmlautSentences.begin(), kUmlautSentences.end());
  return lines;
}

// True when SentencePiece's nmt_nfkc normalisation leaves the line unchanged (so decode(encode(x)) == x).
bool normalisation_stable(const std::string& s) {
  if (s.empty() || s.front() == ' ' || s.back() == ' ' || s.find("  ") != std::string::npos) return false;
  const std::string german = "äöüÄÖÜß";
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      if (i + 1 >= s.size() || german.find(s.substr(i, 2)) == std::string::npos) return false;
      ++i;
    } else if (!std::isalnum(c) && std::string(" .,!?'-").find(static_cast<char>(c)) == std::string::npos) {
      return false;
    }
  }
  return true;
}

class SpmFixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = stdfs::temp_directory_path() / ("s2s_test_tokenizer_" + std::to_string(::getpid()));
    stdfs::remove_all(dir_);
    stdfs::create_directories(dir_);
    lines_ = corpus_lines();
    std::ofstream out(dir_ / "train.txt");
    for (const auto& l : lines_) out << l << "\n";
    out.close();
    model_ = dir_ / "spm.model";
    s2s::train_sentencepiece(options(dir_ / "spm"));
  }
  static void TearDownTestSuite() { stdfs::remove_all(dir_); }

  static s2s::SpmTrainOptions options(const stdfs::path& prefix) {
    s2s::SpmTrainOptions o;
    o.inputs = {dir_ / "train.txt"};
    o.model_prefix = prefix;
    o.vocab_size = 200;
    o.num_threads = 2;
    return o;
  }

  static void expect_error_mentions(const std::function<void()>& fn, const std::vector<std::string>& parts) {
    try {
      fn();
      ADD_FAILURE() << "expected s2s::Error";
    } catch (const s2s::Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      for (const auto& p : parts)
        EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
    }
  }

  static inline stdfs::path dir_;
  static inline stdfs::path model_;
  static inline std::vector<std::string> lines_;
};

using TokenizerTest = SpmFixture;
using VocabTest = SpmFixture;

TEST_F(TokenizerTest, SpecialIdsAndVocabSize) {
  const auto tok = s2s::Tokenizer::load(model_);
  EXPECT_EQ(tok->vocab_size(), 200);
  EXPECT_EQ(tok->pad_id(), 0);
  EXPECT_EQ(tok->unk_id(), 1);
  EXPECT_EQ(tok->bos_id(), 2);
  EXPECT_EQ(tok->eos_id(), 3);
  EXPECT_EQ(tok->id_to_piece(0), "<pad>");
  EXPECT_EQ(tok->id_to_piece(1), "<unk>");
  EXPECT_EQ(tok->id_to_piece(2), "<s>");
  EXPECT_EQ(tok->id_to_piece(3), "</s>");
  EXPECT_EQ(tok->path(), model_);
  EXPECT_TRUE(stdfs::exists(dir_ / "spm.vocab"));
}

TEST_F(TokenizerTest, RoundTripUtf8) {
  const auto tok = s2s::Tokenizer::load(model_);
  int checked = 0;
  for (const auto& line : lines_) {
    if (!normalisation_stable(line)) continue;
    const auto ids = tok->encode(line);
    ASSERT_FALSE(ids.empty()) << line;
    for (int id : ids) {
      ASSERT_GE(id, 4) << line;  // no specials from encode()
      ASSERT_LT(id, tok->vocab_size());
    }
    EXPECT_EQ(tok->decode(ids), line);
    ++checked;
  }
  EXPECT_GT(checked, 100);
  for (const auto& s : kUmlautSentences) EXPECT_EQ(tok->decode(tok->encode(s)), s);
}

TEST_F(TokenizerTest, EmptyAndSpecials) {
  const auto tok = s2s::Tokenizer::load(model_);
  EXPECT_TRUE(tok->encode("").empty());
  EXPECT_EQ(tok->decode({}), "");
  auto ids = tok->encode(kUmlautSentences[0]);
  std::vector<int> wrapped = {tok->bos_id()};
  wrapped.insert(wrapped.end(), ids.begin(), ids.end());
  wrapped.push_back(tok->eos_id());
  wrapped.push_back(tok->pad_id());
  wrapped.push_back(tok->pad_id());
  EXPECT_EQ(tok->decode(wrapped), kUmlautSentences[0]);  // control symbols decode to nothing
}

TEST_F(TokenizerTest, PiecesAndUnknowns) {
  const auto tok = s2s::Tokenizer::load(model_);
  const auto pieces = tok->encode_pieces("Ein Mädchen");
  ASSERT_FALSE(pieces.empty());
  std::string joined;
  for (const auto& p : pieces) joined += p;
  EXPECT_EQ(joined,
            "\xE2\x96\x81"
            "Ein"
            "\xE2\x96\x81"
            "Mädchen");  // U+2581 marks word starts
  // Characters never seen in training map to <unk> and decode to " ⁇ ", without crashing.
  const auto ids = tok->encode("日本");
  ASSERT_FALSE(ids.empty());
  EXPECT_NE(std::find(ids.begin(), ids.end(), tok->unk_id()), ids.end());
  EXPECT_NO_THROW(tok->decode(ids));
  // Invalid UTF-8 must not crash either.
  EXPECT_NO_THROW(tok->encode(std::string("a\xff\xfe b\xc3")));
  // A long input takes the grow-and-retry path for the decode buffer.
  std::string longer;
  for (int i = 0; i < 200; ++i) longer += kUmlautSentences[i % kUmlautSentences.size()] + " ";
  longer.pop_back();
  EXPECT_TRUE(tok->decode(tok->encode(longer)) == longer);
}

TEST_F(TokenizerTest, OutOfRangeIdsThrow) {
  const auto tok = s2s::Tokenizer::load(model_);
  expect_error_mentions([&] { tok->decode({5, 200}); }, {"200", model_.string()});
  expect_error_mentions([&] { tok->decode({-1}); }, {"-1", model_.string()});
  expect_error_mentions([&] { tok->id_to_piece(1000); }, {"1000", model_.string()});
}

TEST_F(TokenizerTest, ConcurrentEncodeDecode) {
  const auto tok = s2s::Tokenizer::load(model_);
  std::vector<std::vector<int>> expected;
  for (const auto& l : lines_) expected.push_back(tok->encode(l));
  std::vector<int> failures(8, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 3; ++rep) {
        for (size_t i = t; i < lines_.size(); i += 3) {
          const auto ids = tok->encode(lines_[i]);
          if (ids != expected[i] || tok->decode(ids) != tok->decode(expected[i])) ++failures[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

TEST_F(TokenizerTest, LoadErrorsNameTheFile) {
  const stdfs::path missing = dir_ / "missing.model";
  expect_error_mentions([&] { s2s::Tokenizer::load(missing); }, {missing.string(), "does not exist"});
  expect_error_mentions([&] { s2s::Tokenizer::load(dir_); }, {dir_.string(), "directory"});

  const stdfs::path empty = dir_ / "empty.model";
  write_bytes(empty, "");
  expect_error_mentions([&] { s2s::Tokenizer::load(empty); }, {empty.string(), "empty"});

  const stdfs::path text = dir_ / "text.model";
  write_bytes(text, "this is not a model\nat all\n");
  expect_error_mentions([&] { s2s::Tokenizer::load(text); }, {text.string(), "SentencePiece"});

  std::mt19937 rng(3);
  std::string noise(4096, '\0');
  for (auto& c : noise) c = static_cast<char>(rng());
  const stdfs::path garbage = dir_ / "garbage.model";
  write_bytes(garbage, noise);
  expect_error_mentions([&] { s2s::Tokenizer::load(garbage); }, {garbage.string()});

  // A valid protobuf prefix of the real model (truncated file).
  const std::string real = read_bytes(model_);
  const stdfs::path truncated = dir_ / "truncated.model";
  write_bytes(truncated, real.substr(0, real.size() / 2));
  expect_error_mentions([&] { s2s::Tokenizer::load(truncated); }, {truncated.string()});

  // A well-formed protobuf with no pieces.
  const stdfs::path no_pieces = dir_ / "no_pieces.model";
  write_bytes(no_pieces, std::string("\x08\x01", 2));
  expect_error_mentions([&] { s2s::Tokenizer::load(no_pieces); }, {no_pieces.string()});
}

// Training twice with the same options gives identical bytes, also when sentences are sampled
// (max_sentences < lines). num_threads is part of the options: it changes float summation order.
TEST_F(VocabTest, DeterministicForSameOptions) {
  for (int threads : {1, 2}) {
    auto o = options(dir_ / "det");
    o.max_sentences = 300;
    o.num_threads = threads;
    s2s::train_sentencepiece(o);
    const std::string model = read_bytes(dir_ / "det.model");
    const std::string vocab = read_bytes(dir_ / "det.vocab");
    ASSERT_FALSE(model.empty());
    s2s::train_sentencepiece(o);
    EXPECT_TRUE(read_bytes(dir_ / "det.model") == model) << "threads=" << threads;
    EXPECT_TRUE(read_bytes(dir_ / "det.vocab") == vocab) << "threads=" << threads;
  }
}

TEST_F(VocabTest, BpeAndOverwriteLeaveNoTemporaries) {
  const stdfs::path sub = dir_ / "bpe_out" / "nested";
  auto o = options(sub / "bpe");
  o.model_type = s2s::SubwordModel::kBpe;
  s2s::train_sentencepiece(o);
  s2s::train_sentencepiece(o);  // overwrites in place
  std::vector<std::string> names;
  for (const auto& e : stdfs::directory_iterator(sub)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"bpe.model", "bpe.vocab"}));
  const auto tok = s2s::Tokenizer::load(sub / "bpe.model");
  EXPECT_EQ(tok->vocab_size(), 200);
  EXPECT_EQ(tok->decode(tok->encode(kUmlautSentences[1])), kUmlautSentences[1]);
}

TEST_F(VocabTest, InvalidOptionsNameTheOption) {
  auto with = [](auto change) {
    auto o = options(dir_ / "bad");
    change(o);
    return o;
  };
  using O = s2s::SpmTrainOptions;
  expect_error_mentions([&] { s2s::train_sentencepiece(with([](O& o) { o.vocab_size = 4; })); },
                        {"vocab_size"});
  expect_error_mentions([&] { s2s::train_sentencepiece(with([](O& o) { o.character_coverage = 0.0; })); },
                        {"character_coverage"});
  expect_error_mentions([&] { s2s::train_sentencepiece(with([](O& o) { o.character_coverage = 1.5; })); },
                        {"character_coverage"});
  expect_error_mentions([&] { s2s::train_sentencepiece(with([](O& o) { o.inputs.clear(); })); }, {"inputs"});
  const stdfs::path missing = dir_ / "nope.txt";
  expect_error_mentions([&] { s2s::train_sentencepiece(with([&](O& o) { o.inputs = {missing}; })); },
                        {"inputs", missing.string()});
  const stdfs::path empty = dir_ / "empty.txt";
  write_bytes(empty, "");
  expect_error_mentions([&] { s2s::train_sentencepiece(with([&](O& o) { o.inputs.push_back(empty); })); },
                        {"inputs", empty.string(), "empty"});
  expect_error_mentions([&] { s2s::train_sentencepiece(with([](O& o) { o.model_prefix = ""; })); },
                        {"model_prefix"});
  EXPECT_FALSE(stdfs::exists(dir_ / "bad.model"));
}

TEST_F(VocabTest, VocabTooLargeSuggestsSmaller) {
  auto o = options(dir_ / "huge");
  o.vocab_size = 50000;
  expect_error_mentions([&] { s2s::train_sentencepiece(o); }, {(dir_ / "huge").string(), "vocab_size"});
  EXPECT_FALSE(stdfs::exists(dir_ / "huge.model"));
  for (const auto& e : stdfs::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().filename().string().find(".huge.tmp"), std::string::npos) << e.path();
  }
}

// The search order for libs2s_spm.so: $S2S_SPM_LIB alone when set, else next to the executable first.
TEST(SpmShim, CandidateOrder) {
  const char* old = std::getenv("S2S_SPM_LIB");
  const std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;
  ::setenv("S2S_SPM_LIB", "/somewhere/libs2s_spm.so", 1);
  EXPECT_EQ(s2s::detail::spm_shim_candidates(), std::vector<stdfs::path>{"/somewhere/libs2s_spm.so"});
  ::unsetenv("S2S_SPM_LIB");
  const auto c = s2s::detail::spm_shim_candidates();
  ASSERT_GE(c.size(), 3u);
  const auto exe_dir = stdfs::read_symlink("/proc/self/exe").parent_path();
  EXPECT_EQ(c[0], exe_dir / "libs2s_spm.so");
  EXPECT_EQ(c[1], (exe_dir / ".." / "lib" / "libs2s_spm.so").lexically_normal());
  EXPECT_EQ(c.back().filename(), "libs2s_spm.so");
  if (saved) ::setenv("S2S_SPM_LIB", saved->c_str(), 1);
}

}  // namespace
