// The native CPU engine (src/infer) against the LibTorch model it re-implements: the same weights file
// must give the same teacher-forced logits and the same beam search results, for every architecture
// option the native engine supports; parameters handed over in memory (validation during training) give
// exactly what the weights file gives; bf16 stays close; mismatched weights are refused clearly. Transformer
// variants run the same checks.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "decode/ensemble.h"
#include "infer/converted_weights.h"
#include "infer/factory/native_models.h"
#include "infer/native_engine.h"
#include "infer/weights_file.h"
#include "libtorch/data/batch.h"
#include "libtorch/decode/torch_engine.h"
#include "libtorch/train/checkpoint.h"
#include "nn_fixture.h"
#include "util/error.h"
#include "util/fs.h"

namespace {

struct Variant {
  std::string name;
  void (*apply)(s2s::ModelConfig&);
};

// A seeded model with weights scaled up (so that the distributions are peaked, not near-uniform ties),
// saved as best.bin in a fresh model dir.
std::filesystem::path make_model_dir(const s2s::Config& c, const std::string& name, uint64_t seed = 7) {
  const auto dir = s2s_test::temp_dir("native_" + name);
  auto tok = s2s_test::demo_tokenizer();
  s2s::fs::write_file_atomic(dir / "config.yml", s2s::dump_config(c));
  s2s::fs::write_file_atomic(dir / "spm.model", s2s::fs::read_file(tok->path()));
  torch::manual_seed(seed);
  auto model = s2s::build_model(c.model, s2s_test::vocabs_of(*tok));
  {
    torch::NoGradGuard no_grad;
    // A Transformer's LayerNorm gains would compound the scaling through every layer into saturated
    // attention, where rounding decides; there the embeddings and the output layer alone are scaled.
    const bool transformer = c.model.type == s2s::ModelType::kTransformer;
    for (auto& item : model->named_parameters()) {
      const auto& name = item.key();
      if (!transformer || name.find("embedding") != std::string::npos || name == "out_weight")
        item.value().mul_(4.0);
    }
  }
  s2s::save_weights(dir / s2s::model_files::kBest, *model);
  return dir;
}

const std::vector<std::string> kSentences = {"Ein Mann geht mit seinem Hund.", "Hallo.",
                                             "Zwei Kinder spielen im Park neben dem Haus.",
                                             "Sie trinkt Kaffee.", "Wir gehen nach Hause."};

std::vector<std::vector<int32_t>> encode_all(const s2s::Tokenizer& tok) {
  std::vector<std::vector<int32_t>> out;
  for (const auto& s : kSentences) {
    auto ids = tok.encode(s);
    out.emplace_back(ids.begin(), ids.end());
  }
  return out;
}

std::shared_ptr<const s2s::infer::NativeNetwork> native_model(const std::filesystem::path& dir,
                                                              const s2s::Config& c,
                                                              s2s::infer::WeightType type) {
  auto tok = s2s_test::demo_tokenizer();
  return s2s::infer::load_native(c.model, tok->vocab_size(), tok->vocab_size(), dir / s2s::model_files::kBest,
                                 type);
}
// The reduced precisions this CPU's GEMMs run (bf16_is_fast, int8_is_fast): a CPU without AVX-512 has no
// bf16 GEMM in oneDNN, and one without VNNI saturates int8 sums, so the engine refuses them there.
std::vector<s2s::infer::WeightType> reduced_types() {
  std::vector<s2s::infer::WeightType> types;
  if (s2s::infer::bf16_is_fast()) types.push_back(s2s::infer::WeightType::kBf16);
  if (s2s::infer::int8_is_fast()) types.push_back(s2s::infer::WeightType::kInt8);
  return types;
}

#define SKIP_WITHOUT_REDUCED_TYPES() \
  if (reduced_types().empty()) GTEST_SKIP() << "this CPU has neither bf16 nor VNNI int8 GEMMs"

std::shared_ptr<const s2s::infer::NativeNetwork> native_model(const std::filesystem::path& dir,
                                                              const s2s::Config& c, bool bf16) {
  return native_model(dir, c, bf16 ? s2s::infer::WeightType::kBf16 : s2s::infer::WeightType::kF32);
}

// Two searches' n-best lists hold the same tokens with the same scores, sentence by sentence.
template <class Results>
void expect_same_translations(const Results& a, const Results& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].size(), b[i].size());
    for (size_t k = 0; k < a[i].size(); ++k) {
      EXPECT_EQ(a[i][k].tokens, b[i][k].tokens) << "sentence " << i;
      EXPECT_EQ(a[i][k].score, b[i][k].score) << "sentence " << i;
    }
  }
}

