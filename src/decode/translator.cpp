#include "decode/translator.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <mutex>
#include <numeric>
#include <ostream>
#include <sstream>
#include <thread>

#include "util/error.h"
#include "util/text.h"

namespace s2s {

int auto_batch_size(int beam_size, bool cpu) {
  if (!cpu) return 64;
  return std::clamp(80 / std::max(1, beam_size), 8, 64);
}

namespace {

// Reads lines from a file descriptor; can tell whether another line is available without blocking.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}

  // Next line (without '\n' / '\r\n'). With block = false, returns false when no full line is pending.
  bool next(std::string& line, bool block) {
    for (;;) {
      const auto nl = buf_.find('\n', pos_);
      if (nl != std::string::npos) {
        line.assign(buf_, pos_, nl - pos_);
        pos_ = nl + 1;
        return true;
      }
      if (eof_) {
        if (pos_ >= buf_.size()) return false;
        line.assign(buf_, pos_, std::string::npos);  // last line without a final newline
        pos_ = buf_.size();
        return true;
      }
      if (!block && !readable()) return false;
      fill();
    }
  }
  bool done() const { return eof_ && pos_ >= buf_.size(); }

 private:
  bool readable() const {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }
  void fill() {
    if (pos_ > 0) buf_.erase(0, pos_), pos_ = 0;
    char chunk[1 << 16];
    ssize_t n;
    do n = ::read(fd_, chunk, sizeof chunk);
    while (n < 0 && errno == EINTR);
    if (n < 0) throw Error(std::string("cannot read input: ") + std::strerror(errno));
    if (n == 0) eof_ = true;
    buf_.append(chunk, static_cast<size_t>(std::max<ssize_t>(n, 0)));
  }
  int fd_;
  std::string buf_;
  size_t pos_ = 0;
  bool eof_ = false;
};

std::string format_score(double v) {
  std::ostringstream os;
  os.precision(6);
  os << std::fixed << v;
  return os.str();
}

// Consecutive runs of `order` (indices sorted by `lengths`) that fit one batch: [begin, end).
std::vector<std::pair<size_t, size_t>> plan_batches(const std::vector<size_t>& lengths,
                                                    const std::vector<size_t>& order, int batch_size,
                                                    int batch_tokens) {
  std::vector<std::pair<size_t, size_t>> batches;
  for (size_t begin = 0; begin < order.size();) {
    size_t end = begin + 1;
    for (; end < order.size(); ++end) {
      const auto n = static_cast<int64_t>(end - begin + 1);
      const auto len = static_cast<int64_t>(lengths[order[end]]);
      if (batch_tokens > 0 ? n * len > batch_tokens : n > batch_size) break;
    }
    batches.emplace_back(begin, end);
    begin = end;
  }
  return batches;
}

// Runs fn(k) for every k in [0, n): inline with one worker, else on `workers` threads with `threads`
// intra-op threads each, highest k (the longest batch) first so that no worker is left with a long one at
// the end. Small per-step ops then scale with cores instead of waiting at OpenMP barriers. Rethrows the
// first exception once all workers have stopped.
void run_concurrently(size_t n, size_t workers, int threads, Engine& engine,
                      const std::function<void(size_t)>& fn) {
  if (workers <= 1) {
    for (size_t k = 0; k < n; ++k) fn(k);
    return;
  }
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  std::vector<std::thread> pool;
  for (size_t w = 0; w < workers; ++w) {
    pool.emplace_back([&] {
      engine.set_thread_threads(threads);
      try {
        for (size_t k = next++; k < n; k = next++) fn(n - 1 - k);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next = n;
      }
    });
  }
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

Translator::Translator(std::shared_ptr<Engine> engine, std::shared_ptr<const Tokenizer> src_tok,
                       std::shared_ptr<const Tokenizer> tgt_tok, TranslateOptions options)
    : engine_(std::move(engine)),
      src_tok_(std::move(src_tok)),
      tgt_tok_(std::move(tgt_tok)),
      options_(std::move(options)) {}

std::vector<int32_t> Translator::prepare(std::string line, int64_t line_no, const Tokenizer& tok,
                                         const char* what) const {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.find('\0') != std::string::npos || !text::is_valid_utf8(line)) {
    text::sanitize_utf8(line);
    spdlog::warn("{} line {}: invalid UTF-8 or NUL bytes replaced", what, line_no);
  }
  if (text::strip(line).empty()) return {};
  auto ids = tok.encode(line);
  if (static_cast<int>(ids.size()) > options_.max_length) {
    spdlog::warn("{} line {}: {} tokens, cropped to --max-length {}", what, line_no, ids.size(),
                 options_.max_length);
    ids.resize(static_cast<size_t>(options_.max_length));
  }
  return {ids.begin(), ids.end()};
}

void Translator::run_batches(const std::vector<size_t>& lengths, const std::vector<size_t>& order,
                             const std::function<void(size_t, size_t)>& fn) {
  const auto batches = plan_batches(lengths, order, options_.batch_size, options_.batch_tokens);
  const auto workers =
      engine_->concurrent()
          ? std::min<size_t>(static_cast<size_t>(std::max(1, options_.workers)), batches.size())
          : 1;
  run_concurrently(batches.size(), workers, options_.threads_per_worker, *engine_,
                   [&](size_t k) { fn(batches[k].first, batches[k].second); });
}

std::vector<std::vector<Hypothesis>> Translator::translate_lines(const std::vector<std::string>& lines,
                                                                 int64_t first_line) {
  std::vector<std::vector<int32_t>> sources(lines.size());
  std::vector<size_t> lengths(lines.size()), order;
  for (size_t i = 0; i < lines.size(); ++i) {
    sources[i] = prepare(lines[i], first_line + static_cast<int64_t>(i), *src_tok_);
    lengths[i] = sources[i].size();
    if (!sources[i].empty()) order.push_back(i);
    stats_.src_tokens += static_cast<int64_t>(lengths[i]);
  }
  stats_.lines += static_cast<int64_t>(lines.size());
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return lengths[a] < lengths[b]; });
  std::vector<std::vector<Hypothesis>> results(lines.size());
  run_batches(lengths, order, [&](size_t begin, size_t end) {
    std::vector<std::vector<int32_t>> batch;
    for (size_t i = begin; i < end; ++i) batch.push_back(sources[order[i]]);
    auto hyps = translate_batch(batch);
    for (size_t i = begin; i < end; ++i) results[order[i]] = std::move(hyps[i - begin]);
  });
  for (const auto& r : results) stats_.tgt_tokens += r.empty() ? 0 : static_cast<int64_t>(r[0].tokens.size());
  return results;
}

