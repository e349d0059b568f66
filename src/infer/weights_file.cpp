#include "infer/weights_file.h"

#include <algorithm>
#include <cstring>

#include "kernels/kernels.h"
#include "util/error.h"

namespace s2s {

bool is_weights_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  char magic[sizeof kWeightsMagic] = {};
  return in.read(magic, sizeof magic) && std::memcmp(magic, kWeightsMagic, sizeof magic) == 0;
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
  if (std::memcmp(magic, kWeightsMagic, sizeof magic) != 0)
    throw Error("'" + file.string() + "' is not an s2s weights file");
  count_ = value<uint64_t>();
  std::error_code ec;
  size_ = static_cast<int64_t>(std::filesystem::file_size(file, ec));
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
  for (auto& s : e.shape) {
    s = value<int64_t>();
    if (s < 0 || s > (int64_t{1} << 32))
      throw Error("weights file '" + file_.string() + "' is damaged (shape of " + e.name + ")");
  }
  return e;
}

void WeightsFileReader::read_float(float* dst, int64_t n) {
  bytes(dst, static_cast<size_t>(n) * 4);
}

int64_t WeightsFileReader::skip(int64_t n) {
  const auto offset = static_cast<int64_t>(in_.tellg());
  if (offset < 0 || offset + n * 4 > size_ || !in_.seekg(n * 4, std::ios::cur))
    throw Error("weights file '" + file_.string() + "' is truncated or damaged");
  return offset;
}

void WeightsFileReader::read_float_at(int64_t offset, float* dst, int64_t n) {
  in_.clear();
  if (!in_.seekg(offset)) throw Error("weights file '" + file_.string() + "' is truncated or damaged");
  read_float(dst, n);
}

void WeightsFileReader::read_bf16(uint16_t* dst, int64_t n) {
  std::vector<float> chunk(static_cast<size_t>(std::min<int64_t>(n, 1 << 18)));
  for (int64_t done = 0; done < n;) {
    const auto k = std::min<int64_t>(n - done, static_cast<int64_t>(chunk.size()));
    read_float(chunk.data(), k);
    kernels::to_bf16(chunk.data(), dst + done, k);
    done += k;
  }
}

}  // namespace s2s