class NativeEngineTest : public ::testing::TestWithParam<Variant> {
 protected:
  s2s::Config config() const {
    auto c = s2s_test::tiny_config();
    c.model.enc_layers = 2, c.model.dec_layers = 2;
    GetParam().apply(c.model);
    return c;
  }
};

// Teacher forcing through the native model's steps gives the LibTorch model's logits.
TEST_P(NativeEngineTest, TeacherForcedLogitsMatchLibTorch) {
  const auto c = config();
  const auto dir = make_model_dir(c, GetParam().name + "_tf");
  auto bundle = s2s::load_model_dir(dir, torch::kCPU);
  auto native = native_model(dir, c, /*bf16=*/false);
  const auto& v = bundle.model->vocabs;
  const auto src = encode_all(*bundle.src_tok);
  const auto tgt = encode_all(*bundle.tgt_tok);  // any target ids will do for teacher forcing
  std::vector<std::vector<int32_t>> tgt_in;
  for (const auto& t : tgt) {
    tgt_in.push_back({static_cast<int32_t>(v.bos_id)});
    tgt_in.back().insert(tgt_in.back().end(), t.begin(), t.end());
  }
  const auto T = static_cast<int64_t>(std::max_element(tgt_in.begin(), tgt_in.end(), [](auto& a, auto& b) {
                                        return a.size() < b.size();
                                      })->size());
  // LibTorch: [batch, T, out] -> logits
  torch::NoGradGuard no_grad;
  auto batch = s2s::make_source_batch(src, {v.pad_id, v.bos_id, v.eos_id});
  auto tgt_tensor = torch::full({static_cast<int64_t>(src.size()), T}, v.pad_id, torch::kInt64);
  for (size_t b = 0; b < tgt_in.size(); ++b)
    for (size_t t = 0; t < tgt_in[b].size(); ++t) tgt_tensor[b][t] = tgt_in[b][t];
  auto expected = bundle.model->logits(bundle.model->forward(batch.src, batch.src_lengths, tgt_tensor));
  // Native, step by step.
  auto state = native->start(src, v.pad_id, /*K=*/1);
  const auto& w = native->out_weight();
  std::vector<float> out, logits(static_cast<size_t>(w.rows));
  double max_diff = 0;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<int64_t> tokens;
    for (const auto& s : tgt_in) tokens.push_back(t < static_cast<int64_t>(s.size()) ? s[t] : v.pad_id);
    native->advance(tokens, *state, 1, out, nullptr);
    for (size_t b = 0; b < src.size(); ++b) {
      if (t >= static_cast<int64_t>(tgt_in[b].size())) continue;
      for (int64_t j = 0; j < w.rows; ++j) logits[j] = native->out_bias()[j];
      s2s::infer::matmul(out.data() + b * native->out_dim(), 1, native->out_dim(), w, /*transposed=*/true,
                         logits.data(), w.rows, /*accumulate=*/true);
      auto ref = expected[b][t];
      for (int64_t j = 0; j < w.rows; ++j)
        max_diff = std::max(max_diff, std::abs(static_cast<double>(logits[j]) - ref[j].item<double>()));
    }
  }
  EXPECT_LT(max_diff, 2e-3) << "native logits differ from LibTorch";
}

// Beam search (beam 4, 2-best, attention) through both engines: same hypotheses and scores.
TEST_P(NativeEngineTest, BeamSearchMatchesLibTorch) {
  const auto c = config();
  const auto dir = make_model_dir(c, GetParam().name + "_beam");
  auto bundle = s2s::load_model_dir(dir, torch::kCPU);
  s2s::TorchEngine torch_engine(bundle.model, torch::kCPU, /*bf16=*/false);
  const auto& v = bundle.model->vocabs;
  s2s::infer::NativeEngine native(native_model(dir, c, /*bf16=*/false),
                                  {v.pad_id, v.bos_id, v.eos_id, v.unk_id});
  s2s::SearchOptions opt;
  opt.beam_size = 4, opt.n_best = 2, opt.keep_attention = true;
  const auto src = encode_all(*bundle.src_tok);
  size_t longest = 0;
  for (const std::vector<int64_t>& subset :
       {std::vector<int64_t>{}, std::vector<int64_t>{3, 5, 8, 13, 21, 34, 55, 89, 144}}) {
    const auto a = torch_engine.translate_batch(src, subset, opt);
    const auto b = native.translate_batch(src, subset, opt);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i].size(), b[i].size()) << "sentence " << i;
      for (size_t k = 0; k < a[i].size(); ++k) {
        EXPECT_EQ(a[i][k].tokens, b[i][k].tokens) << "sentence " << i << " hypothesis " << k;
        longest = std::max(longest, b[i][k].tokens.size());
        EXPECT_NEAR(a[i][k].score, b[i][k].score, 1e-3);
        ASSERT_EQ(a[i][k].attention.size(), b[i][k].attention.size());
        for (size_t t = 0; t < a[i][k].attention.size(); ++t)
          for (size_t j = 0; j < a[i][k].attention[t].size(); ++j)
            EXPECT_NEAR(a[i][k].attention[t][j], b[i][k].attention[t][j], 1e-3);
      }
    }
  }
  EXPECT_GE(longest, 3u) << "the hypotheses are too short to compare the engines";
}

