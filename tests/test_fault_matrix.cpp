// The fault matrix (docs/FAULTS.md) as one parametrized table: each hostile case runs the real binary on a
// fresh copy of a small trained model dir and asserts the exit code, the one-line error that names the
// culprit, and that no file in the working directory changed (bytes compared before and after).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include "process.h"
#include "test_util.h"
#include "util/fs.h"

namespace {

namespace stdfs = std::filesystem;
const stdfs::path kSource = S2S_SOURCE_DIR;

// A case: `args` (with {m} = the model dir and {w} = the working dir) after `damage` prepared the dir.
struct Fault {
  std::string name;                                  // test name suffix
  std::function<void(const stdfs::path& w)> damage;  // prepares the hostile state (may be empty)
  std::vector<std::string> args;                     // the s2s command line
  int code;                                          // expected exit code
  std::string message;                               // expected in the one error line (code 1) or the log
};

void write(const stdfs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

void overwrite_middle(const stdfs::path& p, size_t n) {
  auto bytes = s2s::fs::read_file(p);
  for (size_t i = 0; i < n && bytes.size() / 2 + i < bytes.size(); ++i) bytes[bytes.size() / 2 + i] ^= 0x5a;
  write(p, bytes);
}

void truncate_half(const stdfs::path& p) {
  const auto bytes = s2s::fs::read_file(p);
  write(p, bytes.substr(0, bytes.size() / 2));
}

void append(const stdfs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::app) << text;
}

// Every regular file under `dir`, relative path -> bytes.
std::map<std::string, std::string> snapshot(const stdfs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : stdfs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) files[stdfs::relative(e.path(), dir).string()] = s2s::fs::read_file(e.path());
  }
  return files;
}

