#include "libtorch/model/weights_io.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "infer/weights_file.h"
#include "util/error.h"
#include "util/fs.h"

namespace s2s {

// First `limit` characters of a LibTorch message, on one line.
std::string brief_error(const std::exception& e, size_t limit) {
  const auto* c10 = dynamic_cast<const c10::Error*>(&e);
  std::string msg = c10 != nullptr ? c10->what_without_backtrace() : e.what();
  std::replace(msg.begin(), msg.end(), '\n', ' ');
  return msg.substr(0, limit);
}

namespace {

constexpr char kCheckpointMagic[8] = {'S', '2', 'S', 'C', 'K', 'P', 'T', '1'};
constexpr size_t kCheckpointHeader = 24;  // magic, payload size, checksum

}  // namespace

void save_model_archive(const std::filesystem::path& file, torch::serialize::OutputArchive& ar) {
  fs::write_atomic(file, [&](std::ostream& out) {
    const char zeros[kCheckpointHeader - sizeof kCheckpointMagic] = {};
    out.write(kCheckpointMagic, sizeof kCheckpointMagic);
    out.write(zeros, sizeof zeros);  // size and checksum, filled in below
    std::unique_ptr<XXH64_state_t, decltype(&XXH64_freeState)> hash(XXH64_createState(), XXH64_freeState);
    XXH64_reset(hash.get(), 0);
    uint64_t size = 0;
    try {
      ar.save_to([&](const void* data, size_t n) -> size_t {
        out.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
        XXH64_update(hash.get(), data, n);
        size += n;
        return out ? n : 0;
      });
    } catch (const c10::Error& e) {
      throw Error("cannot write checkpoint '" + file.string() + "': " + brief_error(e));
    }
    const uint64_t sum = XXH64_digest(hash.get());
    out.seekp(sizeof kCheckpointMagic);
    out.write(reinterpret_cast<const char*>(&size), sizeof size);
    out.write(reinterpret_cast<const char*>(&sum), sizeof sum);
  });
}

torch::serialize::InputArchive open_model_archive(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec))
    throw Error("checkpoint '" + file.string() + "' does not exist");
  auto bytes = std::make_shared<std::string>(fs::read_file(file));
  size_t begin = 0;
  if (bytes->compare(0, sizeof kCheckpointMagic, kCheckpointMagic, sizeof kCheckpointMagic) == 0) {
    uint64_t size = 0, sum = 0;
    if (bytes->size() >= kCheckpointHeader) {
      std::memcpy(&size, bytes->data() + 8, 8);
      std::memcpy(&sum, bytes->data() + 16, 8);
    }
    if (bytes->size() < kCheckpointHeader || size != bytes->size() - kCheckpointHeader) {
      throw Error("checkpoint '" + file.string() + "' is truncated (" + std::to_string(bytes->size()) +
                  " bytes); restore it from a copy or train into a new --model-dir");
    }
    begin = kCheckpointHeader;
    if (XXH64(bytes->data() + begin, size, 0) != sum) {
      throw Error("checkpoint '" + file.string() +
                  "' is damaged (checksum mismatch); restore it from a copy or train into a new --model-dir");
    }
  }
  torch::serialize::InputArchive ar;
  try {
    const size_t payload = bytes->size() - begin;
    ar.load_from(
        [bytes, begin, payload](uint64_t pos, void* buf, size_t n) -> size_t {
          if (pos >= payload) return 0;
          n = std::min<size_t>(n, payload - pos);
          std::memcpy(buf, bytes->data() + begin + pos, n);
          return n;
        },
        [payload] { return payload; });
  } catch (const std::exception& e) {  // c10::Error, or std::runtime_error from LibTorch's unpickler
    throw Error("cannot read checkpoint '" + file.string() + "': not a valid s2s checkpoint (" +
                brief_error(e, 120) + ")");
  }
  return ar;
}

void load_module_archive(torch::serialize::InputArchive& ar, torch::nn::Module& model,
                         const std::filesystem::path& file) {
  // LibTorch's load() silently resizes parameters to whatever the file holds: check shapes ourselves.
  std::vector<std::pair<std::string, std::vector<int64_t>>> expected;
  for (const auto& kv : model.named_parameters()) expected.emplace_back(kv.key(), kv.value().sizes().vec());
  torch::serialize::InputArchive sub;
  try {
    if (!ar.try_read("model", sub)) throw Error("checkpoint '" + file.string() + "' has no model weights");
    torch::NoGradGuard no_grad;
    model.load(sub);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("checkpoint '" + file.string() +
                "' does not match the model in config.yml: " + brief_error(e));
  }
  const auto loaded = model.named_parameters();
  for (const auto& [name, shape] : expected) {
    if (loaded[name].sizes().vec() != shape) {
      throw Error("checkpoint '" + file.string() + "' does not match the model in config.yml: parameter " +
                  name + " has shape " + c10::str(loaded[name].sizes()) + ", the config expects " +
                  c10::str(c10::IntArrayRef(shape)));
    }
  }
}