// log p(target token | prefix) from the model's teacher-forced forward pass, EOS last, per sentence.
std::vector<std::vector<double>> teacher_forced_log_probs(s2s::NmtModelImpl& model,
                                                          const std::vector<std::vector<int32_t>>& src,
                                                          const std::vector<std::vector<int32_t>>& tgt) {
  const auto& v = model.vocabs;
  torch::NoGradGuard no_grad;
  auto batch = s2s::make_source_batch(src, {v.pad_id, v.bos_id, v.eos_id});
  int64_t T = 0;
  for (const auto& t : tgt) T = std::max<int64_t>(T, static_cast<int64_t>(t.size()) + 1);
  auto tgt_in = torch::full({static_cast<int64_t>(src.size()), T}, v.pad_id, torch::kInt64);  // [B, T]
  for (size_t b = 0; b < tgt.size(); ++b) {
    tgt_in[b][0] = v.bos_id;
    for (size_t t = 0; t < tgt[b].size(); ++t) tgt_in[b][t + 1] = tgt[b][t];
  }
  auto logp = torch::log_softmax(model.logits(model.forward(batch.src, batch.src_lengths, tgt_in)), -1)
                  .to(torch::kDouble);  // [B, T, V]
  std::vector<std::vector<double>> out(tgt.size());
  for (size_t b = 0; b < tgt.size(); ++b) {
    for (size_t t = 0; t <= tgt[b].size(); ++t) {
      const int64_t next = t < tgt[b].size() ? tgt[b][t] : v.eos_id;
      out[b].push_back(logp[b][t][next].item<double>());
    }
  }
  return out;
}

// Forced decoding (s2s score) through either engine gives the teacher-forced log-probabilities, token by
// token, while sentences of different lengths leave the batch.
TEST_P(NativeEngineTest, ForcedDecodingMatchesTeacherForcing) {
  const auto c = config();
  const auto dir = make_model_dir(c, GetParam().name + "_force");
  auto bundle = s2s::load_model_dir(dir, torch::kCPU);
  const auto& v = bundle.model->vocabs;
  s2s::TorchEngine torch_engine(bundle.model, torch::kCPU, /*bf16=*/false);
  s2s::infer::NativeEngine native(native_model(dir, c, /*bf16=*/false),
                                  {v.pad_id, v.bos_id, v.eos_id, v.unk_id});
  const auto src = encode_all(*bundle.src_tok);
  auto tgt = encode_all(*bundle.tgt_tok);
  tgt[1].clear();  // an empty target: EOS alone
  const auto expected = teacher_forced_log_probs(*bundle.model, src, tgt);
  for (s2s::Engine* engine : std::vector<s2s::Engine*>{&torch_engine, &native}) {
    const auto got = engine->score_batch(src, tgt);
    ASSERT_EQ(got.size(), expected.size());
    for (size_t b = 0; b < got.size(); ++b) {
      ASSERT_EQ(got[b].size(), expected[b].size()) << "sentence " << b;
      for (size_t t = 0; t < got[b].size(); ++t)
        EXPECT_NEAR(got[b][t], expected[b][t], 1e-3) << "sentence " << b << " token " << t;
    }
  }
}

// The model in memory (module_parameters, used by validation during training) == its best.bin.
TEST_P(NativeEngineTest, ParametersInMemoryEqualTheWeightsFile) {
  const auto c = config();
  const auto dir = make_model_dir(c, GetParam().name + "_memory");
  auto bundle = s2s::load_model_dir(dir, torch::kCPU);
  const auto& v = bundle.model->vocabs;
  const s2s::TargetIds ids{v.pad_id, v.bos_id, v.eos_id, v.unk_id};
  auto params = s2s::module_parameters(*bundle.model);
  const auto type = s2s::infer::bf16_is_fast() ? s2s::infer::WeightType::kBf16 : s2s::infer::WeightType::kF32;
  s2s::infer::NativeEngine from_file(native_model(dir, c, type), ids);
  s2s::infer::NativeEngine in_memory(s2s::infer::load_native(c.model, bundle.src_tok->vocab_size(),
                                                             bundle.tgt_tok->vocab_size(), *params, type),
                                     ids);
  s2s::SearchOptions opt;
  opt.beam_size = 3, opt.n_best = 2;
  const auto src = encode_all(*bundle.src_tok);
  expect_same_translations(from_file.translate_batch(src, {}, opt), in_memory.translate_batch(src, {}, opt));
}

