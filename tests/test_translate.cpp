// Translator tests on a model dir with an untrained (seeded) tiny model: hostile input keeps one output
// line per input line in order, batching/length sorting never changes a translation, n-best format,
// and interactive use answers a line before EOF.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <regex>
#include <sstream>

#include "data/shortlist.h"
#include "infer/gemm.h"
#include "libtorch/decode/torch_engine.h"
#include "libtorch/train/checkpoint.h"
#include "nn_fixture.h"
#include "png_check.h"
#include "process.h"
#include "util/fs.h"

namespace {

namespace stdfs = std::filesystem;

class TranslateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { dir_ = s2s_test::seeded_model_dir("translate_model", 1); }

  static s2s::Translator make(const s2s::TranslateOptions& opt) {
    auto b = s2s::load_model_dir(dir_, torch::kCPU);
    return s2s::make_translator(b.model, b.src_tok, b.tgt_tok, b.device, opt);
  }

  static std::string run_stream(s2s::Translator& t, const std::string& input) {
    const auto file = dir_ / "input.txt";
    s2s::fs::write_file_atomic(file, input);
    const int fd = ::open(file.c_str(), O_RDONLY);
    std::ostringstream out;
    t.translate_stream(fd, out);
    ::close(fd);
    return out.str();
  }

  static std::vector<std::string> split_lines(const std::string& s) {
    std::vector<std::string> lines;
    std::istringstream in(s);
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
    return lines;
  }

  static inline stdfs::path dir_;
};

const std::string kHostile = std::string("Ein Hund läuft.\n") + "\n" + "   \t \n" + std::string(20000, 'x') +
                             "\n" + "Hallo \xff\xfe Welt \xc3\n" + std::string("Null\0Byte", 9) + "\n" +
                             "Guten Morgen.\r\n" + "Ende ohne Zeilenumbruch";

TEST_F(TranslateTest, HostileInputKeepsOneLinePerLine) {
  s2s::TranslateOptions opt;
  opt.search.beam_size = 2;
  opt.max_length = 50;
  auto translator = make(opt);
  const auto out = run_stream(translator, kHostile);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 8);
  const auto lines = split_lines(out);
  ASSERT_EQ(lines.size(), 8u);
  EXPECT_EQ(lines[1], "");  // empty in, empty out
  EXPECT_EQ(lines[2], "");  // whitespace only
}

TEST_F(TranslateTest, BinaryHandlesHostileInputWithExitZero) {
  const auto input = dir_ / "hostile.txt";
  s2s::fs::write_file_atomic(input, kHostile);
  auto child =
      s2s_test::spawn({"translate", "--model", dir_.string(), "-i", input.string(), "--max-length", "40"},
                      (dir_ / "stderr.txt").string());
  const auto out = s2s_test::read_all(child.stdout_fd);
  const int status = s2s_test::wait_status(child.pid);
  ::close(child.stdout_fd);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 8);
  const auto err = s2s::fs::read_file(dir_ / "stderr.txt");
  EXPECT_NE(err.find("input line 4"), std::string::npos) << err;  // cropped long line is named
  EXPECT_NE(err.find("input line 5"), std::string::npos) << err;  // invalid UTF-8 is named
}

// decode.batch_size 0: about 80 hypothesis rows per batch on a CPU, within [8, 64] sentences; 64 on a GPU.
TEST(AutoBatchSize, KeepsAboutEightyRowsOnACpu) {
  EXPECT_EQ(s2s::auto_batch_size(5, /*cpu=*/true), 16);
  EXPECT_EQ(s2s::auto_batch_size(4, /*cpu=*/true), 20);
  EXPECT_EQ(s2s::auto_batch_size(1, /*cpu=*/true), 64);
  EXPECT_EQ(s2s::auto_batch_size(12, /*cpu=*/true), 8);
  EXPECT_EQ(s2s::auto_batch_size(5, /*cpu=*/false), 64);
}