namespace {

// ---- Weights-only files (infer/weights_file.h): read straight into the parameters, converting to bf16 on
// the fly when asked: no second copy of the model in memory.

void read_weights_file(const std::filesystem::path& file, torch::nn::Module& model, torch::Dtype dtype) {
  torch::NoGradGuard no_grad;
  std::unordered_map<std::string, torch::Tensor> params;
  for (auto& kv : model.named_parameters()) {
    auto p = kv.value();
    if (p.scalar_type() != dtype || !p.is_contiguous())
      p.set_data(torch::empty(p.sizes(), p.options().dtype(dtype)));
    params.emplace(kv.key(), p);
  }
  const auto mismatch = "weights file '" + file.string() + "' does not match the model in config.yml: ";
  WeightsFileReader in(file);
  if (in.count() != params.size()) {
    throw Error(mismatch + std::to_string(in.count()) + " parameters, the config expects " +
                std::to_string(params.size()));
  }
  std::unordered_set<std::string> seen;  // with count == params.size(), every parameter is read exactly once
  for (uint64_t i = 0; i < in.count(); ++i) {
    const auto entry = in.next();
    const auto it = params.find(entry.name);
    if (it == params.end()) throw Error(mismatch + "unexpected parameter '" + entry.name + "'");
    if (!seen.insert(entry.name).second) {
      throw Error("weights file '" + file.string() + "' is damaged (parameter " + entry.name +
                  " appears twice)");
    }
    auto& p = it->second;
    if (p.sizes().vec() != entry.shape) {
      throw Error(mismatch + "parameter " + entry.name + " has shape " +
                  c10::str(c10::IntArrayRef(entry.shape)) + ", the config expects " + c10::str(p.sizes()));
    }
    if (p.scalar_type() == torch::kFloat) {
      in.read_float(p.data_ptr<float>(), p.numel());
    } else {
      in.read_bf16(reinterpret_cast<uint16_t*>(p.data_ptr<at::BFloat16>()), p.numel());
    }
  }
}

void write_module_weights(const std::filesystem::path& file, torch::nn::Module& model) {
  const auto named = model.named_parameters();
  write_weights_file(file, named.size(), [&](uint64_t i, const WriteParameter& write) {
    const auto& kv = named[i];
    const auto data = kv.value().detach().to(torch::kCPU, torch::kFloat).contiguous();
    write(kv.key(), data.sizes().vec(), data.data_ptr<float>());
  });
}

}  // namespace

namespace {

class ModuleParameters : public infer::ParameterSource {
 public:
  explicit ModuleParameters(const torch::nn::Module& model) : params_(model.named_parameters()) {}
  infer::Parameter get(const std::string& name, const std::vector<int64_t>& shape) override {
    const auto* t = params_.find(name);
    if (t == nullptr || t->sizes().vec() != shape) {
      throw Error("the model in memory has no parameter " + name + " of the shape the native engine expects");
    }
    const auto cpu = t->detach().to(torch::kCPU, torch::kFloat).contiguous();
    return infer::Parameter(shape,
                            std::vector<float>(cpu.data_ptr<float>(), cpu.data_ptr<float>() + cpu.numel()));
  }

 private:
  torch::OrderedDict<std::string, torch::Tensor> params_;
};

}  // namespace

std::unique_ptr<infer::ParameterSource> module_parameters(const torch::nn::Module& model) {
  return std::make_unique<ModuleParameters>(model);
}

void save_weights(const std::filesystem::path& file, torch::nn::Module& model) {
  write_module_weights(file, model);
}

void load_weights(const std::filesystem::path& file, torch::nn::Module& model, torch::Dtype dtype) {
  if (is_weights_file(file)) return read_weights_file(file, model, dtype);
  auto ar = open_model_archive(file);  // a training checkpoint, or a LibTorch archive from s2s before 0.2
  load_module_archive(ar, model, file);
  model.to(dtype);
}

}  // namespace s2s