// The scorer decodes a search's first step once per sentence and spreads it to the K rows, or, when a
// sentence's rows start with different tokens, spreads the state first and decodes every row: either way
// each row scores as a one-row search of its own tokens, at the first step and after it.
TEST_P(NativeEngineTest, FirstStepRowsScoreAsSeparateSearches) {
  const auto c = config();
  const auto dir = make_model_dir(c, GetParam().name + "_first");
  auto bundle = s2s::load_model_dir(dir, torch::kCPU);
  const auto& v = bundle.model->vocabs;
  auto native = native_model(dir, c, /*bf16=*/false);
  const auto src = encode_all(*bundle.src_tok);
  const std::vector<std::vector<int32_t>> batch{src[0], src[2]};  // A = 2 sentences, K = 2 rows each
  const int64_t A = 2, K = 2, V = native->out_weight().rows, bos = v.bos_id;
  using Steps = std::vector<std::vector<int64_t>>;  // per step, the tokens of rows a * K + k
  for (const auto& steps : {Steps{{bos, bos, bos, bos}, {5, 7, 9, 11}, {12, 12, 6, 14}},
                            Steps{{bos, 6, 8, bos}, {5, 7, 9, 11}, {12, 12, 6, 14}}}) {
    s2s::infer::NativeScorer beam(*native, batch, v.pad_id, {}, K);
    s2s::infer::NativeScorer row0(*native, batch, v.pad_id, {}, 1), row1(*native, batch, v.pad_id, {}, 1);
    double max_diff = 0;
    for (const auto& tokens : steps) {
      const auto got = beam.step(tokens, A, K, /*keep_attention=*/false);
      for (int64_t k = 0; k < K; ++k) {
        auto& one = k == 0 ? row0 : row1;
        const auto want = one.step({tokens[static_cast<size_t>(k)], tokens[static_cast<size_t>(K + k)]}, A, 1,
                                   /*keep_attention=*/false);
        for (int64_t a = 0; a < A; ++a) {
          const int64_t r = a * K + k;  // the beam's row of sentence a's one-row search
          for (int64_t j = 0; j < V; ++j) {
            const double x = got.logits[r * V + j] - got.logsumexp[r];
            const double y = want.logits[a * V + j] - want.logsumexp[a];
            max_diff = std::max(max_diff, std::abs(x - y));
          }
        }
      }
    }
    EXPECT_LT(max_diff, 1e-4) << (steps[0][1] == bos ? "rows alike" : "rows differ") << " at the first step";
  }
}

