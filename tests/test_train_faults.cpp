// Training faults and re-runs: a finished run is a no-op, replayed steps leave metrics.jsonl once, a
// diverged loss stops before anything is saved, a model dir has one trainer at a time, resuming with changed
// settings warns (model changes are refused), a failed start does not block the corrected rerun, and an
// absurd model size is refused before anything is written.
#include <gtest/gtest.h>
#include <torch/optim/adam.h>

#include <nlohmann/json.hpp>

#include "config/model_dir.h"
#include "data/tokenizer.h"
#include "infer/weights_file.h"
#include "libtorch/model/rnn/seq2seq.h"
#include "libtorch/train/checkpoint.h"
#include "libtorch/train/trainer.h"
#include "nn_fixture.h"
#include "util/fs.h"

namespace {

namespace stdfs = std::filesystem;
using s2s_test::error_of;

s2s::Config small_config() {
  auto c = s2s_test::tiny_config();
  c.vocab.src_model = s2s_test::demo_tokenizer()->path().string();
  c.data.valid_max_sentences = 5;
  c.train.log_every = 2, c.train.valid_every = 4;
  return c;
}

s2s::TrainSummary train(const s2s::Config& c, const stdfs::path& dir) {
  s2s::TrainRunOptions run;
  run.model_dir = dir, run.quiet = true;
  return s2s::train(c, run);
}

std::vector<int64_t> metric_steps(const stdfs::path& dir, const char* field) {
  std::vector<int64_t> steps;
  for (const auto& line : s2s::fs::read_lines(dir / s2s::model_files::kMetrics)) {
    const auto row = nlohmann::json::parse(line);
    if (row.contains(field)) steps.push_back(row["step"].get<int64_t>());
  }
  return steps;
}

TEST(TrainFaults, RerunningAFinishedRunChangesNothing) {
  const auto dir = s2s_test::temp_dir("finished");
  auto c = small_config();
  c.train.max_steps = 6;
  EXPECT_EQ(train(c, dir).steps, 6);
  const auto last = s2s::fs::read_file(dir / "last.pt"), best = s2s::fs::read_file(dir / "best.bin");
  const auto metrics = s2s::fs::read_file(dir / "metrics.jsonl");
  const auto summary = train(c, dir);
  EXPECT_EQ(summary.steps, 6);
  EXPECT_EQ(summary.stop_signal, 0);
  EXPECT_EQ(s2s::fs::read_file(dir / "last.pt"), last);
  EXPECT_EQ(s2s::fs::read_file(dir / "best.bin"), best);
  EXPECT_EQ(s2s::fs::read_file(dir / "metrics.jsonl"), metrics);  // no second validation row
  EXPECT_CONTAINS(s2s::fs::read_file(dir / "train.log"), "already finished at step 6 (train.max_steps: 6)");
  c.train.max_steps = 8;  // raising the limit trains on
  EXPECT_EQ(train(c, dir).steps, 8);
}

TEST(TrainFaults, ResumeDropsMetricRowsAfterTheCheckpoint) {
  const auto dir = s2s_test::temp_dir("replay");
  auto c = small_config();
  c.train.max_steps = 4;
  train(c, dir);
  // What a kill -9 after step 6 leaves: rows of steps the checkpoint (step 4) does not have.
  std::ofstream(dir / "metrics.jsonl", std::ios::app) << "{\"step\":6,\"train_loss\":1.0}\n"
                                                      << "{\"step\":6,\"valid_ppl\":2.0}\n";
  c.train.max_steps = 8;
  train(c, dir);
  EXPECT_EQ(metric_steps(dir, "train_loss"), (std::vector<int64_t>{2, 4, 6, 8}));
  EXPECT_EQ(metric_steps(dir, "valid_ppl"), (std::vector<int64_t>{4, 8}));
  EXPECT_CONTAINS(s2s::fs::read_file(dir / "train.log"), "dropped 2 rows after step 4");
}

TEST(TrainFaults, NonFiniteLossStopsBeforeAnythingIsSaved) {
  const auto dir = s2s_test::temp_dir("nan");
  auto c = small_config();
  c.train.max_steps = 2;
  train(c, dir);
  {  // poison the checkpoint's weights, as a run gone wrong would
    auto model = s2s::build_model(c.model, s2s_test::vocabs_of(*s2s_test::demo_tokenizer()));
    torch::optim::Adam adam(s2s::unique_parameters(*model));
    s2s::TrainState state;
    s2s::load_checkpoint(dir / "last.pt", *model, adam, state);
    torch::NoGradGuard no_grad;
    model->out_bias.fill_(std::numeric_limits<float>::quiet_NaN());
    s2s::save_checkpoint(dir / "last.pt", *model, adam, state);
  }
  const auto last = s2s::fs::read_file(dir / "last.pt"), best = s2s::fs::read_file(dir / "best.bin");
  c.train.max_steps = 6;
  const auto msg = error_of([&] { train(c, dir); });
  EXPECT_CONTAINS(msg, "training diverged at step 3: the loss is nan");
  EXPECT_CONTAINS(msg, "last.pt");
  EXPECT_EQ(s2s::fs::read_file(dir / "last.pt"), last);
  EXPECT_EQ(s2s::fs::read_file(dir / "best.bin"), best);
}

TEST(TrainFaults, ASecondTrainerOfTheSameDirIsRefused) {
  const auto dir = s2s_test::temp_dir("locked");
  s2s::fs::FileLock holder(dir / s2s::model_files::kLock, "model dir");  // another trainer holds the dir
  auto c = small_config();
  c.train.max_steps = 2;
  const auto msg = error_of([&] { train(c, dir); });
  EXPECT_CONTAINS(msg, "is in use by another process (pid " + std::to_string(::getpid()) + ",");
  EXPECT_FALSE(stdfs::exists(dir / "config.yml"));  // nothing written
  EXPECT_FALSE(stdfs::exists(dir / "train.log"));
}

TEST(TrainFaults, ResumingWithChangedSettingsWarnsAndModelChangesAreRefused) {
  const auto dir = s2s_test::temp_dir("changed");
  auto c = small_config();
  c.train.max_steps = 2;
  train(c, dir);
  c.train.max_steps = 4, c.train.batch_tokens = 500;
  train(c, dir);
  const auto log = s2s::fs::read_file(dir / "train.log");
  EXPECT_CONTAINS(log, "resuming with a changed setting");
  EXPECT_CONTAINS(log, "train.batch_tokens: stored 600, now 500");
  EXPECT_EQ(log.find("train.max_steps: stored"), std::string::npos);  // limits change freely
  c.model.dec_hidden = 48;
  EXPECT_CONTAINS(error_of([&] { train(c, dir); }), "model.dec_hidden: stored 64, now 48");
}

TEST(TrainFaults, AFailedStartDoesNotBlockTheCorrectedRerun) {
  const auto dir = s2s_test::temp_dir("failed_start");
  auto c = small_config();
  c.vocab.src_model.clear(), c.vocab.size = 200;  // the first start trains its own vocabulary...
  // ...and fails after it, reading validation data whose sides differ in length.
  const auto valid = s2s_test::temp_dir("failed_start_valid");
  std::ofstream(valid / "v.de") << "a\nb\nc\n";
  std::ofstream(valid / "v.en") << "a\nb\n";
  c.data.valid_src = (valid / "v.de").string(), c.data.valid_tgt = (valid / "v.en").string();
  c.model.dec_hidden = 48;
  c.train.max_steps = 2;
  EXPECT_CONTAINS(error_of([&] { train(c, dir); }), "v.en");
  EXPECT_FALSE(stdfs::exists(dir / "last.pt"));
  ASSERT_TRUE(stdfs::exists(dir / "spm.model"));
  auto fixed = small_config();
  fixed.vocab.src_model.clear(), fixed.vocab.size = 300;
  fixed.train.max_steps = 2;
  EXPECT_EQ(train(fixed, dir).steps, 2);  // other model settings: no refusal without a checkpoint
  EXPECT_EQ(s2s::Tokenizer::load(dir / "spm.model")->vocab_size(), 300);  // not the failed start's 200
  EXPECT_CONTAINS(s2s::fs::read_file(dir / "train.log"), "was a failed start's");
}

TEST(TrainFaults, AbsurdModelSizeIsRefusedBeforeAnythingIsWritten) {
  const auto dir = s2s_test::temp_dir("absurd") / "model";
  auto c = small_config();
  c.model.emb_dim = 1000000000;
  const auto msg = error_of([&] { train(c, dir); });
  EXPECT_CONTAINS(msg, "model.emb_dim: 1000000000");
  EXPECT_CONTAINS(msg, "GB to train");
  EXPECT_FALSE(stdfs::exists(dir));
}

TEST(TrainFaults, ADamagedCheckpointIsRefusedAndNeverOverwritten) {
  const auto dir = s2s_test::temp_dir("damaged");
  auto c = small_config();
  c.train.max_steps = 2;
  train(c, dir);
  auto bytes = s2s::fs::read_file(dir / "last.pt");
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x5a);  // one flipped byte
  s2s::fs::write_file_atomic(dir / "last.pt", bytes);
  c.train.max_steps = 4;
  EXPECT_CONTAINS(error_of([&] { train(c, dir); }), "is damaged (checksum mismatch)");
  EXPECT_EQ(s2s::fs::read_file(dir / "last.pt"), bytes);
}

