// Tokenizer: SentencePiece through libs2s_spm.so, loaded with dlmopen(LM_ID_NEWLM) so that SentencePiece's
// bundled protobuf-lite 3.14 stays out of the namespace where LibTorch's protobuf 3.21 lives. This is the
// only file that knows about dlmopen. Rules for talking to the shim (see spm_shim.cpp): plain C types only,
// buffers owned by this side, the model handle freed by the shim.
#include "data/tokenizer.h"

#include <dlfcn.h>

#include <cstdlib>
#include <string>
#include <system_error>

#include "util/error.h"

namespace s2s {
namespace {

constexpr int kShimAbiVersion = 1;  // must match kAbiVersion in spm_shim.cpp
constexpr size_t kErrCap = 2048;
constexpr const char* kShimName = "libs2s_spm.so";

// Function table of the shim. Loaded once per process and never unloaded: every dlmopen(LM_ID_NEWLM)
// creates a new link-map namespace, and glibc has only a handful of them.
struct Shim {
  int (*abi_version)();
  void* (*load)(const char*, char*, size_t);
  void (*free)(void*);
  int (*piece_size)(const void*);
  int (*unk_id)(const void*);
  int (*bos_id)(const void*);
  int (*eos_id)(const void*);
  int (*pad_id)(const void*);
  int64_t (*encode)(const void*, const char*, size_t, int*, size_t, char*, size_t);
  int64_t (*decode)(const void*, const int*, size_t, char*, size_t, char*, size_t);
  int64_t (*id_to_piece)(const void*, int, char*, size_t);
  int (*train)(const char*, unsigned int, const char*, const char*, char*, size_t);
};

// Messages from SentencePiece or dlerror() may span lines; errors here are one line.
std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// SentencePiece statuses read "Internal: ./src/x.cc(123) [check] message"; keeps "message" (or the whole
// text when there is none), on one line.
std::string spm_message(const std::string& status) {
  std::string s = one_line(status);
  const size_t src = s.find("./src/");
  const size_t open = s.find(") [", src == std::string::npos ? 0 : src);
  const size_t close = s.rfind("] ");
  if (src != std::string::npos && open != std::string::npos && close != std::string::npos && close > open) {
    std::string rest = s.substr(close + 2);
    if (!rest.empty()) return rest;
  }
  for (const char* code : {"Internal: ", "Not found: ", "Invalid argument: ", "Out of range: "}) {
    if (s.rfind(code, 0) == 0) return s.substr(std::string(code).size());
  }
  return s;
}

template <typename Fn>
bool resolve(void* lib, const char* name, Fn& fn, std::string& reason) {
  void* sym = dlsym(lib, name);
  if (sym == nullptr) {
    const char* e = dlerror();
    reason = std::string("missing symbol ") + name + (e != nullptr ? std::string(" (") + e + ")" : "");
    return false;
  }
  fn = reinterpret_cast<Fn>(sym);
  return true;
}

// Opens one candidate; on failure returns false with `reason` set.
bool open_shim(const std::filesystem::path& path, Shim& shim, std::string& reason) {
  dlerror();
  void* lib = dlmopen(LM_ID_NEWLM, path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* e = dlerror();
    reason = e != nullptr ? e : "dlmopen failed";
    return false;
  }
  const bool ok = resolve(lib, "s2s_spm_abi_version", shim.abi_version, reason) &&
                  resolve(lib, "s2s_spm_load", shim.load, reason) &&
                  resolve(lib, "s2s_spm_free", shim.free, reason) &&
                  resolve(lib, "s2s_spm_piece_size", shim.piece_size, reason) &&
                  resolve(lib, "s2s_spm_unk_id", shim.unk_id, reason) &&
                  resolve(lib, "s2s_spm_bos_id", shim.bos_id, reason) &&
                  resolve(lib, "s2s_spm_eos_id", shim.eos_id, reason) &&
                  resolve(lib, "s2s_spm_pad_id", shim.pad_id, reason) &&
                  resolve(lib, "s2s_spm_encode", shim.encode, reason) &&
                  resolve(lib, "s2s_spm_decode", shim.decode, reason) &&
                  resolve(lib, "s2s_spm_id_to_piece", shim.id_to_piece, reason) &&
                  resolve(lib, "s2s_spm_train", shim.train, reason);
  if (ok && shim.abi_version() != kShimAbiVersion) {
    reason = "ABI version " + std::to_string(shim.abi_version()) + ", expected " +
             std::to_string(kShimAbiVersion) + " (stale build?)";
    return false;
  }
  // A failed library stays mapped on purpose: dlclose() on a fresh namespace is not reliably reclaimed.
  return ok;
}

struct ShimState {
  Shim shim{};
  std::string error;  // non-empty when no candidate could be loaded
};

ShimState load_shim_state() {
  ShimState state;
  std::string tried;
  std::string reason = "no such file";
  bool have_reason = false;
  for (const auto& candidate : detail::spm_shim_candidates()) {
    if (!tried.empty()) tried += ", ";
    tried += candidate.string();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(candidate, ec)) continue;
    std::string why;
    if (open_shim(candidate, state.shim, why)) return state;
    if (!have_reason) reason = candidate.string() + ": " + why;
    have_reason = true;
  }
  state.error = one_line("cannot load s2s SentencePiece shim (tried: " + tried + "): " + reason +
                         "; build target s2s_spm or set S2S_SPM_LIB to the path of " + kShimName);
  return state;
}

// The process-wide shim; throws s2s::Error (every time) when it could not be loaded.
const Shim& shim() {
  static const ShimState state = load_shim_state();
  if (!state.error.empty()) throw Error(state.error);
  return state.shim;
}

std::string quoted(const std::filesystem::path& p) {
  return "'" + p.string() + "'";
}

}  // namespace

