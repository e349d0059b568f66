// libs2s_spm.so: SentencePiece behind a plain C ABI.
//
// Why: Debian's libsentencepiece carries its own protobuf-lite (3.14) and exports its symbols, while
// LibTorch links protobuf 3.21. Linked into one executable the two clash (static-init segfaults or
// "compiled against version 3.14.0" aborts). src/data/tokenizer.cpp therefore loads this library with
// dlmopen(LM_ID_NEWLM), i.e. in its own link-map namespace with its own copies of libc, libstdc++,
// SentencePiece and protobuf. Consequences for this interface:
//   * only plain C types cross it: char buffers, int arrays, sizes, an opaque handle;
//   * memory is owned by the caller (output buffers) or stays inside (the handle, freed by
//     s2s_spm_free); nothing malloc'd here is ever freed over there, nor the other way round;
//   * no C++ exception may cross it: every entry point catches everything.
// Buffer convention: functions that produce variable-size output write at most `cap` elements and return
// the number needed (excluding the NUL for text); the caller grows its buffer and retries when the result
// exceeds `cap`. A negative result means failure, with a message in `err` (always NUL-terminated when
// err_cap > 0).
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#define S2S_SPM_API extern "C" __attribute__((visibility("default")))

namespace {

// Bumped whenever a signature below changes; tokenizer.cpp refuses a shim with another version.
constexpr int kAbiVersion = 1;

void set_error(char* err, size_t err_cap, const std::string& message) {
  if (err == nullptr || err_cap == 0) return;
  const size_t n = std::min(message.size(), err_cap - 1);
  std::memcpy(err, message.data(), n);
  err[n] = '\0';
}

void set_error_from_exception(char* err, size_t err_cap) {
  try {
    throw;
  } catch (const std::exception& e) {
    set_error(err, err_cap, std::string("internal error in SentencePiece shim: ") + e.what());
  } catch (...) {
    set_error(err, err_cap, "internal error in SentencePiece shim: unknown exception");
  }
}

// Copies `s` into a caller buffer of `cap` bytes (NUL-terminated when it fits); returns s.size().
int64_t copy_out(const std::string& s, char* out, size_t cap) {
  if (out != nullptr && cap > s.size()) {
    std::memcpy(out, s.data(), s.size());
    out[s.size()] = '\0';
  }
  return static_cast<int64_t>(s.size());
}

const sentencepiece::SentencePieceProcessor* as_processor(const void* handle) {
  return static_cast<const sentencepiece::SentencePieceProcessor*>(handle);
}

}  // namespace

// Version of this C interface (kAbiVersion).
S2S_SPM_API int s2s_spm_abi_version(void) {
  return kAbiVersion;
}

// Loads a model file. Returns an opaque handle, or nullptr with the reason in `err`.
S2S_SPM_API void* s2s_spm_load(const char* path, char* err, size_t err_cap) {
  try {
    auto processor = std::make_unique<sentencepiece::SentencePieceProcessor>();
    const auto status = processor->Load(path);
    if (!status.ok()) {
      set_error(err, err_cap, status.ToString());
      return nullptr;
    }
    if (processor->GetPieceSize() <= 0) {
      set_error(err, err_cap, "model has no pieces");
      return nullptr;
    }
    return processor.release();
  } catch (...) {
    set_error_from_exception(err, err_cap);
    return nullptr;
  }
}

// Frees a handle from s2s_spm_load (nullptr is fine).
S2S_SPM_API void s2s_spm_free(void* handle) {
  delete static_cast<sentencepiece::SentencePieceProcessor*>(handle);
}

// Number of pieces (the vocabulary size).
S2S_SPM_API int s2s_spm_piece_size(const void* handle) {
  try {
    return as_processor(handle)->GetPieceSize();
  } catch (...) {
    return -1;
  }
}

// Special ids; -1 when the model disables the symbol.
S2S_SPM_API int s2s_spm_unk_id(const void* handle) {
  return as_processor(handle)->unk_id();
}
S2S_SPM_API int s2s_spm_bos_id(const void* handle) {
  return as_processor(handle)->bos_id();
}
S2S_SPM_API int s2s_spm_eos_id(const void* handle) {
  return as_processor(handle)->eos_id();
}
S2S_SPM_API int s2s_spm_pad_id(const void* handle) {
  return as_processor(handle)->pad_id();
}

// Encodes `len` bytes of UTF-8 text into piece ids (no BOS/EOS). Writes at most `cap` ids; returns the
// number of ids, or -1 with `err` set.
S2S_SPM_API int64_t s2s_spm_encode(const void* handle, const char* text, size_t len, int* ids, size_t cap,
                                   char* err, size_t err_cap) {
  try {
    std::vector<int> result;
    const auto status = as_processor(handle)->Encode(std::string_view(text, len), &result);
    if (!status.ok()) {
      set_error(err, err_cap, status.ToString());
      return -1;
    }
    if (ids != nullptr && result.size() <= cap) std::copy(result.begin(), result.end(), ids);
    return static_cast<int64_t>(result.size());
  } catch (...) {
    set_error_from_exception(err, err_cap);
    return -1;
  }
}