TEST(TrainFaults, ValidationShowsSamplesAndKeepsTheLastHypothesisFiles) {
  const auto dir = s2s_test::temp_dir("readable");
  auto c = small_config();
  c.train.max_steps = 7, c.train.valid_every = 1;
  s2s::TrainRunOptions run;
  run.model_dir = dir, run.command_line = "s2s train -c tiny.yaml";
  s2s::train(c, run);
  const auto log = s2s::fs::read_file(dir / "train.log");
  EXPECT_CONTAINS(log, "command: s2s train -c tiny.yaml");
  EXPECT_CONTAINS(log, "valid line 1: source: ");
  EXPECT_CONTAINS(log, " | hypothesis: ");
  std::vector<std::string> kept;
  for (const auto& entry : stdfs::directory_iterator(dir / "valid")) kept.push_back(entry.path().filename());
  std::sort(kept.begin(), kept.end());
  EXPECT_EQ(kept,
            (std::vector<std::string>{"step-3.hyp", "step-4.hyp", "step-5.hyp", "step-6.hyp", "step-7.hyp"}));
}

TEST(TrainFaults, KeptCheckpointsAverageIntoANewModelDir) {
  const auto dir = s2s_test::temp_dir("average");
  auto c = small_config();
  c.train.max_steps = 8, c.train.valid_every = 2, c.train.keep_checkpoints = 3;
  train(c, dir);
  std::vector<std::string> kept;
  for (const auto& entry : stdfs::directory_iterator(dir / "checkpoints"))
    kept.push_back(entry.path().filename());
  std::sort(kept.begin(), kept.end());
  EXPECT_EQ(kept, (std::vector<std::string>{"step-4.bin", "step-6.bin", "step-8.bin"}));

  const auto out = dir / "averaged";
  const auto cmd = std::string("'") + S2S_BINARY + "' -q average -m '" + dir.string() + "' --last 2 -o '" +
                   out.string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  for (const char* f : {"config.yml", "spm.model", "shortlist.txt", "best.bin"})
    EXPECT_TRUE(stdfs::exists(out / f)) << f;
  s2s::WeightsFileReader mean(out / "best.bin"), six(dir / "checkpoints" / "step-6.bin"),
      eight(dir / "checkpoints" / "step-8.bin");
  const auto e = mean.next();
  six.next(), eight.next();
  std::vector<float> m(static_cast<size_t>(e.numel())), a(m.size()), b(m.size());
  mean.read_float(m.data(), e.numel()), six.read_float(a.data(), e.numel()),
      eight.read_float(b.data(), e.numel());
  for (size_t k = 0; k < m.size(); k += 97)
    EXPECT_FLOAT_EQ(m[k], static_cast<float>((double(a[k]) + b[k]) / 2));
  const auto translate =
      std::string("echo 'Ein Hund.' | '") + S2S_BINARY + "' -q translate -m '" + out.string() + "'";
  EXPECT_EQ(std::system(translate.c_str()), 0);  // self-contained
  const auto too_many = std::string("'") + S2S_BINARY + "' -q average -m '" + dir.string() +
                        "' --last 5 -o '" + (dir / "x").string() + "' 2> /dev/null";
  EXPECT_NE(std::system(too_many.c_str()), 0);
  EXPECT_FALSE(stdfs::exists(dir / "x" / "best.bin"));
}

}  // namespace