TEST_F(TranslateTest, LengthSortingRestoresInputOrder) {
  const std::vector<std::string> lines = {
      "Ein Mann.",       "Eine Frau geht mit ihrem Hund durch den Park.",       "",
      "Kinder spielen.", "Zwei Männer arbeiten an einem großen Haus am Fluss.", "Hallo."};
  s2s::TranslateOptions opt;
  opt.search.beam_size = 1;
  opt.batch_size = 2;
  auto batched = make(opt).translate(lines);
  auto translator = make(opt);
  ASSERT_EQ(batched.size(), lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(batched[i], translator.translate({lines[i]})[0]) << "line " << i;
  }
  EXPECT_EQ(batched[2], "");
}

TEST_F(TranslateTest, ConcurrentWorkersGiveTheSameTranslations) {
  const std::vector<std::string> lines = {
      "Ein Mann.", "Eine Frau geht mit ihrem Hund.", "", "Kinder spielen.", "Zwei Männer arbeiten.",
      "Hallo.",    "Ein Hund läuft durch den Park."};
  s2s::TranslateOptions opt;
  opt.search.beam_size = 3;
  opt.batch_size = 2;  // four batches shared by the workers
  auto serial = make(opt).translate(lines);
  opt.workers = 3, opt.threads_per_worker = 1;
  EXPECT_EQ(make(opt).translate(lines), serial);
}

TEST_F(TranslateTest, Bf16WeightsTranslateLikeFloat32) {
  std::vector<std::string> lines;
  for (const auto* s : {"Ein Mann.", "Eine Frau geht mit ihrem Hund.", "Kinder spielen im Park.",
                        "Zwei Männer arbeiten.", "Hallo.", "Ein Hund läuft.", "Das Haus ist groß.",
                        "Wir gehen nach Hause.", "Er liest ein Buch.", "Sie trinkt Kaffee."}) {
    lines.emplace_back(s);
  }
  s2s::TranslateOptions opt;
  opt.search.beam_size = 1;
  auto fp32 = make(opt).translate(lines);
  auto b = s2s::load_model_dir(dir_, torch::kCPU, torch::kBFloat16);
  EXPECT_EQ(b.model->out_weight.scalar_type(), torch::kBFloat16);
  auto bf16 =
      s2s::make_translator(b.model, b.src_tok, b.tgt_tok, b.device, opt, /*bf16=*/true).translate(lines);
  ASSERT_EQ(bf16.size(), lines.size());
  size_t same = 0;
  for (size_t i = 0; i < lines.size(); ++i) same += bf16[i] == fp32[i];
  EXPECT_GE(same, lines.size() / 2) << "bf16 weights changed most greedy translations";
}

TEST_F(TranslateTest, NBestUsesMosesFormatWithZeroBasedIds) {
  s2s::TranslateOptions opt;
  opt.search.beam_size = 4, opt.search.n_best = 3;
  auto translator = make(opt);
  const auto lines = split_lines(run_stream(translator, "Ein Mann.\nZwei Hunde.\n"));
  ASSERT_EQ(lines.size(), 6u);
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].rfind(std::to_string(i / 3) + " ||| ", 0), 0u) << lines[i];
    EXPECT_NE(lines[i].find(" ||| F0= "), std::string::npos) << lines[i];
  }
}

