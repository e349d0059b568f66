#include "infer/weights_file.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include <sys/stat.h>
#include <xxhash.h>

#include "infer/converted_weights.h"
#include "kernels/kernels.h"
#include "util/error.h"
#include "util/fs.h"

namespace s2s {

namespace {

bool is_magic(const char* magic, const char (&expected)[8]) {
  return std::memcmp(magic, expected, sizeof expected) == 0;
}

// Data starts at a multiple of this many bytes of the file (version 3).
constexpr int64_t kDataAlignment = 64;

// Zero bytes after a parameter header ending at file offset `end`, up to the data's aligned start.
int64_t alignment_padding(int64_t end) {
  return (kDataAlignment - end % kDataAlignment) % kDataAlignment;
}

}  // namespace

uint64_t weights_checksum(const void* data, size_t bytes) {
  return XXH64(data, bytes, 0);
}

bool is_weights_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  char magic[sizeof kWeightsMagic] = {};
  return in.read(magic, sizeof magic) &&
         (is_magic(magic, kWeightsMagic) || is_magic(magic, kWeightsMagicV2) ||
          is_magic(magic, kWeightsMagicV1));
}

int64_t WeightsFileReader::Entry::numel() const {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

WeightsFileReader::WeightsFileReader(const std::filesystem::path& file)
    : file_(file), in_(file, std::ios::binary) {
  if (!in_) throw Error("cannot open weights '" + file.string() + "'");
  char magic[sizeof kWeightsMagic];
  bytes(magic, sizeof magic);
  if (is_magic(magic, infer::kConvertedMagic)) {
    throw Error("'" + file.string() +
                "' holds weights converted for the native CPU engine (s2s convert), which alone reads them; "
                "use the float32 best.bin of the model dir it was converted from");
  }
  version_ = is_magic(magic, kWeightsMagic) ? 3 : is_magic(magic, kWeightsMagicV2) ? 2 : 1;
  if (version_ == 1 && !is_magic(magic, kWeightsMagicV1))
    throw Error("'" + file.string() + "' is not an s2s weights file");
  checksums_ = version_ >= 2;
  count_ = value<uint64_t>();
  std::error_code ec;
  size_ = static_cast<int64_t>(std::filesystem::file_size(file, ec));
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0) inode_ = st.st_ino, device_ = st.st_dev;
}

template <class T>
T WeightsFileReader::value() {
  T v;
  bytes(&v, sizeof v);
  return v;
}

void WeightsFileReader::bytes(void* dst, size_t n) {
  if (!in_.read(static_cast<char*>(dst), static_cast<std::streamsize>(n)))
    throw Error("weights file '" + file_.string() + "' is truncated or damaged");
}

WeightsFileReader::Entry WeightsFileReader::next() {
  Entry e;
  const auto n = value<uint32_t>();
  if (n > 4096) throw Error("weights file '" + file_.string() + "' is damaged (parameter name length)");
  e.name.assign(n, '\0');
  bytes(e.name.data(), n);
  const auto rank = value<uint32_t>();
  if (rank > 8) throw Error("weights file '" + file_.string() + "' is damaged (rank of " + e.name + ")");
  e.shape.resize(rank);
  int64_t numel = 1;
  const int64_t limit = size_ / 4;  // no parameter holds more floats than the file has room for
  for (auto& s : e.shape) {
    s = value<int64_t>();
    if (s < 0 || (s > 0 && numel > limit / s))  // also keeps numel() from overflowing
      throw Error("weights file '" + file_.string() + "' is damaged (shape of " + e.name + ")");
    numel *= s;
  }
  if (version_ >= 3) {  // skip the padding before the aligned data
    const auto end = static_cast<int64_t>(in_.tellg());
    if (end < 0 || !in_.seekg(alignment_padding(end), std::ios::cur))
      throw Error("weights file '" + file_.string() + "' is truncated or damaged");
  }
  current_ = e.name;
  return e;
}

void WeightsFileReader::verify(uint64_t computed, const std::string& name) {
  if (checksums_) check_checksum(value<uint64_t>(), computed, name);
}

void WeightsFileReader::check_checksum(uint64_t stored, uint64_t computed, const std::string& name) const {
  if (stored != computed) {
    throw Error("weights file '" + file_.string() + "' is damaged (checksum mismatch in parameter " + name +
                "); retrain or restore it from a copy");
  }
}

void WeightsFileReader::read_float(float* dst, int64_t n) {
  const auto size = static_cast<size_t>(n) * 4;
  bytes(dst, size);
  verify(weights_checksum(dst, size), current_);
}

int64_t WeightsFileReader::skip(int64_t n) {
  const auto offset = static_cast<int64_t>(in_.tellg());
  const int64_t stored = n * 4 + (checksums_ ? 8 : 0);
  if (offset < 0 || offset + stored > size_ || !in_.seekg(stored, std::ios::cur))
    throw Error("weights file '" + file_.string() + "' is truncated or damaged");
  return offset;
}

