// Where a native model's parameters come from: a weights file (best.bin) or memory (the training model's,
// converted without a file), as float32; or a file of weights converted ahead (`s2s convert`), as the engine
// holds them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "infer/gemm.h"

namespace s2s::infer {

// A float32 parameter by name, e.g. "decoder.w_rec0": its values in place in the source (a mapped weights
// file) or in `owned`. Move-only, so `data` always points at live values.
struct Parameter {
  std::vector<int64_t> shape;
  const float* data = nullptr;  // [size] row-major, valid while the Parameter and its source live
  int64_t size = 0;
  std::vector<float> owned;             // the values, where the source holds none to point at
  std::shared_ptr<const void> release;  // set by a source to learn when the values are no longer read

  Parameter(std::vector<int64_t> shape_, const float* values, int64_t n)
      : shape(std::move(shape_)), data(values), size(n) {}
  Parameter(std::vector<int64_t> shape_, std::vector<float> values)
      : shape(std::move(shape_)), size(static_cast<int64_t>(values.size())), owned(std::move(values)) {
    data = owned.data();
  }
  Parameter(Parameter&&) = default;  // a moved vector keeps its buffer: `data` stays valid
  Parameter(const Parameter&) = delete;
  Parameter& operator=(const Parameter&) = delete;
  // A copy of values [begin, end).
  std::vector<float> values(int64_t begin = 0, int64_t end = -1) const {
    return {data + begin, data + (end < 0 ? size : end)};
  }
};

// Values [begin, end) of `p` as a parameter of `shape`: a view that keeps p's pages mapped while it lives, or
// a copy where p owns its values.
Parameter part_of(Parameter p, int64_t begin, int64_t end, std::vector<int64_t> shape);

// How a native model holds one of its weight matrices.
struct MatrixLayout {
  int64_t rows = 0, cols = 0;
  WeightType type = WeightType::kF32;
  bool per_row = true;  // int8 scales per row (a matrix used transposed), else per column
  bool pack = true;     // laid out for the products only (Matrix::pack), else kept by rows
};

// Where the native model's parameters come from: a weights file (best.bin) or memory.
class ParameterSource {
 public:
  virtual ~ParameterSource() = default;
  // The parameter `name`, which must have `shape`; throws s2s::Error naming the source otherwise.
  virtual Parameter get(const std::string& name, const std::vector<int64_t>& shape) = 0;
  // The weight matrix `key` [rows, cols] held as `layout` says: made from the float32 `values()`
  // [rows, cols], which read this source's parameters; a converted file returns it as stored instead. `key`
  // names it among the model's matrices: a parameter's name, or one derived from those `values` reads.
  virtual Matrix matrix(const std::string& key, const MatrixLayout& layout,
                        const std::function<Parameter()>& values);
};

// The parameters of weights file `file`, read on demand from a read-only mapping of it (in place for
// version-3 files; the mapping lives as long as the source); for a converted file (infer/converted_weights.h)
// its matrices as stored.
std::unique_ptr<ParameterSource> open_weights_file(const std::filesystem::path& file);

}  // namespace s2s::infer
