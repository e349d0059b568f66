#include "data/shortlist.h"

#include <algorithm>
#include <charconv>
#include <numeric>
#include <sstream>
#include <string_view>
#include <unordered_map>

#include "util/error.h"
#include "util/fs.h"
#include "util/text.h"

namespace s2s {
namespace {

std::vector<int32_t> unique_ids(const int32_t* data, int64_t n) {
  std::vector<int32_t> ids(data, data + n);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

}  // namespace

std::vector<int64_t> Shortlist::candidates(const std::vector<std::vector<int32_t>>& sources,
                                           const std::vector<int64_t>& always) const {
  std::vector<int64_t> ids(always.begin(), always.end());
  ids.insert(ids.end(), frequent.begin(), frequent.end());
  for (const auto& sentence : sources) {
    for (auto s : sentence) {
      if (s >= 0 && static_cast<size_t>(s) < by_source.size()) {
        ids.insert(ids.end(), by_source[static_cast<size_t>(s)].begin(),
                   by_source[static_cast<size_t>(s)].end());
      }
    }
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

void Shortlist::limit(int per_source, int frequent_count) {
  if (static_cast<size_t>(frequent_count) < frequent.size())
    frequent.resize(static_cast<size_t>(frequent_count));
  for (auto& list : by_source) {
    if (static_cast<size_t>(per_source) < list.size()) list.resize(static_cast<size_t>(per_source));
  }
}

Shortlist build_shortlist(const ParallelCorpus& corpus, int64_t src_vocab, int64_t tgt_vocab,
                          const ShortlistOptions& options) {
  std::vector<int64_t> src_count(static_cast<size_t>(src_vocab)), tgt_count(static_cast<size_t>(tgt_vocab));
  std::vector<int64_t> tgt_tokens(static_cast<size_t>(tgt_vocab));
  std::unordered_map<int64_t, int32_t> pair_count;  // key: s * tgt_vocab + t
  pair_count.reserve(1 << 20);
  for (size_t i = 0; i < corpus.size(); ++i) {
    const auto src = unique_ids(corpus.src.data(i), corpus.src.length(i));
    const auto tgt = unique_ids(corpus.tgt.data(i), corpus.tgt.length(i));
    for (auto s : src) ++src_count[static_cast<size_t>(s)];
    for (auto t : tgt) ++tgt_count[static_cast<size_t>(t)];
    for (int64_t k = 0; k < corpus.tgt.length(i); ++k)
      ++tgt_tokens[static_cast<size_t>(corpus.tgt.data(i)[k])];
    for (auto s : src) {
      for (auto t : tgt) ++pair_count[s * tgt_vocab + t];
    }
  }
  // Per source token: candidates ranked by Dice = 2 c(s,t) / (c(s) + c(t)).
  std::vector<std::vector<std::pair<double, int32_t>>> scored(static_cast<size_t>(src_vocab));
  for (const auto& [key, c] : pair_count) {
    const auto s = key / tgt_vocab, t = key % tgt_vocab;
    const double dice =
        2.0 * c / static_cast<double>(src_count[static_cast<size_t>(s)] + tgt_count[static_cast<size_t>(t)]);
    scored[static_cast<size_t>(s)].emplace_back(dice, static_cast<int32_t>(t));
  }
  Shortlist list;
  list.by_source.resize(static_cast<size_t>(src_vocab));
  for (size_t s = 0; s < scored.size(); ++s) {
    auto& v = scored[s];
    const auto keep = std::min<size_t>(v.size(), static_cast<size_t>(options.per_source));
    std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(keep), v.end(), std::greater<>());
    for (size_t k = 0; k < keep; ++k) list.by_source[s].push_back(v[k].second);
  }
  std::vector<int32_t> order(static_cast<size_t>(tgt_vocab));
  std::iota(order.begin(), order.end(), 0);
  const auto keep = std::min<size_t>(order.size(), static_cast<size_t>(options.frequent));
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                    [&](int32_t a, int32_t b) {
                      return tgt_tokens[static_cast<size_t>(a)] > tgt_tokens[static_cast<size_t>(b)];
                    });
  list.frequent.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep));
  return list;
}

void save_shortlist(const std::filesystem::path& file, const Shortlist& list) {
  fs::write_atomic(file, [&](std::ostream& out) {
    auto line = [&](const std::vector<int32_t>& ids) {
      for (size_t i = 0; i < ids.size(); ++i) out << (i ? " " : "") << ids[i];
      out << "\n";
    };
    out << "s2s-shortlist 1 " << list.by_source.size() << "\n";
    line(list.frequent);
    for (const auto& ids : list.by_source) line(ids);
  });
}

Shortlist load_shortlist(const std::filesystem::path& file, int64_t tgt_vocab) {
  const auto contents = fs::read_file(file);
  const auto lines = text::split_lines(contents);
  std::istringstream header(lines.empty() ? std::string() : std::string(lines[0]));
  std::string magic;
  int version = 0;
  int64_t n = -1;
  header >> magic >> version >> n;
  if (magic != "s2s-shortlist" || version != 1 || n < 0 || static_cast<int64_t>(lines.size()) - 2 != n) {
    throw Error("'" + file.string() +
                "' is not an s2s shortlist (expected header 's2s-shortlist 1 N' and N+2 lines)");
  }
  auto parse = [&](size_t i) {  // whitespace-separated ids in [0, tgt_vocab)
    const auto line = lines[i];
    const char* p = line.data();
    const char* end = p + line.size();
    auto bad = [&](const std::string& what) {
      return Error("'" + file.string() + "' line " + std::to_string(i + 1) + ": " + what);
    };
    std::vector<int32_t> ids;
    ids.reserve(static_cast<size_t>(std::count(p, end, ' ')) + 1);  // ids are one space apart when saved
    while (true) {
      while (p != end && (*p == ' ' || *p == '\t' || *p == '\r')) ++p;
      if (p == end) break;
      int64_t id = 0;
      const auto [next, ec] = std::from_chars(p, end, id);
      if (ec != std::errc() || (next != end && *next != ' ' && *next != '\t' && *next != '\r'))
        throw bad("not a list of ids");
      if (id < 0 || id >= tgt_vocab) {
        throw bad("target id " + std::to_string(id) + " is outside the vocabulary of " +
                  std::to_string(tgt_vocab) + " (a damaged shortlist?)");
      }
      ids.push_back(static_cast<int32_t>(id));
      p = next;
    }
    return ids;
  };
  Shortlist list;
  list.frequent = parse(1);
  list.by_source.reserve(static_cast<size_t>(n));
  for (size_t i = 0; i < static_cast<size_t>(n); ++i) list.by_source.push_back(parse(i + 2));
  return list;
}

}  // namespace s2s