std::vector<std::vector<float>> Translator::score_lines(const std::vector<std::string>& sources,
                                                        const std::vector<std::string>& targets,
                                                        int64_t first_line) {
  if (sources.size() != targets.size()) {
    throw Error("score: " + std::to_string(sources.size()) + " source lines but " +
                std::to_string(targets.size()) + " target lines");
  }
  const auto n = sources.size();
  std::vector<std::vector<int32_t>> src(n), tgt(n);
  std::vector<size_t> lengths(n), order;  // a pair costs its longer side
  for (size_t i = 0; i < n; ++i) {
    const auto line_no = first_line + static_cast<int64_t>(i);
    src[i] = prepare(sources[i], line_no, *src_tok_, "source");
    tgt[i] = prepare(targets[i], line_no, *tgt_tok_, "target");
    lengths[i] = std::max(src[i].size(), tgt[i].size() + 1);
    if (!src[i].empty()) order.push_back(i);
    stats_.src_tokens += static_cast<int64_t>(src[i].size());
    stats_.tgt_tokens += static_cast<int64_t>(tgt[i].size());
  }
  stats_.lines += static_cast<int64_t>(n);
  // By target length: rows finish together, so the decoder's batch stays full.
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return tgt[a].size() < tgt[b].size(); });
  std::vector<std::vector<float>> results(n);
  run_batches(lengths, order, [&](size_t begin, size_t end) {
    std::vector<std::vector<int32_t>> batch_src, batch_tgt;
    for (size_t i = begin; i < end; ++i)
      batch_src.push_back(src[order[i]]), batch_tgt.push_back(tgt[order[i]]);
    auto scores = engine_->score_batch(batch_src, batch_tgt);
    for (size_t i = begin; i < end; ++i) results[order[i]] = std::move(scores[i - begin]);
  });
  return results;
}