// A small trained model (2 steps), made once per s2s binary (ctest runs each case as its own process, a
// few at a time: the first makes it under a lock, the others reuse it); each case works on a copy.
stdfs::path pristine_model() {
  const auto stamp = stdfs::last_write_time(S2S_BINARY).time_since_epoch().count();
  const auto base = stdfs::temp_directory_path() / ("s2s-fault-model-" + std::to_string(stamp));
  stdfs::create_directories(base);
  const int lock = ::open((base / "lock").c_str(), O_RDWR | O_CREAT, 0644);
  ::flock(lock, LOCK_EX);
  if (!stdfs::exists(base / "m" / "last.pt")) {
    const std::vector<std::string> args{"-q",          "train",
                                        "-c",          (kSource / "configs/demo.yaml").string(),
                                        "--model-dir", (base / "m").string(),
                                        "--max-steps", "2",
                                        "--set",       "model.emb_dim=16",
                                        "--set",       "model.enc_hidden=16",
                                        "--set",       "model.dec_hidden=32",
                                        "--set",       "vocab.size=300",
                                        "--set",       "vocab.max_sentences=3000",
                                        "--set",       "train.valid_every=2",
                                        "--set",       "data.valid_max_sentences=5",
                                        "--set",       "train.batch_tokens=500"};
    auto child = s2s_test::spawn(args, (base / "train.err").string());
    s2s_test::read_all(child.stdout_fd);
    ::close(child.stdout_fd);
    const int status = s2s_test::wait_status(child.pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      ADD_FAILURE() << s2s::fs::read_file(base / "train.err");
  }
  ::close(lock);
  return base / "m";
}

class FaultMatrix : public ::testing::TestWithParam<Fault> {};

TEST_P(FaultMatrix, FailsCleanlyAndChangesNoFile) {
  const auto& f = GetParam();
  const auto w = s2s_test::unique_temp_dir("fault");
  const auto m = w / "model";
  stdfs::copy(pristine_model(), m, stdfs::copy_options::recursive);
  std::ofstream(w / "in.de") << "Ein Mann geht .\nHallo Welt .\n";
  std::ofstream(w / "ref.en") << "A man walks .\nHello world .\n";
  std::ofstream(w / "hyp.en") << "A man goes .\nHello world .\n";
  int lock_fd = -1;
  if (f.name == "SecondTrainerOnALockedDir") {  // hold the lock as a running trainer would
    lock_fd = ::open((m / "train.lock").c_str(), O_RDWR);
    ASSERT_EQ(::flock(lock_fd, LOCK_EX | LOCK_NB), 0);
  }
  if (f.damage) f.damage(w);
  const auto before = snapshot(w);
  std::vector<std::string> args;
  if (f.code != 0) args.push_back("-q");  // the error line alone: no progress lines
  for (auto a : f.args) {
    for (const auto& [key, value] : {std::pair{std::string("{m}"), m.string()}, {"{w}", w.string()}}) {
      for (auto at = a.find(key); at != std::string::npos; at = a.find(key)) a.replace(at, key.size(), value);
    }
    args.push_back(a);
  }
  const auto err_file = s2s_test::unique_temp_dir("fault_err") / "stderr.txt";
  auto child = s2s_test::spawn(args, err_file.string());
  s2s_test::read_all(child.stdout_fd);
  ::close(child.stdout_fd);
  const int status = s2s_test::wait_status(child.pid);
  if (lock_fd >= 0) ::close(lock_fd);
  const auto err = s2s::fs::read_file(err_file);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by a signal; stderr: " << err;
  EXPECT_EQ(WEXITSTATUS(status), f.code) << err;
  if (f.code == 1) {
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << "not one line:\n" << err;
    EXPECT_CONTAINS(err, "[error]");
  }
  EXPECT_CONTAINS(err, f.message);
  auto after = snapshot(w);
  for (const char* log :
       {"model/train.log", "model/train.lock"}) {  // a trainer's log of the attempt, its pid
    if (before.count(log)) after[log] = before.at(log);
  }
  for (const auto& [path, bytes] : before) {
    const auto it = after.find(path);
    EXPECT_TRUE(it != after.end() && it->second == bytes) << path << " changed or vanished";
  }
  for (const auto& [path, bytes] : after) EXPECT_TRUE(before.count(path)) << path << " was created";
  std::error_code ec;
  stdfs::remove_all(w, ec);
  stdfs::remove_all(err_file.parent_path(), ec);
}

const std::string kDemo = (kSource / "configs/demo.yaml").string();

std::function<void(const stdfs::path&)> in_model(std::function<void(const stdfs::path&)> fn) {
  return [fn](const stdfs::path& w) { fn(w / "model"); };
}

std::function<void(const stdfs::path&)> config_file(const std::string& yaml) {
  return [yaml](const stdfs::path& w) { write(w / "cfg.yaml", yaml); };
}

const std::string kData = "data:\n  train_src: " + (kSource / "data/train.de").string() +
                          "\n  train_tgt: " + (kSource / "data/train.en").string() + "\n";

const Fault kFaults[] = {
    // Output handling.
    {"OutputEqualToInput", {}, {"translate", "-m", "{m}", "-i", "{w}/in.de", "-o", "{w}/in.de"}, 1, "in.de"},
    {"OutputToAFullDevice",
     {},
     {"translate", "-m", "{m}", "-i", "{w}/in.de", "-o", "/dev/full"},
     1,
     "/dev/full"},
    {"OutputIntoAMissingDir",
     {},
     {"translate", "-m", "{m}", "-i", "{w}/in.de", "-o", "{w}/no/out.en"},
     1,
     "no/out.en"},
    {"OutputIsADirectory",
     {},
     {"translate", "-m", "{m}", "-i", "{w}/in.de", "-o", "{w}"},
     1,
     "is a directory"},
    // Integrity of model files.
    {"BestBinGarbageInside",
     in_model([](const stdfs::path& m) { overwrite_middle(m / "best.bin", 65536); }),
     {"translate", "-m", "{m}", "-i", "{w}/in.de"},
     1,
     "best.bin"},
    {"BestBinTruncated",
     in_model([](const stdfs::path& m) { truncate_half(m / "best.bin"); }),
     {"translate", "-m", "{m}", "-i", "{w}/in.de"},
     1,
     "best.bin"},
    {"BestBinEmpty",
     in_model([](const stdfs::path& m) { write(m / "best.bin", ""); }),
     {"translate", "-m", "{m}", "-i", "{w}/in.de"},
     1,
     "best.bin"},
    {"BestBinDamagedForTheTorchEngine",
     in_model([](const stdfs::path& m) { overwrite_middle(m / "best.bin", 64); }),
     {"translate", "-m", "{m}", "-i", "{w}/in.de", "--engine", "torch"},
     1,
     "best.bin"},
    {"LastPtFlippedBytes",
     in_model([](const stdfs::path& m) { overwrite_middle(m / "last.pt", 16); }),
     {"train", "--model-dir", "{m}", "--max-steps", "4"},
     1,
     "last.pt' is damaged"},
    {"LastPtTruncated",
     in_model([](const stdfs::path& m) { truncate_half(m / "last.pt"); }),
     {"train", "--model-dir", "{m}", "--max-steps", "4"},
     1,
     "last.pt' is truncated"},
    {"LastPtGarbage",
     in_model([](const stdfs::path& m) { write(m / "last.pt", std::string(4096, 'x')); }),
     {"train", "--model-dir", "{m}", "--max-steps", "4"},
     1,
     "last.pt"},
    {"ConfigEmpty",
     in_model([](const stdfs::path& m) { write(m / "config.yml", ""); }),
     {"translate", "-m", "{m}", "-i", "{w}/in.de"},
     1,
     "config.yml' is empty"},
    {"ConfigNotYaml",
     in_model([](const stdfs::path& m) { write(m / "config.yml", "model: [\n"); }),
     {"translate", "-m", "{m}", "-i", "{w}/in.de"},
     1,
     "config.yml"},
    {"SpmMissing",
     in_model([](const stdfs::path& m) { stdfs::remove(m / "spm.model"); }),
     {"translate", "-m", "{m}", "-i", "{w}/in.de"},
     1,
     "spm.model"},
    {"SpmGarbage",
     in_model([](const stdfs::path& m) { write(m / "spm.model", "not a model"); }),
     {"translate", "-m", "{m}", "-i", "{w}/in.de"},
     1,
     "spm.model"},
    {"ShortlistGarbage",
     in_model([](const stdfs::path& m) { write(m / "shortlist.txt", "\x01\x02garbage\n"); }),
     {"translate", "-m", "{m}", "-i", "{w}/in.de", "--shortlist"},
     1,
     "shortlist.txt"},
    // Locking and resume.
    {"SecondTrainerOnALockedDir",
     in_model([](const stdfs::path& m) { write(m / "train.lock", "4242\n"); }),
     {"train", "--model-dir", "{m}", "--max-steps", "4"},
     1,
     "in use by another process (pid 4242"},
    {"ResumeWithAnotherModelSize",
     {},
     {"train", "--model-dir", "{m}", "--set", "model.emb_dim=24"},
     1,
     "model.emb_dim"},
    {"RerunOfAFinishedRun", {}, {"train", "--model-dir", "{m}"}, 0, "already finished at step 2"},
    // Config.
    {"DuplicateYamlKey",
     config_file(kData + "train:\n  lr: 0.1\n  lr: 0.2\n"),
     {"train", "-c", "{w}/cfg.yaml", "--model-dir", "{w}/new"},
     1,
     "lr"},
    {"UnknownYamlKey",
     config_file(kData + "train:\n  learning_rate: 0.1\n"),
     {"train", "-c", "{w}/cfg.yaml", "--model-dir", "{w}/new"},
     1,
     "learning_rate"},
    {"WrongYamlType",
     config_file(kData + "train:\n  lr: fast\n"),
     {"train", "-c", "{w}/cfg.yaml", "--model-dir", "{w}/new"},
     1,
     "lr"},
    {"ValueOutOfRange",
     config_file(kData + "model:\n  emb_dim: 0\n"),
     {"train", "-c", "{w}/cfg.yaml", "--model-dir", "{w}/new"},
     1,
     "emb_dim"},
    {"TransformerHeadsNotDividingTheWidth",
     config_file(kData + "model:\n  type: transformer\n  emb_dim: 100\n  heads: 8\n"),
     {"train", "-c", "{w}/cfg.yaml", "--model-dir", "{w}/new"},
     1,
     "model.heads must divide model.emb_dim (100)"},
    {"UnknownModelType",
     config_file(kData + "model:\n  type: transfomer\n"),
     {"train", "-c", "{w}/cfg.yaml", "--model-dir", "{w}/new"},
     1,
     "did you mean 'transformer'"},
    {"AbsurdModelSize",
     config_file(kData + "model:\n  emb_dim: 1000000000\n"),
     {"train", "-c", "{w}/cfg.yaml", "--model-dir", "{w}/new"},
     1,
     "model.emb_dim"},
    {"MissingTrainingData",
     config_file("data:\n  train_src: nowhere.de\n  train_tgt: nowhere.en\n"),
     {"train", "-c", "{w}/cfg.yaml", "--model-dir", "{w}/new"},
     1,
     "nowhere"},
    {"OnlyEmptyLines",
     [](const stdfs::path& w) {
       write(w / "e.de", "\n\n\n"), write(w / "e.en", "\n\n\n");
       write(w / "cfg.yaml", "data:\n  train_src: e.de\n  train_tgt: e.en\n");
     },
     {"train", "-c", "{w}/cfg.yaml", "--model-dir", "{w}/new"},
     1,
     "e.de"},
    {"MalformedSet",
     {},
     {"train", "-c", kDemo, "--model-dir", "{w}/new", "--set", "train.lr"},
     1,
     "train.lr"},
    {"MissingConfigFile", {}, {"train", "-c", "{w}/none.yaml", "--model-dir", "{w}/new"}, 1, "none.yaml"},
    // Input and flags.
    {"InputMissing", {}, {"translate", "-m", "{m}", "-i", "{w}/none.de"}, 1, "none.de"},
    {"InputIsADirectory", {}, {"translate", "-m", "{m}", "-i", "{w}"}, 1, "is a directory"},
    {"ModelIsAFile", {}, {"translate", "-m", "{w}/in.de", "-i", "{w}/in.de"}, 1, "in.de"},
    {"ModelMissing", {}, {"translate", "-m", "{w}/none", "-i", "{w}/in.de"}, 1, "none"},
    {"HypShorterThanRef",
     [](const stdfs::path& w) { write(w / "hyp.en", "A man goes .\n"); },
     {"eval", "--hyp", "{w}/hyp.en", "--ref", "{w}/ref.en"},
     1,
     "hyp.en"},
    {"RefMissing", {}, {"eval", "--hyp", "{w}/hyp.en", "--ref", "{w}/none.en"}, 1, "none.en"},
    {"UnknownMetric",
     {},
     {"eval", "--hyp", "{w}/hyp.en", "--ref", "{w}/ref.en", "--metrics", "meteor"},
     1,
     "meteor"},
    {"ScorePairsOfDifferentLengths",
     [](const stdfs::path& w) { write(w / "one.en", "A man .\n"); },
     {"score", "-m", "{m}", "--src", "{w}/in.de", "--tgt", "{w}/one.en"},
     1,
     "one.en"},
    {"VocabOverAModelsSpm",
     {},
     {"vocab", "-i", "{w}/in.de", "-o", "{m}/spm", "--vocab-size", "50"},
     1,
     "--force"},
    {"BeamSizeZero", {}, {"translate", "-m", "{m}", "-i", "{w}/in.de", "--beam-size", "0"}, 1, "beam"},
    {"UnknownPrecision", {}, {"translate", "-m", "{m}", "-i", "{w}/in.de", "--precision", "fp8"}, 1, "fp8"},
    {"EnsembleWeightsCount",
     {},
     {"translate", "-m", "{m}", "-m", "{m}", "-i", "{w}/in.de", "--weights", "1,2,3"},
     1,
     "--weights"},
    {"ShortlistFileMissing",
     {},
     {"translate", "-m", "{m}", "-i", "{w}/in.de", "--shortlist", "{w}/none.txt"},
     1,
     "none.txt"},
    {"EvalModelWithNBest",
     {},
     {"eval", "-m", "{m}", "--src", "{w}/in.de", "--ref", "{w}/ref.en", "--n-best", "2"},
     1,
     "--n-best"},
    {"PlotMetricsNotJson",
     in_model([](const stdfs::path& m) { append(m / "metrics.jsonl", "{broken\n"); }),
     {"plot", "-m", "{m}", "-o", "{w}/curves.png"},
     1,
     "metrics.jsonl"},
    {"NprocWithRank", {}, {"train", "--model-dir", "{m}", "--nproc", "2", "--rank", "1"}, 1, "--nproc"},
    {"DistAddrWithoutPort",
     {},
     {"train", "--model-dir", "{m}", "--dist-addr", "localhost"},
     1,
     "--dist-addr"},
    {"AverageOfOneModelWithTooManyCheckpoints",
     {},
     {"average", "-m", "{m}", "--last", "4", "-o", "{w}/avg"},
     1,
     "checkpoints"},
};

INSTANTIATE_TEST_SUITE_P(Faults, FaultMatrix, ::testing::ValuesIn(kFaults),
                         [](const ::testing::TestParamInfo<Fault>& info) { return info.param.name; });

}  // namespace
