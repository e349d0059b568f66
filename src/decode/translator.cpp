#include "decode/translator.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <numeric>
#include <ostream>
#include <sstream>
#include <thread>

#include "data/batch.h"
#include "train/checkpoint.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/runtime.h"
#include "util/text.h"

namespace s2s {
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

// Consecutive runs of `order` (indices of `sources` sorted by length) that fit one batch: [begin, end).
std::vector<std::pair<size_t, size_t>> plan_batches(const std::vector<std::vector<int32_t>>& sources,
                                                    const std::vector<size_t>& order, int batch_size,
                                                    int batch_tokens) {
  std::vector<std::pair<size_t, size_t>> batches;
  for (size_t begin = 0; begin < order.size();) {
    size_t end = begin + 1;
    for (; end < order.size(); ++end) {
      const auto n = static_cast<int64_t>(end - begin + 1);
      const auto len = static_cast<int64_t>(sources[order[end]].size());
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
void run_concurrently(size_t n, size_t workers, int threads, const std::function<void(size_t)>& fn) {
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
      runtime::set_thread_intra_op_threads(threads);
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

std::pair<std::filesystem::path, std::filesystem::path> tokenizer_paths(const std::filesystem::path& dir,
                                                                        const Config& config) {
  if (config.vocab.joint) return {dir / model_files::kJointSpm, dir / model_files::kJointSpm};
  return {dir / model_files::kSrcSpm, dir / model_files::kTgtSpm};
}

ModelBundle load_model_dir(const std::filesystem::path& dir, const torch::Device& device,
                           torch::Dtype weights) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw Error("model directory '" + dir.string() + "' does not exist");
  const auto config_file = dir / model_files::kConfig;
  if (!std::filesystem::exists(config_file, ec)) {
    throw Error("'" + dir.string() + "' is not an s2s model directory (no " + model_files::kConfig + ")");
  }
  const auto start = std::chrono::steady_clock::now();
  auto ms = [&] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  ModelBundle b;
  b.config = parse_config(fs::read_file(config_file), config_file.string(), dir);
  auto [src_path, tgt_path] = tokenizer_paths(dir, b.config);
  b.src_tok = Tokenizer::load(src_path);
  b.tgt_tok = b.config.vocab.joint ? b.src_tok : Tokenizer::load(tgt_path);
  Vocabularies v{b.src_tok->vocab_size(), b.tgt_tok->vocab_size(), b.tgt_tok->pad_id(),
                 b.tgt_tok->bos_id(),     b.tgt_tok->eos_id(),     b.tgt_tok->unk_id()};
  spdlog::debug("tokenizers loaded after {:.0f} ms", ms());
  b.model = Seq2Seq(b.config.model, v);
  spdlog::debug("model built after {:.0f} ms", ms());
  std::filesystem::path file;
  for (const char* name : {model_files::kBest, model_files::kLegacyBest, model_files::kLast}) {
    if (std::filesystem::exists(dir / name, ec)) {
      file = dir / name;
      break;
    }
  }
  if (file.empty()) {
    throw Error("model directory '" + dir.string() + "' has no checkpoint (" + model_files::kBest + " or " +
                model_files::kLast + "): train it first");
  }
  load_weights(file, *b.model, weights);
  b.model->to(device);
  spdlog::debug("weights loaded after {:.0f} ms", ms());
  b.model->eval();
  b.device = device;
  return b;
}

bool needs_autocast(bool bf16, const Seq2SeqImpl& model) {
  return bf16 && model.out_bias.scalar_type() == torch::kFloat;
}

Translator::Translator(Seq2Seq model, std::shared_ptr<const Tokenizer> src_tok,
                       std::shared_ptr<const Tokenizer> tgt_tok, torch::Device device,
                       TranslateOptions options)
    : model_(std::move(model)),
      src_tok_(std::move(src_tok)),
      tgt_tok_(std::move(tgt_tok)),
      device_(device),
      options_(std::move(options)) {}

std::vector<int32_t> Translator::prepare(std::string line, int64_t line_no) const {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.find('\0') != std::string::npos || !text::is_valid_utf8(line)) {
    text::sanitize_utf8(line);
    spdlog::warn("input line {}: invalid UTF-8 or NUL bytes replaced", line_no);
  }
  if (text::strip(line).empty()) return {};
  auto ids = src_tok_->encode(line);
  if (static_cast<int>(ids.size()) > options_.max_length) {
    spdlog::warn("input line {}: {} tokens, cropped to --max-length {}", line_no, ids.size(),
                 options_.max_length);
    ids.resize(static_cast<size_t>(options_.max_length));
  }
  return {ids.begin(), ids.end()};
}

std::vector<std::vector<Hypothesis>> Translator::translate_lines(const std::vector<std::string>& lines,
                                                                 int64_t first_line) {
  std::vector<std::vector<int32_t>> sources(lines.size());
  for (size_t i = 0; i < lines.size(); ++i)
    sources[i] = prepare(lines[i], first_line + static_cast<int64_t>(i));
  std::vector<size_t> order;
  for (size_t i = 0; i < sources.size(); ++i) {
    if (!sources[i].empty()) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return sources[a].size() < sources[b].size(); });
  const auto batches = plan_batches(sources, order, options_.batch_size, options_.batch_tokens);
  std::vector<std::vector<Hypothesis>> results(lines.size());
  const auto workers = std::min<size_t>(static_cast<size_t>(std::max(1, options_.workers)), batches.size());
  run_concurrently(batches.size(), workers, options_.threads_per_worker, [&](size_t k) {
    const auto [begin, end] = batches[k];
    std::vector<std::vector<int32_t>> batch;
    for (size_t i = begin; i < end; ++i) batch.push_back(sources[order[i]]);
    auto hyps = translate_batch(batch);
    for (size_t i = begin; i < end; ++i) results[order[i]] = std::move(hyps[i - begin]);
  });
  return results;
}

std::vector<std::vector<Hypothesis>> Translator::translate_batch(
    const std::vector<std::vector<int32_t>>& batch) {
  // Autocast, grad mode and OpenMP team sizes are per thread: set them where the batch runs.
  runtime::AutocastGuard autocast(needs_autocast(options_.bf16, *model_), device_);
  torch::NoGradGuard no_grad;
  const SpecialIds ids{model_->vocabs.pad_id, model_->vocabs.bos_id, model_->vocabs.eos_id};
  auto tensors = make_source_batch(batch, ids).to(device_);
  std::vector<int64_t> subset;
  if (options_.shortlist) subset = options_.shortlist->candidates(batch, {ids.eos, model_->vocabs.unk_id});
  return beam_search(*model_, tensors.src, tensors.src_lengths, options_.search, subset);
}

std::string Translator::detokenize(const Hypothesis& h) const {
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

std::string Translator::format(int64_t id, const std::vector<Hypothesis>& hyps) const {
  auto extras = [&](const Hypothesis& h) {
    std::string s;
    if (options_.search.n_best > 1 || options_.scores) {
      s += " ||| F0= " + format_score(h.score) + " ||| " + format_score(h.norm_score);
    }
    if (!options_.alignment.empty()) {
      s += " |||";
      for (size_t t = 0; t < h.attention.size() && t < h.tokens.size(); ++t) {
        const auto& row = h.attention[t];
        if (options_.alignment == "hard") {
          const auto j = std::max_element(row.begin(), row.end()) - row.begin();
          s += " " + std::to_string(j) + "-" + std::to_string(t);
        } else {
          s += " ";
          for (size_t j = 0; j < row.size(); ++j) s += (j ? "," : "") + format_score(row[j]);
        }
      }
    }
    return s;
  };
  if (options_.search.n_best <= 1) {
    if (hyps.empty()) return "\n";
    return detokenize(hyps[0]) + extras(hyps[0]) + "\n";
  }
  std::string out;
  if (hyps.empty()) return std::to_string(id) + " |||  ||| F0= 0.000000 ||| 0.000000\n";
  for (const auto& h : hyps) out += std::to_string(id) + " ||| " + detokenize(h) + extras(h) + "\n";
  return out;
}

int64_t Translator::translate_stream(int in_fd, std::ostream& out) {
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
    count += static_cast<int64_t>(window.size());
  }
  return count;
}

}  // namespace s2s