namespace detail {

std::vector<std::filesystem::path> spm_shim_candidates() {
  if (const char* env = std::getenv("S2S_SPM_LIB"); env != nullptr && *env != '\0') return {env};
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec && exe.has_parent_path()) {
    out.push_back(exe.parent_path() / kShimName);
    out.push_back((exe.parent_path() / ".." / "lib" / kShimName).lexically_normal());
  }
#ifdef S2S_SPM_BUILD_PATH
  out.emplace_back(S2S_SPM_BUILD_PATH);
#endif
  return out;
}

void spm_train(const std::vector<std::pair<std::string, std::string>>& kwargs, uint32_t seed,
               const std::filesystem::path& model_out, const std::filesystem::path& vocab_out) {
  std::string args;
  for (const auto& [key, value] : kwargs) {
    if (key.find_first_of("\n=") != std::string::npos || value.find('\n') != std::string::npos) {
      throw Error("SentencePiece training option '" + key +
                  "': names must not contain '=' or newlines, values no newlines");
    }
    args += key + "=" + value + "\n";
  }
  const Shim& s = shim();
  std::string err(kErrCap, '\0');
  if (s.train(args.c_str(), seed, model_out.c_str(), vocab_out.c_str(), err.data(), err.size()) != 0) {
    throw Error(spm_message(err.c_str()));
  }
}

}  // namespace detail

