// An LSTM layer's recurrence over all time steps as one autograd function, for CPU training of the encoder:
// both directions of a bi-LSTM layer at once. The backward walks the steps back with the fused cell kernel
// and forms the recurrent weights' gradient in one batched GEMM over all steps, instead of autograd
// accumulating a [H, 4H] product per step.
#pragma once

#include <torch/types.h>

namespace s2s {

// Whether the fused recurrences (lstm_recurrence, decoder_recurrence) run this input: a CPU tensor of
// float32, bf16 or double.
bool recurrence_supported(const torch::Tensor& input);

// pre [dirs, len, batch, 4H]: the input-side gate products with the bias; w_hh [dirs, H, 4H] (cast to pre's
// dtype). The state starts at zero. Returns h [dirs, len, batch, H] in pre's dtype (the cell runs in float32,
// or double).
torch::Tensor lstm_recurrence(const torch::Tensor& pre, const torch::Tensor& w_hh);

}  // namespace s2s
