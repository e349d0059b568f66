#include "infer/parameters.h"

#include <map>

#include "infer/converted_weights.h"
#include "infer/weights_file.h"
#include "util/error.h"

namespace s2s::infer {
namespace {

// The parameters of a weights file by name, read on demand from the file's mapping: nothing is copied
// (version 3) and the pages of a parameter already converted can be dropped by the kernel.
class WeightsMap : public ParameterSource {
 public:
  explicit WeightsMap(const std::filesystem::path& file) : file_(file), in_(file) {
    for (uint64_t i = 0; i < in_.count(); ++i) {
      auto entry = in_.next();
      const auto offset = in_.skip(entry.numel());
      if (!index_.emplace(entry.name, Entry{entry.shape, offset, entry.numel()}).second) {
        throw Error("weights file '" + file.string() + "' is damaged (parameter " + entry.name +
                    " appears twice)");
      }
    }
  }
  // The parameter `name`, which must have `shape`.
  Parameter get(const std::string& name, const std::vector<int64_t>& shape) override {
    const auto it = index_.find(name);
    const auto mismatch = "weights file '" + file_.string() + "' does not match the model in config.yml: ";
    if (it == index_.end()) throw Error(mismatch + "parameter " + name + " is missing");
    if (it->second.shape != shape) throw Error(mismatch + "parameter " + name + " has another shape");
    std::vector<float> copy;  // filled only for a file older than version 3
    const float* data = in_.mapped_float_at(it->second.offset, it->second.numel, name, &copy);
    if (!copy.empty()) return Parameter(shape, std::move(copy));
    Parameter p(shape, data, it->second.numel);
    p.release =
        std::shared_ptr<const void>(data, [this, offset = it->second.offset, n = p.size](const void*) {
          in_.release_mapped(offset, n);  // the values are converted: their pages need not stay resident
        });
    return p;
  }

 private:
  struct Entry {
    std::vector<int64_t> shape;
    int64_t offset = 0, numel = 0;
  };
  std::filesystem::path file_;
  WeightsFileReader in_;
  std::map<std::string, Entry> index_;
};

}  // namespace

Parameter part_of(Parameter p, int64_t begin, int64_t end, std::vector<int64_t> shape) {
  if (begin < 0 || end > p.size || begin > end) throw Error("internal: part outside of a parameter");
  if (!p.owned.empty()) return Parameter(std::move(shape), p.values(begin, end));
  Parameter view(std::move(shape), p.data + begin, end - begin);
  view.release = p.release;
  return view;
}

Matrix ParameterSource::matrix(const std::string& key, const MatrixLayout& layout,
                               const std::function<Parameter()>& values) {
  const auto p = values();
  if (p.size != layout.rows * layout.cols)
    throw Error("internal: matrix " + key + " made of values of another size");
  auto m = Matrix::from_f32(p.data, layout.rows, layout.cols, layout.type, layout.per_row);
  if (layout.pack) m.pack(/*keep_rows=*/false);
  return m;
}

std::unique_ptr<ParameterSource> open_weights_file(const std::filesystem::path& file) {
  if (converted_weight_type(file)) return open_converted_weights(file);
  return std::make_unique<WeightsMap>(file);
}

}  // namespace s2s::infer
