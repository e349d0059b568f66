// Typed YAML config: defaults, dump/parse round trip, error messages (file:line, key, suggestion), --set
// overrides, range validation, relative path resolution and closest_match.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "config/config.h"
#include "test_util.h"
#include "util/error.h"
#include "util/text.h"

namespace {

namespace stdfs = std::filesystem;
using s2s_test::contains;
using s2s_test::error_of;
using s2s_test::write_bytes;

// A fresh directory under the system temp dir, removed with the object.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = stdfs::temp_directory_path() /
            ("s2s_test_config_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    stdfs::remove_all(path_);
    stdfs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    stdfs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const stdfs::path& path() const { return path_; }

 private:
  stdfs::path path_;
};

s2s::Config parse(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return s2s::parse_config(yaml, "cfg.yaml", "/base", overrides);
}

std::string parse_error(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return error_of([&] { parse(yaml, overrides); });
}

void expect_one_line(const std::string& msg) {
  EXPECT_FALSE(msg.empty());
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "message spans several lines: " << msg;
}

// ---------------------------------------------------------------------------------------------------------
// Defaults

TEST(Config, EmptyTextGivesDefaults) {
  const auto c = parse("");
  const s2s::Config d;
  EXPECT_EQ(s2s::dump_config(c), s2s::dump_config(d));
  EXPECT_EQ(c.model.emb_dim, 256);
  EXPECT_EQ(c.model.attention, s2s::AttentionType::kLuongGeneral);
  EXPECT_DOUBLE_EQ(c.train.lr, 0.001);
  EXPECT_EQ(c.train.device, s2s::Device{});
  EXPECT_EQ(c.train.precision, s2s::Precision::kFp32);
  EXPECT_EQ(c.decode.beam_size, 5);
  EXPECT_EQ(c.decode.n_best, 1);
  EXPECT_EQ(c.data.invalid_utf8, s2s::InvalidUtf8::kSkip);
  EXPECT_TRUE(c.vocab.joint);
  EXPECT_EQ(c.vocab.size, 8000);
  EXPECT_TRUE(c.data.train_src.empty());  // empty paths stay empty (not resolved to the base dir)
  EXPECT_TRUE(c.vocab.src_model.empty());
}

TEST(Config, CommentsOnlyAndEmptySectionsGiveDefaults) {
  const s2s::Config d;
  EXPECT_EQ(s2s::dump_config(parse("# nothing here\n\n")), s2s::dump_config(d));
  EXPECT_EQ(s2s::dump_config(parse("---\n")), s2s::dump_config(d));
  EXPECT_EQ(s2s::dump_config(parse("model: {}\ntrain: {}\n")), s2s::dump_config(d));
}

TEST(Config, MinimalFileOverridesOnlyWhatItNames) {
  const auto c = parse("model:\n  emb_dim: 64\ntrain:\n  lr: 0.0005\n");
  EXPECT_EQ(c.model.emb_dim, 64);
  EXPECT_DOUBLE_EQ(c.train.lr, 0.0005);
  EXPECT_EQ(c.model.enc_hidden, 256);  // untouched default
  EXPECT_EQ(c.train.batch_tokens, 4096);
  EXPECT_EQ(c.decode.beam_size, 5);
}

TEST(Config, ShippedDemoConfigLoads) {
  const stdfs::path demo = stdfs::path(S2S_SOURCE_DIR) / "configs" / "demo.yaml";
  const auto c = s2s::load_config(demo);
  EXPECT_EQ(c.model.emb_dim, 128);
  EXPECT_EQ(c.train.precision, s2s::Precision::kAuto);
  EXPECT_EQ(stdfs::path(c.data.train_src),
            (stdfs::path(S2S_SOURCE_DIR) / "data" / "train.de").lexically_normal());
  EXPECT_TRUE(stdfs::exists(c.data.train_src));
  EXPECT_TRUE(stdfs::exists(c.data.valid_tgt));
}

// Every shipped config parses and validates (paths are checked by the commands, not here).
TEST(Config, EveryShippedConfigLoads) {
  size_t configs = 0;
  for (const auto& entry : stdfs::directory_iterator(stdfs::path(S2S_SOURCE_DIR) / "configs")) {
    SCOPED_TRACE(entry.path().string());
    const auto c = s2s::load_config(entry.path());
    ++configs;
    if (entry.path().filename() == "multi30k-de-en-transformer.yaml") {
      EXPECT_EQ(c.model.type, s2s::ModelType::kTransformer);
      EXPECT_EQ(c.model.emb_dim % c.model.heads, 0);
    }
  }
  EXPECT_GE(configs, 3u);
}

// ---------------------------------------------------------------------------------------------------------
// Round trip

TEST(Config, DefaultsRoundTripThroughDump) {
  const s2s::Config d;
  const auto text = s2s::dump_config(d);
  EXPECT_EQ(s2s::dump_config(parse(text)), text);
}

TEST(Config, EverySectionRoundTrips) {
  s2s::Config c;
  c.data.train_src = "/corpus/train file.de";  // space in a path
  c.data.train_tgt = "/corpus/train#1.en";     // YAML comment character
  c.data.valid_src = "/corpus/valid: x.de";    // YAML key separator
  c.data.valid_tgt = "/corpus/'quoted' \"v\".en";
  c.data.max_length = 77;
  c.data.invalid_utf8 = s2s::InvalidUtf8::kError;
  c.data.valid_max_sentences = 123;
  c.vocab.joint = false;
  c.vocab.size = 1234;
  c.vocab.model_type = s2s::SubwordModel::kBpe;
  c.vocab.character_coverage = 0.9995;
  c.vocab.src_model = "/m/src.model";
  c.vocab.tgt_model = "/m/tgt.model";
  c.vocab.max_sentences = 5000000000LL;  // beyond 32 bits
  c.model.emb_dim = 96;
  c.model.share_embeddings = false;
  c.model.tie_output = false;
  c.model.enc_layers = 3;
  c.model.enc_hidden = 100;
  c.model.enc_residual = true;
  c.model.dec_layers = 4;
  c.model.dec_hidden = 200;
  c.model.attention = s2s::AttentionType::kLuongDot;
  c.model.input_feeding = false;
  c.model.dropout_emb = 0.05;
  c.model.dropout_hidden = 1.0 / 3.0;  // needs all 17 digits to round-trip
  c.model.dropout_attn = 0.0;
  c.model.type = s2s::ModelType::kTransformer;
  c.model.heads = 6;
  c.model.ffn_dim = 333;
  c.model.ffn_activation = s2s::Activation::kGelu;
  c.model.attention_dropout = 0.25;
  c.model.ffn_dropout = 0.125;
  c.train.batch_tokens = 1000;
  c.train.batch_multiple = 8;
  c.train.accum_steps = 3;
  c.train.max_steps = 9000000000LL;
  c.train.max_epochs = 0;
  c.train.max_minutes = 12.5;
  c.train.lr = 3e-4;
  c.train.warmup_steps = 17;
  c.train.lr_schedule = s2s::LrSchedule::kInverseSqrt;
  c.train.lr_decay = 0.7;
  c.train.lr_patience = 2;
  c.train.min_lr = 1e-7;
  c.train.label_smoothing = 0.0;
  c.train.clip_norm = 1.5;
  c.train.adam_beta1 = 0.8;
  c.train.adam_beta2 = 0.98;
  c.train.seed = 987654321;
  c.train.threads = 7;
  c.train.device = s2s::Device{s2s::Device::Kind::kCuda, 1};
  c.train.precision = s2s::Precision::kBf16;
  c.train.log_every = 11;
  c.train.valid_every = 22;
  c.train.early_stop_metric = s2s::EarlyStopMetric::kPpl;
  c.train.patience = 0;
  c.train.valid_beam_size = 4;
  c.train.valid_batch_size = 32;
  c.decode.beam_size = 8;
  c.decode.n_best = 8;
  c.decode.batch_size = 16;
  c.decode.batch_tokens = 3000;
  c.decode.normalize = 1.0;
  c.decode.max_length = 300;
  c.decode.max_length_factor = 1.5;
  c.decode.read_ahead = 50;
  c.decode.precision = s2s::Precision::kBf16;
  c.decode.threads = 5;
  c.decode.device = s2s::Device{s2s::Device::Kind::kCuda, -1};
  ASSERT_NO_THROW(s2s::validate(c));

  const auto text = s2s::dump_config(c);
  const auto back = parse(text);
  EXPECT_EQ(s2s::dump_config(back), text);
  // Spot-check that values (not just the text) survived.
  EXPECT_EQ(back.data.train_src, c.data.train_src);
  EXPECT_EQ(back.data.train_tgt, c.data.train_tgt);
  EXPECT_EQ(back.data.valid_src, c.data.valid_src);
  EXPECT_EQ(back.data.valid_tgt, c.data.valid_tgt);
  EXPECT_EQ(back.data.invalid_utf8, s2s::InvalidUtf8::kError);
  EXPECT_EQ(back.vocab.max_sentences, 5000000000LL);
  EXPECT_FALSE(back.vocab.joint);
  EXPECT_DOUBLE_EQ(back.vocab.character_coverage, 0.9995);
  EXPECT_EQ(back.model.dropout_hidden, 1.0 / 3.0);  // bit-exact
  EXPECT_EQ(back.model.attention, s2s::AttentionType::kLuongDot);
  EXPECT_TRUE(back.model.enc_residual);
  EXPECT_EQ(back.train.max_steps, 9000000000LL);
  EXPECT_EQ(back.train.lr, 3e-4);
  EXPECT_EQ(back.train.min_lr, 1e-7);
  EXPECT_EQ(back.train.device, (s2s::Device{s2s::Device::Kind::kCuda, 1}));
  EXPECT_EQ(back.train.seed, 987654321);
  EXPECT_EQ(back.decode.n_best, 8);
  EXPECT_EQ(back.decode.device, (s2s::Device{s2s::Device::Kind::kCuda, -1}));
}

TEST(Config, DumpNamesEverySectionAndKey) {
  const auto text = s2s::dump_config(s2s::Config{});
  for (const char* section : {"data:", "vocab:", "model:", "train:", "decode:"})
    EXPECT_CONTAINS(text, section);
  for (const char* key :
       {"train_src:", "invalid_utf8:", "character_coverage:", "share_embeddings:", "dropout_attn:",
        "label_smoothing:", "early_stop_metric:", "valid_batch_size:", "max_length_factor:", "read_ahead:"}) {
    EXPECT_CONTAINS(text, key);
  }
}

// The stored config.yml is read by people: decimal values should appear as written (0.1, not
// 0.10000000000000001) while still round-tripping exactly.
TEST(Config, DumpUsesShortestRoundTripNumbers) {
  const auto text = s2s::dump_config(s2s::Config{});
  EXPECT_CONTAINS(text, "dropout_emb: 0.1\n");
  EXPECT_CONTAINS(text, "dropout_hidden: 0.3\n");
  EXPECT_CONTAINS(text, "label_smoothing: 0.1\n");
  s2s::Config c;
  c.train.lr = 0.123;
  EXPECT_CONTAINS(s2s::dump_config(c), "lr: 0.123\n");
}

// ---------------------------------------------------------------------------------------------------------
// Unknown keys and sections

TEST(Config, UnknownKeyNamesFileLineKeyAndSuggests) {
  const auto msg = parse_error("model:\n  emb_dim: 64\n  emb_dm: 32\n");
  EXPECT_CONTAINS(msg, "cfg.yaml:3");
  EXPECT_CONTAINS(msg, "model.emb_dm");
  EXPECT_CONTAINS(msg, "did you mean 'model.emb_dim'");
  expect_one_line(msg);
}

TEST(Config, UnknownKeyWithoutCloseMatchHasNoSuggestion) {
  const auto msg = parse_error("train:\n  completely_unrelated_option: 1\n");
  EXPECT_CONTAINS(msg, "cfg.yaml:2");
  EXPECT_CONTAINS(msg, "train.completely_unrelated_option");
  EXPECT_FALSE(contains(msg, "did you mean")) << msg;
}

TEST(Config, KeyFromAnotherSectionIsUnknown) {
  // beam_size lives in decode:, not train:
  const auto msg = parse_error("train:\n  lr: 0.1\n  beam_size: 4\n");
  EXPECT_CONTAINS(msg, "cfg.yaml:3");
  EXPECT_CONTAINS(msg, "train.beam_size");
}

TEST(Config, UnknownSectionNamesLineAndSuggests) {
  const auto msg = parse_error("data:\n  max_length: 10\nmodle:\n  emb_dim: 64\n");
  EXPECT_CONTAINS(msg, "cfg.yaml:3");
  EXPECT_CONTAINS(msg, "'modle'");
  EXPECT_CONTAINS(msg, "did you mean 'model'");
  expect_one_line(msg);
}

TEST(Config, TopLevelKeyWithoutSectionIsUnknownSection) {
  const auto msg = parse_error("lr: 0.1\n");
  EXPECT_CONTAINS(msg, "cfg.yaml:1");
  EXPECT_CONTAINS(msg, "'lr'");
}

// ---------------------------------------------------------------------------------------------------------
// Wrong types and shapes

TEST(Config, WrongTypeNamesLineKeyAndValue) {
  const auto msg = parse_error("train:\n  batch_tokens: 100\n  lr: abc\n");
  EXPECT_CONTAINS(msg, "cfg.yaml:3");
  EXPECT_CONTAINS(msg, "train.lr");
  EXPECT_CONTAINS(msg, "a number");
  EXPECT_CONTAINS(msg, "'abc'");
  expect_one_line(msg);
}

TEST(Config, WrongTypeIntegerBoolString) {
  auto msg = parse_error("model:\n  emb_dim: 2.5\n");
  EXPECT_CONTAINS(msg, "cfg.yaml:2");
  EXPECT_CONTAINS(msg, "model.emb_dim");
  EXPECT_CONTAINS(msg, "an integer");

  msg = parse_error("model:\n  emb_dim: 99999999999\n");  // does not fit an int
  EXPECT_CONTAINS(msg, "model.emb_dim");

  msg = parse_error("vocab:\n  joint: maybe\n");
  EXPECT_CONTAINS(msg, "cfg.yaml:2");
  EXPECT_CONTAINS(msg, "vocab.joint");
  EXPECT_CONTAINS(msg, "true or false");

  msg = parse_error("train:\n  device: [cpu, cuda]\n");
  EXPECT_CONTAINS(msg, "cfg.yaml:2");
  EXPECT_CONTAINS(msg, "train.device");
  EXPECT_CONTAINS(msg, "list");

  msg = parse_error("train:\n  lr:\n    value: 1\n");
  EXPECT_CONTAINS(msg, "train.lr");
  EXPECT_CONTAINS(msg, "mapping");
}

TEST(Config, EmptyValueIsAnError) {
  const auto msg = parse_error("train:\n  lr:\n  seed: 1\n");
  EXPECT_CONTAINS(msg, "train.lr");
  EXPECT_CONTAINS(msg, "null");
}

TEST(Config, SectionMustBeAMapping) {
  auto msg = parse_error("train: 5\n");
  EXPECT_CONTAINS(msg, "cfg.yaml:1");
  EXPECT_CONTAINS(msg, "'train'");
  EXPECT_CONTAINS(msg, "mapping");
  msg = parse_error("model:\n  - emb_dim\n  - 64\n");
  EXPECT_CONTAINS(msg, "'model'");
}

TEST(Config, RootMustBeAMapping) {
  auto msg = parse_error("- data\n- model\n");
  EXPECT_CONTAINS(msg, "cfg.yaml");
  EXPECT_CONTAINS(msg, "mapping");
  msg = parse_error("just a sentence\n");
  EXPECT_CONTAINS(msg, "cfg.yaml");
}

// A YAML key may itself be a list or mapping; that must be an s2s::Error with file:line, not yaml-cpp's
// bad-conversion exception (which has no file name).
TEST(Config, NonScalarKeysAreErrorsWithLine) {
  auto msg = parse_error("[data, model]: 1\n");
  EXPECT_CONTAINS(msg, "cfg.yaml:1");
  msg = parse_error("model:\n  emb_dim: 64\n  {a: 1}: 2\n");
  EXPECT_CONTAINS(msg, "cfg.yaml:3");
  msg = parse_error("model:\n  ? [x]\n  : 2\n");
  EXPECT_CONTAINS(msg, "cfg.yaml:2");
}

TEST(Config, QuotedNumbersAndBooleanSpellings) {
  // yaml-cpp converts a quoted scalar as well; YAML 1.1 spellings of booleans are accepted.
  const auto c = parse("train:\n  lr: \"0.25\"\nvocab:\n  joint: no\nmodel:\n  tie_output: True\n");
  EXPECT_DOUBLE_EQ(c.train.lr, 0.25);
  EXPECT_FALSE(c.vocab.joint);
  EXPECT_TRUE(c.model.tie_output);
}

// ---------------------------------------------------------------------------------------------------------
// Malformed and binary files

TEST(Config, UnclosedBracketNamesFileAndLine) {
  const auto msg = parse_error("data:\n  max_length: 10\nmodel:\n  emb_dim: [64, 128\n");
  EXPECT_TRUE(contains(msg, "cfg.yaml:4") || contains(msg, "cfg.yaml:5")) << msg;
  EXPECT_CONTAINS(msg, "malformed YAML");
  expect_one_line(msg);
}

TEST(Config, BadIndentationNamesFileAndLine) {
  const auto msg = parse_error("model:\n  emb_dim: 64\n    enc_layers: 2\n");
  EXPECT_CONTAINS(msg, "cfg.yaml:3");
  EXPECT_CONTAINS(msg, "malformed YAML");
}

TEST(Config, NulBytesAreRejectedWithLine) {
  std::string text = "model:\n  emb_dim: 64\n";
  text += std::string("\0\0\x01", 3);
  const auto msg = parse_error(text);
  EXPECT_CONTAINS(msg, "cfg.yaml:3");
  EXPECT_CONTAINS(msg, "NUL");
}

TEST(Config, InvalidUtf8IsRejected) {
  const auto msg = parse_error("data:\n  train_src: \xff\xfe.txt\n");
  EXPECT_CONTAINS(msg, "cfg.yaml");
  EXPECT_CONTAINS(msg, "UTF-8");
}

TEST(Config, RandomBinaryFilesThrowErrorsNotCrashes) {
  TempDir dir;
  std::mt19937 rng(42);
  for (int round = 0; round < 50; ++round) {
    std::string bytes(64 + round * 37, '\0');
    for (auto& ch : bytes) ch = static_cast<char>(rng() & 0xff);
    const auto file = dir.path() / ("binary" + std::to_string(round) + ".yaml");
    write_bytes(file, bytes);
    const auto msg = error_of([&] { s2s::load_config(file); });
    EXPECT_CONTAINS(msg, file.string());
  }
}

TEST(Config, RandomPrintableGarbageNeverCrashes) {
  // Printable text that may or may not be YAML: parse_config either returns or throws s2s::Error.
  std::mt19937 rng(7);
  const std::string alphabet = "abcdemltr_:{}[],-#'\"\n  \t0123456789.?&*!|>%@`";
  for (int round = 0; round < 300; ++round) {
    std::string text(static_cast<size_t>(rng() % 80), ' ');
    for (auto& ch : text) ch = alphabet[rng() % alphabet.size()];
    try {
      parse(text);
    } catch (const s2s::Error& e) {
      EXPECT_NE(std::string(e.what()), "");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "non-s2s exception for input '" << text << "': " << e.what();
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// load_config (files)

TEST(Config, LoadConfigMissingFileNamesIt) {
  TempDir dir;
  const auto missing = dir.path() / "missing.yaml";
  const auto msg = error_of([&] { s2s::load_config(missing); });
  EXPECT_CONTAINS(msg, missing.string());
  expect_one_line(msg);
}

TEST(Config, LoadConfigDirectoryNamesIt) {
  TempDir dir;
  const auto msg = error_of([&] { s2s::load_config(dir.path()); });
  EXPECT_CONTAINS(msg, dir.path().string());
  EXPECT_CONTAINS(msg, "directory");
}

TEST(Config, LoadConfigErrorsNameTheFile) {
  TempDir dir;
  const auto file = dir.path() / "exp.yaml";
  write_bytes(file, "model:\n  emb_dim: 64\n  emb_dm: 3\n");
  auto msg = error_of([&] { s2s::load_config(file); });
  EXPECT_CONTAINS(msg, file.string() + ":3");
  EXPECT_CONTAINS(msg, "model.emb_dm");
  EXPECT_CONTAINS(msg, "did you mean 'model.emb_dim'");

  write_bytes(file, "train:\n  lr: abc\n");
  msg = error_of([&] { s2s::load_config(file); });
  EXPECT_CONTAINS(msg, file.string() + ":2");
  EXPECT_CONTAINS(msg, "train.lr");

  write_bytes(file, "train: [1, 2\n");
  msg = error_of([&] { s2s::load_config(file); });
  EXPECT_CONTAINS(msg, file.string() + ":");
  EXPECT_CONTAINS(msg, "malformed YAML");
}

TEST(Config, LoadConfigEmptyFileGivesDefaults) {
  TempDir dir;
  const auto file = dir.path() / "empty.yaml";
  write_bytes(file, "");
  EXPECT_EQ(s2s::dump_config(s2s::load_config(file)), s2s::dump_config(s2s::Config{}));
}

TEST(Config, LoadConfigCrlfFile) {
  TempDir dir;
  const auto file = dir.path() / "crlf.yaml";
  write_bytes(file, "model:\r\n  emb_dim: 48\r\ntrain:\r\n  device: cpu\r\n");
  const auto c = s2s::load_config(file);
  EXPECT_EQ(c.model.emb_dim, 48);
  EXPECT_EQ(c.train.device, s2s::Device{});
}

// The header promises that out-of-range values are reported "with one line naming the file, line and
// key", like unknown keys and wrong types.
TEST(Config, OutOfRangeValueInFileNamesTheFile) {
  TempDir dir;
  const auto file = dir.path() / "range.yaml";
  write_bytes(file, "model:\n  emb_dim: -4\n");
  const auto msg = error_of([&] { s2s::load_config(file); });
  EXPECT_CONTAINS(msg, "model.emb_dim");
  EXPECT_CONTAINS(msg, file.string());
}

// ---------------------------------------------------------------------------------------------------------
// --set overrides

TEST(Config, OverrideSetsValue) {
  const auto c = parse("train:\n  lr: 0.01\n", {"train.lr=0.0005"});
  EXPECT_DOUBLE_EQ(c.train.lr, 0.0005);
}

TEST(Config, OverrideAddsSectionMissingFromFile) {
  const auto c = parse("", {"decode.beam_size=12", "model.attention=bahdanau", "vocab.joint=false"});
  EXPECT_EQ(c.decode.beam_size, 12);
  EXPECT_EQ(c.model.attention, s2s::AttentionType::kBahdanau);
  EXPECT_FALSE(c.vocab.joint);
}

TEST(Config, LaterOverrideWins) {
  const auto c = parse("", {"train.lr=0.1", "train.seed=5", "train.lr=0.2"});
  EXPECT_DOUBLE_EQ(c.train.lr, 0.2);
  EXPECT_EQ(c.train.seed, 5);
}

TEST(Config, OverrideKeepsOtherFileValues) {
  const auto c = parse("train:\n  lr: 0.01\n  seed: 9\n", {"train.lr=0.02"});
  EXPECT_DOUBLE_EQ(c.train.lr, 0.02);
  EXPECT_EQ(c.train.seed, 9);
}

TEST(Config, OverrideValueMayContainEqualsAndSpaces) {
  const auto c = parse("", {"data.train_src=/x/a=b c.txt", "data.train_tgt=/x/t.txt"});
  EXPECT_EQ(c.data.train_src, "/x/a=b c.txt");
}

TEST(Config, OverrideUnknownKeyIsNamed) {
  const auto msg = parse_error("", {"train.lrr=0.1"});
  EXPECT_CONTAINS(msg, "--set");
  EXPECT_CONTAINS(msg, "train.lrr");
  EXPECT_CONTAINS(msg, "did you mean 'train.lr'");
  expect_one_line(msg);
}

TEST(Config, OverrideUnknownSectionIsNamed) {
  const auto msg = parse_error("", {"trian.lr=0.1"});
  EXPECT_CONTAINS(msg, "--set");
  EXPECT_CONTAINS(msg, "trian");
  EXPECT_CONTAINS(msg, "did you mean 'train'");
}

TEST(Config, OverrideWrongTypeIsNamed) {
  const auto msg = parse_error("", {"train.lr=abc"});
  EXPECT_CONTAINS(msg, "--set train.lr=abc");
  EXPECT_CONTAINS(msg, "train.lr");
  EXPECT_CONTAINS(msg, "a number");
  // A YAML list is taken as text, which is not a number either.
  EXPECT_CONTAINS(parse_error("", {"train.lr=[1, 2]"}), "train.lr");
}

TEST(Config, MalformedOverrides) {
  for (const std::string bad : {"train.lr", "lr=0.1", "=0.1", "trainlr0.1", "train=lr.x"}) {
    const auto msg = parse_error("", {bad});
    EXPECT_CONTAINS(msg, bad);
    EXPECT_CONTAINS(msg, "section.key=value");
  }
}

TEST(Config, OverrideOutOfRangeIsRejected) {
  const auto msg = parse_error("", {"decode.beam_size=0"});
  EXPECT_CONTAINS(msg, "decode.beam_size");
}

TEST(Config, EmptyOverrideValueForStringIsValidated) {
  // "train.device=" gives an empty device string, which validation rejects (no crash, no silent default).
  const auto msg = parse_error("", {"train.device="});
  EXPECT_CONTAINS(msg, "train.device");
}

TEST(Config, OverrideMakesFileValueValid) {
  // The file alone is invalid (beam 2 < n_best 3); the override fixes it: validation runs after overrides.
  const auto c = parse("decode:\n  beam_size: 2\n  n_best: 3\n", {"decode.beam_size=4"});
  EXPECT_EQ(c.decode.beam_size, 4);
  EXPECT_EQ(c.decode.n_best, 3);
}

// ---------------------------------------------------------------------------------------------------------
// Range and enumeration validation

TEST(Config, RangeChecksNameTheKey) {
  struct Case {
    std::string yaml, key;
  };
  const std::vector<Case> cases = {
      {"model:\n  emb_dim: -5\n", "model.emb_dim"},
      {"model:\n  emb_dim: 0\n", "model.emb_dim"},
      {"model:\n  dropout_emb: 1.5\n", "model.dropout_emb"},
      {"model:\n  dropout_hidden: 1.0\n", "model.dropout_hidden"},
      {"model:\n  dropout_attn: -0.1\n", "model.dropout_attn"},
      {"model:\n  enc_layers: 0\n", "model.enc_layers"},
      {"decode:\n  beam_size: 0\n", "decode.beam_size"},
      {"decode:\n  beam_size: 3\n  n_best: 4\n", "decode.n_best"},
      {"decode:\n  n_best: 0\n", "decode.n_best"},
      {"decode:\n  normalize: -1\n", "decode.normalize"},
      {"train:\n  lr: 0\n", "train.lr"},
      {"train:\n  lr: -0.001\n", "train.lr"},
      {"train:\n  batch_tokens: 0\n", "train.batch_tokens"},
      {"train:\n  batch_multiple: 0\n", "train.batch_multiple"},
      {"train:\n  label_smoothing: 1\n", "train.label_smoothing"},
      {"train:\n  ema_decay: 1\n", "train.ema_decay"},
      {"train:\n  adam_beta2: 1.0\n", "train.adam_beta2"},
      {"train:\n  threads: 0\n", "train.threads"},
      {"train:\n  lr_decay: 0\n", "train.lr_decay"},
      {"data:\n  max_length: 0\n", "data.max_length"},
      {"vocab:\n  size: 4\n", "vocab.size"},
      {"vocab:\n  character_coverage: 0\n", "vocab.character_coverage"},
      {"vocab:\n  character_coverage: 1.01\n", "vocab.character_coverage"},
  };
  for (const auto& c : cases) {
    const auto msg = parse_error(c.yaml);
    EXPECT_CONTAINS(msg, c.key);
    expect_one_line(msg);
  }
}

TEST(Config, RangeMessagesShowTheValue) {
  EXPECT_CONTAINS(parse_error("model:\n  emb_dim: -5\n"), "-5");
  EXPECT_CONTAINS(parse_error("model:\n  dropout_emb: 1.5\n"), "1.5");
  const auto msg = parse_error("decode:\n  beam_size: 3\n  n_best: 4\n");
  EXPECT_CONTAINS(msg, "beam_size");
  EXPECT_CONTAINS(msg, "4");
}

TEST(Config, BoundaryValuesAreAccepted) {
  EXPECT_NO_THROW(parse("model:\n  dropout_emb: 0\n  dropout_hidden: 0.999\n"));
  EXPECT_NO_THROW(parse("decode:\n  beam_size: 1\n  n_best: 1\n"));
  EXPECT_NO_THROW(parse("decode:\n  beam_size: 4\n  n_best: 4\n"));
  EXPECT_NO_THROW(parse("vocab:\n  size: 5\n  character_coverage: 1\n"));
  EXPECT_NO_THROW(parse("train:\n  lr_decay: 1\n  max_steps: 0\n  clip_norm: 0\n"));
}

TEST(Config, DeviceStrings) {
  for (const std::string ok : {"cpu", "cuda", "cuda:0", "cuda:12"}) {
    EXPECT_NO_THROW(parse("train:\n  device: " + ok + "\ndecode:\n  device: " + ok + "\n")) << ok;
  }
  for (const std::string bad : {"gpu", "CPU", "cuda:", "cuda:x", "cuda:-1", "cuda0", "mps"}) {
    auto msg = parse_error("train:\n  device: \"" + bad + "\"\n");
    EXPECT_CONTAINS(msg, "train.device");
    EXPECT_CONTAINS(msg, bad);
    msg = parse_error("decode:\n  device: \"" + bad + "\"\n");
    EXPECT_CONTAINS(msg, "decode.device");
  }
}

TEST(Config, PrecisionChoices) {
  EXPECT_NO_THROW(parse("train:\n  precision: bf16\ndecode:\n  precision: fp32\n"));
  auto msg = parse_error("train:\n  precision: fp16\n");
  EXPECT_CONTAINS(msg, "train.precision");
  EXPECT_CONTAINS(msg, "fp32");
  EXPECT_CONTAINS(msg, "bf16");
  EXPECT_CONTAINS(msg, "'fp16'");
  msg = parse_error("decode:\n  precision: half\n");
  EXPECT_CONTAINS(msg, "decode.precision");
  EXPECT_EQ(parse("train:\n  precision: auto\n").train.precision, s2s::Precision::kAuto);
  msg = parse_error("train:\n  precision: int8\n");  // a decoding precision
  EXPECT_CONTAINS(msg, "train.precision");
  EXPECT_CONTAINS(msg, "int8 is for decoding");
}

TEST(Config, EnumerationSuggestsClosestChoice) {
  auto msg = parse_error("model:\n  attention: luong-dott\n");
  EXPECT_CONTAINS(msg, "model.attention");
  EXPECT_CONTAINS(msg, "did you mean 'luong-dot'");
  msg = parse_error("model:\n  attention: bahdanu\n");
  EXPECT_CONTAINS(msg, "did you mean 'bahdanau'");
  msg = parse_error("train:\n  lr_schedule: platau\n");
  EXPECT_CONTAINS(msg, "train.lr_schedule");
  EXPECT_CONTAINS(msg, "did you mean 'plateau'");
  msg = parse_error("vocab:\n  model_type: bp\n");
  EXPECT_CONTAINS(msg, "vocab.model_type");
  EXPECT_CONTAINS(msg, "did you mean 'bpe'");
  msg = parse_error("data:\n  invalid_utf8: ignore\n");
  EXPECT_CONTAINS(msg, "data.invalid_utf8");
  msg = parse_error("train:\n  early_stop_metric: perplexity\n");
  EXPECT_CONTAINS(msg, "train.early_stop_metric");
}

TEST(Config, CrossFieldChecks) {
  auto msg = parse_error("model:\n  attention: luong-dot\n  enc_hidden: 100\n  dec_hidden: 300\n");
  EXPECT_CONTAINS(msg, "luong-dot");
  EXPECT_CONTAINS(msg, "dec_hidden");
  EXPECT_NO_THROW(parse("model:\n  attention: luong-dot\n  enc_hidden: 100\n  dec_hidden: 200\n"));

  msg = parse_error("vocab:\n  joint: false\nmodel:\n  share_embeddings: true\n");
  EXPECT_CONTAINS(msg, "model.share_embeddings");
  EXPECT_CONTAINS(msg, "vocab.joint");

  msg = parse_error("data:\n  valid_src: v.de\n");
  EXPECT_CONTAINS(msg, "valid_tgt");
  msg = parse_error("data:\n  valid_tgt: v.en\n");
  EXPECT_CONTAINS(msg, "valid_src");
}

TEST(Config, ValidateDirectly) {
  s2s::Config c;
  EXPECT_NO_THROW(s2s::validate(c));
  c.decode.n_best = 6;  // > beam_size 5
  EXPECT_CONTAINS(error_of([&] { s2s::validate(c); }), "decode.n_best");
  c = s2s::Config{};
  c.train.valid_batch_size = 0;
  EXPECT_CONTAINS(error_of([&] { s2s::validate(c); }), "train.valid_batch_size");
  c = s2s::Config{};
  c.decode.batch_size = 0;  // auto
  EXPECT_NO_THROW(s2s::validate(c));
  c.decode.batch_size = -1;
  EXPECT_CONTAINS(error_of([&] { s2s::validate(c); }), "decode.batch_size");
}

TEST(Config, DuplicateKeysAndSectionsAreErrors) {
  auto msg = parse_error("model:\n  emb_dim: 64\n  enc_hidden: 32\n  emb_dim: 128\n");
  EXPECT_CONTAINS(msg, "cfg.yaml:4: duplicate key 'model.emb_dim' (first at line 2)");
  msg = parse_error("model:\n  emb_dim: 64\ntrain:\n  lr: 0.1\nmodel:\n  dec_hidden: 8\n");
  EXPECT_CONTAINS(msg, "cfg.yaml:5: duplicate section 'model' (first at line 1)");
}

// ---------------------------------------------------------------------------------------------------------
// Relative paths

TEST(Config, FilePathsResolveAgainstTheConfigDirectory) {
  TempDir dir;
  stdfs::create_directories(dir.path() / "configs");
  const auto file = dir.path() / "configs" / "exp.yaml";
  write_bytes(file,
              "data:\n  train_src: ../data/train.de\n  train_tgt: data/train.en\n"
              "  valid_src: ./v.de\n  valid_tgt: /abs/v.en\n"
              "vocab:\n  joint: false\n  src_model: spm/src.model\n  tgt_model: ../spm/tgt.model\n");
  const auto c = s2s::load_config(file);
  EXPECT_EQ(c.data.train_src, (dir.path() / "data" / "train.de").string());
  EXPECT_EQ(c.data.train_tgt, (dir.path() / "configs" / "data" / "train.en").string());
  EXPECT_EQ(c.data.valid_src, (dir.path() / "configs" / "v.de").string());
  EXPECT_EQ(c.data.valid_tgt, "/abs/v.en");  // absolute paths are kept
  EXPECT_EQ(c.vocab.src_model, (dir.path() / "configs" / "spm" / "src.model").string());
  EXPECT_EQ(c.vocab.tgt_model, (dir.path() / "spm" / "tgt.model").string());
}

TEST(Config, RelativeConfigPathResolvesToo) {
  TempDir dir;
  const auto file = dir.path() / "rel.yaml";
  write_bytes(file, "data:\n  train_src: a.de\n  train_tgt: a.en\n");
  const auto relative = stdfs::relative(file, stdfs::current_path());
  ASSERT_TRUE(relative.is_relative());
  const auto c = s2s::load_config(relative);
  EXPECT_TRUE(stdfs::path(c.data.train_src).is_absolute()) << c.data.train_src;
  EXPECT_EQ(stdfs::weakly_canonical(c.data.train_src), stdfs::weakly_canonical(dir.path() / "a.de"));
}

TEST(Config, OverridePathsResolveAgainstTheWorkingDirectory) {
  TempDir dir;
  stdfs::create_directories(dir.path() / "configs");
  const auto file = dir.path() / "configs" / "exp.yaml";
  write_bytes(file, "data:\n  train_src: a.de\n  train_tgt: a.en\n");
  const auto c = s2s::load_config(file, {"data.train_src=corpus/x.de", "vocab.src_model=/abs/spm.model"});
  EXPECT_EQ(c.data.train_src, (stdfs::current_path() / "corpus" / "x.de").string());
  EXPECT_EQ(c.data.train_tgt, (dir.path() / "configs" / "a.en").string());  // still from the file
  EXPECT_EQ(c.vocab.src_model, "/abs/spm.model");
}

TEST(Config, ParseConfigResolvesAgainstBaseDir) {
  const auto c =
      s2s::parse_config("data:\n  train_src: x/../y.de\n  train_tgt: z.en\n", "t.yaml", "/some/base");
  EXPECT_EQ(c.data.train_src, "/some/base/y.de");
  EXPECT_EQ(c.data.train_tgt, "/some/base/z.en");
}

TEST(Config, ResolvedConfigRoundTripsUnchanged) {
  // A stored (already absolute) config must parse to the same paths from any base directory.
  const auto c = s2s::parse_config("data:\n  train_src: a.de\n  train_tgt: b.en\n", "t.yaml", "/one");
  const auto text = s2s::dump_config(c);
  const auto back = s2s::parse_config(text, "stored.yaml", "/two");
  EXPECT_EQ(s2s::dump_config(back), text);
}

// ---------------------------------------------------------------------------------------------------------
// closest_match

TEST(ClosestMatch, FindsNearKeys) {
  const std::vector<std::string> keys = {"emb_dim", "enc_layers", "enc_hidden", "dec_layers", "dec_hidden"};
  EXPECT_EQ(s2s::text::closest_match("emb_dm", keys), "emb_dim");
  EXPECT_EQ(s2s::text::closest_match("emb_dim", keys), "emb_dim");
  EXPECT_EQ(s2s::text::closest_match("enc_hiden", keys), "enc_hidden");
  EXPECT_EQ(s2s::text::closest_match("dec_layer", keys), "dec_layers");
  EXPECT_EQ(s2s::text::closest_match("Emb_Dim", keys), "emb_dim");  // two substitutions
}

TEST(ClosestMatch, NothingCloseGivesEmpty) {
  const std::vector<std::string> keys = {"emb_dim", "enc_layers"};
  EXPECT_EQ(s2s::text::closest_match("zzzzzzzz", keys), "");
  EXPECT_EQ(s2s::text::closest_match("xyz", {"abc"}), "");
  EXPECT_EQ(s2s::text::closest_match("anything", {}), "");
}

TEST(ClosestMatch, ThresholdGrowsWithLength) {
  // Short words allow 2 edits, longer words about a third of their length.
  EXPECT_EQ(s2s::text::closest_match("ab", {"abcd"}), "abcd");                            // 2 edits
  EXPECT_EQ(s2s::text::closest_match("ab", {"abcde"}), "");                               // 3 edits
  EXPECT_EQ(s2s::text::closest_match("valid_every_x", {"valid_every"}), "valid_every");   // 2 of 13
  EXPECT_EQ(s2s::text::closest_match("abcdefghijkl", {"abcdefghWXYZ"}), "abcdefghWXYZ");  // 4 of 12
  EXPECT_EQ(s2s::text::closest_match("abcdefghijkl", {"abcdefgVWXYZ"}), "");              // 5 of 12
}

TEST(ClosestMatch, PrefersTheNearest) {
  EXPECT_EQ(s2s::text::closest_match("lr_decay", {"lr", "lr_patience", "lr_decay_x", "lr_decy"}), "lr_decy");
  // Ties go to the first candidate: fp16 is two edits from both.
  EXPECT_EQ(s2s::text::closest_match("fp16", {"fp32", "bf16"}), "fp32");
  EXPECT_EQ(s2s::text::closest_match("fp16", {"bf16", "fp32"}), "bf16");
  EXPECT_EQ(s2s::text::closest_match("", {"a", "abcdef"}), "a");
}

}  // namespace