TEST_F(TranslateTest, InteractiveLineIsAnsweredBeforeEof) {
  auto child = s2s_test::spawn({"translate", "--model", dir_.string(), "--beam-size", "1"},
                               (dir_ / "stderr_i.txt").string(), /*pipe_stdin=*/true);
  const std::string line = "Ein Hund.\n";
  ASSERT_EQ(::write(child.stdin_fd, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  std::string answer;
  EXPECT_TRUE(s2s_test::read_line(child.stdout_fd, answer, 30000));  // stdin still open
  ::close(child.stdin_fd);
  s2s_test::read_all(child.stdout_fd);
  const int status = s2s_test::wait_status(child.pid);
  ::close(child.stdout_fd);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

// The command line picks the native CPU engine by default; LibTorch's engine gives the same output
// (n-best lines with scores included) on the hostile input, and --engine native refuses what it cannot run.
TEST_F(TranslateTest, NativeAndLibTorchEnginesPrintTheSame) {
  const auto input = dir_ / "engines.txt";
  s2s::fs::write_file_atomic(input, kHostile);
  auto run = [&](const std::string& engine, const std::string& model) {
    auto child = s2s_test::spawn(
        {"translate", "--model", model, "-i", input.string(), "--engine", engine, "--n-best", "2",
         "--beam-size", "3", "--max-length", "40", "--precision", "fp32", "--no-shortlist"},
        (dir_ / ("stderr_" + engine + ".txt")).string());
    auto out = s2s_test::read_all(child.stdout_fd);
    const int status = s2s_test::wait_status(child.pid);
    ::close(child.stdout_fd);
    return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, out);
  };
  const auto [native_rc, native] = run("native", dir_.string());
  const auto [torch_rc, torch_out] = run("torch", dir_.string());
  EXPECT_EQ(native_rc, 0);
  EXPECT_EQ(torch_rc, 0);
  EXPECT_EQ(std::count(native.begin(), native.end(), '\n'), 14);  // 6 lines x 2-best, 2 empty lines x 1
  // Same ids and hypotheses; scores equal up to float32 summation order.
  const auto a = split_lines(native), b = split_lines(torch_out);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const auto cut = a[i].find(" ||| F0= ");
    ASSERT_NE(cut, std::string::npos) << a[i];
    EXPECT_EQ(a[i].substr(0, cut), b[i].substr(0, cut)) << "line " << i;
    const double fa = std::stod(a[i].substr(cut + 9)), fb = std::stod(b[i].substr(cut + 9));
    EXPECT_NEAR(fa, fb, 1e-5 * std::abs(fb) + 1e-6) << "line " << i;
  }

  // Bahdanau models run natively too, with the same output as LibTorch's.
  const auto bahdanau = s2s_test::temp_dir("translate_bahdanau");
  auto c = s2s_test::tiny_config();
  c.model.attention = s2s::AttentionType::kBahdanau;
  s2s::fs::write_file_atomic(bahdanau / "config.yml", s2s::dump_config(c));
  s2s::fs::write_file_atomic(bahdanau / "spm.model", s2s::fs::read_file(dir_ / "spm.model"));
  torch::manual_seed(1);
  s2s::save_weights(bahdanau / s2s::model_files::kBest,
                    *s2s::build_model(c.model, s2s_test::vocabs_of(*s2s_test::demo_tokenizer())));
  const auto [b_native_rc, b_native] = run("native", bahdanau.string());
  const auto [b_torch_rc, b_torch] = run("torch", bahdanau.string());
  EXPECT_EQ(b_native_rc, 0);
  EXPECT_EQ(b_torch_rc, 0);
  const auto na = split_lines(b_native), nb = split_lines(b_torch);
  ASSERT_EQ(na.size(), nb.size());
  for (size_t i = 0; i < na.size(); ++i)
    EXPECT_EQ(na[i].substr(0, na[i].find(" ||| F0= ")), nb[i].substr(0, nb[i].find(" ||| F0= "))) << i;

  // --engine native where it cannot run (no best.bin) is a one-line error naming the reason.
  const auto no_weights = s2s_test::temp_dir("translate_no_weights");
  for (const char* f : {"config.yml", "spm.model"})
    s2s::fs::write_file_atomic(no_weights / f, s2s::fs::read_file(dir_ / f));
  const auto [refused_rc, refused] = run("native", no_weights.string());
  EXPECT_EQ(refused_rc, 1);
  const auto err = s2s::fs::read_file(dir_ / "stderr_native.txt");
  EXPECT_NE(err.find("cannot use the native CPU engine here (no best.bin)"), std::string::npos) << err;
}

// The default command is the explicit flags it stands for: --precision auto resolves to bf16 where the CPU
// has native bf16 GEMMs (else fp32), and the model dir's shortlist is used when it has one.
TEST_F(TranslateTest, DefaultsEqualTheExplicitFlagsTheyStandFor) {
  const auto with_shortlist = s2s_test::temp_dir("translate_defaults");
  for (const char* f : {"config.yml", "spm.model", "best.bin"}) {
    s2s::fs::write_file_atomic(with_shortlist / f, s2s::fs::read_file(dir_ / f));
  }
  const auto tok = s2s_test::demo_tokenizer();
  s2s::CorpusOptions copt;
  const auto corpus = s2s::load_parallel(s2s_test::source_path("data/train.de"),
                                         s2s_test::source_path("data/train.en"), *tok, *tok, copt);
  s2s::save_shortlist(with_shortlist / "shortlist.txt",
                      s2s::build_shortlist(corpus, tok->vocab_size(), tok->vocab_size(), {}));
  const auto input = dir_ / "defaults.txt";
  s2s::fs::write_file_atomic(input, "Ein Mann geht.\nZwei Kinder spielen im Park.\nHallo Welt.\n");
  auto run = [&](std::vector<std::string> flags) {
    std::vector<std::string> args{"translate", "--model",      with_shortlist.string(),
                                  "-i",        input.string(), "--scores"};
    args.insert(args.end(), flags.begin(), flags.end());
    auto child = s2s_test::spawn(args, (dir_ / "stderr_defaults.txt").string());
    auto out = s2s_test::read_all(child.stdout_fd);
    s2s_test::wait_status(child.pid);
    ::close(child.stdout_fd);
    return std::make_pair(out, s2s::fs::read_file(dir_ / "stderr_defaults.txt"));
  };
  const auto [defaults, log] = run({});
  const std::string precision = s2s::infer::int8_is_fast()   ? "int8"
                                : s2s::infer::bf16_is_fast() ? "bf16"
                                                             : "fp32";
  EXPECT_NE(log.find("precision auto: " + precision), std::string::npos) << log;
  EXPECT_EQ(defaults, run({"--precision", precision, "--shortlist"}).first);
  EXPECT_NE(defaults, run({"--precision", "fp32", "--no-shortlist"}).first);  // the exact search differs here
  EXPECT_EQ(run({"--no-shortlist", "--precision", precision}).first,
            run({"--set", "decode.shortlist=false", "--precision", precision}).first);
}

// A CPU without native bf16 (simulated by capping oneDNN at AVX2): auto picks fp32; an explicit bf16 is a
// one-line error, never a crash.
TEST_F(TranslateTest, CappedIsaFallsBackToFloat32OrSaysWhy) {
  const auto input = dir_ / "isa.txt";
  s2s::fs::write_file_atomic(input, "Ein Mann geht.\n");
  const auto err = dir_ / "stderr_isa.txt";
  const auto cmd = [&](const std::string& flags) {
    const auto line = "ONEDNN_MAX_CPU_ISA=AVX2 '" + std::string(S2S_BINARY) + "' translate --model '" +
                      dir_.string() + "' -i '" + input.string() + "' " + flags + " > /dev/null 2> '" +
                      err.string() + "'";
    const int status = std::system(line.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  EXPECT_EQ(cmd(""), 0);
  EXPECT_NE(s2s::fs::read_file(err).find("precision auto: fp32"), std::string::npos)
      << s2s::fs::read_file(err);
  // int8 without VNNI would saturate oneDNN's int16 partial sums: a one-line error, not degraded output.
  EXPECT_EQ(cmd("--precision int8"), 1);
  const auto int8 = s2s::fs::read_file(err);
  EXPECT_NE(int8.find("--precision int8 needs a CPU with VNNI"), std::string::npos) << int8;
  EXPECT_EQ(std::count(int8.begin(), int8.end(), '\n'), 1) << int8;
  if (!s2s::infer::bf16_is_fast())
    GTEST_SKIP() << "no AVX512-BF16 here: the capped case is the machine itself";
  EXPECT_EQ(cmd("--precision bf16"), 1);
  const auto msg = s2s::fs::read_file(err);
  EXPECT_NE(msg.find("use --precision fp32"), std::string::npos) << msg;
  EXPECT_EQ(std::count(msg.begin(), msg.end(), '\n'), 1) << msg;
}

// int8 translations through oneDNN's AMX kernels and, capped below AMX, its AVX512-VNNI ones are the same:
// the int32 sums are exact in both (test_gemm.cpp compares each with the plain GEMM, bit for bit).
TEST_F(TranslateTest, Int8TranslatesAlikeOnEveryKernel) {
  if (!s2s::infer::int8_is_fast()) GTEST_SKIP() << "this CPU has no VNNI for int8 GEMMs";
  const auto input = dir_ / "kernels.txt";
  s2s::fs::write_file_atomic(input, "Ein Mann geht.\nZwei Hunde spielen im Schnee.\nEine Frau liest.\n");
  const auto out = dir_ / "kernels_out.txt";
  const auto translate = [&](const std::string& env) {
    const auto line = env + " '" + std::string(S2S_BINARY) + "' -q translate --model '" + dir_.string() +
                      "' -i '" + input.string() + "' --precision int8 --beam-size 3 > '" + out.string() + "'";
    EXPECT_EQ(std::system(line.c_str()), 0) << line;
    return s2s::fs::read_file(out);
  };
  const auto amx = translate("ONEDNN_MAX_CPU_ISA=ALL");
  EXPECT_FALSE(amx.empty());
  EXPECT_EQ(translate("ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI"), amx);
}

}  // namespace

namespace {

struct Run {
  int code = -1;
  std::string out, err;
};

Run run_s2s(const std::vector<std::string>& args, const stdfs::path& err_file,
            const std::string& binary = S2S_BINARY) {
  auto child = s2s_test::spawn(args, err_file.string(), /*pipe_stdin=*/false, binary.c_str());
  Run r;
  r.out = s2s_test::read_all(child.stdout_fd);
  const int status = s2s_test::wait_status(child.pid);
  ::close(child.stdout_fd);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = s2s::fs::read_file(err_file);
  return r;
}

std::vector<double> numbers(const std::string& line) {
  std::vector<double> v;
  std::istringstream in(line);
  std::string word;
  while (in >> word) {
    if (word != "|||") v.push_back(std::stod(word));
  }
  return v;
}

}  // namespace

// s2s score: one line per pair whatever the input, the same scores from both engines, --normalize and
// --word-scores consistent with the total, and mismatched inputs refused in one line.
TEST_F(TranslateTest, ScoreKeepsOneLinePerPairOnBothEngines) {
  const auto src = dir_ / "score.de", tgt = dir_ / "score.en";
  s2s::fs::write_file_atomic(src, kHostile);
  s2s::fs::write_file_atomic(tgt, "A dog runs.\n\nSome text.\nxxx\nHello world.\nNull byte.\n\nThe end.\n");
  auto score = [&](const std::string& engine, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"score", "-m",           dir_.string(), "--src", src.string(),
                                  "--tgt", tgt.string(),   "--engine",    engine,  "--precision",
                                  "fp32",  "--max-length", "40"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_s2s(args, dir_ / ("stderr_score_" + engine + ".txt"));
  };
  const auto native = score("native", {"--word-scores"}), torch_run = score("torch", {"--word-scores"});
  ASSERT_EQ(native.code, 0) << native.err;
  ASSERT_EQ(torch_run.code, 0) << torch_run.err;
  const auto a = split_lines(native.out), b = split_lines(torch_run.out);
  ASSERT_EQ(a.size(), 8u);
  ASSERT_EQ(b.size(), 8u);
  EXPECT_EQ(a[1], "nan");  // an empty source has nothing to condition on
  EXPECT_NE(native.err.find("source line 2 is empty"), std::string::npos) << native.err;
  const auto normalized = split_lines(score("native", {"--normalize"}).out);
  for (size_t i = 0; i < a.size(); ++i) {
    if (i == 1 || i == 2) continue;  // empty and blank sources
    const auto na = numbers(a[i]), nb = numbers(b[i]);
    ASSERT_EQ(na.size(), nb.size()) << a[i];
    ASSERT_GE(na.size(), 2u) << a[i];  // total, then one score per token (EOS included)
    double sum = 0;
    for (size_t k = 1; k < na.size(); ++k) sum += na[k];
    EXPECT_NEAR(na[0], sum, 1e-4) << "line " << i;
    EXPECT_LT(na[0], 0) << "line " << i;
    for (size_t k = 0; k < na.size(); ++k) EXPECT_NEAR(na[k], nb[k], 1e-4) << "line " << i;
    EXPECT_NEAR(std::stod(normalized[i]), na[0] / static_cast<double>(na.size() - 1), 1e-5) << "line " << i;
  }
  s2s::fs::write_file_atomic(tgt, "only one line\n");
  const auto mismatch = score("native");
  EXPECT_EQ(mismatch.code, 1);
  EXPECT_NE(mismatch.err.find("has 8 lines but --tgt '" + tgt.string() + "' has 1"), std::string::npos)
      << mismatch.err;
}

// -m twice is an ensemble; members must share the vocabularies. -q works after the subcommand too, and
// --shortlist FILE takes the user's own shortlist.
TEST_F(TranslateTest, EnsembleShortlistFileAndQuietAfterTheSubcommand) {
  const auto input = dir_ / "ensemble.txt";
  s2s::fs::write_file_atomic(input, "Ein Mann geht.\nZwei Kinder spielen im Park.\n");
  const std::vector<std::string> base{"translate", "-i", input.string(), "--precision", "fp32", "-b", "3"};
  auto translate = [&](std::vector<std::string> extra) {
    auto args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return run_s2s(args, dir_ / "stderr_ensemble.txt");
  };
  const auto single = translate({"-m", dir_.string()});
  const auto twice = translate({"-m", dir_.string(), "-m", dir_.string(), "--weights", "0.3,0.7", "-q"});
  ASSERT_EQ(single.code, 0) << single.err;
  ASSERT_EQ(twice.code, 0) << twice.err;
  EXPECT_EQ(twice.out, single.out);
  EXPECT_EQ(twice.err, "") << "-q after the subcommand";

  const auto other = s2s_test::temp_dir("translate_other_vocab");
  for (const char* f : {"config.yml", "best.bin"})
    s2s::fs::write_file_atomic(other / f, s2s::fs::read_file(dir_ / f));
  auto spm = s2s::fs::read_file(dir_ / "spm.model");
  spm.back() = static_cast<char>(spm.back() ^ 1);  // another vocabulary, as far as an ensemble can tell
  s2s::fs::write_file_atomic(other / "spm.model", spm);
  const auto refused = translate({"-m", dir_.string(), "-m", other.string()});
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("ensemble members must share the vocabularies"), std::string::npos)
      << refused.err;
  const auto weights = translate({"-m", dir_.string(), "-m", dir_.string(), "--weights", "1"});
  EXPECT_EQ(weights.code, 1);
  EXPECT_NE(weights.err.find("--weights has 1 values for 2 models"), std::string::npos) << weights.err;

  const auto tok = s2s_test::demo_tokenizer();
  const auto corpus = s2s::load_parallel(s2s_test::source_path("data/train.de"),
                                         s2s_test::source_path("data/train.en"), *tok, *tok, {});
  const auto shortlist = dir_ / "my_shortlist.txt";
  s2s::save_shortlist(shortlist, s2s::build_shortlist(corpus, tok->vocab_size(), tok->vocab_size(), {}));
  const auto with_shortlist = s2s_test::temp_dir("translate_own_shortlist");
  for (const char* f : {"config.yml", "best.bin", "spm.model"})
    s2s::fs::write_file_atomic(with_shortlist / f, s2s::fs::read_file(dir_ / f));
  s2s::fs::write_file_atomic(with_shortlist / "shortlist.txt", s2s::fs::read_file(shortlist));
  const auto own = translate({"-m", dir_.string(), "--shortlist", shortlist.string()});
  ASSERT_EQ(own.code, 0) << own.err;
  EXPECT_EQ(own.out, translate({"-m", with_shortlist.string(), "--shortlist"}).out);
  const auto missing = translate({"-m", dir_.string(), "--shortlist", (dir_ / "nope.txt").string()});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("nope.txt' does not exist"), std::string::npos) << missing.err;
}