std::shared_ptr<const Tokenizer> Tokenizer::load(const std::filesystem::path& model_file) {
  const std::string prefix = "cannot load SentencePiece model " + quoted(model_file) + ": ";
  if (model_file.empty()) throw Error("cannot load SentencePiece model: empty path");
  std::error_code ec;
  const auto st = std::filesystem::status(model_file, ec);
  if (!std::filesystem::exists(st)) throw Error(prefix + "file does not exist");
  if (std::filesystem::is_directory(st)) throw Error(prefix + "is a directory, expected a .model file");
  if (!std::filesystem::is_regular_file(st)) throw Error(prefix + "not a regular file");
  const auto size = std::filesystem::file_size(model_file, ec);
  if (ec) throw Error(prefix + ec.message());
  if (size == 0) throw Error(prefix + "file is empty");

  const Shim& s = shim();
  std::string err(kErrCap, '\0');
  void* handle = s.load(model_file.c_str(), err.data(), err.size());
  if (handle == nullptr) {
    const std::string why = spm_message(err.c_str());
    if (why.find("ParseFromArray") != std::string::npos) {
      throw Error(prefix + "not a SentencePiece model file (protobuf parse failed)");
    }
    throw Error(prefix + why + " (is it a SentencePiece .model file?)");
  }
  std::shared_ptr<Tokenizer> tok(new Tokenizer());
  tok->handle_ = handle;  // owned from here: ~Tokenizer frees it
  tok->path_ = model_file;
  tok->vocab_size_ = s.piece_size(handle);
  tok->pad_id_ = s.pad_id(handle);
  tok->unk_id_ = s.unk_id(handle);
  tok->bos_id_ = s.bos_id(handle);
  tok->eos_id_ = s.eos_id(handle);
  if (tok->vocab_size_ <= 0) throw Error(prefix + "model has no pieces");
  return tok;
}

Tokenizer::~Tokenizer() {
  if (handle_ != nullptr) shim().free(handle_);
}

std::vector<int> Tokenizer::encode(std::string_view text) const {
  const Shim& s = shim();
  std::vector<int> ids(text.size() + 4);
  std::string err(kErrCap, '\0');
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int64_t n =
        s.encode(handle_, text.data(), text.size(), ids.data(), ids.size(), err.data(), err.size());
    if (n < 0) {
      throw Error("cannot encode text with SentencePiece model " + quoted(path_) + ": " +
                  one_line(err.c_str()));
    }
    if (static_cast<size_t>(n) <= ids.size()) {
      ids.resize(static_cast<size_t>(n));
      return ids;
    }
    ids.resize(static_cast<size_t>(n));
  }
  throw Error("cannot encode text with SentencePiece model " + quoted(path_) + ": output size changed");
}

std::vector<std::string> Tokenizer::encode_pieces(std::string_view text) const {
  std::vector<std::string> pieces;
  for (int id : encode(text)) pieces.push_back(id_to_piece(id));
  return pieces;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  const Shim& s = shim();
  std::string out(ids.size() * 8 + 16, '\0');
  std::string err(kErrCap, '\0');
  for (int attempt = 0; attempt < 2; ++attempt) {
    // out.size() + 1: std::string always has room for the terminating NUL.
    const int64_t n =
        s.decode(handle_, ids.data(), ids.size(), out.data(), out.size() + 1, err.data(), err.size());
    if (n < 0) {
      throw Error("cannot decode ids with SentencePiece model " + quoted(path_) + ": " +
                  one_line(err.c_str()));
    }
    if (static_cast<size_t>(n) <= out.size()) {
      out.resize(static_cast<size_t>(n));
      return out;
    }
    out.resize(static_cast<size_t>(n));
  }
  throw Error("cannot decode ids with SentencePiece model " + quoted(path_) + ": output size changed");
}

std::string Tokenizer::id_to_piece(int id) const {
  const Shim& s = shim();
  std::string out(32, '\0');
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int64_t n = s.id_to_piece(handle_, id, out.data(), out.size() + 1);
    if (n < 0) {
      throw Error("piece id " + std::to_string(id) + " is out of range [0, " + std::to_string(vocab_size_) +
                  ") for SentencePiece model " + quoted(path_));
    }
    if (static_cast<size_t>(n) <= out.size()) {
      out.resize(static_cast<size_t>(n));
      return out;
    }
    out.resize(static_cast<size_t>(n));
  }
  throw Error("cannot read piece " + std::to_string(id) + " of SentencePiece model " + quoted(path_));
}

}  // namespace s2s
