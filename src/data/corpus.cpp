#include "data/corpus.h"

#include <spdlog/spdlog.h>

#include <fstream>

#include "data/tokenizer.h"
#include "util/error.h"
#include "util/text.h"

namespace s2s {
namespace {

std::ifstream open_text(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    throw Error("corpus file '" + file.string() + "' does not exist or is not a regular file");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error("cannot open corpus file '" + file.string() + "'");
  return in;
}

bool getline_lf(std::ifstream& in, std::string& line) {
  if (!std::getline(in, line)) return false;
  line = std::string(text::chomp_cr(line));
  return true;
}

}  // namespace

void TokenStore::add(const std::vector<int>& ids) {
  ids_.insert(ids_.end(), ids.begin(), ids.end());
  offsets_.push_back(static_cast<int64_t>(ids_.size()));
}

int64_t count_lines(const std::filesystem::path& file) {
  auto in = open_text(file);
  int64_t n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

ParallelCorpus load_parallel(const std::filesystem::path& src_file, const std::filesystem::path& tgt_file,
                             const Tokenizer& src_tok, const Tokenizer& tgt_tok,
                             const CorpusOptions& options) {
  const int64_t src_lines = count_lines(src_file), tgt_lines = count_lines(tgt_file);
  if (src_lines != tgt_lines) {
    throw Error("parallel files differ in length: '" + src_file.string() + "' has " +
                std::to_string(src_lines) + " lines, '" + tgt_file.string() + "' has " +
                std::to_string(tgt_lines));
  }
  auto src_in = open_text(src_file), tgt_in = open_text(tgt_file);
  ParallelCorpus corpus;
  auto& st = corpus.stats;
  std::string s, t;
  while (getline_lf(src_in, s) && getline_lf(tgt_in, t)) {
    if (options.max_pairs > 0 && st.read >= options.max_pairs) break;
    ++st.read;
    const bool s_ok = text::is_valid_utf8(s), t_ok = text::is_valid_utf8(t);
    if (!s_ok || !t_ok) {
      const auto where = (s_ok ? tgt_file : src_file).string() + ":" + std::to_string(st.read);
      if (!options.skip_invalid_utf8)
        throw Error(where + ": invalid UTF-8 (set data.invalid_utf8: skip to drop)");
      spdlog::warn("{}: invalid UTF-8, pair skipped", where);
      ++st.invalid_utf8;
      continue;
    }
    if (text::strip(s).empty() || text::strip(t).empty()) {
      ++st.empty;
      continue;
    }
    auto s_ids = src_tok.encode(s), t_ids = tgt_tok.encode(t);
    if (static_cast<int>(s_ids.size()) > options.max_length ||
        static_cast<int>(t_ids.size()) > options.max_length) {
      ++st.too_long;
      continue;
    }
    corpus.src.add(s_ids);
    corpus.tgt.add(t_ids);
    ++st.kept;
  }
  return corpus;
}

}  // namespace s2s