// n-best with alignments follows Marian's field order; --no-spm-decode prints the pieces the alignment
// indexes (one i-j pair per target piece, source index within the source).
TEST_F(TranslateTest, NBestAlignmentFieldsFollowMarian) {
  s2s::TranslateOptions opt;
  opt.search.beam_size = 3, opt.search.n_best = 2, opt.search.keep_attention = true;
  opt.alignment = s2s::Alignment::kHard, opt.spm_decode = false;
  auto translator = make(opt);
  const std::string source = "Ein Mann geht mit seinem Hund.";
  const auto source_len = s2s_test::demo_tokenizer()->encode(source).size();
  const auto lines = split_lines(run_stream(translator, source + "\n"));
  ASSERT_EQ(lines.size(), 2u);
  const std::regex pair(R"((\d+)-(\d+))");
  for (const auto& line : lines) {
    std::vector<std::string> fields;
    for (size_t at = 0;;) {
      const auto next = line.find(" ||| ", at);
      fields.push_back(line.substr(at, next == std::string::npos ? std::string::npos : next - at));
      if (next == std::string::npos) break;
      at = next + 5;
    }
    ASSERT_EQ(fields.size(), 5u) << line;  // id, pieces, alignment, F0= score, normalized score
    EXPECT_EQ(fields[0], "0");
    EXPECT_EQ(fields[3].rfind("F0= ", 0), 0u) << line;
    std::istringstream pieces(fields[1]);
    size_t n_pieces = 0;
    for (std::string p; pieces >> p;) ++n_pieces;
    size_t n_pairs = 0;
    for (std::sregex_iterator it(fields[2].begin(), fields[2].end(), pair), end; it != end; ++it, ++n_pairs) {
      EXPECT_LT(std::stoul((*it)[1]), source_len) << line;
      EXPECT_EQ(std::stoul((*it)[2]), n_pairs) << line;
    }
    EXPECT_EQ(n_pairs, n_pieces) << line;
  }
}

