// The teacher-forced decoder recurrence for CPU training as one autograd function: the LSTM stack,
// dot-product attention (luong-dot, or luong-general over keys projected once per batch), the combine layer
// and input feeding, for all target positions. Its backward walks the positions back with the fused cell and
// attention kernels and forms the weight, key and memory gradients once over all positions (one GEMM each)
// instead of autograd accumulating a [in, 4H] product per position and layer.
#pragma once

#include <torch/types.h>

#include <vector>

namespace s2s {

struct DecoderRecurrenceInputs {
  torch::Tensor x_gates;             // [len, batch, 4H] layer 0's input-side gates, bias included
  std::vector<torch::Tensor> h, c;   // per layer [batch, H]: the initial state
  torch::Tensor keys;                // [batch, src_len, H] attention keys
  torch::Tensor memory;              // [batch, src_len, mem_dim] attention values
  torch::Tensor mask;                // [batch, src_len] bool, true at real tokens
  std::vector<torch::Tensor> w_rec;  // per layer [in_l, 4H]: in_0 = (out_dim if feeding) + H, else 2H
  std::vector<torch::Tensor> bias;   // layers 1.. [4H]
  torch::Tensor w_combine;           // [out_dim, mem_dim + H]: [context ; h_top] -> attentional vector
  torch::Tensor drop_hidden;         // [len, layers - 1, batch, H] mask between layers, or undefined
  torch::Tensor drop_out;            // [len, batch, out_dim] mask of the attentional vector, or undefined
  bool input_feeding = true;         // layer 0 reads the previous attentional vector
  std::vector<int64_t> active;       // [len] rows [0, active[t]) are real at position t, the rest padding
                                     // (non-increasing; empty: all rows are real). Padding rows are not
                                     // run: their outputs are zero and they pass no gradient back.
};

// active[t] for tgt_in [batch, len]: 1 + the last row whose sentence is longer than t (pad_id marks the
// padding after each sentence). Rows sorted by length, longest first, make the padding rows exactly those
// past active[t]; in any order the result stays correct and merely runs some padding.
std::vector<int64_t> active_rows(const torch::Tensor& tgt_in, int64_t pad_id);

// Runs inputs for which recurrence_supported(x_gates) (lstm_recurrence.h) holds. The attentional vectors
// [len, batch, out_dim], tanh(W_c [context ; h_top]) times the dropout mask, in x_gates' dtype; every other
// floating input is cast to it (the cell state runs in float32, or double).
torch::Tensor decoder_recurrence(const DecoderRecurrenceInputs& in);

}  // namespace s2s
