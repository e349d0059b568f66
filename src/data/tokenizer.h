// SentencePiece tokenizer. SentencePiece lives in libs2s_spm.so, loaded once per process with dlmopen() into
// its own link-map namespace so that its bundled protobuf never meets LibTorch's (see spm_shim.cpp). This
// header and tokenizer.cpp are the only code that knows about that.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace s2s {

// A loaded SentencePiece model. Immutable; all const methods are safe to call concurrently.
class Tokenizer {
 public:
  // Loads a .model file. Throws s2s::Error naming the file when it is missing, a directory, empty or not a
  // SentencePiece model, or when the shim library cannot be loaded.
  static std::shared_ptr<const Tokenizer> load(const std::filesystem::path& model_file);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Text -> piece ids, without BOS/EOS. Empty text gives no ids.
  std::vector<int> encode(std::string_view text) const;
  // Text -> piece strings (e.g. "▁Haus"), for debugging; unknown spans show as the unk piece.
  std::vector<std::string> encode_pieces(std::string_view text) const;
  // Ids -> text; pad/bos/eos decode to nothing. Throws s2s::Error for an id outside [0, vocab_size).
  std::string decode(const std::vector<int>& ids) const;
  // The piece string of one id; throws s2s::Error when out of range.
  std::string id_to_piece(int id) const;

  // Number of pieces; ids are in [0, vocab_size). Special ids are -1 when the model has no such symbol.
  int vocab_size() const { return vocab_size_; }
  int pad_id() const { return pad_id_; }
  int unk_id() const { return unk_id_; }
  int bos_id() const { return bos_id_; }
  int eos_id() const { return eos_id_; }
  std::filesystem::path path() const { return path_; }

 private:
  Tokenizer() = default;

  void* handle_ = nullptr;  // SentencePieceProcessor inside the shim's namespace
  std::filesystem::path path_;
  int vocab_size_ = 0;
  int pad_id_ = -1;
  int unk_id_ = -1;
  int bos_id_ = -1;
  int eos_id_ = -1;
};

namespace detail {

// Runs SentencePieceTrainer in the shim and writes the .model and .vocab files to the given paths.
// `kwargs` are trainer flags without "--" and without model_prefix (values may contain spaces, not
// newlines); `seed` goes to SentencePiece's SetRandomGeneratorSeed. Throws s2s::Error carrying
// SentencePiece's message (used by vocab.cpp, which adds context).
void spm_train(const std::vector<std::pair<std::string, std::string>>& kwargs, uint32_t seed,
               const std::filesystem::path& model_out, const std::filesystem::path& vocab_out);

// Where the shim library is looked for, in order: $S2S_SPM_LIB alone when set; otherwise libs2s_spm.so
// next to /proc/self/exe, ../lib/libs2s_spm.so relative to it, and the build-tree path.
std::vector<std::filesystem::path> spm_shim_candidates();

}  // namespace detail

}  // namespace s2s
