// Checkpoints: model, Adam moments and training state round-trip exactly; damaged or foreign files give a
// one-line s2s::Error naming the file (never a crash); saving leaves no temporary files behind.
#include <gtest/gtest.h>
#include <torch/optim/adam.h>
#include <torch/serialize.h>
#include <xxhash.h>

#include <cstring>
#include <random>

#include "infer/weights_file.h"
#include "libtorch/train/checkpoint.h"
#include "nn_fixture.h"
#include "util/error.h"
#include "util/fs.h"

namespace {

namespace stdfs = std::filesystem;
using s2s_test::error_of;

s2s::Seq2Seq small_model(uint64_t seed) {
  torch::manual_seed(seed);
  s2s::ModelConfig m;
  m.emb_dim = 8, m.enc_hidden = 4, m.dec_hidden = 8, m.enc_layers = 1, m.dec_layers = 1,
  m.share_embeddings = true;
  m.dropout_emb = m.dropout_hidden = m.dropout_attn = 0;  // the compared steps must not draw random masks
  return s2s::build_rnn_model(m, {20, 20, 0, 2, 3, 1});
}

void one_step(s2s::Seq2Seq& model, torch::optim::Adam& adam) {
  adam.zero_grad();
  auto src = torch::tensor({4, 5, 6}, torch::kInt64).view({1, 3});
  auto out = model->forward(src, torch::tensor({3}, torch::kInt64),
                            torch::tensor({2, 7}, torch::kInt64).view({1, 2}));
  model->logits(out).sum().backward();
  adam.step();
}

TEST(Checkpoint, RoundTripsModelOptimizerAndState) {
  const auto dir = s2s_test::temp_dir("ckpt");
  auto a = small_model(1);
  torch::optim::Adam adam_a(s2s::unique_parameters(*a), torch::optim::AdamOptions(0.01));
  one_step(a, adam_a);
  s2s::TrainState state;
  state.step = 17, state.epoch = 2, state.batch_in_epoch = 5, state.lr_scale = 0.25, state.best_metric = 31.5;
  state.best_step = 12, state.window_loss = 1.0 / 3.0,
  state.rng_state = at::detail::getDefaultCPUGenerator().get_state();
  s2s::save_checkpoint(dir / "last.pt", *a, adam_a, state);
  for (const auto& e : stdfs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename(), "last.pt");  // no temp left

  auto b = small_model(2);
  torch::optim::Adam adam_b(s2s::unique_parameters(*b), torch::optim::AdamOptions(0.01));
  s2s::TrainState loaded;
  s2s::load_checkpoint(dir / "last.pt", *b, adam_b, loaded);
  EXPECT_EQ(loaded.step, 17);
  EXPECT_EQ(loaded.batch_in_epoch, 5);
  EXPECT_EQ(loaded.lr_scale, 0.25);
  EXPECT_EQ(loaded.window_loss, 1.0 / 3.0);  // doubles are stored exactly
  EXPECT_TRUE(torch::equal(loaded.rng_state, state.rng_state));
  // The same next step from both: identical parameters means identical Adam moments.
  one_step(a, adam_a);
  one_step(b, adam_b);
  const auto pa = a->named_parameters(), pb = b->named_parameters();
  for (const auto& kv : pa) EXPECT_TRUE(torch::equal(kv.value(), pb[kv.key()])) << kv.key();
}

TEST(Checkpoint, WeightsFileRoundTripsAndConvertsToBf16) {
  const auto dir = s2s_test::temp_dir("ckpt_weights");
  auto model = small_model(11);
  s2s::save_weights(dir / "w.bin", *model);
  auto exact = small_model(12);
  s2s::load_weights(dir / "w.bin", *exact);
  const auto want = model->named_parameters();
  for (const auto& kv : exact->named_parameters())
    EXPECT_TRUE(torch::equal(kv.value(), want[kv.key()])) << kv.key();
  // Converted while reading: the same bits as LibTorch's own float -> bf16 conversion.
  auto half = small_model(13);
  s2s::load_weights(dir / "w.bin", *half, torch::kBFloat16);
  for (const auto& kv : half->named_parameters()) {
    EXPECT_EQ(kv.value().scalar_type(), torch::kBFloat16) << kv.key();
    EXPECT_TRUE(torch::equal(kv.value(), want[kv.key()].to(torch::kBFloat16))) << kv.key();
  }
  // The shared embedding stays one tensor.
  EXPECT_TRUE(half->encoder->embedding->weight.is_same(half->decoder->embedding->weight));
  // Model dirs from before best.bin: a LibTorch archive with the weights still loads.
  torch::serialize::OutputArchive ar, model_ar;
  model->save(model_ar);
  ar.write("model", model_ar);
  ar.save_to((dir / "legacy.pt").string());
  auto legacy = small_model(14);
  s2s::load_weights(dir / "legacy.pt", *legacy, torch::kBFloat16);
  EXPECT_TRUE(torch::equal(legacy->out_weight, want["out_weight"].to(torch::kBFloat16)));
}

TEST(Checkpoint, WeightsFileWithARepeatedParameterIsRejected) {
  // Same count, but the first entry written twice in place of the second: a parameter would stay unread.
  const auto dir = s2s_test::temp_dir("ckpt_dup");
  auto model = small_model(1);
  const auto named = model->named_parameters();
  s2s::write_weights_file(dir / "dup.bin", named.size(), [&](uint64_t i, const s2s::WriteParameter& write) {
    const auto& kv = named[i == 1 ? 0 : i];
    const auto data = kv.value().detach().to(torch::kFloat).contiguous();
    write(kv.key(), data.sizes().vec(), data.data_ptr<float>());
  });
  auto target = small_model(2);
  const auto msg = error_of([&] { s2s::load_weights(dir / "dup.bin", *target); });
  EXPECT_NE(msg.find("appears twice"), std::string::npos) << msg;
}

TEST(Checkpoint, TruncatedWeightsFileIsAClearError) {
  const auto dir = s2s_test::temp_dir("ckpt_trunc");
  auto model = small_model(1);
  s2s::save_weights(dir / "w.bin", *model);
  const auto bytes = s2s::fs::read_file(dir / "w.bin");
  for (size_t keep : {size_t{12}, bytes.size() / 2, bytes.size() - 1}) {
    s2s::fs::write_file_atomic(dir / "cut.bin", bytes.substr(0, keep));
    auto target = small_model(2);
    const auto msg = error_of([&] { s2s::load_weights(dir / "cut.bin", *target); });
    EXPECT_NE(msg.find("cut.bin"), std::string::npos) << msg;
    EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  }
}

TEST(Checkpoint, DamagedOrForeignFilesAreClearErrors) {
  const auto dir = s2s_test::temp_dir("ckpt_bad");
  auto model = small_model(1);
  torch::optim::Adam adam(s2s::unique_parameters(*model));
  s2s::TrainState state;
  s2s::fs::write_file_atomic(dir / "garbage.pt", std::string("\x00\x01not a checkpoint", 18));
  auto msg = error_of([&] { s2s::load_checkpoint(dir / "garbage.pt", *model, adam, state); });
  EXPECT_NE(msg.find("garbage.pt"), std::string::npos) << msg;
  msg = error_of([&] { s2s::load_weights(dir / "missing.pt", *model); });
  EXPECT_NE(msg.find("missing.pt"), std::string::npos) << msg;
  s2s::save_weights(dir / "weights.pt", *model);
  msg = error_of([&] { s2s::load_checkpoint(dir / "weights.pt", *model, adam, state); });
  EXPECT_NE(msg.find("no training state"), std::string::npos) << msg;
  auto other = small_model(1);
  other = s2s::Seq2Seq(
      [] {
        s2s::ModelConfig m;
        m.emb_dim = 6, m.enc_hidden = 4, m.dec_hidden = 8, m.enc_layers = 1, m.dec_layers = 1;
        return m;
      }(),
      s2s::Vocabularies{20, 20, 0, 2, 3, 1});
  msg = error_of([&] { s2s::load_weights(dir / "weights.pt", *other); });
  EXPECT_NE(msg.find("does not match"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

// Every byte of a checkpoint or weights file is covered by a checksum: damage anywhere (here 64 KiB of
// garbage, or a single flipped byte) is a one-line error naming the file, never weights loaded silently.
std::string damaged(std::string bytes, size_t at, size_t length) {
  std::mt19937 rng(7);
  for (size_t i = at; i < std::min(bytes.size(), at + length); ++i)
    bytes[i] = static_cast<char>(bytes[i] ^ (1 + rng() % 255));
  return bytes;
}

TEST(Checkpoint, DamageAnywhereInACheckpointIsRefused) {
  const auto dir = s2s_test::temp_dir("ckpt_damage");
  auto model = small_model(1);
  torch::optim::Adam adam(s2s::unique_parameters(*model), torch::optim::AdamOptions(0.01));
  one_step(model, adam);
  s2s::TrainState state;
  state.step = 1;
  s2s::save_checkpoint(dir / "last.pt", *model, adam, state);
  const auto bytes = s2s::fs::read_file(dir / "last.pt");
  ASSERT_GT(bytes.size(), 2000u);
  for (size_t at : {size_t{30}, bytes.size() / 3, bytes.size() / 2, bytes.size() - 40}) {
    s2s::fs::write_file_atomic(dir / "bad.pt", damaged(bytes, at, 1));
    auto target = small_model(2);
    torch::optim::Adam adam_b(s2s::unique_parameters(*target));
    s2s::TrainState loaded;
    const auto msg = error_of([&] { s2s::load_checkpoint(dir / "bad.pt", *target, adam_b, loaded); });
    EXPECT_CONTAINS(msg, "checkpoint '" + (dir / "bad.pt").string() + "' is damaged (checksum mismatch)");
  }
  s2s::fs::write_file_atomic(dir / "cut.pt", bytes.substr(0, bytes.size() - 100));
  auto target = small_model(2);
  EXPECT_CONTAINS(error_of([&] { s2s::load_weights(dir / "cut.pt", *target); }), "is truncated");
}

TEST(Checkpoint, DamageAnywhereInAWeightsFileIsRefused) {
  const auto dir = s2s_test::temp_dir("weights_damage");
  torch::manual_seed(3);
  s2s::ModelConfig m;
  m.emb_dim = 64, m.enc_hidden = 64, m.dec_hidden = 128, m.enc_layers = 1, m.dec_layers = 1;
  auto model = s2s::build_model(m, {2000, 2000, 0, 2, 3, 1});
  s2s::save_weights(dir / "best.bin", *model);
  const auto bytes = s2s::fs::read_file(dir / "best.bin");
  ASSERT_GT(bytes.size(), 3u << 20);
  for (size_t at : {bytes.size() / 4, bytes.size() / 2, bytes.size() - 70000}) {
    s2s::fs::write_file_atomic(dir / "bad.bin", damaged(bytes, at, 64 << 10));  // 64 KiB of garbage
    for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
      auto target = s2s::build_model(m, {2000, 2000, 0, 2, 3, 1});
      const auto msg = error_of([&] { s2s::load_weights(dir / "bad.bin", *target, dtype); });
      EXPECT_CONTAINS(msg, "weights file '" + (dir / "bad.bin").string() + "' is damaged");
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
}

// A payload whose pickle makes LibTorch's unpickler throw std::runtime_error (not c10::Error), found by
// fuzz_checkpoint, sealed with a valid size and checksum: a one-line s2s::Error, not an escaped exception.
TEST(Checkpoint, UnpicklerErrorsBehindAValidChecksumAreClearErrors) {
  const auto input =
      s2s::fs::read_file(s2s_test::source_path("tests/data/fuzz/checkpoint-unpickler-runtime-error"));
  const auto payload = input.substr(1);  // the harness's mode byte
  std::string file("S2SCKPT1", 8);
  const uint64_t size = payload.size(), sum = XXH64(payload.data(), payload.size(), 0);
  file.append(reinterpret_cast<const char*>(&size), 8).append(reinterpret_cast<const char*>(&sum), 8);
  const auto path = s2s_test::temp_dir("ckpt_unpickler") / "last.pt";
  s2s::fs::write_file_atomic(path, file + payload);
  auto model = small_model(1);
  torch::optim::Adam adam(s2s::unique_parameters(*model));
  s2s::TrainState state;
  std::string msg;
  try {
    s2s::load_checkpoint(path, *model, adam, state);
  } catch (const s2s::Error& e) {
    msg = e.what();
  }
  EXPECT_CONTAINS(msg, "cannot read checkpoint '" + path.string() + "': not a valid s2s checkpoint");
}

}  // namespace
