#include "infer/converted_weights.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <tuple>

#include "infer/weights_file.h"
#include "util/error.h"
#include "util/fs.h"

namespace s2s::infer {
namespace {

enum Kind : uint32_t { kParameter = 0, kMatrix = 1 };

// Data starts at a multiple of this many bytes of the file.
constexpr int64_t kAlignment = 64;

uint32_t type_code(WeightType type) {
  switch (type) {
    case WeightType::kBf16:
      return 1;
    case WeightType::kInt8:
      return 2;
    case WeightType::kF32:
      break;
  }
  throw Error("internal: float32 weights are not converted");
}

const char* type_name(WeightType type) {
  return type == WeightType::kInt8 ? "int8" : type == WeightType::kBf16 ? "bf16" : "fp32";
}

// Bytes of a matrix's data: int8 scales then weights, or bf16 weights.
int64_t matrix_bytes(WeightType type, int64_t rows, int64_t cols, bool per_row) {
  if (type == WeightType::kBf16) return rows * cols * 2;
  return (per_row ? rows : cols) * 4 + rows * cols;
}

// Where an entry's data lies in the mapped file.
struct Entry {
  std::vector<int64_t> shape;  // parameter: its sizes; matrix: {rows, cols}
  int64_t offset = 0, bytes = 0;
};

// A converted file's entries by (kind, name, per_row), read from a read-only mapping of it.
class ConvertedMap : public ParameterSource {
 public:
  explicit ConvertedMap(const std::filesystem::path& file) : file_(file), map_(fs::map_file(file)) {
    char magic[8];
    read(magic, sizeof magic);
    if (std::memcmp(magic, kConvertedMagic, sizeof magic) != 0) damaged("magic");
    const auto code = value<uint32_t>();
    if (code != 1 && code != 2) damaged("weight type");
    type_ = code == 1 ? WeightType::kBf16 : WeightType::kInt8;
    value<uint32_t>();
    const auto count = value<uint64_t>();
    for (uint64_t i = 0; i < count; ++i) read_entry();
  }

  Parameter get(const std::string& name, const std::vector<int64_t>& shape) override {
    const auto& e = find(kParameter, name, false, shape);
    const char* data = checked(e, name);
    return Parameter(shape, reinterpret_cast<const float*>(data), e.bytes / 4);
  }

  Matrix matrix(const std::string& key, const MatrixLayout& layout,
                const std::function<Parameter()>&) override {
    if (layout.type != type_) {
      throw Error("weights file '" + file_.string() + "' holds " + type_name(type_) +
                  " weights (s2s convert), not " + type_name(layout.type) +
                  ": translate it with --precision " + type_name(type_) + " or auto");
    }
    const auto& e = find(kMatrix, key, layout.per_row, {layout.rows, layout.cols});
    const char* data = checked(e, key);
    const auto scales = layout.type == WeightType::kInt8 ? (layout.per_row ? layout.rows : layout.cols) : 0;
    auto m = Matrix::from_stored(layout.type, data + scales * 4, reinterpret_cast<const float*>(data),
                                 layout.rows, layout.cols, layout.per_row, layout.pack);
    release(e);
    return m;
  }

 private:
  [[noreturn]] void damaged(const std::string& what) const {
    throw Error("weights file '" + file_.string() + "' is truncated or damaged (" + what + ")");
  }
  void read(void* dst, int64_t n) {
    if (n < 0 || at_ + n > map_.size) damaged("ends early");
    std::memcpy(dst, map_.data.get() + at_, static_cast<size_t>(n));
    at_ += n;
  }
  template <class T>
  T value() {
    T v;
    read(&v, sizeof v);
    return v;
  }
  // A size read from the file: non-negative and below 2^31, so that a matrix's bytes, up to 2 rows cols,
  // cannot overflow.
  int64_t size_value() {
    const auto v = value<int64_t>();
    if (v < 0 || v >= (int64_t{1} << 31)) damaged("size");
    return v;
  }

  void read_entry() {
    const auto kind = value<uint32_t>();
    const auto length = value<uint32_t>();
    if (kind > kMatrix || length > 4096) damaged("entry header");
    std::string name(length, '\0');
    read(name.data(), length);
    Entry e;
    bool per_row = false;
    if (kind == kParameter) {
      const auto rank = value<uint32_t>();
      if (rank > 8) damaged("rank of " + name);
      int64_t numel = 1;
      for (uint32_t r = 0; r < rank; ++r) {
        e.shape.push_back(size_value());
        if (e.shape.back() > 0 && numel > map_.size / e.shape.back()) damaged("shape of " + name);
        numel *= e.shape.back();
      }
      e.bytes = numel * 4;
    } else {
      e.shape = {size_value(), size_value()};
      const auto flag = value<uint32_t>();
      if (flag > 1) damaged("matrix " + name);
      per_row = flag == 1;
      e.bytes = matrix_bytes(type_, e.shape[0], e.shape[1], per_row);
    }
    e.offset = (at_ + kAlignment - 1) / kAlignment * kAlignment;
    at_ = e.offset;
    if (e.bytes > map_.size - at_ - 8) damaged("data of " + name);
    at_ += e.bytes + 8;  // the data and its checksum
    if (!entries_.emplace(std::tuple{kind, name, per_row}, std::move(e)).second) damaged(name + " twice");
  }

