// The LibTorch checkpoint reader (last.pt): open_model_archive (size, XXH64), LibTorch's zip and pickle
// readers, the shape checks of load_module_archive, the optimizer state and the training state.
// The first input byte picks how the rest reaches the reader:
//   even: the bytes are the file, as a damaged or foreign file on disk would be;
//   odd:  the bytes are wrapped in a valid s2s header (size + checksum), so that LibTorch's own readers get
//         arbitrary payloads, as a checkpoint corrupted before it was checksummed would give them.
// Anything but s2s::Error escaping, a crash or a sanitizer report is a finding.
// `S2S_FUZZ_SEED=DIR fuzz_checkpoint` writes valid seed checkpoints into DIR and exits.
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adam.h>
#include <xxhash.h>

#include <cstdlib>
#include <cstring>

#include "fuzz_util.h"
#include "libtorch/train/checkpoint.h"
#include "util/fs.h"

namespace {

struct TinyImpl : torch::nn::Module {
  TinyImpl() {
    emb = register_module("emb", torch::nn::Embedding(5, 3));
    out = register_module("out", torch::nn::Linear(3, 4));
  }
  torch::nn::Embedding emb{nullptr};
  torch::nn::Linear out{nullptr};
};

struct Subject {
  std::shared_ptr<TinyImpl> model = std::make_shared<TinyImpl>();
  torch::optim::Adam adam{model->parameters(), torch::optim::AdamOptions(1e-3)};
};

// Writes a checkpoint with Adam moments (one step taken) and a training state.
void write_seed(const std::filesystem::path& file) {
  Subject s;
  auto loss = s.model->out(s.model->emb(torch::tensor({1, 2}))).sum();
  loss.backward();
  s.adam.step();
  s2s::TrainState state;
  state.step = 1, state.rng_state = torch::zeros({8}, torch::kUInt8);
  s2s::save_checkpoint(file, *s.model, s.adam, state);
}

std::string sealed(const uint8_t* data, size_t size) {
  std::string file("S2SCKPT1", 8);
  const uint64_t n = size, sum = XXH64(data, size, 0);
  file.append(reinterpret_cast<const char*>(&n), 8).append(reinterpret_cast<const char*>(&sum), 8);
  return file.append(reinterpret_cast<const char*>(data), size);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  torch::set_num_threads(1);
  if (const char* dir = std::getenv("S2S_FUZZ_SEED")) {
    // Seeds in the harness's own input format: a mode byte, then the file (raw) or its payload (sealed).
    const auto tmp = std::filesystem::path(dir) / "seed.pt";
    write_seed(tmp);
    const auto file = s2s::fs::read_file(tmp);
    s2s::fs::write_file_atomic(std::filesystem::path(dir) / "raw", std::string(1, '\0') + file);
    s2s::fs::write_file_atomic(std::filesystem::path(dir) / "sealed", std::string(1, '\1') + file.substr(24));
    std::filesystem::remove(tmp);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto bytes = (data[0] & 1) ? sealed(data + 1, size - 1)
                                   : std::string(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto file = s2s_fuzz::as_file(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  s2s_fuzz::expect_clean([&] {
    Subject s;
    s2s::TrainState state;
    s2s::load_checkpoint(file, *s.model, s.adam, state);
  });
  return 0;
}