// The s2s executable alone, without libs2s_torch.so and libs2s_tools.so next to it: native translation needs
// neither, and `plot` fails with one line naming the missing part.
TEST_F(TranslateTest, TheExecutableAloneTranslatesNativelyAndNamesAMissingPlugin) {
  const auto alone = s2s_test::temp_dir("s2s_alone") / "s2s";
  stdfs::copy_file(S2S_BINARY, alone, stdfs::copy_options::overwrite_existing);
  const auto input = dir_ / "alone_input.de";
  s2s::fs::write_file_atomic(input, "Ein Mann geht mit seinem Hund.\nZwei Hunde.\n");
  const auto ok = run_s2s({"translate", "-m", dir_.string(), "-i", input.string(), "--engine", "native"},
                          dir_ / "stderr_alone.txt", alone.string());
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(split_lines(ok.out).size(), 2u) << ok.out;
  const auto plot = run_s2s({"plot", "-m", dir_.string(), "-o", (dir_ / "alone.png").string()},
                            dir_ / "stderr_alone_plot.txt", alone.string());
  EXPECT_EQ(plot.code, 1);
  EXPECT_NE(plot.err.find("cannot load the serve and plot part of s2s"), std::string::npos) << plot.err;
  EXPECT_EQ(split_lines(plot.err).size(), 1u) << plot.err;
  EXPECT_FALSE(stdfs::exists(dir_ / "alone.png"));
}

// s2s plot --attention translates the sentence and writes a PNG of the asked size; the curves of a model dir
// without metrics.jsonl are a one-line error naming the file.
TEST_F(TranslateTest, PlotAttentionAndCurvesFromTheCommandLine) {
  const auto png = dir_ / "attention.png";
  const auto ok = run_s2s({"plot", "-m", dir_.string(), "--attention", "Ein Mann geht mit seinem Hund.", "-o",
                           png.string(), "--width", "500", "--height", "400"},
                          dir_ / "stderr_plot.txt");
  ASSERT_EQ(ok.code, 0) << ok.err;
  const auto info = s2s_test::decode_png(s2s::fs::read_file(png));
  EXPECT_TRUE(info.ok) << info.why;
  EXPECT_EQ(info.width, 500u);
  EXPECT_EQ(info.height, 400u);
  const auto curves =
      run_s2s({"plot", "-m", dir_.string(), "-o", (dir_ / "curves.png").string()}, dir_ / "stderr_plot.txt");
  EXPECT_EQ(curves.code, 1);
  EXPECT_NE(curves.err.find((dir_ / "metrics.jsonl").string()), std::string::npos) << curves.err;
  EXPECT_FALSE(stdfs::exists(dir_ / "curves.png"));
}