// Decodes ids into UTF-8 text (control symbols such as <pad>, <s>, </s> decode to nothing). Writes the text
// and a NUL when `cap` > text size; returns the text size in bytes, or -1 with `err` set (e.g. an id out
// of range).
S2S_SPM_API int64_t s2s_spm_decode(const void* handle, const int* ids, size_t n, char* out, size_t cap,
                                   char* err, size_t err_cap) {
  try {
    const auto* processor = as_processor(handle);
    const int size = processor->GetPieceSize();
    for (size_t i = 0; i < n; ++i) {
      if (ids[i] < 0 || ids[i] >= size) {
        set_error(err, err_cap,
                  "id " + std::to_string(ids[i]) + " out of range [0, " + std::to_string(size) + ")");
        return -1;
      }
    }
    std::string text;
    const auto status = processor->Decode(std::vector<int>(ids, ids + n), &text);
    if (!status.ok()) {
      set_error(err, err_cap, status.ToString());
      return -1;
    }
    return copy_out(text, out, cap);
  } catch (...) {
    set_error_from_exception(err, err_cap);
    return -1;
  }
}

// The piece string of `id` (e.g. "▁Haus"); same buffer convention as s2s_spm_decode; -1 when out of range.
S2S_SPM_API int64_t s2s_spm_id_to_piece(const void* handle, int id, char* out, size_t cap) {
  try {
    const auto* processor = as_processor(handle);
    if (id < 0 || id >= processor->GetPieceSize()) return -1;
    return copy_out(processor->IdToPiece(id), out, cap);
  } catch (...) {
    return -1;
  }
}

// Trains a model (SentencePieceTrainer) and writes it to `model_out` (.model, the serialized ModelProto) and
// `vocab_out` (.vocab, "piece<TAB>score" lines, the format spm_train writes). `args` holds one "key=value"
// (leading "--" optional) per line, so values may contain spaces; "model_prefix" is not allowed: the caller
// picks the output paths, so that the model carries no temporary prefix and identical inputs give
// identical bytes. "minloglevel=N" sets SentencePiece's log level. `seed` goes to SetRandomGeneratorSeed.
// Returns 0, or -1 with SentencePiece's message in `err`.
//
// Training runs on a fresh thread: SentencePiece's generator (random::GetRandomGenerator) is thread_local
// and seeded once per thread, so a second training on a reused thread would not restart from `seed`.
S2S_SPM_API int s2s_spm_train(const char* args, unsigned int seed, const char* model_out,
                              const char* vocab_out, char* err, size_t err_cap) {
  try {
    std::unordered_map<std::string, std::string> kwargs;
    std::string_view rest(args);
    while (!rest.empty()) {
      const size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      if (line.empty()) continue;
      if (line.substr(0, 2) == "--") line.remove_prefix(2);
      const size_t eq = line.find('=');
      std::string key(line.substr(0, eq));
      std::string value(eq == std::string_view::npos ? std::string_view() : line.substr(eq + 1));
      if (key == "model_prefix") {
        set_error(err, err_cap, "model_prefix is chosen by the caller of s2s_spm_train");
        return -1;
      }
      kwargs[key] = std::move(value);
    }

    sentencepiece::SetRandomGeneratorSeed(seed);
    std::string message;
    std::string serialized;
    bool ok = false;
    std::thread worker([&] {
      try {
        const auto status = sentencepiece::SentencePieceTrainer::Train(kwargs, nullptr, &serialized);
        ok = status.ok();
        if (!ok) message = status.ToString();
      } catch (const std::exception& e) {
        message = std::string("internal error in SentencePiece shim: ") + e.what();
      } catch (...) {
        message = "internal error in SentencePiece shim: unknown exception";
      }
    });
    worker.join();
    if (!ok) {
      set_error(err, err_cap, message);
      return -1;
    }

    sentencepiece::SentencePieceProcessor processor;
    const auto status = processor.LoadFromSerializedProto(serialized);
    if (!status.ok()) {
      set_error(err, err_cap, "trained model does not load: " + status.ToString());
      return -1;
    }
    std::ofstream model(model_out, std::ios::binary | std::ios::trunc);
    model.write(serialized.data(), static_cast<std::streamsize>(serialized.size()));
    model.close();
    if (!model) {
      set_error(err, err_cap, std::string("cannot write '") + model_out + "': " + std::strerror(errno));
      return -1;
    }
    std::ofstream vocab(vocab_out, std::ios::binary | std::ios::trunc);
    for (int id = 0; id < processor.GetPieceSize(); ++id) {
      vocab << processor.IdToPiece(id) << '\t' << processor.GetScore(id) << '\n';
    }
    vocab.close();
    if (!vocab) {
      set_error(err, err_cap, std::string("cannot write '") + vocab_out + "': " + std::strerror(errno));
      return -1;
    }
    return 0;
  } catch (...) {
    set_error_from_exception(err, err_cap);
    return -1;
  }
}
