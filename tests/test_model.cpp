// Model tests: padding never changes a sentence's encoding, attention masks padding, the decoder's
// step() matches teacher forcing, and beam-grouped attention equals expanded attention.
#include <gtest/gtest.h>

#include "libtorch/data/batch.h"
#include "libtorch/model/rnn/seq2seq.h"
#include "nn_fixture.h"

namespace {

s2s::Seq2Seq tiny_model(const std::string& attention, int layers = 2) {
  torch::manual_seed(7);
  s2s::ModelConfig m;
  m.emb_dim = 16, m.enc_hidden = 12, m.dec_hidden = 24, m.enc_layers = layers, m.dec_layers = layers;
  m.attention = s2s::parse_enum<s2s::AttentionType>(attention, "attention"), m.tie_output = false,
  m.enc_residual = true;
  m.dropout_emb = m.dropout_hidden = m.dropout_attn = 0;
  auto model = s2s::build_rnn_model(m, {50, 40, 0, 2, 3});
  model->eval();
  return model;
}

TEST(Model, EncodingIgnoresPadding) {
  auto model = tiny_model("luong-general");
  torch::NoGradGuard no_grad;
  s2s::SpecialIds ids;
  auto alone = s2s::make_source_batch({{5, 6, 7}}, ids);
  auto padded = s2s::make_source_batch({{9, 10, 11, 12, 13, 14}, {5, 6, 7}}, ids);
  auto a = model->encoder(alone.src, alone.src_lengths);
  auto b = model->encoder(padded.src, padded.src_lengths);
  EXPECT_TRUE(torch::allclose(a.memory[0], b.memory[1].narrow(0, 0, 3), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(a.final[0], b.final[1], 1e-5, 1e-6));
  EXPECT_EQ(b.memory[1].narrow(0, 3, 3).abs().sum().item<float>(), 0.0f);  // padded rows are zero
  EXPECT_TRUE(b.mask[1].narrow(0, 0, 3).all().item<bool>());
  EXPECT_FALSE(b.mask[1].narrow(0, 3, 3).any().item<bool>());
}

class AttentionMask : public ::testing::TestWithParam<std::string> {};

TEST_P(AttentionMask, PaddedPositionsGetZeroWeight) {
  torch::manual_seed(3);
  s2s::Attention attn(s2s::parse_enum<s2s::AttentionType>(GetParam(), "attention"), 8, 8);
  auto memory = torch::randn({2, 5, 8});
  auto mask = torch::tensor({1, 1, 1, 1, 1, 1, 1, 0, 0, 0}, torch::kBool).view({2, 5});
  auto keys = attn->precompute(memory, mask);
  auto [context, weights] = attn(torch::randn({2, 8}), keys);
  EXPECT_EQ(weights[1].narrow(0, 2, 3).abs().sum().item<float>(), 0.0f);
  EXPECT_NEAR(weights[1].sum().item<float>(), 1.0f, 1e-5);
  EXPECT_NEAR(weights[0].sum().item<float>(), 1.0f, 1e-5);
  auto expected = (weights[1].unsqueeze(1) * memory[1]).sum(0);
  EXPECT_TRUE(torch::allclose(context[1], expected, 1e-5, 1e-6));
}

TEST_P(AttentionMask, GroupedQueriesMatchExpandedMemory) {
  torch::manual_seed(4);
  s2s::Attention attn(s2s::parse_enum<s2s::AttentionType>(GetParam(), "attention"), 8, 8);
  auto memory = torch::randn({2, 4, 8});
  auto mask = torch::tensor({1, 1, 1, 1, 1, 1, 0, 0}, torch::kBool).view({2, 4});
  auto query = torch::randn({6, 8});  // 3 hypotheses per sentence
  auto grouped = attn(query, attn->precompute(memory, mask));
  auto rows = torch::tensor({0, 0, 0, 1, 1, 1}, torch::kInt64);
  auto expanded = attn(query, attn->precompute(memory.index_select(0, rows), mask.index_select(0, rows)));
  EXPECT_TRUE(torch::allclose(grouped.first, expanded.first, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(grouped.second, expanded.second, 1e-5, 1e-6));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, AttentionMask,
                         ::testing::Values("bahdanau", "luong-dot", "luong-general"));

class DecoderSteps : public ::testing::TestWithParam<std::string> {};

TEST_P(DecoderSteps, StepMatchesTeacherForcing) {
  auto model = tiny_model(GetParam());
  torch::NoGradGuard no_grad;
  auto batch = s2s::make_source_batch({{5, 6, 7, 8}, {9, 10}}, {});
  auto tgt_in = torch::tensor({2, 11, 12, 13, 2, 14, 15, 0}, torch::kInt64).view({2, 4});
  auto state = model->start(batch.src, batch.src_lengths);
  auto forced = model->decoder(tgt_in, state);  // [2, 4, out]
  auto stepped_state = model->start(batch.src, batch.src_lengths);
  for (int64_t t = 0; t < 4; ++t) {
    auto out = model->decoder->step(tgt_in.select(1, t), stepped_state);
    EXPECT_TRUE(torch::allclose(out, forced.select(1, t), 1e-5, 1e-6)) << "step " << t;
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, DecoderSteps, ::testing::Values("bahdanau", "luong-general"));

TEST(Model, TiedOutputSharesTheEmbedding) {
  s2s::ModelConfig m;
  m.emb_dim = 16, m.enc_hidden = 8, m.dec_hidden = 16, m.enc_layers = 1, m.dec_layers = 1;
  m.tie_output = true, m.share_embeddings = true;
  auto model = s2s::build_rnn_model(m, {30, 30, 0, 2, 3});
  EXPECT_EQ(model->out_weight.data_ptr(), model->decoder->embedding->weight.data_ptr());
  EXPECT_EQ(model->encoder->embedding->weight.data_ptr(), model->decoder->embedding->weight.data_ptr());
  EXPECT_EQ(model->logits(torch::zeros({3, 16})).sizes(), (std::vector<int64_t>{3, 30}));
  EXPECT_EQ(model->decoder->embedding->weight[0].abs().sum().item<float>(), 0.0f);  // pad row
  const auto all = model->parameters(), unique = s2s::unique_parameters(*model);
  EXPECT_EQ(all.size(), unique.size() + 1);  // the shared embedding is listed once
}

TEST(Model, BatchTensorsWrapTargetsWithBosAndEos) {
  s2s::TokenStore src, tgt;
  s2s::ParallelCorpus corpus;
  corpus.src.add({5, 6, 7});
  corpus.tgt.add({8});
  corpus.src.add({9});
  corpus.tgt.add({10, 11});
  auto b = s2s::make_batch(corpus, {0, 1}, {0, 2, 3});
  EXPECT_TRUE(torch::equal(b.src, torch::tensor({5, 6, 7, 9, 0, 0}, torch::kInt64).view({2, 3})));
  EXPECT_TRUE(torch::equal(b.tgt_in, torch::tensor({2, 8, 0, 2, 10, 11}, torch::kInt64).view({2, 3})));
  EXPECT_TRUE(torch::equal(b.tgt_out, torch::tensor({8, 3, 0, 10, 11, 3}, torch::kInt64).view({2, 3})));
  EXPECT_TRUE(torch::equal(b.src_lengths, torch::tensor({3, 1}, torch::kInt64)));
  EXPECT_EQ(b.tgt_tokens, 5);
}

}  // namespace
