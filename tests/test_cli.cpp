// The s2s command line, run as a real process: help and version output, exit codes, and one-line error
// messages that name the file/line/key at fault.
//
// Every s2s start costs about 0.6 s of CPU (LibTorch's static initialisation, even for --help), so each test
// starts its independent invocations together (posix_spawn, a few at a time) and checks them afterwards.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "test_util.h"
#include "util/fs.h"

extern char** environ;

namespace {

namespace stdfs = std::filesystem;
using s2s_test::contains;
using s2s_test::error_of;
using s2s_test::write_bytes;

const stdfs::path kSource = S2S_SOURCE_DIR;
const std::string kDemo = (stdfs::path(S2S_SOURCE_DIR) / "configs" / "demo.yaml").string();
const stdfs::path kVectors = stdfs::path(S2S_SHARED_DIR) / "testdata" / "bleu";  // sacreBLEU test vectors
constexpr size_t kMaxParallel = 4;

using Args = std::vector<std::string>;

std::string read_bytes(const stdfs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

size_t count_lines(const std::string& s) {
  if (s.empty()) return 0;
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')) + (s.back() == '\n' ? 0 : 1);
}

std::string join(const Args& args) {
  std::string out = "s2s";
  for (const auto& a : args) out += " " + a;
  return out;
}

struct Result {
  std::string command;    // for failure messages
  int code = -1;          // exit status (when it exited normally)
  bool signaled = false;  // killed by a signal (a crash)
  std::string out, err;   // captured stdout and stderr
};

class Cli : public s2s_test::TempDirTest {
 protected:
  Cli() : TempDirTest("cli") {}

  // Runs `s2s <args>` for every entry (stdin from /dev/null, stdout and stderr captured), up to
  // kMaxParallel processes at a time; results in the same order.
  std::vector<Result> run_all(const std::vector<Args>& commands) {
    std::vector<Result> results(commands.size());
    for (size_t begin = 0; begin < commands.size(); begin += kMaxParallel) {
      const size_t end = std::min(commands.size(), begin + kMaxParallel);
      std::vector<pid_t> pids;
      for (size_t i = begin; i < end; ++i) pids.push_back(spawn(commands[i], i));
      for (size_t i = begin; i < end; ++i) {
        auto& r = results[i];
        r.command = join(commands[i]);
        const pid_t pid = pids[i - begin];
        if (pid <= 0) continue;  // spawn failed: reported by spawn()
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        r.signaled = WIFSIGNALED(status);
        if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
        r.out = read_bytes(out_path(i));
        r.err = read_bytes(err_path(i));
      }
    }
    ++round_;
    return results;
  }

  Result run(const Args& args) { return run_all({args}).front(); }

  // An error run: non-zero exit, no crash, exactly one line on stderr; returns that line.
  static std::string expect_one_line_error(const Result& r) {
    SCOPED_TRACE(r.command);
    EXPECT_FALSE(r.signaled) << "s2s died from a signal; stderr: " << r.err;
    EXPECT_GT(r.code, 0) << "stdout: " << r.out << "\nstderr: " << r.err;
    EXPECT_LT(r.code, 128) << "exit code looks like a signal";
    EXPECT_EQ(count_lines(r.err), 1u) << "stderr:\n" << r.err;
    EXPECT_CONTAINS(r.err, "[error]");
    return r.err;
  }

  // A usage error (CLI11): non-zero exit, no crash, something on stderr.
  static void expect_usage_error(const Result& r) {
    SCOPED_TRACE(r.command);
    EXPECT_FALSE(r.signaled);
    EXPECT_GT(r.code, 0);
    EXPECT_LT(r.code, 128);
    EXPECT_FALSE(r.err.empty());
  }

  static void expect_success(const Result& r) {
    SCOPED_TRACE(r.command);
    EXPECT_FALSE(r.signaled) << "s2s died from a signal; stderr: " << r.err;
    EXPECT_EQ(r.code, 0) << "stderr: " << r.err;
  }

  stdfs::path file(const std::string& name, const std::string& content) const {
    const auto p = dir_ / name;
    write_bytes(p, content);
    return p;
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  stdfs::path out_path(size_t i) const {
    return dir_ / (".out." + std::to_string(round_) + "." + std::to_string(i));
  }
  stdfs::path err_path(size_t i) const {
    return dir_ / (".err." + std::to_string(round_) + "." + std::to_string(i));
  }

  pid_t spawn(const Args& args, size_t i) const {
    const std::string binary = S2S_BINARY;
    const std::string out = out_path(i).string(), err = err_path(i).string();
    std::vector<std::string> argv_strings = {binary};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : argv_strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, stdin_path_.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      ADD_FAILURE() << "cannot start " << binary << ": " << std::strerror(rc);
      return -1;
    }
    return pid;
  }

  int round_ = 0;

 protected:
  std::string stdin_path_ = "/dev/null";  // what the next runs read on stdin
};

// ---------------------------------------------------------------------------------------------------------
// Help, version, usage errors

TEST_F(Cli, HelpAndVersion) {
  const auto r = run_all({{"--help"},
                          {"train", "--help"},
                          {"translate", "--help"},
                          {"eval", "--help"},
                          {"vocab", "--help"},
                          {"--version"}});
  for (const auto& x : r) expect_success(x);
  for (const char* word : {"train", "translate", "eval", "vocab", "--version"})
    EXPECT_CONTAINS(r[0].out, word);
  for (const char* opt : {"--config", "--model-dir", "--set", "--device", "--dump-config", "--max-steps",
                          "--threads", "--precision", "--seed"}) {
    EXPECT_CONTAINS(r[1].out, opt);
  }
  for (const char* opt : {"--model-dir", "--beam-size", "--n-best", "--set", "--device", "--input",
                          "--output", "--batch-size", "--normalize", "--scores", "--alignment"}) {
    EXPECT_CONTAINS(r[2].out, opt);
  }
  for (const char* opt : {"--hyp", "--ref", "--src", "--json", "--model-dir", "--beam-size", "--n-best",
                          "--set", "--device", "--lowercase", "--sentence-level"}) {
    EXPECT_CONTAINS(r[3].out, opt);
  }
  for (const char* opt : {"--input", "--model-prefix", "--vocab-size", "--model-type", "--max-sentences"}) {
    EXPECT_CONTAINS(r[4].out, opt);
  }
  EXPECT_CONTAINS(r[5].out, "s2s");
  EXPECT_CONTAINS(r[5].out, "LibTorch");
  EXPECT_EQ(count_lines(r[5].out), 1u) << r[5].out;
}

// CLI11's parse errors are user errors like any other: one line, exit code 1.
TEST_F(Cli, UsageErrors) {
  const auto r = run_all({{},              // no subcommand
                          {"frobnicate"},  // unknown subcommand
                          {"translate", "--model-dir", dir_.string(), "--no-such-option"},
                          {"train", "-c", kDemo},  // --model-dir is required
                          {"train", "-c", kDemo, "--model-dir", path("m"), "--threads", "two"},
                          {"eval", "--hyp", "h.txt", "--ref", "r.txt", "--beam-size", "4"},
                          {"train", "-c", kDemo, "--model-dir", path("m"), "--threads", "0"}});
  for (const auto& x : r) {
    expect_one_line_error(x);
    EXPECT_EQ(x.code, 1) << x.command;
  }
  EXPECT_CONTAINS(r[2].err, "--no-such-option");
  EXPECT_CONTAINS(r[3].err, "--model-dir");
  EXPECT_CONTAINS(r[4].err, "--threads");
  EXPECT_CONTAINS(r[6].err, "--threads 0");  // the flag as typed, not "--set train.threads=0"
  EXPECT_EQ(r[6].err.find("--set"), std::string::npos) << r[6].err;
  EXPECT_CONTAINS(r[5].err, "'--beam-size 4' applies only with --model");
}

// --help shows the defaults and the types of numeric flags; -q works after the subcommand.
TEST_F(Cli, HelpShowsDefaultsAndTypes) {
  const auto r =
      run_all({{"vocab", "--help"}, {"train", "--help"}, {"translate", "--help"}, {"eval", "--help"}});
  for (const auto& x : r) expect_success(x);
  EXPECT_CONTAINS(r[0].out, "8000");  // --vocab-size
  EXPECT_CONTAINS(r[0].out, "INT");
  EXPECT_CONTAINS(r[1].out, "INT");    // --threads, --seed, --max-steps
  EXPECT_CONTAINS(r[2].out, "FLOAT");  // --normalize
  EXPECT_CONTAINS(r[2].out, "[default: the model's decode.beam_size]");
  EXPECT_CONTAINS(r[3].out, "1000");  // --paired-bs-n
}

// ---------------------------------------------------------------------------------------------------------
// Config errors through `s2s train`: one stderr line naming the file, line and key

TEST_F(Cli, ConfigErrorsAreOneLine) {
  struct Case {
    std::string name;
    Args args;
    std::vector<std::string> expected;  // substrings of the error line
  };
  const auto model = path("model");
  const auto unknown_key = file("bad_key.yaml", "model:\n  emb_dim: 64\n  emb_dm: 32\n").string();
  const auto malformed = file("malformed.yaml", "data:\n  max_length: 10\nmodel:\n  emb_dim: [64\n").string();
  std::mt19937 rng(3);
  std::string bytes(4096, '\0');
  for (auto& ch : bytes) ch = static_cast<char>(rng() & 0xff);
  bytes[100] = '\0';
  const auto binary = file("binary.yaml", bytes).string();
  const auto wrong_type = file("bad_type.yaml", "train:\n  lr: abc\n").string();
  const std::vector<Case> cases = {
      {"missing config", {"train", "-c", path("missing.yaml"), "--model-dir", model}, {"missing.yaml"}},
      {"no config, fresh model dir", {"train", "--model-dir", model}, {"--config"}},
      {"unknown key",
       {"train", "-c", unknown_key, "--model-dir", model},
       {unknown_key + ":3", "model.emb_dm", "did you mean 'model.emb_dim'"}},
      {"wrong type", {"train", "-c", wrong_type, "--model-dir", model}, {wrong_type + ":2", "train.lr"}},
      {"malformed YAML",
       {"train", "-c", malformed, "--model-dir", model},
       {malformed + ":", "malformed YAML"}},
      {"binary file", {"train", "-c", binary, "--model-dir", model}, {binary}},
      {"unknown --set key",
       {"train", "-c", kDemo, "--model-dir", model, "--set", "train.lrr=0.1"},
       {"train.lrr", "did you mean 'train.lr'"}},
  };
  std::vector<Args> commands;
  for (const auto& c : cases) commands.push_back(c.args);
  const auto results = run_all(commands);
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    const auto err = expect_one_line_error(results[i]);
    for (const auto& s : cases[i].expected) EXPECT_CONTAINS(err, s);
  }
  EXPECT_FALSE(stdfs::exists(model)) << "a failed config check must not create the model dir";
}

// A YAML key that is itself a list must be reported like any other config error (file:line), not as
// yaml-cpp's bare "bad conversion".
TEST_F(Cli, NonScalarKeyNamesFileAndLine) {
  const auto cfg = file("list_key.yaml", "model:\n  emb_dim: 64\n  [a, b]: 1\n").string();
  const auto err = expect_one_line_error(run({"train", "-c", cfg, "--model-dir", path("m")}));
  EXPECT_CONTAINS(err, cfg + ":3");
}

// ---------------------------------------------------------------------------------------------------------
// --dump-config

TEST_F(Cli, DumpConfig) {
  const auto model = path("m");
  const auto r = run_all({{"train", "--dump-config", "-c", kDemo, "--model-dir", model, "--set",
                           "train.lr=0.123", "--set", "decode.beam_size=7"},
                          {"train", "--dump-config", "-c", kDemo, "--model-dir", model, "--threads", "3",
                           "--seed", "77", "--max-steps", "5", "--precision", "fp32"},
                          {"train", "--dump-config", "-c", kDemo, "--model-dir", model, "--threads", "3",
                           "--set", "train.lr=0.5"}});
  expect_success(r[0]);
  EXPECT_CONTAINS(r[0].out, "lr: 0.123\n");
  EXPECT_CONTAINS(r[0].out, "beam_size: 7\n");
  EXPECT_CONTAINS(r[0].out, "emb_dim: 128\n");  // from demo.yaml
  EXPECT_FALSE(stdfs::exists(model)) << "--dump-config must not create the model dir";
  // The dump is a complete, valid config with the overrides and absolute data paths.
  const auto parsed = s2s::parse_config(r[0].out, "dump", "/unused");
  EXPECT_DOUBLE_EQ(parsed.train.lr, 0.123);
  EXPECT_EQ(parsed.decode.beam_size, 7);
  EXPECT_EQ(parsed.model.emb_dim, 128);
  EXPECT_EQ(stdfs::path(parsed.data.train_src), (kSource / "data" / "train.de").lexically_normal());

  // Typed train flags map onto train.* keys.
  expect_success(r[1]);
  const auto flags = s2s::parse_config(r[1].out, "dump", "/unused");
  EXPECT_EQ(flags.train.threads, 3);
  EXPECT_EQ(flags.train.seed, 77);
  EXPECT_EQ(flags.train.max_steps, 5);
  EXPECT_EQ(flags.train.precision, s2s::Precision::kFp32);

  // --set next to typed flags keeps both.
  expect_success(r[2]);
  const auto both = s2s::parse_config(r[2].out, "dump", "/unused");
  EXPECT_EQ(both.train.threads, 3);
  EXPECT_DOUBLE_EQ(both.train.lr, 0.5);
}

TEST_F(Cli, DecodeFlagsAndSetCombine) {
  // --beam-size 1 must survive --set: n_best 2 is then out of range and names its key.
  const auto model = path("m");
  stdfs::create_directories(model);
  stdfs::copy_file(kDemo, stdfs::path(model) / "config.yml");
  const auto r = run_all({{"translate", "--model", model, "--beam-size", "1", "--set", "decode.n_best=2"},
                          {"translate", "--model", model, "--n-best", "3", "--beam-size", "2"}});
  EXPECT_CONTAINS(expect_one_line_error(r[0]), "decode.n_best");
  // The error names the flag as typed, not the override it maps onto.
  const auto typed = expect_one_line_error(r[1]);
  EXPECT_CONTAINS(typed, "--n-best 3");
  EXPECT_EQ(typed.find("--set"), std::string::npos) << typed;
}

// ---------------------------------------------------------------------------------------------------------
// translate / eval / vocab

TEST_F(Cli, TranslateMissingModelIsOneLine) {
  const auto r = run_all({{"translate", "--model", "/nonexistent"}, {"translate", "--model", dir_.string()}});
  EXPECT_CONTAINS(expect_one_line_error(r[0]), "/nonexistent");
  EXPECT_CONTAINS(expect_one_line_error(r[1]), dir_.string());  // a directory without config.yml
}

TEST_F(Cli, EvalScores) {
  const auto hyp = file("hyp.txt", "the cat sat on the mat\na dog barks loudly\n").string();
  const auto ref = file("ref.txt", "the cat sat on the mat\na dog barked loudly\n").string();
  const auto r = run_all({{"eval", "--hyp", hyp, "--ref", ref},
                          {"eval", "--hyp", ref, "--ref", ref},
                          {"eval", "--json", "--hyp", hyp, "--ref", ref},
                          {"eval", "--json", "--sentence-level", "--hyp", hyp, "--ref", ref}});
  for (const auto& x : r) expect_success(x);

  EXPECT_CONTAINS(r[0].out, "BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = ");
  EXPECT_CONTAINS(r[0].out, "chrF2|nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0 = ");
  EXPECT_CONTAINS(r[1].out, "version:2.6.0 = 100.0 100.0/100.0/100.0/100.0 (BP = 1.000");
  EXPECT_CONTAINS(r[1].out, "space:no|version:2.6.0 = 100.0\n");

  nlohmann::json j;
  ASSERT_NO_THROW(j = nlohmann::json::parse(r[2].out)) << r[2].out;
  ASSERT_TRUE(j.contains("bleu"));
  ASSERT_TRUE(j.contains("chrf"));
  ASSERT_TRUE(j["bleu"]["score"].is_number());
  EXPECT_GT(j["bleu"]["score"].get<double>(), 0.0);
  EXPECT_LT(j["bleu"]["score"].get<double>(), 100.0);
  ASSERT_TRUE(j["bleu"]["precisions"].is_array());
  ASSERT_EQ(j["bleu"]["precisions"].size(), 4u);
  EXPECT_DOUBLE_EQ(j["bleu"]["precisions"][0].get<double>(), 100.0 * 9 / 10);  // 9 of 10 unigrams match
  ASSERT_TRUE(j["bleu"]["signature"].is_string());
  EXPECT_CONTAINS(j["bleu"]["signature"].get<std::string>(), "tok:13a");
  ASSERT_TRUE(j["chrf"]["score"].is_number());
  EXPECT_GT(j["chrf"]["score"].get<double>(), 0.0);
  EXPECT_FALSE(j.contains("sentences"));

  nlohmann::json s;
  ASSERT_NO_THROW(s = nlohmann::json::parse(r[3].out)) << r[3].out;
  ASSERT_TRUE(s["sentences"].is_array());
  ASSERT_EQ(s["sentences"].size(), 2u);
  EXPECT_DOUBLE_EQ(s["sentences"][0]["bleu"].get<double>(), 100.0);
  EXPECT_LT(s["sentences"][1]["bleu"].get<double>(), 100.0);
  EXPECT_DOUBLE_EQ(s["bleu"]["score"].get<double>(), j["bleu"]["score"].get<double>());
}

// Where the kernel gives transparent huge pages on request only, s2s re-executes itself with glibc's malloc
// asking for them (read at start-up only); a user's own GLIBC_TUNABLES choice stands.
TEST_F(Cli, HeapAsksForHugePagesWhereTheKernelWaitsForMadvise) {
  const auto mode = read_bytes("/sys/kernel/mm/transparent_hugepage/enabled");
  if (mode.find("[madvise]") == std::string::npos) GTEST_SKIP() << "THP mode is not madvise: " << mode;
  if (const char* t = std::getenv("GLIBC_TUNABLES"); t && std::string(t).find("hugetlb") != std::string::npos)
    GTEST_SKIP() << "GLIBC_TUNABLES sets glibc.malloc.hugetlb already: " << t;
  const auto text = file("text.txt", "the cat sat on the mat\n").string();
  const auto r = run({"--log-level", "debug", "eval", "--hyp", text, "--ref", text});
  expect_success(r);
  EXPECT_CONTAINS(r.err, "glibc.malloc.hugetlb=1");
  EXPECT_CONTAINS(r.out, "= 100.0 100.0/100.0/100.0/100.0");
}

TEST_F(Cli, EvalErrors) {
  const auto three = file("three.txt", "one\ntwo\nthree\n").string();
  const auto two = file("two.txt", "one\ntwo\n").string();
  const auto missing = path("nohyp.txt");
  const auto r = run_all({{"eval", "--hyp", three, "--ref", two},
                          {"eval", "--hyp", missing, "--ref", two},
                          {"eval", "--ref", two}});
  const auto mismatch = expect_one_line_error(r[0]);
  EXPECT_CONTAINS(mismatch, "3");
  EXPECT_CONTAINS(mismatch, "2");
  EXPECT_CONTAINS(mismatch, "lines");
  EXPECT_CONTAINS(expect_one_line_error(r[1]), missing);
  EXPECT_CONTAINS(expect_one_line_error(r[2]), "--hyp");
}

TEST_F(Cli, Vocab) {
  const auto prefix = path("spm");
  const auto r = run_all({{"vocab", "-i", (kSource / "data" / "train.en").string(), "-o", prefix,
                           "--vocab-size", "300", "--max-sentences", "3000"},
                          {"vocab", "-i", path("none.txt"), "-o", path("other")}});
  expect_success(r[0]);
  EXPECT_TRUE(stdfs::exists(dir_ / "spm.model"));
  EXPECT_TRUE(stdfs::exists(dir_ / "spm.vocab"));
  EXPECT_GT(stdfs::file_size(dir_ / "spm.model"), 0u);
  EXPECT_EQ(count_lines(read_bytes(dir_ / "spm.vocab")), 300u);  // one piece per line
  EXPECT_TRUE(r[0].out.empty()) << "stdout carries data only: " << r[0].out;

  EXPECT_CONTAINS(expect_one_line_error(r[1]), path("none.txt"));
  EXPECT_FALSE(stdfs::exists(dir_ / "other.model"));

  // An existing model (a model dir's vocabulary) is replaced only with --force.
  const auto before = read_bytes(dir_ / "spm.model");
  const Args again = {
      "vocab",           "-i",  (kSource / "data" / "train.de").string(), "-o", prefix, "--vocab-size", "300",
      "--max-sentences", "3000"};
  EXPECT_CONTAINS(expect_one_line_error(run(again)), "pass --force to replace it");
  EXPECT_TRUE(read_bytes(dir_ / "spm.model") == before) << "spm.model was replaced";
  auto forced = again;
  forced.push_back("--force");
  expect_success(run(forced));
  EXPECT_TRUE(read_bytes(dir_ / "spm.model") != before);  // learnt from the other side's text
}

// Messages that used to be unclear name the real problem and the path.
TEST_F(Cli, ClearMessagesForCommonMistakes) {
  file("empty_lines.txt", "\n  \n\t\n\n");
  file("not_a_dir", "x");
  stdfs::create_directories(dir_ / "empty_config");
  file("empty_config/config.yml", "  \n");
  const auto r = run_all({{"vocab", "-i", path("empty_lines.txt"), "-o", path("v")},
                          {"translate", "-m", path("not_a_dir")},
                          {"translate", "-m", path("empty_config")},
                          {"translate", "-m", path("empty_config"), "-i", dir_.string()}});
  const auto empty = expect_one_line_error(r[0]);
  EXPECT_CONTAINS(empty,
                  "no text to learn a vocabulary from (only empty lines in '" + path("empty_lines.txt"));
  EXPECT_EQ(empty.find("trainer_interface"), std::string::npos) << "SentencePiece internals leak: " << empty;
  EXPECT_CONTAINS(expect_one_line_error(r[1]), "model directory '" + path("not_a_dir") + "' is a file");
  EXPECT_CONTAINS(expect_one_line_error(r[2]), "config.yml' is empty: the model directory is damaged");
  EXPECT_CONTAINS(expect_one_line_error(r[3]), "config.yml' is empty");
}

TEST_F(Cli, CudaOnCpuBuildFailsClearly) {
  const auto version = run({"--version"});
  if (contains(version.out, "CUDA available: yes")) GTEST_SKIP() << "CUDA is available here";
  const auto model = path("m");
  const auto err = expect_one_line_error(
      run({"train", "-c", kDemo, "--model-dir", model, "--device", "cuda", "--max-steps", "1"}));
  EXPECT_CONTAINS(err, "CUDA");
  EXPECT_CONTAINS(err, "cuda");
}

// bf16 training on a CPU without bf16 instructions (oneDNN capped at AVX2 stands in for one) is refused
// before the model dir exists; `auto`, the shipped configs' choice, trains in fp32 there.
TEST_F(Cli, Bf16TrainingNeedsABf16Cpu) {
  ::setenv("ONEDNN_MAX_CPU_ISA", "AVX2", 1);
  const auto refused = run(
      {"train", "-c", kDemo, "--model-dir", path("m"), "--set", "train.precision=bf16", "--max-steps", "1"});
  const auto automatic = run({"train", "-c", kDemo, "--model-dir", path("a"), "--max-steps", "1", "--set",
                              "train.valid_every=1000", "--set", "data.valid_max_sentences=20"});
  ::unsetenv("ONEDNN_MAX_CPU_ISA");
  const auto err = expect_one_line_error(refused);
  EXPECT_CONTAINS(err, "train.precision: bf16 needs a CPU with bf16 instructions");
  EXPECT_CONTAINS(err, "auto or fp32");
  EXPECT_FALSE(stdfs::exists(path("m")));
  expect_success(automatic);
  EXPECT_CONTAINS(automatic.err, "precision fp32 (auto)");
}

// ---------------------------------------------------------------------------------------------------------
// eval prints what the sacreBLEU 2.6.0 command line prints (its `-f text` output; expected values produced
// with sacreBLEU on the shared vectors, see tests/data/README.md).

std::string vector_file(const char* name) {
  return (kVectors / name).string();
}

TEST_F(Cli, EvalCorpusLinesEqualTheSacrebleuCommandLine) {
  if (!stdfs::exists(kVectors)) GTEST_SKIP() << "no sacreBLEU vectors at " << kVectors;
  const auto r = run_all({{"eval", "--hyp", vector_file("hyp.shuffle_words.en"), "--ref",
                           vector_file("ref.valid.en"), "--metrics", "ter,chrf,bleu"},
                          {"eval", "--hyp", vector_file("hyp.drop_every_3rd_word.en"), "--ref",
                           vector_file("ref.valid.en"), "--ref", vector_file("hyp.punct_detached.en"),
                           "--metrics", "bleu", "--metrics", "ter", "--score-only", "-w", "3"}});
  expect_success(r[0]);
  EXPECT_EQ(r[0].out,
            "        BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = 5.6 "
            "100.0/18.7/2.1/0.3 (BP = "
            "1.000 ratio = 1.000 hyp_len = 13289 ref_len = 13289)\n"
            "      chrF2|nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0 = 59.0\n"
            "TER|nrefs:1|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:2.6.0 = 59.9\n");
  expect_success(r[1]);
  EXPECT_EQ(r[1].out, "5.437\n29.126\n");  // two references, scores only, 3 decimals
}

TEST_F(Cli, EvalSentenceLevelEqualsTheSacrebleuCommandLine) {
  if (!stdfs::exists(kVectors)) GTEST_SKIP() << "no sacreBLEU vectors at " << kVectors;
  for (const char* name : {"shuffle_words", "char_swaps", "drop_every_3rd_word", "empty_10pct"}) {
    const auto hyp = vector_file((std::string("hyp.") + name + ".en").c_str());
    const auto r = run({"eval", "--hyp", hyp, "--ref", vector_file("ref.valid.en"), "--sentence-level",
                        "--score-only", "-w", "6"});
    expect_success(r);
    const auto expected = s2s::fs::read_lines(kSource / "tests" / "data" /
                                              ("sacrebleu_sentence_bleu." + std::string(name) + ".txt"));
    std::vector<std::string> lines;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    ASSERT_EQ(lines.size(), expected.size()) << name;
    size_t differ = 0;
    for (size_t i = 0; i < lines.size(); ++i) differ += lines[i] != expected[i];
    EXPECT_EQ(differ, 0u) << name << ": lines that differ from sacrebleu --sentence-level";
  }
  const auto chrf =
      run({"eval", "--hyp", vector_file("hyp.drop_every_3rd_word.en"), "--ref", vector_file("ref.valid.en"),
           "--sentence-level", "--metrics", "chrf", "--chrf-word-order", "2", "-w", "2"});
  expect_success(chrf);
  EXPECT_EQ(chrf.out.substr(0, chrf.out.find('\n', chrf.out.find('\n', chrf.out.find('\n') + 1) + 1) + 1),
            "chrF2++|nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0 = 52.28\n"
            "chrF2++|nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0 = 40.29\n"
            "chrF2++|nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0 = 48.56\n");
  const auto ter = run({"eval", "--hyp", vector_file("hyp.char_swaps.en"), "--ref",
                        vector_file("ref.valid.en"), "--sentence-level", "--metrics", "ter"});
  expect_success(ter);
  EXPECT_EQ(ter.out.substr(0, ter.out.find('\n', ter.out.find('\n', ter.out.find('\n') + 1) + 1) + 1),
            "TER|nrefs:1|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:2.6.0 = 10.0\n"
            "TER|nrefs:1|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:2.6.0 = 10.0\n"
            "TER|nrefs:1|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:2.6.0 = 33.3\n");
}

TEST_F(Cli, EvalReadsTheHypothesisFromStdin) {
  const auto ref = file("ref.txt", "a man walks a dog .\nthe cat sleeps .\n");
  const auto hyp = file("hyp.txt", "a man walks the dog .\nthe cat sleeps .\n");
  const auto from_file =
      run({"eval", "--hyp", hyp.string(), "--ref", ref.string(), "--metrics", "bleu,chrf,ter", "-w", "4"});
  stdin_path_ = hyp.string();
  const auto from_stdin =
      run({"eval", "--hyp", "-", "--ref", ref.string(), "--metrics", "bleu,chrf,ter", "-w", "4"});
  expect_success(from_file);
  expect_success(from_stdin);
  EXPECT_EQ(from_stdin.out, from_file.out);
  EXPECT_EQ(count_lines(from_stdin.out), 3u);
}

TEST_F(Cli, EvalPairedBootstrap) {
  const std::string lines =
      "a man walks a dog .\nthe cat sleeps .\ntwo kids play in the park .\nshe drinks coffee .\n";
  const auto ref = file("ref.txt", lines + "we go home .\n");
  const auto almost = file("almost.txt", lines + "we go home now .\n");  // one word more in one line
  const auto worse = file("worse.txt", "man dog .\ncat .\nkids park .\ncoffee .\nhome .\n");
  const auto r = run_all(
      {{"eval", "--hyp", ref.string(), "--hyp", worse.string(), "--hyp", almost.string(), "--ref",
        ref.string(), "--paired-bs", "--metrics", "bleu,ter"},
       {"eval", "--hyp", ref.string(), "--hyp", worse.string(), "--ref", ref.string()},
       {"eval", "--hyp", ref.string(), "--ref", ref.string(), "--paired-bs"},
       {"eval", "--hyp", ref.string(), "--ref", ref.string(), "--sentence-level", "--metrics", "bleu,ter"}});
  expect_success(r[0]);
  EXPECT_CONTAINS(r[0].out,
                  "Baseline: " + ref.string() + "\n  BLEU = 100.0 (100.0 ± 0.0)\n  TER = 0.0 (0.0 ± 0.0)\n");
  EXPECT_CONTAINS(r[0].out, "  BLEU = 0.0 (0.0 ± 0.0) (p = 0.0010)*\n");  // differs in every sample
  const auto at = r[0].out.find(almost.string());
  ASSERT_NE(at, std::string::npos);
  const auto almost_rows = r[0].out.substr(at, r[0].out.find(" - BLEU", at) - at);
  EXPECT_CONTAINS(almost_rows, "(p = 0.");
  EXPECT_EQ(almost_rows.find('*'), std::string::npos) << "one changed word is no significant difference:\n"
                                                      << almost_rows;
  EXPECT_CONTAINS(expect_one_line_error(r[1]), "several --hyp files need --paired-bs");
  EXPECT_CONTAINS(expect_one_line_error(r[2]), "--paired-bs needs a baseline and at least one more --hyp");
  EXPECT_CONTAINS(expect_one_line_error(r[3]), "--sentence-level scores one metric at a time");
}

}  // namespace
