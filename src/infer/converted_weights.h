// Weights converted ahead for the native engine (`s2s convert`): every matrix the engine multiplies, already
// in its precision (bf16, or int8 with per-output-channel scales), and the float32 parameters it reads as
// they are (biases, norms). Loading one skips reading the float32 file, its quantization and most of its
// checksumming; the file is 2x (bf16) or 4x (int8) smaller than best.bin. Such a file replaces best.bin in
// a model dir of its own, and only the native engine reads it.
//
// Format: "S2SCONV1", uint32 weight type (1 bf16, 2 int8), uint32 0, uint64 count, then per entry:
//   uint32 kind (0 float32 parameter, 1 matrix), uint32 name length, name,
//   parameter: uint32 rank, int64 sizes[rank]; matrix: int64 rows, int64 cols, uint32 per_row,
//   zero bytes up to the next multiple of 64 of the file offset, the data, uint64 XXH64 of the data bytes.
// Data: a parameter's float32 values; a matrix's int8 scales (float32, [rows] when per_row, else [cols])
// followed by its weights [rows, cols] row-major (int8 or bf16 bits). Little-endian.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "infer/gemm.h"
#include "infer/parameters.h"

namespace s2s::infer {

inline constexpr char kConvertedMagic[8] = {'S', '2', 'S', 'C', 'O', 'N', 'V', '1'};

// The weight type of a converted file; nothing for any other file (best.bin of a training, a missing file).
std::optional<WeightType> converted_weight_type(const std::filesystem::path& file);

// The parameters and matrices of converted file `file`, read from a read-only mapping of it, each checked
// against its checksum when read. Every problem throws s2s::Error naming the file: damage, a matrix asked
// for in another precision than stored, a model that does not match.
std::unique_ptr<ParameterSource> open_converted_weights(const std::filesystem::path& file);

// A source that hands out the float32 parameters of `inner` and keeps what a model loaded from it reads:
// the matrices as made, and the parameters it reads outside of them. write() then stores them converted.
class ConvertingSource : public ParameterSource {
 public:
  explicit ConvertingSource(ParameterSource& inner) : inner_(inner) {}
  Parameter get(const std::string& name, const std::vector<int64_t>& shape) override;
  Matrix matrix(const std::string& key, const MatrixLayout& layout,
                const std::function<Parameter()>& values) override;
  // Writes what was kept to `file` atomically; every matrix must be of `type` (bf16 or int8).
  void write(const std::filesystem::path& file, WeightType type) const;

 private:
  struct Kept {
    std::string name;
    std::vector<int64_t> shape;  // parameters
    std::vector<float> values;   // parameters
    Matrix matrix;               // matrices (not packed)
    bool is_matrix = false;
  };
  ParameterSource& inner_;
  std::vector<Kept> kept_;
  int making_ = 0;  // > 0 while a matrix's values() reads parameters: those are not kept
};

}  // namespace s2s::infer
