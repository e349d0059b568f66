// Tensor operations shared by the encoder, decoder and search, with fused CPU kernels for inference.
#pragma once

#include <torch/types.h>

#include <type_traits>
#include <utility>
#include <vector>

namespace s2s {

// LSTM cell update: gates [..., 4H] pre-activations in the order [input, forget, output, cell]; c [..., H].
// Returns {h, c}. With autograd on (training) or off the CPU, it is composed of differentiable ATen ops.
// Otherwise it runs the fused kernel (float32 or bf16 gates): c comes back in float32 (the cell state keeps
// full precision under bf16 weights) and h in the gates' dtype, ready for the next GEMM.
std::pair<torch::Tensor, torch::Tensor> lstm_update(const torch::Tensor& gates, const torch::Tensor& c);

// The one LSTM cell step every layer runs (encoder directions and decoder layers alike):
// gates = pre + rec_in x w_rec, then lstm_update. pre [batch, 4H] (input-side products and bias, or the bias
// alone), rec_in [batch, in], w_rec [in, 4H]; or all three with a leading [2] for both encoder directions at
// once. Returns {h, c}.
std::pair<torch::Tensor, torch::Tensor> lstm_step(const torch::Tensor& pre, const torch::Tensor& rec_in,
                                                  const torch::Tensor& w_rec, const torch::Tensor& c);

// The fused training cell's kernels on contiguous CPU tensors: gates, h, act (the activated gates, saved for
// the backward) and dh, dgates in the compute dtype (float32, bf16 or double); c_prev, c, dc, dc_prev in
// float32 (double with double gates). Shapes: gates/act/dgates [rows, 4H], the rest [rows, H].
void lstm_cell_forward(const torch::Tensor& gates, const torch::Tensor& c_prev, const torch::Tensor& c,
                       const torch::Tensor& h, const torch::Tensor& act);
void lstm_cell_backward(const torch::Tensor& act, const torch::Tensor& c_prev, const torch::Tensor& c,
                        const torch::Tensor& dh, const torch::Tensor& dc, const torch::Tensor& dgates,
                        const torch::Tensor& dc_prev);

// A CPU float32 inverted-dropout mask of `sizes`: each element 1 / (1 - p) with probability 1 - p, else 0
// (the mask s2s::dropout multiplies by).
torch::Tensor dropout_mask(at::IntArrayRef sizes, double p);

// Inverted dropout: x * mask / (1 - p) while training, x otherwise. On the CPU the mask comes from
// kernels::dropout_mask with one 64-bit seed drawn from LibTorch's default CPU generator, so seeded and
// resumed runs repeat it; LibTorch 1.13's bernoulli_ draws element by element (24.6% of a Transformer
// training step, `S2S_PROFILE`). Elsewhere it is torch::dropout.
torch::Tensor dropout(const torch::Tensor& x, double p, bool training);

// Rows `rows` of t along dim 0 (t.index_select(0, rows)); contiguous CPU tensors are copied row by row,
// which for the small per-step states costs a fraction of index_select's dispatch.
torch::Tensor select_rows(const torch::Tensor& t, const std::vector<int64_t>& rows);

// The data of a CPU tensor as the plain-buffer kernels take it: T = uint16_t reads a bf16 tensor as its raw
// bits, any other T is the element type.
template <class T>
T* data_as(const torch::Tensor& t) {
  if constexpr (std::is_same_v<T, uint16_t>) {
    return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>());
  } else {
    return t.data_ptr<T>();
  }
}

// The raw bfloat16 bits of a contiguous bf16 CPU tensor, for the plain-buffer kernels.
const uint16_t* bf16_bits(const torch::Tensor& t);

// log(sum(exp(x))) over dim 1 of x [rows, cols] (float32 or bf16), as float32 [rows]; with `row_sums`, also
// the sums of x's rows there (float32 [rows], from the same pass over x on the CPU).
torch::Tensor row_logsumexp(const torch::Tensor& x, torch::Tensor* row_sums = nullptr);

}  // namespace s2s
