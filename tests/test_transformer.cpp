// The Transformer family: causal decoding, padding invariance, incremental decoding against the full
// forward pass, the config's shape checks and an end-to-end training on the shipped data (exact resume:
// Train.ResumeIsBitExact; native == LibTorch: NativeEngineTest/transformer*).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "libtorch/data/batch.h"
#include "libtorch/decode/search.h"
#include "libtorch/decode/torch_engine.h"
#include "libtorch/model/transformer/transformer.h"
#include "libtorch/train/trainer.h"
#include "metrics/bleu.h"
#include "nn_fixture.h"

namespace {

namespace stdfs = std::filesystem;

s2s::ModelConfig tiny_transformer() {
  s2s::ModelConfig m;
  m.type = s2s::ModelType::kTransformer;
  m.emb_dim = 16, m.heads = 4, m.ffn_dim = 24, m.enc_layers = 2, m.dec_layers = 2;
  m.dropout_emb = m.dropout_hidden = m.attention_dropout = m.ffn_dropout = 0;
  return m;
}

s2s::NmtModel tiny_model(s2s::Activation activation = s2s::Activation::kRelu, bool tied = false) {
  torch::manual_seed(11);
  auto m = tiny_transformer();
  m.ffn_activation = activation, m.tie_output = tied, m.share_embeddings = tied;
  auto model = s2s::build_model(m, {50, 50, 0, 2, 3});
  model->eval();
  return model;
}

torch::Tensor tokens(std::vector<int64_t> ids, int64_t rows) {
  return torch::tensor(ids, torch::kInt64).view({rows, -1});
}

TEST(Transformer, LaterTargetTokensNeverChangeEarlierPositions) {
  auto model = tiny_model();
  torch::NoGradGuard no_grad;
  auto src = s2s::make_source_batch({{5, 6, 7, 8}}, {});
  auto a = model->forward(src.src, src.src_lengths, tokens({2, 11, 12, 13, 14}, 1));
  auto b = model->forward(src.src, src.src_lengths, tokens({2, 11, 12, 40, 41}, 1));
  EXPECT_TRUE(torch::allclose(a.narrow(1, 0, 3), b.narrow(1, 0, 3), 1e-5, 1e-6));
  EXPECT_GT((a.narrow(1, 3, 2) - b.narrow(1, 3, 2)).abs().max().item<float>(), 1e-3)
      << "the changed tokens must change their own positions, or the test proves nothing";
}

TEST(Transformer, PaddingChangesNoSentence) {
  auto model = tiny_model();
  torch::NoGradGuard no_grad;
  auto alone = s2s::make_source_batch({{5, 6, 7}}, {});
  auto padded = s2s::make_source_batch({{9, 10, 11, 12, 13, 14}, {5, 6, 7}}, {});
  auto a = model->forward(alone.src, alone.src_lengths, tokens({2, 11, 12}, 1));
  auto b = model->forward(padded.src, padded.src_lengths, tokens({2, 20, 21, 22, 23, 2, 11, 12, 0, 0}, 2));
  EXPECT_TRUE(torch::allclose(a[0], b[1].narrow(0, 0, 3), 1e-5, 1e-6));
}

// Incremental decoding over cached keys/values gives the full forward pass's outputs, for K hypotheses per
// sentence, after a reorder that swaps rows and drops a sentence.
TEST(Transformer, IncrementalDecodingEqualsTheFullForwardPass) {
  for (const auto activation : {s2s::Activation::kRelu, s2s::Activation::kGelu}) {
    auto model = tiny_model(activation, /*tied=*/activation == s2s::Activation::kGelu);
    torch::NoGradGuard no_grad;
    auto src = s2s::make_source_batch({{5, 6, 7, 8}, {9, 10}}, {});
    // Rows: sentence 0 x {hyp a, hyp b}, sentence 1 x {hyp c, hyp d}.
    const std::vector<std::vector<int64_t>> hyps{
        {2, 11, 12, 13}, {2, 14, 15, 16}, {2, 17, 18, 19}, {2, 20, 21, 22}};
    auto full_of = [&](int64_t sentence, const std::vector<int64_t>& tgt) {
      auto one = s2s::make_source_batch(
          {sentence == 0 ? std::vector<int32_t>{5, 6, 7, 8} : std::vector<int32_t>{9, 10}}, {});
      return model->forward(one.src, one.src_lengths, tokens(tgt, 1))[0];  // [T, D]
    };
    auto cache = model->start_search(src.src, src.src_lengths, 2);
    // Steps 0-1 on all four rows, then row order swapped within sentence 0 and sentence 1 dropped.
    for (int64_t t = 0; t < 2; ++t) {
      auto out = model->step(tokens({hyps[0][t], hyps[1][t], hyps[2][t], hyps[3][t]}, 4).view({-1}), *cache,
                             nullptr);
      for (int64_t r = 0; r < 4; ++r)
        EXPECT_TRUE(torch::allclose(out[r], full_of(r / 2, hyps[static_cast<size_t>(r)])[t], 1e-4, 1e-5))
            << t << " " << r;
    }
    cache->reorder({1, 0}, {0});
    torch::Tensor attn;
    for (int64_t t = 2; t < 4; ++t) {
      auto out = model->step(tokens({hyps[1][t], hyps[0][t]}, 2).view({-1}), *cache, &attn);
      EXPECT_TRUE(torch::allclose(out[0], full_of(0, hyps[1])[t], 1e-4, 1e-5)) << t;
      EXPECT_TRUE(torch::allclose(out[1], full_of(0, hyps[0])[t], 1e-4, 1e-5)) << t;
      ASSERT_EQ(attn.sizes(), (std::vector<int64_t>{2, 4}));
      EXPECT_TRUE(torch::allclose(attn.sum(1), torch::ones({2}), 1e-5, 1e-6));  // weights over the source
    }
  }
}

TEST(Transformer, BeamSearchScoresAreTheModelsLogProbabilities) {
  auto model = tiny_model();
  torch::NoGradGuard no_grad;
  auto src = s2s::make_source_batch({{5, 6, 7, 8}, {9, 10}}, {});
  s2s::SearchOptions opt;
  opt.beam_size = 3, opt.n_best = 1, opt.normalize = 0, opt.max_length_factor = 1;
  const auto best = s2s::beam_search(*model, src.src, src.src_lengths, opt);
  ASSERT_EQ(best.size(), 2u);
  for (size_t b = 0; b < 2; ++b) {
    ASSERT_FALSE(best[b].empty());
    const auto& hyp = best[b][0];
    std::vector<int64_t> tgt{2};
    for (auto t : hyp.tokens) tgt.push_back(t);
    auto one =
        s2s::make_source_batch({b == 0 ? std::vector<int32_t>{5, 6, 7, 8} : std::vector<int32_t>{9, 10}}, {});
    auto logp =
        torch::log_softmax(model->logits(model->forward(one.src, one.src_lengths, tokens(tgt, 1))), -1)[0];
    double expected = 0;
    for (size_t t = 0; t < hyp.tokens.size(); ++t)
      expected += logp[static_cast<int64_t>(t)][hyp.tokens[t]].item<double>();
    // A hypothesis cut at the length limit has no EOS; one that ended scored EOS too.
    const double eos = logp[static_cast<int64_t>(hyp.tokens.size())][3].item<double>();
    if (std::abs(hyp.score - expected) > 1e-4) expected += eos;
    EXPECT_NEAR(hyp.score, expected, 1e-4) << "sentence " << b;
  }
}

TEST(Transformer, ConfigChecksHeadsAgainstTheWidth) {
  auto c = s2s_test::tiny_config();
  c.model.type = s2s::ModelType::kTransformer, c.model.emb_dim = 30, c.model.heads = 4;
  try {
    s2s::validate(c);
    FAIL() << "heads 4 with emb_dim 30 was accepted";
  } catch (const s2s::Error& e) {
    EXPECT_CONTAINS(std::string(e.what()), "model.heads");
    EXPECT_CONTAINS(std::string(e.what()), "must divide model.emb_dim (30)");
  }
  const auto text = s2s::dump_config(c);
  EXPECT_CONTAINS(text, "type: transformer");
  EXPECT_EQ(s2s::parse_config(s2s::dump_config(s2s_test::tiny_config()), "x", ".").model.type,
            s2s::ModelType::kRnn);
}

s2s::Config transformer_config() {
  auto c = s2s_test::tiny_config();
  c.vocab.src_model = s2s_test::demo_tokenizer()->path().string();
  c.model.type = s2s::ModelType::kTransformer;
  c.model.emb_dim = 32, c.model.heads = 4, c.model.ffn_dim = 64, c.model.enc_layers = 1,
  c.model.dec_layers = 1;
  c.model.tie_output = true;
  c.model.dropout_hidden = 0.1, c.model.attention_dropout = 0.1, c.model.ffn_dropout = 0.1;
  c.train.lr_schedule = s2s::LrSchedule::kInverseSqrt;
  return c;
}

std::vector<nlohmann::json> train_rows(const stdfs::path& dir) {
  std::vector<nlohmann::json> rows;
  for (const auto& line : s2s::fs::read_lines(dir / "metrics.jsonl")) {
    auto row = nlohmann::json::parse(line);
    if (row["kind"] == "train") rows.push_back(row);
  }
  return rows;
}

// Trains on the shipped demo data, then translates with the LibTorch engine from the model dir.
TEST(Transformer, EndToEndLossFallsThenTranslates) {
  const auto dir = s2s_test::temp_dir("tr_e2e");
  auto c = transformer_config();
  c.train.max_steps = 150, c.train.valid_every = 75, c.train.lr = 0.005, c.train.warmup_steps = 30;
  s2s::TrainRunOptions run;
  run.model_dir = dir, run.quiet = true;
  EXPECT_EQ(s2s::train(c, run).steps, 150);
  const auto rows = train_rows(dir);
  ASSERT_GE(rows.size(), 8u);
  EXPECT_LT(rows.back()["train_loss"].get<double>(), rows.front()["train_loss"].get<double>() - 0.8);
  ASSERT_TRUE(stdfs::exists(dir / "best.bin"));
  ASSERT_TRUE(stdfs::exists(dir / "valid" / "step-150.hyp"));

  auto bundle = s2s::load_model_dir(dir, torch::kCPU);
  EXPECT_EQ(bundle.config.model.type, s2s::ModelType::kTransformer);
  s2s::TranslateOptions topt;
  topt.search.beam_size = 3;
  auto translator = s2s::make_translator(bundle.model, bundle.src_tok, bundle.tgt_tok, bundle.device, topt);
  auto sources = s2s::fs::read_lines(s2s_test::source_path("data/test.de"));
  sources.resize(20);
  const auto hyps = translator.translate(sources);
  ASSERT_EQ(hyps.size(), 20u);
  size_t non_empty = 0;
  for (const auto& h : hyps) non_empty += !h.empty();
  EXPECT_GT(non_empty, 15u);
}

}  // namespace
