// What the native CPU engine needs from a model family (infer/rnn/, infer/transformer/): encode a batch into
// the family's own search state, advance it one step, and follow the search's reordering. The output layer
// (shortlist, logits, log-normalizers) is the engine's (infer/native_engine.h) and the same for every family.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "infer/gemm.h"
#include "infer/parameters.h"

namespace s2s::infer {

// A batch's search state: the encoded sentences and K decoder rows per sentence (a sentence's rows adjacent);
// K is 1 after `start` and the search's beam width once the scorer has spread the first rows.
struct NativeState {
  virtual ~NativeState() = default;
  int64_t src_len = 0;  // S: padded source length (the attention weights' width)
};

class NativeNetwork {
 public:
  virtual ~NativeNetwork() = default;
  // Encodes a batch (token ids; `pad` fills short sentences) into the state of one row per sentence, for a
  // search of K rows per sentence (its beam width: a family may encode differently for K = 1).
  virtual std::unique_ptr<NativeState> start(const std::vector<std::vector<int32_t>>& batch, int64_t pad,
                                             int64_t K) const = 0;
  // One step of R = sentences * K rows: tokens [R] -> out [R, out_dim()], the output layer's input; the
  // source attention weights [R, src_len] go to `attn` when it is not null.
  virtual void advance(const std::vector<int64_t>& tokens, NativeState& state, int64_t K,
                       std::vector<float>& out, std::vector<float>* attn) const = 0;
  // Beam backpointers: new row i continues old row rows[i] of the A * K rows; of the A sentences, `kept`
  // (ascending) stay. `rows` may hold more rows than before (the first step's spread from K = 1).
  virtual void reorder(NativeState& state, const std::vector<int64_t>& rows, const std::vector<int64_t>& kept,
                       int64_t A, int64_t K) const = 0;

  virtual int64_t out_dim() const = 0;
  virtual const Matrix& out_weight() const = 0;            // [tgt_vocab, out_dim]
  virtual const std::vector<float>& out_bias() const = 0;  // [tgt_vocab]
};

// x [*, width] = its rows `rows`, in that order, through a per-thread buffer that circulates with x's: no
// allocation or zero-fill at each step. For the per-step decoder rows, whose sizes stay alike (a big x would
// leave its buffer here).
void take_rows(std::vector<float>& x, int64_t width, const std::vector<int64_t>& rows);

// A search's first step: the K rows of each sentence are alike (the same token after the same state), so the
// scorer decodes one row per sentence and spreads it. Returns those rows (a * K), or nothing when a
// sentence's rows hold different tokens.
std::vector<int64_t> first_step_rows(const std::vector<int64_t>& tokens, int64_t K);

// [R]: the row r / K each of R = A * K rows copies from the A decoded ones (for take_rows).
std::vector<int64_t> spread_rows(int64_t R, int64_t K);

// Throws s2s::Error when this CPU cannot run GEMMs with `type` weights (int8 without VNNI), so that a model
// fails at load, not at its first batch.
void check_weight_type(WeightType type);

// Weight matrix `name` [rows, cols] (a parameter of that name, or as a converted file stores it) as a Matrix
// of `type` for products only (int8 and bf16 packed where that is faster); `per_row`: int8 scales per row (a
// matrix used transposed) rather than per column.
Matrix make_matrix(ParameterSource& w, const std::string& name, int64_t rows, int64_t cols, WeightType type,
                   bool per_row);
// A table read by rows (embeddings; an output layer, whose shortlisted rows are selected per batch), to be
// shared by several uses (tied or shared embeddings hold one table). Its products use the plain GEMM.
std::shared_ptr<const Matrix> shared_matrix(ParameterSource& w, const std::string& name, int64_t rows,
                                            int64_t cols, WeightType type, bool per_row);

}  // namespace s2s::infer
