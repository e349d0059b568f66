#include "libtorch/train/checkpoint.h"

#include <torch/serialize.h>
#include <unistd.h>

#include "infer/weights_file.h"
#include "libtorch/model/weights_io.h"
#include "util/error.h"
#include "util/fs.h"

namespace s2s {
namespace {

torch::Tensor scalar(double v) {
  return torch::tensor(v, torch::kDouble);
}
torch::Tensor scalar(int64_t v) {
  return torch::tensor(v, torch::kInt64);
}

void write_state(torch::serialize::OutputArchive& ar, const TrainState& s) {
  ar.write("step", scalar(s.step)), ar.write("epoch", scalar(s.epoch));
  ar.write("batch_in_epoch", scalar(s.batch_in_epoch)), ar.write("lr_scale", scalar(s.lr_scale));
  ar.write("best_metric", scalar(s.best_metric)), ar.write("best_step", scalar(s.best_step));
  ar.write("bad_validations", scalar(s.bad_validations)), ar.write("lr_bad", scalar(s.lr_bad));
  ar.write("elapsed_seconds", scalar(s.elapsed_seconds)), ar.write("window_loss", scalar(s.window_loss));
  ar.write("window_nll", scalar(s.window_nll)), ar.write("window_tokens", scalar(s.window_tokens));
  ar.write("total_tokens", scalar(s.total_tokens));
  ar.write("batch_plan_tokens", scalar(s.batch_plan_tokens));
  if (s.rng_state.defined()) ar.write("rng_state", s.rng_state);
}

void read_state(torch::serialize::InputArchive& ar, TrainState& s) {
  auto read = [&](const char* key) {
    torch::Tensor t;  // fresh each time: read() into a defined tensor would set_() its storage
    ar.read(key, t);
    return t;
  };
  auto i64 = [&](const char* key, int64_t& out) { out = read(key).item<int64_t>(); };
  auto f64 = [&](const char* key, double& out) { out = read(key).item<double>(); };
  i64("step", s.step), i64("epoch", s.epoch), i64("batch_in_epoch", s.batch_in_epoch);
  f64("lr_scale", s.lr_scale), f64("best_metric", s.best_metric), i64("best_step", s.best_step);
  i64("bad_validations", s.bad_validations), i64("lr_bad", s.lr_bad),
      f64("elapsed_seconds", s.elapsed_seconds);
  f64("window_loss", s.window_loss), f64("window_nll", s.window_nll), i64("window_tokens", s.window_tokens);
  i64("total_tokens", s.total_tokens);
  torch::Tensor rng, plan_tokens;
  if (ar.try_read("rng_state", rng)) s.rng_state = rng;
  if (ar.try_read("batch_plan_tokens", plan_tokens)) s.batch_plan_tokens = plan_tokens.item<int64_t>();
}

// The stored moving average into `average` (same count and shapes); false if the checkpoint has none.
bool read_average(torch::serialize::InputArchive& ar, const std::filesystem::path& file,
                  std::vector<torch::Tensor>& average) {
  torch::serialize::InputArchive avg_ar;
  if (!ar.try_read("average", avg_ar)) return false;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < average.size(); ++i) {
    torch::Tensor t;
    if (!avg_ar.try_read(std::to_string(i), t) || !t.sizes().equals(average[i].sizes()))
      throw Error("checkpoint '" + file.string() + "' has a damaged moving average of the weights");
    average[i].copy_(t);
  }
  return true;
}

}  // namespace

void save_checkpoint(const std::filesystem::path& file, torch::nn::Module& model,
                     const torch::optim::Optimizer& optimizer, const TrainState& state,
                     const std::vector<torch::Tensor>& average) {
  torch::serialize::OutputArchive ar, model_ar, optim_ar, state_ar, avg_ar;
  model.save(model_ar);
  optimizer.save(optim_ar);
  write_state(state_ar, state);
  ar.write("model", model_ar), ar.write("optimizer", optim_ar), ar.write("state", state_ar);
  if (!average.empty()) {
    for (size_t i = 0; i < average.size(); ++i) avg_ar.write(std::to_string(i), average[i]);
    ar.write("average", avg_ar);
  }
  save_model_archive(file, ar);
}

bool load_checkpoint(const std::filesystem::path& file, torch::nn::Module& model,
                     torch::optim::Optimizer& optimizer, TrainState& state,
                     std::vector<torch::Tensor>* average) {
  if (is_weights_file(file)) {
    throw Error("checkpoint '" + file.string() + "' is a weights-only file: it has no training state");
  }
  auto ar = open_model_archive(file);
  load_module_archive(ar, model, file);
  torch::serialize::InputArchive optim_ar, state_ar;
  try {
    if (!ar.try_read("optimizer", optim_ar) || !ar.try_read("state", state_ar)) {
      throw Error("checkpoint '" + file.string() + "' has no training state (a weights-only file?)");
    }
    optimizer.load(optim_ar);
    read_state(state_ar, state);
    return average && !average->empty() && read_average(ar, file, *average);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {  // c10::Error, or std::runtime_error from LibTorch's unpickler
    throw Error("checkpoint '" + file.string() + "' has a damaged training state: " + brief_error(e));
  }
}

}  // namespace s2s
