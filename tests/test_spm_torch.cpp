// SentencePiece and LibTorch in one process. Debian's libsentencepiece brings protobuf-lite 3.14 and LibTorch
// brings protobuf 3.21; linked together they crash at start-up. The tokenizer loads SentencePiece through
// the dlmopen'd shim instead, which this test exercises next to real LibTorch work.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "data/tokenizer.h"
#include "data/vocab.h"

namespace {

namespace stdfs = std::filesystem;

TEST(SpmTorch, TokenizerAndLibTorchInOneProcess) {
  // LibTorch first: its static initialisers (and protobuf 3.21) are already live.
  torch::manual_seed(0);
  const auto a = torch::randn({4, 3});
  const auto b = torch::randn({3, 5});
  const auto c = torch::mm(a, b);
  ASSERT_EQ(c.sizes(), (std::vector<int64_t>{4, 5}));
  EXPECT_NEAR(c[1][2].item<float>(), (a[1] * b.select(1, 2)).sum().item<float>(), 1e-5);

  // Train and load a SentencePiece model in the same process.
  const stdfs::path dir = stdfs::temp_directory_path() / ("s2s_test_spm_torch_" + std::to_string(::getpid()));
  stdfs::remove_all(dir);
  stdfs::create_directories(dir);
  struct Cleanup {
    stdfs::path dir;
    ~Cleanup() {
      std::error_code ignored;
      stdfs::remove_all(dir, ignored);
    }
  } cleanup{dir};
  {
    const std::vector<std::string> words = {"ein",  "Mann",   "Frau", "läuft", "über",    "die",   "Straße",
                                            "Hund", "spielt", "im",   "Park",  "Mädchen", "grüne", "Bäume"};
    std::mt19937 rng(11);
    std::ofstream out(dir / "text.txt");
    for (int i = 0; i < 300; ++i) {
      for (int j = 0; j < 8; ++j) out << (j ? " " : "") << words[rng() % words.size()];
      out << ".\n";
    }
  }
  s2s::SpmTrainOptions options;
  options.inputs = {dir / "text.txt"};
  options.model_prefix = dir / "spm";
  options.vocab_size = 40;
  s2s::train_sentencepiece(options);
  const auto tok = s2s::Tokenizer::load(dir / "spm.model");
  ASSERT_EQ(tok->vocab_size(), 40);

  // SentencePiece (and its protobuf) must not be in the main link-map namespace.
  void* leaked = dlopen("libsentencepiece.so.0", RTLD_NOW | RTLD_NOLOAD);
  EXPECT_EQ(leaked, nullptr) << "libsentencepiece was loaded into the main namespace";
  if (leaked != nullptr) dlclose(leaked);

  // Encoded ids feed an embedding lookup.
  const std::string sentence = "ein Mädchen läuft über die Straße.";
  std::vector<int64_t> ids;
  for (int id : tok->encode(sentence)) ids.push_back(id);
  ASSERT_FALSE(ids.empty());
  torch::nn::Embedding embedding(
      torch::nn::EmbeddingOptions(tok->vocab_size(), 8).padding_idx(tok->pad_id()));
  const auto index = torch::tensor(ids, torch::kLong);
  const auto vectors = embedding(index);
  ASSERT_EQ(vectors.sizes(), (std::vector<int64_t>{static_cast<int64_t>(ids.size()), 8}));
  EXPECT_TRUE(torch::equal(vectors[0], embedding->weight[ids[0]]));
  EXPECT_TRUE(torch::equal(embedding(torch::tensor({int64_t{tok->pad_id()}})), torch::zeros({1, 8})));

  // And back: ids taken out of a tensor decode to the sentence.
  const auto from_tensor = index.to(torch::kInt).contiguous();
  std::vector<int> round_trip(from_tensor.data_ptr<int>(), from_tensor.data_ptr<int>() + from_tensor.numel());
  EXPECT_EQ(tok->decode(round_trip), sentence);

  // LibTorch keeps working after SentencePiece ran.
  const auto d = torch::mm(c, torch::eye(5));
  EXPECT_TRUE(torch::allclose(c, d));
}

}  // namespace