const float* WeightsFileReader::mapped_float_at(int64_t offset, int64_t n, const std::string& name,
                                                std::vector<float>* copy) {
  if (!map_) {
    auto mapped = fs::map_file(file_);
    if (mapped.inode != inode_ || mapped.device != device_ || mapped.size != size_) {
      throw Error("weights file '" + file_.string() +
                  "' was replaced while it was read (a training saving it?); run again");
    }
    if (!mapped.data) throw Error("weights file '" + file_.string() + "' is truncated or damaged");
    map_ = std::move(mapped.data);
  }
  const auto size = static_cast<size_t>(n) * 4;
  if (offset < 0 || offset + static_cast<int64_t>(size) + (checksums_ ? 8 : 0) > size_)
    throw Error("weights file '" + file_.string() + "' is truncated or damaged");
  const char* data = map_.get() + offset;
  if (checksums_) {
    uint64_t stored;
    std::memcpy(&stored, data + size, sizeof stored);
    check_checksum(stored, weights_checksum(data, size), name);
  }
  if (reinterpret_cast<uintptr_t>(data) % alignof(float) == 0) return reinterpret_cast<const float*>(data);
  copy->resize(static_cast<size_t>(n));
  std::memcpy(copy->data(), data, size);
  release_mapped(offset, n);
  return copy->data();
}

void WeightsFileReader::release_mapped(int64_t offset, int64_t n) {
  if (map_) fs::drop_mapped_pages(map_.get() + offset, n * 4);
}

void WeightsFileReader::read_bf16(uint16_t* dst, int64_t n) {
  std::vector<float> chunk(static_cast<size_t>(std::min<int64_t>(n, 1 << 18)));
  std::unique_ptr<XXH64_state_t, decltype(&XXH64_freeState)> hash(XXH64_createState(), XXH64_freeState);
  XXH64_reset(hash.get(), 0);
  for (int64_t done = 0; done < n;) {
    const auto k = std::min<int64_t>(n - done, static_cast<int64_t>(chunk.size()));
    bytes(chunk.data(), static_cast<size_t>(k) * 4);
    XXH64_update(hash.get(), chunk.data(), static_cast<size_t>(k) * 4);
    kernels::to_bf16(chunk.data(), dst + done, k);
    done += k;
  }
  verify(XXH64_digest(hash.get()), current_);
}

void write_weights_file(const std::filesystem::path& file, uint64_t count,
                        const std::function<void(uint64_t i, const WriteParameter& write)>& entry) {
  fs::write_atomic(file, [&](std::ostream& out) {
    int64_t offset = 0;  // bytes written so far
    auto bytes = [&](const void* p, size_t n) {
      out.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
      offset += static_cast<int64_t>(n);
    };
    auto put = [&](const auto& v) { bytes(&v, sizeof v); };
    bytes(kWeightsMagic, sizeof kWeightsMagic);
    put(count);
    for (uint64_t i = 0; i < count; ++i) {
      entry(i, [&](const std::string& name, const std::vector<int64_t>& shape, const float* data) {
        int64_t numel = 1;
        for (auto s : shape) numel *= s;
        put(static_cast<uint32_t>(name.size()));
        bytes(name.data(), name.size());
        put(static_cast<uint32_t>(shape.size()));
        for (auto s : shape) put(s);
        const char zeros[kDataAlignment] = {};
        bytes(zeros, static_cast<size_t>(alignment_padding(offset)));
        const auto size = static_cast<size_t>(numel) * 4;
        bytes(data, size);
        put(weights_checksum(data, size));
      });
    }
  });
}

void average_weights_files(const std::vector<std::filesystem::path>& inputs,
                           const std::filesystem::path& output) {
  if (inputs.empty()) throw Error("nothing to average: no weights files given");
  std::vector<std::unique_ptr<WeightsFileReader>> readers;
  for (const auto& input : inputs) {
    readers.push_back(std::make_unique<WeightsFileReader>(input));
    if (readers.back()->count() != readers.front()->count()) {
      throw Error("cannot average '" + input.string() + "' with '" + inputs.front().string() +
                  "': " + std::to_string(readers.back()->count()) + " parameters against " +
                  std::to_string(readers.front()->count()));
    }
  }
  std::vector<double> sum;
  std::vector<float> values, mean;
  write_weights_file(output, readers.front()->count(), [&](uint64_t, const WriteParameter& write) {
    const auto first = readers.front()->next();
    sum.assign(static_cast<size_t>(first.numel()), 0.0);
    for (size_t f = 0; f < readers.size(); ++f) {
      const auto entry = f == 0 ? first : readers[f]->next();
      if (entry.name != first.name || entry.shape != first.shape) {
        throw Error("cannot average '" + inputs[f].string() + "' with '" + inputs.front().string() +
                    "': parameter " + entry.name + " where the first has " + first.name + " (other model?)");
      }
      values.resize(sum.size());
      readers[f]->read_float(values.data(), first.numel());
      for (size_t k = 0; k < sum.size(); ++k) sum[k] += values[k];
    }
    mean.resize(sum.size());
    for (size_t k = 0; k < sum.size(); ++k)
      mean[k] = static_cast<float>(sum[k] / static_cast<double>(readers.size()));
    write(first.name, first.shape, mean.data());
  });
}

}  // namespace s2s
