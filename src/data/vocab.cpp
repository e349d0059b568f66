// SentencePiece training. The trainer itself runs inside the shim (see tokenizer.h, detail::spm_train);
// this file validates options, picks the trainer flags and makes the output appear atomically.
#include "data/vocab.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "data/tokenizer.h"
#include "util/error.h"

namespace s2s {
namespace {

namespace stdfs = std::filesystem;

std::string quoted(const stdfs::path& p) {
  return "'" + p.string() + "'";
}

// Whether `file` has a character other than whitespace (reads only until the first one).
bool has_text(const stdfs::path& file) {
  std::ifstream in(file, std::ios::binary);
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    const auto n = static_cast<size_t>(in.gcount());
    if (std::any_of(buf, buf + n, [](char c) { return !std::isspace(static_cast<unsigned char>(c)); }))
      return true;
  }
  return false;
}

void validate(const SpmTrainOptions& o) {
  if (o.vocab_size <= 4) {
    throw Error("SpmTrainOptions.vocab_size must be > 4 (4 ids are reserved for pad/unk/bos/eos), got " +
                std::to_string(o.vocab_size));
  }
  if (!(o.character_coverage > 0.0 && o.character_coverage <= 1.0)) {
    std::ostringstream os;
    os << "SpmTrainOptions.character_coverage must be in (0, 1], got " << o.character_coverage;
    throw Error(os.str());
  }
  if (o.max_sentences <= 0) {
    throw Error("SpmTrainOptions.max_sentences must be > 0, got " + std::to_string(o.max_sentences));
  }
  if (o.num_threads <= 0) {
    throw Error("SpmTrainOptions.num_threads must be > 0, got " + std::to_string(o.num_threads));
  }
  if (o.model_prefix.empty() || !o.model_prefix.has_filename()) {
    throw Error("SpmTrainOptions.model_prefix must name a file prefix (e.g. data/spm), got " +
                quoted(o.model_prefix));
  }
  if (o.inputs.empty()) throw Error("SpmTrainOptions.inputs is empty: give at least one text file");
  for (const auto& input : o.inputs) {
    const std::string s = input.string();
    if (s.find_first_of(",\n") != std::string::npos) {
      throw Error("SpmTrainOptions.inputs: SentencePiece cannot read a path containing ',' or a newline: " +
                  quoted(input));
    }
    std::error_code ec;
    const auto st = stdfs::status(input, ec);
    if (!stdfs::exists(st)) throw Error("SpmTrainOptions.inputs: file does not exist: " + quoted(input));
    if (!stdfs::is_regular_file(st))
      throw Error("SpmTrainOptions.inputs: not a regular file: " + quoted(input));
    const auto size = stdfs::file_size(input, ec);
    if (ec) throw Error("SpmTrainOptions.inputs: cannot read " + quoted(input) + ": " + ec.message());
    if (size == 0) throw Error("SpmTrainOptions.inputs: file is empty: " + quoted(input));
  }
  if (std::none_of(o.inputs.begin(), o.inputs.end(), has_text)) {
    std::string names;
    for (const auto& input : o.inputs) names += (names.empty() ? "" : ", ") + quoted(input);
    throw Error("no text to learn a vocabulary from (only empty lines in " + names + ")");
  }
}

// fsync a file or directory; best effort for directories (some file systems refuse).
void fsync_path(const stdfs::path& p, bool must) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    if (must) throw Error("cannot fsync " + quoted(p) + ": " + std::generic_category().message(err));
    return;
  }
  ::close(fd);
}

}  // namespace

void train_sentencepiece(const SpmTrainOptions& o) {
  validate(o);

  const stdfs::path dir = o.model_prefix.has_parent_path() ? o.model_prefix.parent_path() : stdfs::path(".");
  std::error_code ec;
  stdfs::create_directories(dir, ec);
  if (ec)
    throw Error("cannot create directory " + quoted(dir) +
                " for SpmTrainOptions.model_prefix: " + ec.message());

  static std::atomic<int> counter{0};
  const stdfs::path tmp_prefix = dir / ("." + o.model_prefix.filename().string() + ".tmp." +
                                        std::to_string(::getpid()) + "." + std::to_string(counter++));
  const auto with_ext = [](const stdfs::path& prefix, const char* ext) {
    return stdfs::path(prefix.string() + ext);
  };
  const stdfs::path tmp_model = with_ext(tmp_prefix, ".model");
  const stdfs::path tmp_vocab = with_ext(tmp_prefix, ".vocab");
  const stdfs::path model = with_ext(o.model_prefix, ".model");
  const stdfs::path vocab = with_ext(o.model_prefix, ".vocab");
  const auto cleanup = [&] {
    std::error_code ignored;
    stdfs::remove(tmp_model, ignored);
    stdfs::remove(tmp_vocab, ignored);
  };

  std::string inputs;
  for (const auto& input : o.inputs) inputs += (inputs.empty() ? "" : ",") + input.string();
  std::ostringstream coverage;
  coverage.precision(9);
  coverage << o.character_coverage;

  // Hard vocabulary limit (SentencePiece's default): the model has exactly vocab_size pieces, which the
  // embedding tables rely on; too large a value fails with a message that names the maximum.
  const std::vector<std::pair<std::string, std::string>> kwargs = {
      {"input", inputs},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"model_type", to_string(o.model_type)},
      {"character_coverage", coverage.str()},
      {"input_sentence_size", std::to_string(o.max_sentences)},
      {"shuffle_input_sentence", "true"},
      {"num_threads", std::to_string(o.num_threads)},
      {"pad_id", "0"},
      {"unk_id", "1"},
      {"bos_id", "2"},
      {"eos_id", "3"},
      {"minloglevel", "1"},  // warnings and errors only
  };

  try {
    detail::spm_train(kwargs, o.seed, tmp_model, tmp_vocab);
  } catch (const Error& e) {
    cleanup();
    std::string message = "SentencePiece training for " + quoted(o.model_prefix) + " failed: " + e.what();
    if (std::string(e.what()).find("Vocabulary size too high") != std::string::npos) {
      message += " Use a smaller vocab_size for this much text.";
    }
    throw Error(message);
  }

  try {
    if (!stdfs::is_regular_file(tmp_model) || !stdfs::is_regular_file(tmp_vocab)) {
      throw Error("SentencePiece training for " + quoted(o.model_prefix) + " wrote no " + quoted(tmp_model));
    }
    fsync_path(tmp_model, true);
    fsync_path(tmp_vocab, true);
    // .vocab first: a present .model always comes with its matching .vocab.
    stdfs::rename(tmp_vocab, vocab);
    stdfs::rename(tmp_model, model);
    fsync_path(dir, false);
  } catch (const stdfs::filesystem_error& e) {
    cleanup();
    throw Error("cannot move SentencePiece model into place at " + quoted(model) + ": " + e.code().message());
  } catch (...) {
    cleanup();
    throw;
  }
}

}  // namespace s2s
