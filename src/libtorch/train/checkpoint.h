// Checkpoints: the model, the optimizer moments and the whole training state (step, data position, LR
// schedule, early stopping, RNG), written atomically so an interrupted save never replaces a good file.
#pragma once

#include <torch/optim/optimizer.h>

#include <filesystem>
#include <vector>

#include "libtorch/model/weights_io.h"

namespace s2s {

struct TrainState {
  int64_t step = 0;               // optimizer steps done
  int64_t epoch = 0;              // current epoch (0-based)
  int64_t batch_in_epoch = 0;     // batches of the current epoch already consumed
  int64_t batch_plan_tokens = 0;  // batch_tokens x ranks of the plan batch_in_epoch counts in (0: unknown)
  double lr_scale = 1.0;          // plateau decay applied so far
  double best_metric = 0;         // best validation metric (BLEU up, or -ppl)
  int64_t best_step = -1;         // step of the best validation (-1: none yet)
  int64_t bad_validations = 0;    // validations without improvement (early stopping)
  int64_t lr_bad = 0;             // validations without improvement since the last LR decay
  double elapsed_seconds = 0;     // training wall-clock time across runs
  double window_loss = 0;         // summed smoothed loss since the last log line
  double window_nll = 0;          // summed NLL since the last log line
  int64_t window_tokens = 0;      // target tokens since the last log line
  int64_t total_tokens = 0;       // target tokens trained on, all runs
  torch::Tensor rng_state;        // CPU generator state (dropout); empty when not captured
};

// Saves model + optimizer + state atomically (temp file + rename), and `average` (train.ema_decay: the
// moving average of the weights, one tensor per parameter) unless it is empty.
void save_checkpoint(const std::filesystem::path& file, torch::nn::Module& model,
                     const torch::optim::Optimizer& optimizer, const TrainState& state,
                     const std::vector<torch::Tensor>& average = {});

// Loads a checkpoint written by save_checkpoint; throws s2s::Error naming the file on any problem. A
// non-empty `average` is overwritten by the stored one (same shapes) if there is one: returns whether it was.
bool load_checkpoint(const std::filesystem::path& file, torch::nn::Module& model,
                     torch::optim::Optimizer& optimizer, TrainState& state,
                     std::vector<torch::Tensor>* average = nullptr);

}  // namespace s2s