// Weights converted ahead (s2s convert) hold the matrices that a load in their precision makes: every
// architecture translates from them exactly as from best.bin converted at load, from a smaller file.
TEST_P(NativeEngineTest, ConvertedWeightsTranslateAsTheFloatFileConvertedAtLoad) {
  SKIP_WITHOUT_REDUCED_TYPES();
  const auto c = config();
  const auto dir = make_model_dir(c, GetParam().name + "_convert");
  auto tok = s2s_test::demo_tokenizer();
  const s2s::TargetIds ids{tok->pad_id(), tok->bos_id(), tok->eos_id(), tok->unk_id()};
  const auto V = tok->vocab_size();
  const auto src = encode_all(*tok);
  s2s::SearchOptions opt;
  opt.beam_size = 3, opt.n_best = 2;
  for (const auto type : reduced_types()) {
    const bool int8 = type == s2s::infer::WeightType::kInt8;
    SCOPED_TRACE(int8 ? "int8" : "bf16");
    const auto file = dir / (int8 ? "int8.bin" : "bf16.bin");
    s2s::infer::convert_native(c.model, V, V, dir / s2s::model_files::kBest, file, type);
    EXPECT_EQ(s2s::infer::converted_weight_type(file), type);
    EXPECT_LT(std::filesystem::file_size(file), std::filesystem::file_size(dir / s2s::model_files::kBest));
    s2s::infer::NativeEngine at_load(native_model(dir, c, type), ids),
        converted(s2s::infer::load_native(c.model, V, V, file, type), ids);
    expect_same_translations(at_load.translate_batch(src, {}, opt), converted.translate_batch(src, {}, opt));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Architectures, NativeEngineTest,
    ::testing::Values(Variant{"general", [](s2s::ModelConfig&) {}},
                      Variant{"dot",
                              [](s2s::ModelConfig& m) {
                                m.attention = s2s::AttentionType::kLuongDot, m.dec_hidden = 2 * m.enc_hidden;
                              }},
                      Variant{"tied_residual_nofeed",
                              [](s2s::ModelConfig& m) {
                                m.tie_output = true, m.enc_residual = true, m.input_feeding = false;
                              }},
                      Variant{"separate_embeddings", [](s2s::ModelConfig& m) { m.share_embeddings = false; }},
                      Variant{"bahdanau",
                              [](s2s::ModelConfig& m) { m.attention = s2s::AttentionType::kBahdanau; }},
                      Variant{"transformer",
                              [](s2s::ModelConfig& m) {
                                m.type = s2s::ModelType::kTransformer, m.heads = 4, m.ffn_dim = 48;
                                m.tie_output = true;
                              }},
                      Variant{"transformer_gelu_separate",
                              [](s2s::ModelConfig& m) {
                                m.type = s2s::ModelType::kTransformer, m.heads = 2, m.ffn_dim = 40;
                                m.ffn_activation = s2s::Activation::kGelu, m.share_embeddings = false;
                              }}),
    [](const ::testing::TestParamInfo<Variant>& info) { return info.param.name; });

// The tiny LSTM with Luong and Bahdanau attention (whose bf16 and int8 engines keep the encoder's memory in
// bf16) and a tiny Transformer (its key/value cache in bf16).
std::vector<std::pair<std::string, s2s::Config>> both_families() {
  auto transformer = s2s_test::tiny_config(), bahdanau = s2s_test::tiny_config();
  auto& m = transformer.model;
  m.type = s2s::ModelType::kTransformer, m.heads = 1, m.ffn_dim = 48;  // head width 32: the vector path
  bahdanau.model.attention = s2s::AttentionType::kBahdanau;
  return {{"lstm", s2s_test::tiny_config()}, {"lstm_bahdanau", bahdanau}, {"transformer", transformer}};
}

// Luong general attention in bf16 and int8: a greedy search (K = 1) projects each step's query onto the
// memory, a beam projects the keys once; both give the same attentional vectors up to rounding.
TEST(NativeEngine, ProjectedQueryEqualsProjectedKeys) {
  SKIP_WITHOUT_REDUCED_TYPES();
  auto narrow = s2s_test::tiny_config();  // decoder 48 wide against a memory of 64: W_k is not square
  narrow.model.dec_hidden = 48;
  auto tok = s2s_test::demo_tokenizer();
  const auto src = encode_all(*tok);
  for (const auto& [name, c] : {std::pair{"square", s2s_test::tiny_config()}, std::pair{"narrow", narrow}}) {
    ASSERT_EQ(c.model.attention, s2s::AttentionType::kLuongGeneral);
    const auto dir = make_model_dir(c, std::string("query_proj_") + name);
    for (auto type : reduced_types()) {
      SCOPED_TRACE(std::string(name) + (type == s2s::infer::WeightType::kBf16 ? " bf16" : " int8"));
      auto native = native_model(dir, c, type);
      auto greedy = native->start(src, tok->pad_id(), /*K=*/1), beam = native->start(src, tok->pad_id(), 4);
      std::vector<float> a, b;
      double diff = 0, total = 0;
      for (int64_t t = 0; t < 4; ++t) {  // the same tokens through both states, one row per sentence
        std::vector<int64_t> tokens;
        for (const auto& s : src)
          tokens.push_back(t == 0 ? tok->bos_id() : s[static_cast<size_t>(t) % s.size()]);
        native->advance(tokens, *greedy, 1, a, nullptr), native->advance(tokens, *beam, 1, b, nullptr);
        ASSERT_EQ(a.size(), b.size());
        for (size_t i = 0; i < a.size(); ++i) diff += std::abs(a[i] - b[i]), total += std::abs(a[i]);
      }
      EXPECT_LT(diff / total, 0.02) << diff / total;
      EXPECT_GT(diff, 0) << "the greedy state should project its queries, not share the beam's keys";
    }
  }
}

// bf16 weights: greedy translations mostly equal to float32 ones, forced-decoding scores close.
TEST(NativeEngine, Bf16StaysCloseToFloat32) {
  if (!s2s::infer::bf16_is_fast()) GTEST_SKIP() << "this CPU has no bf16 GEMMs";
  for (const auto& [name, c] : both_families()) {
    SCOPED_TRACE(name);
    const auto dir = make_model_dir(c, "bf16_" + name);
    auto tok = s2s_test::demo_tokenizer();
    const s2s::TargetIds ids{tok->pad_id(), tok->bos_id(), tok->eos_id(), tok->unk_id()};
    s2s::infer::NativeEngine fp32(native_model(dir, c, false), ids), bf16(native_model(dir, c, true), ids);
    s2s::SearchOptions opt;
    opt.beam_size = 1;
    const auto src = encode_all(*tok);
    const auto a = fp32.translate_batch(src, {}, opt), b = bf16.translate_batch(src, {}, opt);
    size_t same = 0;
    for (size_t i = 0; i < a.size(); ++i) same += a[i][0].tokens == b[i][0].tokens;
    EXPECT_GE(same, a.size() / 2);
    const auto sa = fp32.score_batch(src, src), sb = bf16.score_batch(src, src);
    double diff = 0, total = 0;
    for (size_t i = 0; i < sa.size(); ++i)
      for (size_t t = 0; t < sa[i].size(); ++t)
        diff += std::abs(sa[i][t] - sb[i][t]), total += std::abs(sa[i][t]);
    EXPECT_LT(diff / total, 0.01);
    EXPECT_GT(diff, 0) << "bf16 should not be float32 in disguise";
  }
}

// An ensemble's log-probabilities are the weighted average of its members', with members on different
// engines; an ensemble of a model with itself searches exactly as the model alone.
TEST(Ensemble, AveragesTheMembersLogProbabilities) {
  const auto c = s2s_test::tiny_config();
  const auto dir_a = make_model_dir(c, "ens_a", 7), dir_b = make_model_dir(c, "ens_b", 8);
  auto tok = s2s_test::demo_tokenizer();
  const s2s::TargetIds ids{tok->pad_id(), tok->bos_id(), tok->eos_id(), tok->unk_id()};
  auto a = std::make_shared<s2s::infer::NativeEngine>(native_model(dir_a, c, false), ids);
  auto bundle_b = s2s::load_model_dir(dir_b, torch::kCPU);
  auto b = std::make_shared<s2s::TorchEngine>(bundle_b.model, torch::kCPU, /*bf16=*/false);
  s2s::EnsembleEngine ensemble({a, b}, {3, 1});  // normalized to 0.75, 0.25
  const auto src = encode_all(*tok), tgt = encode_all(*tok);
  const auto sa = a->score_batch(src, tgt), sb = b->score_batch(src, tgt),
             se = ensemble.score_batch(src, tgt);
  for (size_t i = 0; i < se.size(); ++i) {
    ASSERT_EQ(se[i].size(), tgt[i].size() + 1);
    for (size_t t = 0; t < se[i].size(); ++t) EXPECT_NEAR(se[i][t], 0.75 * sa[i][t] + 0.25 * sb[i][t], 1e-4);
  }
  EXPECT_GT(std::abs(sa[0][0] - sb[0][0]), 1e-3) << "the two members should differ";

  s2s::EnsembleEngine twice({a, a}, {});
  s2s::SearchOptions opt;
  opt.beam_size = 4, opt.n_best = 2, opt.keep_attention = true;
  const auto single = a->translate_batch(src, {}, opt), doubled = twice.translate_batch(src, {}, opt);
  for (size_t i = 0; i < single.size(); ++i) {
    ASSERT_EQ(single[i].size(), doubled[i].size());
    for (size_t k = 0; k < single[i].size(); ++k) {
      EXPECT_EQ(single[i][k].tokens, doubled[i][k].tokens);
      EXPECT_NEAR(single[i][k].score, doubled[i][k].score, 1e-4);
      EXPECT_EQ(single[i][k].attention.size(), doubled[i][k].attention.size());
    }
  }
  EXPECT_NE(s2s_test::error_of([&] {
              s2s::EnsembleEngine({a, b}, {1});
            }).find("--weights has 1 values for 2"),
            std::string::npos);
  EXPECT_NE(s2s_test::error_of([&] {
              s2s::EnsembleEngine({a, b}, {1, -1});
            }).find("positive"),
            std::string::npos);
}

// int8 weights: forced-decoding log-probabilities within a few percent of float32's, token by token. (Greedy
// outputs of this untrained model diverge after the first differing token; BLEU on Multi30k is in
// docs/BENCHMARKS.md.)
TEST(NativeEngine, Int8StaysCloseToFloat32) {
  if (!s2s::infer::int8_is_fast()) GTEST_SKIP() << "this CPU has no VNNI for int8 GEMMs";
  for (const auto& [name, c] : both_families()) {
    SCOPED_TRACE(name);
    const auto dir = make_model_dir(c, "int8_" + name);
    auto tok = s2s_test::demo_tokenizer();
    const s2s::TargetIds ids{tok->pad_id(), tok->bos_id(), tok->eos_id(), tok->unk_id()};
    s2s::infer::NativeEngine fp32(native_model(dir, c, s2s::infer::WeightType::kF32), ids),
        int8(native_model(dir, c, s2s::infer::WeightType::kInt8), ids);
    const auto src = encode_all(*tok), tgt = encode_all(*tok);
    const auto a = fp32.score_batch(src, tgt), b = int8.score_batch(src, tgt);
    double diff = 0, total = 0, worst = 0;
    for (size_t i = 0; i < a.size(); ++i)
      for (size_t t = 0; t < a[i].size(); ++t) {
        diff += std::abs(a[i][t] - b[i][t]), total += std::abs(a[i][t]);
        worst = std::max(worst, std::abs(double(a[i][t]) - b[i][t]) / (std::abs(a[i][t]) + 1));
      }
    EXPECT_LT(diff / total, 0.05);
    EXPECT_LT(worst, 0.25);
    EXPECT_GT(diff, 0) << "int8 should not be float32 in disguise";
  }
}

TEST(NativeEngine, RefusesMismatchedWeights) {
  auto c = s2s_test::tiny_config();
  const auto dir = make_model_dir(c, "mismatch");
  auto other = c;
  other.model.dec_hidden = 48;
  try {
    native_model(dir, other, false);
    FAIL() << "a weights file of another shape was accepted";
  } catch (const s2s::Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not match the model"), std::string::npos) << e.what();
  }
  // A Transformer of another feed-forward size, and an RNN's weights read as a Transformer: both engines
  // refuse them with one line naming the file.
  auto transformer = c;
  transformer.model.type = s2s::ModelType::kTransformer, transformer.model.heads = 4,
  transformer.model.ffn_dim = 48;
  const auto tdir = make_model_dir(transformer, "mismatch_transformer");
  auto wider = transformer;
  wider.model.ffn_dim = 64;
  for (const auto& [dir_of, config] : {std::pair{tdir, wider}, std::pair{dir, transformer}}) {
    const auto msg = s2s_test::error_of([&] { native_model(dir_of, config, false); });
    EXPECT_NE(msg.find("weights file '" + (dir_of / "best.bin").string() + "' does not match the model"),
              std::string::npos)
        << msg;
    s2s::fs::write_file_atomic(dir_of / "config.yml", s2s::dump_config(config));
    const auto torch_msg = s2s_test::error_of([&] { s2s::load_model_dir(dir_of, torch::kCPU); });
    EXPECT_NE(torch_msg.find("does not match the model in config.yml"), std::string::npos) << torch_msg;
  }
}

TEST(NativeEngine, RefusesADamagedWeightsFileInEveryPrecision) {
  auto c = s2s_test::tiny_config();
  const auto dir = make_model_dir(c, "damaged");
  const auto file = dir / s2s::model_files::kBest;
  auto bytes = s2s::fs::read_file(file);
  for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 4096; ++i) bytes[i] = static_cast<char>(~bytes[i]);
  s2s::fs::write_file_atomic(file, bytes);
  auto types = reduced_types();
  types.push_back(s2s::infer::WeightType::kF32);
  for (const auto type : types) {
    const auto msg = s2s_test::error_of([&] { native_model(dir, c, type); });
    EXPECT_NE(msg.find("weights file '" + file.string() + "' is damaged (checksum mismatch in parameter"),
              std::string::npos)
        << msg;
  }
}