  const Entry& find(uint32_t kind, const std::string& name, bool per_row, const std::vector<int64_t>& shape) {
    const auto it = entries_.find({kind, name, per_row});
    const auto mismatch = "weights file '" + file_.string() + "' does not match the model in config.yml: ";
    if (it == entries_.end())
      throw Error(mismatch + (kind == kMatrix ? "matrix " : "parameter ") + name + " is missing");
    if (it->second.shape != shape)
      throw Error(mismatch + (kind == kMatrix ? "matrix " : "parameter ") + name + " has another shape");
    return it->second;
  }

  // The entry's data, once its checksum is verified.
  const char* checked(const Entry& e, const std::string& name) const {
    const char* data = map_.data.get() + e.offset;
    uint64_t stored;
    std::memcpy(&stored, data + e.bytes, sizeof stored);
    if (stored != weights_checksum(data, static_cast<size_t>(e.bytes))) {
      throw Error("weights file '" + file_.string() + "' is damaged (checksum mismatch in " + name +
                  "); convert it again");
    }
    return data;
  }

  // Drops the mapped pages wholly inside a copied entry from this process's memory.
  void release(const Entry& e) const { fs::drop_mapped_pages(map_.data.get() + e.offset, e.bytes); }

  std::filesystem::path file_;
  fs::MappedFile map_;
  int64_t at_ = 0;  // read position of the header scan
  WeightType type_ = WeightType::kInt8;
  std::map<std::tuple<uint32_t, std::string, bool>, Entry> entries_;
};

}  // namespace

std::optional<WeightType> converted_weight_type(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  char magic[8] = {};
  uint32_t code = 0;
  if (!in.read(magic, sizeof magic) || std::memcmp(magic, kConvertedMagic, sizeof magic) != 0) return {};
  in.read(reinterpret_cast<char*>(&code), sizeof code);
  if (code == 1) return WeightType::kBf16;
  if (code == 2) return WeightType::kInt8;
  throw Error("weights file '" + file.string() + "' is truncated or damaged (weight type)");
}

std::unique_ptr<ParameterSource> open_converted_weights(const std::filesystem::path& file) {
  return std::make_unique<ConvertedMap>(file);
}

Parameter ConvertingSource::get(const std::string& name, const std::vector<int64_t>& shape) {
  auto p = inner_.get(name, shape);
  const bool seen =
      std::any_of(kept_.begin(), kept_.end(), [&](const Kept& k) { return !k.is_matrix && k.name == name; });
  if (making_ == 0 && !seen) kept_.push_back({name, shape, p.values(), {}, false});
  return p;
}

Matrix ConvertingSource::matrix(const std::string& key, const MatrixLayout& layout,
                                const std::function<Parameter()>& values) {
  auto plain = layout;
  plain.pack = false;  // kept as made, packed afterwards
  ++making_;
  Matrix m;
  try {
    m = ParameterSource::matrix(key, plain, values);
  } catch (...) {
    --making_;
    throw;
  }
  --making_;
  const bool seen = std::any_of(kept_.begin(), kept_.end(), [&](const Kept& k) {
    return k.is_matrix && k.name == key && k.matrix.scale_per_row == layout.per_row;
  });
  if (!seen) kept_.push_back({key, {}, {}, m, true});
  if (layout.pack) m.pack(/*keep_rows=*/false);
  return m;
}

void ConvertingSource::write(const std::filesystem::path& file, WeightType type) const {
  fs::write_atomic(file, [&](std::ostream& out) {
    int64_t offset = 0;  // bytes written so far
    auto bytes = [&](const void* p, int64_t n) {
      out.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
      offset += n;
    };
    auto put = [&](const auto& v) { bytes(&v, sizeof v); };
    bytes(kConvertedMagic, sizeof kConvertedMagic);
    put(type_code(type)), put(uint32_t{0}), put(static_cast<uint64_t>(kept_.size()));
    std::vector<char> data;  // one entry's data, for its checksum
    for (const auto& k : kept_) {
      put(static_cast<uint32_t>(k.is_matrix ? kMatrix : kParameter));
      put(static_cast<uint32_t>(k.name.size()));
      bytes(k.name.data(), static_cast<int64_t>(k.name.size()));
      auto append = [&](const auto& v) {
        const auto* p = reinterpret_cast<const char*>(v.data());
        data.insert(data.end(), p, p + v.size() * sizeof(v[0]));
      };
      data.clear();
      if (k.is_matrix) {
        const auto& m = k.matrix;
        if (m.type != type || m.packed)
          throw Error("internal: matrix " + k.name + " to convert is not plain");
        put(m.rows), put(m.cols), put(static_cast<uint32_t>(m.scale_per_row));
        if (m.is_int8()) append(m.scales), append(m.s8);
        if (m.is_bf16()) append(m.bf16);
      } else {
        put(static_cast<uint32_t>(k.shape.size()));
        for (const auto s : k.shape) put(s);
        append(k.values);
      }
      const char zeros[kAlignment] = {};
      bytes(zeros, (kAlignment - offset % kAlignment) % kAlignment);
      bytes(data.data(), static_cast<int64_t>(data.size()));
      put(weights_checksum(data.data(), data.size()));
    }
  });
}

}  // namespace s2s::infer