std::vector<std::vector<Hypothesis>> Translator::translate_batch(
    const std::vector<std::vector<int32_t>>& batch) {
  std::vector<int64_t> subset;
  if (options_.shortlist) {
    const auto ids = engine_->ids();
    subset = options_.shortlist->candidates(batch, {ids.eos, ids.unk});
  }
  return engine_->translate_batch(batch, subset, options_.search);
}

std::string Translator::detokenize(const Hypothesis& h) const {
  if (!options_.spm_decode) {  // the pieces themselves, as the alignments index them
    std::string out;
    for (const auto id : h.tokens) out += (out.empty() ? "" : " ") + tgt_tok_->id_to_piece(id);
    return out;
  }
  return tgt_tok_->decode(std::vector<int>(h.tokens.begin(), h.tokens.end()));
}

std::vector<std::string> Translator::translate(const std::vector<std::string>& lines) {
  auto hyps = translate_lines(lines);
  std::vector<std::string> out(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!hyps[i].empty()) out[i] = detokenize(hyps[i][0]);
  }
  return out;
}

namespace {

// The alignment field: hard "i-j" pairs (source piece i, target piece j, Moses order) or soft rows of
// weights.
std::string alignment_field(const Hypothesis& h, Alignment kind) {
  std::string s;
  for (size_t t = 0; t < h.attention.size() && t < h.tokens.size(); ++t) {
    const auto& row = h.attention[t];
    if (kind == Alignment::kHard) {
      const auto j = std::max_element(row.begin(), row.end()) - row.begin();
      s += (t ? " " : "") + std::to_string(j) + "-" + std::to_string(t);
    } else {
      s += t ? " " : "";
      for (size_t j = 0; j < row.size(); ++j) s += (j ? "," : "") + format_score(row[j]);
    }
  }
  return s;
}

}  // namespace

std::string Translator::format(int64_t id, const std::vector<Hypothesis>& hyps) const {
  // Marian's field order: [id |||] translation [||| alignment] [||| F0= score ||| normalized score]
  auto line = [&](const Hypothesis* h) {
    std::string s = h ? detokenize(*h) : "";
    if (options_.alignment != Alignment::kNone)
      s += " ||| " + (h ? alignment_field(*h, options_.alignment) : "");
    if (options_.search.n_best > 1 || options_.scores) {
      s += " ||| F0= " + format_score(h ? h->score : 0) + " ||| " + format_score(h ? h->norm_score : 0);
    }
    return s;
  };
  if (options_.search.n_best <= 1) {
    if (hyps.empty()) return "\n";  // an empty input line stays an empty output line
    return line(&hyps[0]) + "\n";
  }
  if (hyps.empty()) return std::to_string(id) + " ||| " + line(nullptr) + "\n";
  std::string out;
  for (const auto& h : hyps) out += std::to_string(id) + " ||| " + line(&h) + "\n";
  return out;
}

int64_t Translator::translate_stream(int in_fd, std::ostream& out, const std::string& out_name) {
  LineReader reader(in_fd);
  int64_t count = 0;
  std::string line;
  while (reader.next(line, /*block=*/true)) {
    std::vector<std::string> window{line};
    while (static_cast<int>(window.size()) < options_.read_ahead && reader.next(line, /*block=*/false)) {
      window.push_back(line);
    }
    auto hyps = translate_lines(window, count + 1);
    for (size_t i = 0; i < window.size(); ++i) out << format(count + static_cast<int64_t>(i), hyps[i]);
    out.flush();
    if (!out) {  // e.g. a full disk: stop now rather than translate into nowhere
      throw Error("cannot write the translations of input lines " + std::to_string(count + 1) + "-" +
                  std::to_string(count + static_cast<int64_t>(window.size())) + " to " + out_name + ": " +
                  std::strerror(errno));
    }
    count += static_cast<int64_t>(window.size());
  }
  return count;
}

}  // namespace s2s
