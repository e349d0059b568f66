// Where a native model's float32 parameters come from: a weights file (best.bin) or memory (the training
// model's, converted without a file).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace s2s::infer {

// A float32 parameter by name, e.g. "decoder.w_rec0".
struct Parameter {
  std::vector<int64_t> shape;
  std::vector<float> data;  // row-major
};

// Where the native model's parameters come from: a weights file (best.bin) or memory.
class ParameterSource {
 public:
  virtual ~ParameterSource() = default;
  // The parameter `name`, which must have `shape`; throws s2s::Error naming the source otherwise.
  virtual Parameter get(const std::string& name, const std::vector<int64_t>& shape) = 0;
};

// The parameters of weights file `file`, read on demand.
std::unique_ptr<ParameterSource> open_weights_file(const std::filesystem::path& file);

}  // namespace s2s::infer
