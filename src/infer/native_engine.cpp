#include "infer/native_engine.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <numeric>

#include "kernels/kernels.h"
#include "util/error.h"

namespace s2s::infer {

namespace {

// out [rows.size(), width]: row i is row rows[i] of x.
void copy_rows(const std::vector<float>& x, int64_t width, const std::vector<int64_t>& rows, float* out) {
  for (size_t i = 0; i < rows.size(); ++i)
    std::memcpy(out + i * width, x.data() + rows[i] * width, static_cast<size_t>(width) * sizeof(float));
}

}  // namespace

void take_rows(std::vector<float>& x, int64_t width, const std::vector<int64_t>& rows) {
  thread_local std::vector<float> taken;  // swapped with x: the buffers circulate instead of being allocated
  taken.resize(rows.size() * static_cast<size_t>(width));
  copy_rows(x, width, rows, taken.data());
  std::swap(x, taken);
}

std::vector<int64_t> first_step_rows(const std::vector<int64_t>& tokens, int64_t K) {
  const auto R = static_cast<int64_t>(tokens.size());
  std::vector<int64_t> rows;
  for (int64_t r = 0; r < R; ++r) {
    if (r % K == 0) rows.push_back(r);
    if (tokens[static_cast<size_t>(r)] != tokens[static_cast<size_t>(r - r % K)]) return {};
  }
  return rows;
}

std::vector<int64_t> spread_rows(int64_t R, int64_t K) {
  std::vector<int64_t> rows(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) rows[static_cast<size_t>(r)] = r / K;
  return rows;
}

Matrix make_matrix(ParameterSource& w, const std::string& name, int64_t rows, int64_t cols, WeightType type,
                   bool per_row) {
  return w.matrix(name, {rows, cols, type, per_row, /*pack=*/true}, [&] {
    return w.get(name, {rows, cols});
  });
}

std::shared_ptr<const Matrix> shared_matrix(ParameterSource& w, const std::string& name, int64_t rows,
                                            int64_t cols, WeightType type, bool per_row) {
  return std::make_shared<const Matrix>(w.matrix(name, {rows, cols, type, per_row, /*pack=*/false}, [&] {
    return w.get(name, {rows, cols});
  }));
}

void check_weight_type(WeightType type) {
  if (type == WeightType::kInt8 &&
      !int8_is_fast()) {  // without VNNI, oneDNN's u8s8 path saturates int16 sums
    throw Error(
        "--precision int8 needs a CPU with VNNI (AVX512-VNNI or AVX-VNNI; ONEDNN_MAX_CPU_ISA may cap it); "
        "use --precision fp32 or bf16");
  }
  if (type != WeightType::kF32) {  // a GEMM this CPU lacks fails here, not at the first batch
    // Through the kernels the model's products will use: packed where oneDNN has matmul kernels for `type`
    // (the plain GEMM's first call generates its own kernels, 20 ms of load measured, never used then).
    Matrix probe = Matrix::from_f32(std::vector<float>{1.f}.data(), 1, 1, type, /*per_row=*/false);
    probe.pack(/*keep_rows=*/false);
    float x = 1.f, y = 0.f;
    matmul(&x, 1, 1, probe, /*transposed=*/false, &y, 1, /*accumulate=*/false);
  }
}

NativeScorer::NativeScorer(const NativeNetwork& model, const std::vector<std::vector<int32_t>>& batch,
                           int64_t pad, const std::vector<int64_t>& vocab_subset, int64_t K)
    : model_(model),
      state_(model.start(batch, pad, K)),
      ids_(vocab_subset),
      out_w_(&model.out_weight()),
      out_b_(&model.out_bias()),
      spread_(K == 1) {
  if (!ids_.empty()) {
    subset_w_ = model.out_weight().select_rows(ids_);
    subset_w_.pack(/*keep_rows=*/false);
    for (auto id : ids_) subset_b_.push_back(model.out_bias()[static_cast<size_t>(id)]);
    out_w_ = &subset_w_, out_b_ = &subset_b_;
  }
}

StepScores NativeScorer::step(const std::vector<int64_t>& tokens, int64_t A, int64_t K, bool keep_attention) {
  const int64_t R = A * K, V = out_w_->rows;
  auto* attn = keep_attention ? &attn_ : nullptr;
  if (spread_) {
    model_.advance(tokens, *state_, K, out_, attn);
  } else {
    spread_first_step(tokens, A, K, attn);
  }
  logits_.resize(static_cast<size_t>(R * V));  // [R, V']
  matmul(out_.data(), R, model_.out_dim(), *out_w_, /*transposed=*/true, logits_.data(), V,
         /*accumulate=*/false, out_b_->data());
  lse_.resize(static_cast<size_t>(R));
  kernels::row_logsumexp(logits_.data(), V, 0, R, lse_.data());
  StepScores s{logits_.data(), lse_.data(), V, &ids_};
  if (keep_attention) s.attention = attn_.data(), s.attention_cols = state_->src_len;
  return s;
}

void NativeScorer::spread_first_step(const std::vector<int64_t>& tokens, int64_t A, int64_t K,
                                     std::vector<float>* attn) {
  const auto spread = spread_rows(A * K, K);  // [R]: row r continues the sentence's row r / K
  const auto first = first_step_rows(tokens, K);
  std::vector<int64_t> all(static_cast<size_t>(A));  // every sentence stays
  std::iota(all.begin(), all.end(), 0);
  spread_ = true;
  if (first.empty()) {  // a sentence's rows start with different tokens: K rows each, then a full step
    model_.reorder(*state_, spread, all, A, /*K=*/1);
    model_.advance(tokens, *state_, K, out_, attn);
    return;
  }
  std::vector<int64_t> first_tokens;  // [A]
  for (const auto r : first) first_tokens.push_back(tokens[static_cast<size_t>(r)]);
  model_.advance(first_tokens, *state_, /*K=*/1, out_, attn);
  model_.reorder(*state_, spread, all, A, /*K=*/1);
  take_rows(out_, model_.out_dim(), spread);
  if (attn) take_rows(*attn, state_->src_len, spread);
}

void NativeScorer::reorder(const std::vector<int64_t>& rows, const std::vector<int64_t>& kept, int64_t A,
                           int64_t K) {
  model_.reorder(*state_, rows, kept, A, K);
}

std::unique_ptr<StepScorer> NativeEngine::start(const std::vector<std::vector<int32_t>>& batch,
                                                const std::vector<int64_t>& vocab_subset, int64_t K) {
  return std::make_unique<NativeScorer>(*model_, batch, ids_.pad, vocab_subset, K);
}

void NativeEngine::set_thread_threads(int threads) {
  omp_set_num_threads(std::max(1, threads));
}

}  // namespace s2s::infer
