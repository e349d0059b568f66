// Weights-only files (best.bin), readable without LibTorch: "S2SWEIG1", uint64 count, then per parameter:
// uint32 name length, name, uint32 rank, int64 sizes[rank], float32 data. Little-endian (x86-64, aarch64).
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace s2s {

inline constexpr char kWeightsMagic[8] = {'S', '2', 'S', 'W', 'E', 'I', 'G', '1'};

// Whether `file` starts with the weights-file magic.
bool is_weights_file(const std::filesystem::path& file);

// Streams the parameters of a weights file one by one; every problem throws s2s::Error naming the file.
class WeightsFileReader {
 public:
  struct Entry {
    std::string name;            // parameter name, e.g. "decoder.w_rec0"
    std::vector<int64_t> shape;  // sizes
    int64_t numel() const;
  };

  explicit WeightsFileReader(const std::filesystem::path& file);
  uint64_t count() const { return count_; }
  const std::filesystem::path& file() const { return file_; }
  // Header of the next parameter; its data must be read next (read_float or read_bf16, numel values).
  Entry next();
  void read_float(float* dst, int64_t n);
  // Skips the current parameter's data (n values) and returns its offset, for read_float_at().
  int64_t skip(int64_t n);
  void read_float_at(int64_t offset, float* dst, int64_t n);
  // Reads n float32 values converted to bfloat16 bits (round to nearest even).
  void read_bf16(uint16_t* dst, int64_t n);

 private:
  template <class T>
  T value();
  void bytes(void* dst, size_t n);

  std::filesystem::path file_;
  std::ifstream in_;
  uint64_t count_ = 0;
  int64_t size_ = 0;  // file size in bytes
};

}  // namespace s2s