// A converted file is read in its precision by the native engine only; another model, a converted file
// converted again and every damage are refused with one line naming the file.
TEST(NativeEngine, ConvertedWeightsRefuseOtherPrecisionsOtherReadersAndDamage) {
  if (!s2s::infer::int8_is_fast()) GTEST_SKIP() << "this CPU has no VNNI for int8 GEMMs";
  using s2s::infer::WeightType;
  const auto c = s2s_test::tiny_config();
  const auto dir = make_model_dir(c, "convert_errors");
  const auto V = s2s_test::demo_tokenizer()->vocab_size();
  const auto file = dir / "int8.bin";
  s2s::infer::convert_native(c.model, V, V, dir / s2s::model_files::kBest, file, WeightType::kInt8);
  auto load = [&](const s2s::Config& config, WeightType type) {
    s2s::infer::load_native(config.model, V, V, file, type);
  };
  EXPECT_CONTAINS(s2s_test::error_of([&] { load(c, WeightType::kBf16); }),
                  "'" + file.string() + "' holds int8 weights (s2s convert), not bf16");
  EXPECT_CONTAINS(s2s_test::error_of([&] { s2s::WeightsFileReader in(file); }),
                  "'" + file.string() + "' holds weights converted for the native CPU engine");
  EXPECT_CONTAINS(s2s_test::error_of([&] {
                    s2s::infer::convert_native(c.model, V, V, file, dir / "again.bin", WeightType::kInt8);
                  }),
                  "is converted already");
  EXPECT_FALSE(std::filesystem::exists(dir / "again.bin"));
  auto other = c;
  other.model.dec_hidden = 48;
  EXPECT_CONTAINS(s2s_test::error_of([&] { load(other, WeightType::kInt8); }),
                  "weights file '" + file.string() + "' does not match the model in config.yml");

  const auto bytes = s2s::fs::read_file(file);
  for (size_t cut = 0; cut < bytes.size(); cut += std::max<size_t>(1, bytes.size() / 97)) {
    s2s::fs::write_file_atomic(file, bytes.substr(0, cut));
    EXPECT_CONTAINS(s2s_test::error_of([&] { load(c, WeightType::kInt8); }), file.string())
        << cut << " bytes";
  }
  auto flipped = bytes;
  for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 512; ++i)
    flipped[i] = static_cast<char>(~flipped[i]);
  s2s::fs::write_file_atomic(file, flipped);
  EXPECT_CONTAINS(s2s_test::error_of([&] { load(c, WeightType::kInt8); }),
                  "weights file '" + file.string() + "' is damaged (checksum mismatch in");
}

