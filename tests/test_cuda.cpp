// CUDA: the model's loss on the GPU equals the CPU's, training runs and resumes on the GPU, and a 1-rank
// NCCL group sums on the GPU. Skipped where LibTorch has no CUDA (Debian's build); scripts/gpu_check.sh runs
// them on a GPU machine.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include "libtorch/data/batch.h"
#include "libtorch/train/checkpoint.h"
#include "libtorch/train/distributed.h"
#include "libtorch/train/loss.h"
#include "libtorch/train/trainer.h"
#include "nn_fixture.h"

namespace {

#define SKIP_WITHOUT_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA in this LibTorch or machine"

TEST(Cuda, LossOnTheGpuEqualsTheCpu) {
  SKIP_WITHOUT_CUDA();
  for (const auto type : {s2s::ModelType::kRnn, s2s::ModelType::kTransformer}) {
    SCOPED_TRACE(s2s::to_string(type));
    torch::manual_seed(7);
    auto config = s2s_test::tiny_config().model;
    config.type = type, config.heads = 4;
    auto model = s2s::build_model(config, s2s_test::vocabs_of(*s2s_test::demo_tokenizer()));
    model->eval();  // no dropout: the same function on both devices
    torch::NoGradGuard no_grad;
    auto batch = s2s::make_source_batch({{5, 6, 7, 8}, {9, 10}}, {});
    auto tgt_in = torch::tensor({2, 11, 12, 2, 14, 0}, torch::kInt64).view({2, 3});
    auto tgt_out = torch::tensor({11, 12, 3, 14, 3, 0}, torch::kInt64).view({2, 3});
    const auto cpu =
        s2s::sequence_loss(*model, model->forward(batch.src, batch.src_lengths, tgt_in), tgt_out, 0.1);
    model->to(torch::kCUDA);
    const auto gpu =
        s2s::sequence_loss(*model, model->forward(batch.src.cuda(), batch.src_lengths.cuda(), tgt_in.cuda()),
                           tgt_out.cuda(), 0.1);
    EXPECT_NEAR(gpu.loss.item<double>(), cpu.loss.item<double>(), 1e-3 * std::abs(cpu.loss.item<double>()));
    EXPECT_NEAR(gpu.nll, cpu.nll, 1e-3 * std::abs(cpu.nll));
  }
}

TEST(Cuda, TrainsAndResumesOnTheGpu) {
  SKIP_WITHOUT_CUDA();
  auto c = s2s_test::tiny_config();
  c.vocab.src_model = s2s_test::demo_tokenizer()->path().string();
  c.train.device = s2s::Device{s2s::Device::Kind::kCuda, -1};
  c.train.max_steps = 4, c.train.valid_every = 4, c.data.valid_max_sentences = 5;
  const auto dir = s2s_test::temp_dir("cuda_train");
  s2s::TrainRunOptions run;
  run.model_dir = dir, run.quiet = true;
  EXPECT_EQ(s2s::train(c, run).steps, 4);
  c.train.max_steps = 6;
  EXPECT_EQ(s2s::train(c, run).steps, 6);
  EXPECT_TRUE(std::filesystem::exists(dir / "best.bin"));
}

TEST(Cuda, OneRankNcclGroupSumsOnTheGpu) {
  SKIP_WITHOUT_CUDA();
  s2s::dist::DistOptions o;
  o.enabled = true, o.port = 29591, o.timeout = std::chrono::seconds(30);
  auto group = s2s::dist::Group::connect(o, torch::Device(torch::kCUDA, 0));
  EXPECT_EQ(group->sum({1.5, 2.0}, "test"), (std::vector<double>{1.5, 2.0}));
  std::vector<torch::Tensor> grads{torch::ones({3}, torch::kCUDA)};
  group->all_reduce(grads, "test");
  EXPECT_EQ(grads[0].sum().item<double>(), 3.0);
  EXPECT_EQ(group->broadcast_bytes("abc", "test"), "abc");
  // Host tensors go through the GPU (NCCL takes device tensors only), as the trainer's validation outcome.
  std::vector<torch::Tensor> host{torch::tensor({0.5, 2.0}, torch::kDouble)};
  group->broadcast(host, "test");
  EXPECT_TRUE(host[0].is_cpu());
  EXPECT_EQ(host[0][1].item<double>(), 2.0);
  group->all_reduce(host, "test");
  EXPECT_EQ(host[0][0].item<double>(), 0.5);
}

}  // namespace
