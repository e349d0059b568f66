#include "infer/parameters.h"

#include <map>

#include "infer/weights_file.h"
#include "util/error.h"

namespace s2s::infer {
namespace {

// The parameters of a weights file by name, read on demand: only one float32 parameter is in memory at a
// time next to the converted model (fewer page faults and a lower peak than reading the whole file).
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
    Parameter l{shape, std::vector<float>(static_cast<size_t>(it->second.numel))};
    in_.read_float_at(it->second.offset, l.data.data(), it->second.numel, name);
    return l;
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

std::unique_ptr<ParameterSource> open_weights_file(const std::filesystem::path& file) {
  return std::make_unique<WeightsMap>(file);
}

}  // namespace s2s::infer
