// Weights-only files (best.bin), readable without LibTorch: "S2SWEIG3", uint64 count, then per parameter:
// uint32 name length, name, uint32 rank, int64 sizes[rank], zero bytes up to the next multiple of 64 of the
// file offset, float32 data, uint64 XXH64 of the data bytes (seed 0). Little-endian (x86-64, aarch64).
// The alignment lets the native engine read the data in place from a read-only mapping of the file.
// "S2SWEIG2" (no alignment) and "S2SWEIG1" (no checksums) files of earlier s2s builds still load.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace s2s {

inline constexpr char kWeightsMagic[8] = {'S', '2', 'S', 'W', 'E', 'I', 'G', '3'};
inline constexpr char kWeightsMagicV2[8] = {'S', '2', 'S', 'W', 'E', 'I', 'G', '2'};
inline constexpr char kWeightsMagicV1[8] = {'S', '2', 'S', 'W', 'E', 'I', 'G', '1'};

// The checksum stored after each parameter's data.
uint64_t weights_checksum(const void* data, size_t bytes);

// Whether `file` starts with the weights-file magic.
bool is_weights_file(const std::filesystem::path& file);

// Streams the parameters of a weights file one by one; every problem throws s2s::Error naming the file,
// a checksum mismatch included (checked as each parameter's data is read).
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
  // Skips the current parameter's data (n values) and returns its offset, for mapped_float_at().
  int64_t skip(int64_t n);
  // Reads n float32 values converted to bfloat16 bits (round to nearest even).
  void read_bf16(uint16_t* dst, int64_t n);
  // The n values at `offset` (from skip()) of parameter `name`, checksum-verified, from a read-only mapping
  // of the file (made on the first call, kept while the reader lives): a pointer into the mapping where the
  // data is float-aligned (version 3), else (older files) a pointer to a copy in *copy. Throws if the path
  // names another file by then (replaced by a training's save): the offsets read belong to the first.
  const float* mapped_float_at(int64_t offset, int64_t n, const std::string& name, std::vector<float>* copy);
  // Drops the mapped pages wholly inside those n values from this process's memory (they stay in the page
  // cache and read again if touched): the converted model, not the file, then makes up the resident set.
  void release_mapped(int64_t offset, int64_t n);

 private:
  template <class T>
  T value();
  void bytes(void* dst, size_t n);
  // Reads the stored checksum of data just read and compares it with `computed`.
  void verify(uint64_t computed, const std::string& name);
  // Throws s2s::Error naming the file and parameter unless the checksums agree.
  void check_checksum(uint64_t stored, uint64_t computed, const std::string& name) const;

  std::filesystem::path file_;
  std::ifstream in_;
  uint64_t count_ = 0;
  int64_t size_ = 0;                 // file size in bytes
  uint64_t inode_ = 0, device_ = 0;  // which file `file_` named when opened
  int version_ = 3;                  // 1: no checksums, 2: no alignment
  bool checksums_ = true;            // false for version-1 files
  std::string current_;              // name of the parameter whose data is read next
  std::shared_ptr<const char> map_;  // the file mapped read-only (mapped_float_at), unmapped on release
};

// Writes a weights file atomically (temp file, fsync, rename), one parameter at a time: `entry(i, write)`
// must call write(name, shape, data) for parameter i of `count`; `data` (float32, row-major) only has to live
// during that call.
using WriteParameter =
    std::function<void(const std::string& name, const std::vector<int64_t>& shape, const float* data)>;
void write_weights_file(const std::filesystem::path& file, uint64_t count,
                        const std::function<void(uint64_t i, const WriteParameter& write)>& entry);

// Writes the element-wise mean of weights files with the same parameters (names, order and shapes), e.g.
// the last checkpoints of a run (checkpoint averaging). Throws s2s::Error naming the file and parameter that
// differ. Sums in double; one parameter of each file is in memory at a time.
void average_weights_files(const std::vector<std::filesystem::path>& inputs,
                           const std::filesystem::path& output);

}  // namespace s2s