// Runs `s2s ARGS`, stdin from `input`; returns the exit code, stdout in *out, stderr in *err.
int run_s2s(const std::string& args, const std::string& input, std::string* out, std::string* err) {
  const auto dir = s2s_test::temp_dir("run_s2s");
  s2s::fs::write_file_atomic(dir / "in", input);
  const auto cmd = std::string("'") + S2S_BINARY + "' " + args + " < '" + (dir / "in").string() + "' > '" +
                   (dir / "out").string() + "' 2> '" + (dir / "err").string() + "'";
  const int status = std::system(cmd.c_str());
  *out = s2s::fs::read_file(dir / "out"), *err = s2s::fs::read_file(dir / "err");
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// `s2s convert` makes a model dir of its own that translates as its source with the same precision; flags
// that cannot hold for it are one-line errors.
TEST(NativeEngine, ConvertCommandMakesAModelDirThatTranslatesAsTheSource) {
  if (!s2s::infer::int8_is_fast()) GTEST_SKIP() << "this CPU has no VNNI for int8 GEMMs";
  const auto c = s2s_test::tiny_config();
  const auto dir = make_model_dir(c, "convert_cli");
  const auto out_dir = dir.parent_path() / "convert_cli_int8";
  std::filesystem::remove_all(out_dir);
  std::string out, err;
  const auto q = [](const std::filesystem::path& p) { return "'" + p.string() + "'"; };
  ASSERT_EQ(run_s2s("-q convert -m " + q(dir) + " -o " + q(out_dir) + " --precision int8", "", &out, &err), 0)
      << err;
  for (const char* f : {"config.yml", "spm.model", "best.bin"})
    EXPECT_TRUE(std::filesystem::exists(out_dir / f)) << f;
  const std::string lines = "Ein Mann geht mit seinem Hund.\nHallo.\nSie trinkt Kaffee.\n";
  std::string from_source, from_converted;
  ASSERT_EQ(run_s2s("-q translate -b 3 --precision int8 -m " + q(dir), lines, &from_source, &err), 0) << err;
  ASSERT_EQ(run_s2s("-q translate -b 3 -m " + q(out_dir), lines, &from_converted, &err), 0) << err;
  EXPECT_EQ(from_converted, from_source);
  EXPECT_EQ(std::count(from_converted.begin(), from_converted.end(), '\n'), 3);

  const std::vector<std::pair<std::string, std::string>> errors{
      {"translate --precision fp32 -m " + q(out_dir),
       "holds int8 weights (s2s convert); use --precision int8"},
      {"translate --engine torch -m " + q(out_dir), "holds weights converted for the native CPU engine"},
      {"convert -m " + q(dir) + " -o " + q(out_dir), "exists; pass --force to replace it"},
      {"convert -m " + q(dir) + " -o " + q(dir), "is the source model dir"},
      {"convert --precision fp32 -m " + q(dir) + " -o " + q(dir / "x"), "float32 weights already"},
      {"convert -m " + q(out_dir) + " -o " + q(dir / "y"), "is converted already"}};
  for (const auto& [args, message] : errors) {
    EXPECT_EQ(run_s2s(args, lines, &out, &err), 1) << args;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << args << ": " << err;
    EXPECT_CONTAINS(err, message) << args;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "y" / "best.bin"));
}

}  // namespace
