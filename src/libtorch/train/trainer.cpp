#include "libtorch/train/trainer.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <torch/optim/adam.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <tuple>

#include "config/model_dir.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "data/shortlist.h"
#include "data/tokenizer.h"
#include "data/vocab.h"
#include "infer/factory/native_models.h"
#include "infer/native_engine.h"
#include "libtorch/data/batch.h"
#include "libtorch/decode/torch_engine.h"
#include "libtorch/model/factory/build_model.h"
#include "libtorch/train/checkpoint.h"
#include "libtorch/train/loss.h"
#include "libtorch/train/optimizer.h"
#include "libtorch/util/cpu_allocator.h"
#include "libtorch/util/runtime.h"
#include "metrics/bleu.h"
#include "util/core_share.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/text.h"
#include "util/version.h"

namespace s2s {
namespace {

std::atomic<int> g_stop_signal{0};

extern "C" void on_stop_signal(int sig) {
  g_stop_signal = sig;
  std::signal(sig, SIG_DFL);  // a second signal ends the process at once
}

// The default CPU generator (dropout), as a handle whose state can be saved and restored.
at::Generator cpu_generator() {
  return at::detail::getDefaultCPUGenerator();
}

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string hms(double seconds) {
  const auto s = static_cast<int64_t>(seconds);
  return fmt::format("{:02d}:{:02d}:{:02d}", s / 3600, s / 60 % 60, s % 60);
}

// The keys whose values differ between two configs, as "section.key: stored X, now Y" (dump_config order).
std::vector<std::string> config_differences(const Config& stored, const Config& given) {
  std::istringstream sa(dump_config(stored)), sb(dump_config(given));
  std::vector<std::string> out;
  std::string la, lb, section;
  while (std::getline(sa, la) && std::getline(sb, lb)) {
    if (!la.empty() && la[0] != ' ') section = la.substr(0, la.size() - 1);
    if (la == lb) continue;
    const std::string key(text::strip(la).substr(0, text::strip(la).find(':')));
    out.push_back(section + "." + key + ": stored" + la.substr(la.find(':') + 1) + ", now" +
                  lb.substr(lb.find(':') + 1));
  }
  return out;
}

// Settings a resumed run may change freely: when to stop, logging, threads, validation batching, decoding.
bool free_to_change(const std::string& difference) {
  for (const char* key : {"train.max_steps:", "train.max_epochs:", "train.max_minutes:", "train.patience:",
                          "train.log_every:", "train.threads:", "train.keep_checkpoints:",
                          "train.share_cores:", "train.valid_batch_size:", "train.precision:", "decode."}) {
    if (difference.rfind(key, 0) == 0) return true;
  }
  return false;
}

// train.precision on this device: auto is bf16 on CUDA and on CPUs with bf16 dot products (AVX512-BF16,
// AMX), else fp32. bf16 asked of a CPU without them is refused: LibTorch emulates its bf16 GEMMs there.
bool trains_in_bf16(Precision precision, const torch::Device& device) {
  if (precision == Precision::kFp32) return false;
  if (!device.is_cpu() || infer::bf16_is_fast()) return true;
  if (precision == Precision::kAuto) return false;
  throw Error(
      "train.precision: bf16 needs a CPU with bf16 instructions (AVX512-BF16 or AMX); this one emulates them "
      "~50x slower than fp32: set train.precision to auto or fp32");
}

// A lower bound of the model's parameters: embeddings and the layers' weight matrices.
double parameter_lower_bound(const Config& c) {
  const auto& m = c.model;
  const double emb = m.emb_dim, V = c.vocab.size, E = m.enc_hidden, D = m.dec_hidden, F = m.ffn_dim;
  const double embeddings = emb * V * (m.share_embeddings ? 1 : 2);
  if (m.type == ModelType::kTransformer) {  // attention 4 (decoder 8) x D^2, feed-forward 2 x D x F per layer
    return embeddings + m.enc_layers * (4 * emb * emb + 2 * emb * F) +
           m.dec_layers * (8 * emb * emb + 2 * emb * F);
  }
  return embeddings + m.enc_layers * 2 * 4 * E * (emb + E) + m.dec_layers * 4 * D * (emb + D) +
         V * std::min<double>(D, emb);
}

// Refuses absurd model sizes before anything is written: the parameters' lower bound times 16 bytes
// (weights, gradients, two Adam moments) must fit in the machine's memory.
void check_model_fits(const Config& c) {
  const auto& m = c.model;
  const double params = parameter_lower_bound(c);
  const double need = params * 16;
  const double ram =
      static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGESIZE));
  if (ram <= 0 || need <= ram) return;
  // Name the size key furthest above its default.
  const ModelConfig d;
  std::pair<double, std::string> worst{0, ""};
  for (auto [key, value, def] : {std::tuple{"model.emb_dim", m.emb_dim, d.emb_dim},
                                 {"model.enc_hidden", m.enc_hidden, d.enc_hidden},
                                 {"model.dec_hidden", m.dec_hidden, d.dec_hidden},
                                 {"model.enc_layers", m.enc_layers, d.enc_layers},
                                 {"model.dec_layers", m.dec_layers, d.dec_layers},
                                 {"model.ffn_dim", m.ffn_dim, d.ffn_dim},
                                 {"vocab.size", c.vocab.size, VocabConfig{}.size}}) {
    worst = std::max(worst, {static_cast<double>(value) / def, fmt::format("{}: {}", key, value)});
  }
  throw Error(
      fmt::format("{} makes a model of at least {:.3g} parameters, which needs {:.1f} GB to train "
                  "(weights, gradients, Adam moments); this machine has {:.1f} GB",
                  worst.second, params, need / 1e9, ram / 1e9));
}

// Installs the stop handlers for SIGINT/SIGTERM for its lifetime (also when training throws).
struct StopSignals {
  StopSignals() : int_(std::signal(SIGINT, on_stop_signal)), term_(std::signal(SIGTERM, on_stop_signal)) {
    g_stop_signal = 0;
  }
  ~StopSignals() { std::signal(SIGINT, int_), std::signal(SIGTERM, term_); }
  void (*int_)(int);
  void (*term_)(int);
};

// A file that lives in memory only (memfd), for what rank 0 sends the other ranks: ranks may not share a
// disk, and nothing is left behind when a rank is killed. Loaders open it by its /proc/self/fd path.
class MemFile {
 public:
  MemFile(const std::string& name, const std::string& bytes)
      : fd_(::memfd_create(name.c_str(), MFD_CLOEXEC)) {
    size_t done = 0;
    while (fd_ >= 0 && done < bytes.size()) {
      const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    if (fd_ < 0 || done != bytes.size()) {
      throw Error("cannot hold " + name + " from rank 0 in memory: " + std::strerror(errno));
    }
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  std::filesystem::path path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

class TrainerRun {
 public:
  TrainerRun(const Config& config, const TrainRunOptions& options)
      : cfg_(config),
        opt_(options),
        dir_(options.model_dir),
        device_(runtime::to_torch(config.train.device)) {}

  TrainSummary run();

 private:
  void connect();
  void check_stored_config();
  void save_config() const;
  void prepare_dir();
  std::filesystem::path shared_file(const std::filesystem::path& file, bool exists);
  void load_data();
  void build();
  void train_group(const std::vector<std::vector<int64_t>>& plan);
  void check_finite(double value, const char* what) const;
  std::string stop_reason() const;
  void truncate_metrics() const;
  void log_progress(int64_t epoch_batches);
  void validate();
  std::vector<std::string> translate_valid();
  void log_samples(const std::vector<std::string>& hyps) const;
  void save_validation_output(const std::vector<std::string>& hyps);
  void log_header(const std::shared_ptr<spdlog::sinks::sink>& file_sink) const;
  void discard_failed_start(const std::filesystem::path& config_file) const;
  double learning_rate() const;
  bool should_stop() const;
  bool time_up() const;
  int stop_signal() const;
  void agree_on_step(double& loss, double& nll, int64_t& tokens);
  void share_validation_outcome();
  void resume_position(const BatchOptions& plan_options, size_t plan_batches);
  void save_last();
  double average_decay(int64_t step) const;
  void validate_and_save();
  void share_cores();
  void append_metrics(const nlohmann::json& record);

  Config cfg_;
  TrainRunOptions opt_;
  std::filesystem::path dir_;
  torch::Device device_;
  std::shared_ptr<const Tokenizer> src_tok_, tgt_tok_;
  ParallelCorpus train_, valid_;
  std::vector<std::string> valid_src_lines_, valid_ref_lines_;
  std::vector<int32_t> src_lens_, tgt_lens_;
  NmtModel model_{nullptr};
  std::vector<torch::Tensor> params_;   // unique parameters (shared embeddings once)
  std::vector<torch::Tensor> average_;  // train.ema_decay > 0, rank 0: the moving average of params_
  std::unique_ptr<torch::optim::Adam> optimizer_;
  TrainState state_;
  SpecialIds ids_;
  Clock::time_point run_start_ = Clock::now(), window_start_ = Clock::now();
  double elapsed_at_start_ = 0;
  double window_pause_ = 0;  // seconds of validation inside the current log window (not training time)
  double window_comm_ = 0;   // seconds of gradient all-reduce inside the current log window (ranks only)
  bool early_stopped_ = false;
  bool bf16_ = false;                               // train.precision resolved for the device: bf16 autocast
  int threads_ = 1;                                 // OpenMP threads in use now (<= train.threads)
  std::unique_ptr<runtime::CoreShare> core_share_;  // adapts threads_ when other jobs take our cores
  std::unique_ptr<fs::FileLock> lock_;              // the model dir is ours while we train
  std::unique_ptr<dist::Group> group_;              // the other data-parallel ranks (none: alone)
  std::vector<std::unique_ptr<MemFile>> received_;  // ranks > 0: the files rank 0 sent, until loaded
  bool main_ = true;                                // rank 0: validates, logs and writes the model dir
  int ranks_ = 1;                                   // data-parallel ranks
  int agreed_signal_ = 0;        // with ranks: the stop signal any rank got, agreed on at each step
  bool agreed_time_up_ = false;  // with ranks: rank 0's train.max_minutes verdict, agreed on at each step
};

// Joins the other ranks when there are any; ranks > 0 log warnings and errors only.
void TrainerRun::connect() {
  if (!opt_.dist.enabled) return;
  if (device_.is_cuda() && !device_.has_index()) device_ = torch::Device(torch::kCUDA, opt_.dist.local_rank);
  group_ = dist::Group::connect(opt_.dist, device_);
  ranks_ = group_->size(), main_ = group_->rank() == 0;
  spdlog::info(
      "rank {} of {} joined at {}:{}; each rank trains on its share of a global batch of {} x {} tokens",
      group_->rank(), ranks_, opt_.dist.addr, opt_.dist.port, ranks_, cfg_.train.batch_tokens);
}

// Rank 0's `file` (which `exists` there, or not) on every rank: other ranks get an in-memory copy, or an
// empty path when rank 0 has no such file.
std::filesystem::path TrainerRun::shared_file(const std::filesystem::path& file, bool exists) {
  if (!group_) return exists ? file : std::filesystem::path();
  const std::string marker = exists ? "1" : "0";  // a file may be empty: the first byte says if it exists
  const auto bytes =
      group_->broadcast_bytes(main_ ? marker + (exists ? fs::read_file(file) : std::string()) : std::string(),
                              "sending " + file.filename().string());
  if (bytes.empty() || bytes[0] != '1') return {};
  if (main_) return file;
  received_.push_back(std::make_unique<MemFile>(file.filename().string(), bytes.substr(1)));
  return received_.back()->path();
}

// Compares the config with the one stored next to a checkpoint: a different model or vocabulary is refused,
// other training settings are accepted with a warning (README, "Resuming"). Without a checkpoint the stored
// config is only a failed start's, and the new one replaces it.
void TrainerRun::check_stored_config() {
  const auto config_file = dir_ / model_files::kConfig;
  if (std::filesystem::exists(config_file) && !std::filesystem::exists(dir_ / model_files::kLast)) {
    discard_failed_start(config_file);
  } else if (std::filesystem::exists(config_file)) {
    const auto stored = parse_config(fs::read_file(config_file), config_file.string(), dir_);
    for (const auto& difference : config_differences(stored, cfg_)) {
      if (difference.rfind("model.", 0) == 0 || difference.rfind("vocab.", 0) == 0) {
        throw Error("model dir '" + dir_.string() + "' holds a model trained with different settings (" +
                    difference + "); use a new --model-dir or the stored config");
      }
      if (!free_to_change(difference)) {
        spdlog::warn("resuming with a changed setting, so the run will differ from an uninterrupted one: {}",
                     difference);
      }
    }
  }
}

// Rank 0 writes the config and the SentencePiece models and sends the models to the other ranks. A resume
// rewrites config.yml only once its checkpoint has loaded (save_config): a failed resume changes nothing.
void TrainerRun::prepare_dir() {
  if (main_) {
    check_stored_config();
    if (!std::filesystem::exists(dir_ / model_files::kLast)) save_config();
    prepare_vocabularies(cfg_, dir_);
  }
  const auto [src_path, tgt_path] = tokenizer_paths(dir_, cfg_);
  src_tok_ = Tokenizer::load(shared_file(src_path, true));
  tgt_tok_ = cfg_.vocab.joint ? src_tok_ : Tokenizer::load(shared_file(tgt_path, true));
  ids_ = {tgt_tok_->pad_id(), tgt_tok_->bos_id(), tgt_tok_->eos_id()};
}

void TrainerRun::save_config() const {
  const auto file = dir_ / model_files::kConfig;
  const auto text = dump_config(cfg_);
  if (!std::filesystem::exists(file) || fs::read_file(file) != text) fs::write_file_atomic(file, text);
}

void TrainerRun::load_data() {
  CorpusOptions copt;
  copt.max_length = cfg_.data.max_length;
  copt.skip_invalid_utf8 = cfg_.data.invalid_utf8 == InvalidUtf8::kSkip;
  train_ = load_parallel(cfg_.data.train_src, cfg_.data.train_tgt, *src_tok_, *tgt_tok_, copt);
  const auto& st = train_.stats;
  spdlog::info(
      "training data: {} pairs read, {} kept, dropped {} empty, {} longer than {} tokens, {} invalid UTF-8",
      st.read, st.kept, st.empty, st.too_long, cfg_.data.max_length, st.invalid_utf8);
  if (train_.size() == 0) throw Error("no usable training pairs in '" + cfg_.data.train_src + "'");
  const auto shortlist_file = dir_ / model_files::kShortlist;
  if (main_ && !std::filesystem::exists(shortlist_file)) {
    save_shortlist(shortlist_file,
                   build_shortlist(train_, src_tok_->vocab_size(), tgt_tok_->vocab_size(), {}));
  }
  for (size_t i = 0; i < train_.size(); ++i) {
    src_lens_.push_back(static_cast<int32_t>(train_.src.length(i)));
    tgt_lens_.push_back(static_cast<int32_t>(train_.tgt.length(i)));
  }
  if (cfg_.data.valid_src.empty() || !main_) return;  // rank 0 alone validates
  CorpusOptions vopt;
  vopt.max_length = 1 << 20;
  vopt.max_pairs = cfg_.data.valid_max_sentences;
  valid_ = load_parallel(cfg_.data.valid_src, cfg_.data.valid_tgt, *src_tok_, *tgt_tok_, vopt);
  valid_src_lines_ = fs::read_lines(cfg_.data.valid_src);
  valid_ref_lines_ = metrics::read_lines_for_scoring(cfg_.data.valid_tgt);
  if (cfg_.data.valid_max_sentences > 0 &&
      static_cast<int>(valid_src_lines_.size()) > cfg_.data.valid_max_sentences) {
    valid_src_lines_.resize(static_cast<size_t>(cfg_.data.valid_max_sentences));
    valid_ref_lines_.resize(static_cast<size_t>(cfg_.data.valid_max_sentences));
  }
  spdlog::info("validation data: {} pairs", valid_src_lines_.size());
}

void TrainerRun::build() {
  torch::manual_seed(static_cast<uint64_t>(cfg_.train.seed));
  Vocabularies v{src_tok_->vocab_size(), tgt_tok_->vocab_size(), ids_.pad, ids_.bos, ids_.eos,
                 tgt_tok_->unk_id()};
  model_ = build_model(cfg_.model, v);
  model_->to(device_);
  params_ = unique_parameters(*model_);
  const auto& t = cfg_.train;
  optimizer_ = std::make_unique<torch::optim::Adam>(
      params_, torch::optim::AdamOptions(t.lr).betas({t.adam_beta1, t.adam_beta2}).eps(1e-8));
  if (main_ && t.ema_decay > 0) {  // rank 0 alone validates and saves, so it alone keeps the average
    torch::NoGradGuard no_grad;
    for (const auto& p : params_) average_.push_back(p.detach().clone());
  }
  int64_t params = 0;
  for (const auto& p : params_) params += p.numel();
  spdlog::info("model: {} parameters, src vocab {}, tgt vocab {}, device {}, precision {}{}", params,
               v.src_size, v.tgt_size, device_.str(), bf16_ ? "bf16" : "fp32",
               t.precision == Precision::kAuto ? " (auto)" : "");
  const auto last =
      shared_file(dir_ / model_files::kLast, main_ && std::filesystem::exists(dir_ / model_files::kLast));
  if (!last.empty()) {
    if (!load_checkpoint(last, *model_, *optimizer_, state_, &average_) && !average_.empty()) {
      torch::NoGradGuard no_grad;  // train.ema_decay set on resume: the average starts from these weights
      for (size_t i = 0; i < average_.size(); ++i) average_[i].copy_(params_[i]);
    }
    if (state_.rng_state.defined()) cpu_generator().set_state(state_.rng_state);
    spdlog::info("resuming from {} at step {} (epoch {}, batch {})", last.string(), state_.step,
                 state_.epoch + 1, state_.batch_in_epoch);
  }
  if (group_) {
    group_->broadcast(params_, "sending the weights");  // every rank starts from rank 0's weights
    // Dropout masks differ between ranks (rank 0 keeps the generator a single process would have).
    if (!main_)
      cpu_generator().set_current_seed(static_cast<uint64_t>(cfg_.train.seed) * 1000003u +
                                       static_cast<uint64_t>(group_->rank()) * 7919u +
                                       static_cast<uint64_t>(state_.step));
  }
  received_.clear();
  if (main_) save_config();
  truncate_metrics();
  elapsed_at_start_ = state_.elapsed_seconds;
}

// A config.yml without a checkpoint is a failed start's. Files it derived from other vocabulary or data
// settings (SentencePiece models, the shortlist) would be reused silently: they are removed to be rebuilt.
void TrainerRun::discard_failed_start(const std::filesystem::path& config_file) const {
  Config stored;
  try {
    stored = parse_config(fs::read_file(config_file), config_file.string(), dir_);
  } catch (const Error&) {
    return;  // unreadable: replaced below, and nothing can have been derived from it
  }
  const auto section = [](const Config& c) { return dump_config(Config{c.data, c.vocab, {}, {}, {}}); };
  if (section(stored) == section(cfg_)) return;
  std::error_code ec;
  auto [src, tgt] = tokenizer_paths(dir_, stored);
  for (const auto& spm : {src, tgt}) {
    std::filesystem::remove(spm, ec);
    std::filesystem::remove(std::filesystem::path(spm).replace_extension(".vocab"), ec);
  }
  std::filesystem::remove(dir_ / model_files::kShortlist, ec);
  spdlog::info(
      "{} was a failed start's with other data or vocabulary settings: its SentencePiece models and "
      "shortlist are rebuilt",
      config_file.string());
}

double TrainerRun::learning_rate() const {
  const auto& t = cfg_.train;
  const double step = static_cast<double>(state_.step + 1);
  const double warm = t.warmup_steps > 0 ? std::min(1.0, step / t.warmup_steps) : 1.0;
  double lr = t.lr * warm;
  if (t.lr_schedule == LrSchedule::kInverseSqrt && step > t.warmup_steps && t.warmup_steps > 0) {
    lr = t.lr * std::sqrt(t.warmup_steps / step);
  } else if (t.lr_schedule == LrSchedule::kPlateau) {
    lr = std::max(lr * state_.lr_scale, std::min(lr, t.min_lr));
  }
  return lr;
}

// Stops the run before a non-finite loss or gradient reaches the weights (and so a checkpoint).
void TrainerRun::check_finite(double value, const char* what) const {
  if (std::isfinite(value)) return;
  throw Error(
      fmt::format("training diverged at step {}: the {} is {}; {} keeps the last good state (lower "
                  "train.lr, raise train.warmup_steps, or set train.clip_norm)",
                  state_.step + 1, what, value, (dir_ / model_files::kLast).string()));
}

// One optimizer step over train.accum_steps batches of the plan. With ranks, each batch of the plan is a
// global batch: this rank trains on its share, the loss is normalized by the global target tokens, and the
// gradients are summed over the ranks, so the step equals one process training on the whole batch.
void TrainerRun::train_group(const std::vector<std::vector<int64_t>>& plan) {
  const auto first = static_cast<size_t>(state_.batch_in_epoch);
  const auto count = std::min(plan.size() - first, static_cast<size_t>(cfg_.train.accum_steps));
  std::vector<Batch> batches;
  int64_t tokens = 0;  // target tokens of the global batches (all ranks)
  for (size_t k = 0; k < count; ++k) {
    const auto& global = plan[first + k];
    for (const int64_t i : global) tokens += tgt_lens_[static_cast<size_t>(i)] + 1;
    const auto share =
        group_ ? split_batch(global, tgt_lens_, ranks_)[static_cast<size_t>(group_->rank())] : global;
    if (!share.empty()) batches.push_back(make_batch(train_, share, ids_).to(device_));
  }
  model_->train();
  optimizer_->zero_grad();
  double loss_sum = 0, nll_sum = 0;
  int64_t loss_tokens = 0;
  for (const auto& b : batches) {
    LossResult loss;
    {
      runtime::AutocastGuard autocast(bf16_, device_);
      auto hidden = model_->forward(b.src, b.src_lengths, b.tgt_in);
      loss = sequence_loss(*model_, hidden, b.tgt_out, cfg_.train.label_smoothing);
    }
    const double value = loss.loss.item<double>();
    if (!group_) check_finite(value, "loss");  // with ranks: after they agree on the loss, below
    (loss.loss / static_cast<double>(tokens)).backward();
    loss_sum += value, nll_sum += loss.nll, loss_tokens += loss.tokens;
  }
  if (group_) agree_on_step(loss_sum, nll_sum, loss_tokens);
  state_.window_loss += loss_sum, state_.window_nll += nll_sum, state_.window_tokens += loss_tokens;
  OptimizerStep step;
  if (cfg_.train.clip_norm > 0) {
    const double norm = gradient_norm(params_);
    check_finite(norm, "gradient norm");
    step.grad_scale = clip_factor(norm, cfg_.train.clip_norm);
  }
  step.lr = learning_rate();
  step.average_decay = average_decay(state_.step + 1);
  optimizer_step(*optimizer_, params_, average_, step);
  ++state_.step;
  state_.batch_in_epoch += static_cast<int64_t>(count);
  state_.total_tokens += tokens;
  runtime::trim_idle_cpu_blocks();  // cached blocks this step did not need go back to the kernel
}

// A checkpoint counts its position in batches of its own plan. When the global batch changed since (other
// batch_tokens or number of ranks), the position moves to the same fraction of the epoch in the new plan.
void TrainerRun::resume_position(const BatchOptions& plan_options, size_t batches) {
  const int64_t before = state_.batch_plan_tokens;
  state_.batch_plan_tokens = plan_options.batch_tokens;
  if (before == 0 || before == plan_options.batch_tokens || state_.batch_in_epoch == 0) return;
  BatchOptions old = plan_options;
  old.batch_tokens = before;
  const auto old_batches =
      plan_batches(src_lens_, tgt_lens_, old, static_cast<uint64_t>(cfg_.train.seed), state_.epoch).size();
  const auto moved = static_cast<int64_t>(
      std::llround(static_cast<double>(state_.batch_in_epoch) * static_cast<double>(batches) /
                   static_cast<double>(std::max<size_t>(old_batches, 1))));
  spdlog::info(
      "the global batch changed from {} to {} tokens: resuming at batch {} of {} in epoch {} (was {} of {})",
      before, plan_options.batch_tokens, moved, batches, state_.epoch + 1, state_.batch_in_epoch,
      old_batches);
  state_.batch_in_epoch = moved;
}

// Sums the ranks' losses, stop signals and rank 0's clock verdict, then their gradients; every rank throws
// alike on a non-finite loss.
void TrainerRun::agree_on_step(double& loss, double& nll, int64_t& tokens) {
  const int sig = g_stop_signal.load();
  const auto agreed = group_->sum({loss, nll, static_cast<double>(tokens), sig == SIGINT ? 1.0 : 0.0,
                                   sig == SIGTERM ? 1.0 : 0.0, main_ && time_up() ? 1.0 : 0.0},
                                  fmt::format("step {}", state_.step + 1));
  loss = agreed[0], nll = agreed[1], tokens = static_cast<int64_t>(agreed[2]);
  check_finite(loss, "loss");
  agreed_signal_ = agreed[3] > 0 ? SIGINT : agreed[4] > 0 ? SIGTERM : 0;
  agreed_time_up_ = agreed[5] > 0;
  std::vector<torch::Tensor> grads;
  for (auto& p : params_) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);  // an empty share: no gradient
    grads.push_back(p.grad());
  }
  const auto start = Clock::now();
  group_->all_reduce(grads, fmt::format("the gradient sum of step {}", state_.step + 1));
  window_comm_ += seconds_since(start);
}

void TrainerRun::log_progress(int64_t epoch_batches) {
  const double window_seconds = std::max(1e-9, seconds_since(window_start_) - window_pause_);
  const double loss = state_.window_loss / std::max<int64_t>(1, state_.window_tokens);
  const double ppl = std::exp(state_.window_nll / std::max<int64_t>(1, state_.window_tokens));
  const double tok_s = static_cast<double>(state_.window_tokens) / window_seconds;
  const double elapsed = elapsed_at_start_ + seconds_since(run_start_);
  const auto& t = cfg_.train;
  double progress = 0;  // fraction of the run done, for the ETA
  if (t.max_steps > 0) progress = static_cast<double>(state_.step) / static_cast<double>(t.max_steps);
  if (t.max_minutes > 0) progress = std::max(progress, elapsed / (60 * t.max_minutes));
  if (t.max_steps == 0 && t.max_minutes == 0 && t.max_epochs > 0) {
    progress =
        (static_cast<double>(state_.epoch) + static_cast<double>(state_.batch_in_epoch) /
                                                 static_cast<double>(std::max<int64_t>(1, epoch_batches))) /
        t.max_epochs;
  }
  const auto eta = progress > 0 ? hms(elapsed * (1 - progress) / progress) : std::string("?");
  // With ranks: the share of the window spent summing gradients (what a faster link would save).
  const auto comm = group_ ? fmt::format(" | gradient sum {:.1f}%", 100 * window_comm_ / window_seconds) : "";
  if (!opt_.quiet) {
    spdlog::info(
        "step {} | epoch {} | loss {:.4f} | ppl {:.2f} | lr {:.2e} | {:.0f} tok/s{} | {} elapsed | ETA {}",
        state_.step, state_.epoch + 1, loss, ppl, learning_rate(), tok_s, comm, hms(elapsed), eta);
  }
  append_metrics({{"kind", "train"},
                  {"step", state_.step},
                  {"epoch", state_.epoch + 1},
                  {"train_loss", loss},
                  {"train_ppl", ppl},
                  {"lr", learning_rate()},
                  {"tokens_per_s", tok_s},
                  {"elapsed_s", elapsed},
                  {"total_tokens", state_.total_tokens}});
  const auto mem = runtime::caching_allocator_stats();
  spdlog::debug("tensor memory: {} MB mapped, {} MB cached; {} maps ({} MB), {} reuses, {} recycles so far",
                mem.mapped_bytes >> 20, mem.cached_bytes >> 20, mem.maps, mem.fresh_bytes >> 20, mem.reuses,
                mem.recycles);
  state_.window_loss = state_.window_nll = 0;
  state_.window_tokens = 0;
  window_start_ = Clock::now();
  window_pause_ = 0, window_comm_ = 0;
}

void TrainerRun::validate() {
  if (valid_src_lines_.empty()) return;
  const auto start = Clock::now();
  model_->eval();
  double nll = 0;
  int64_t tokens = 0;
  {
    torch::NoGradGuard no_grad;
    runtime::AutocastGuard autocast(bf16_, device_);
    std::vector<int32_t> vs, vt;
    for (size_t i = 0; i < valid_.size(); ++i) {
      vs.push_back(static_cast<int32_t>(valid_.src.length(i)));
      vt.push_back(static_cast<int32_t>(valid_.tgt.length(i)));
    }
    BatchOptions bopt;
    bopt.batch_tokens = cfg_.train.batch_tokens, bopt.shuffle = false;
    for (const auto& idx : plan_batches(vs, vt, bopt, 0, 0)) {
      auto b = make_batch(valid_, idx, ids_).to(device_);
      auto loss = sequence_loss(*model_, model_->forward(b.src, b.src_lengths, b.tgt_in), b.tgt_out, 0.0);
      nll += loss.nll, tokens += loss.tokens;
    }
  }
  const double ppl = std::exp(nll / std::max<int64_t>(1, tokens));
  const auto hyps = translate_valid();
  const auto bleu = metrics::corpus_bleu(hyps, valid_ref_lines_);
  model_->train();

  const double metric = cfg_.train.early_stop_metric == EarlyStopMetric::kBleu ? bleu.score : -ppl;
  const bool improved = state_.best_step < 0 || metric > state_.best_metric;
  if (improved) {
    state_.best_metric = metric, state_.best_step = state_.step, state_.bad_validations = 0,
    state_.lr_bad = 0;
    save_weights(dir_ / model_files::kBest, *model_);
  } else {
    ++state_.bad_validations, ++state_.lr_bad;
    if (cfg_.train.lr_schedule == LrSchedule::kPlateau &&
        state_.lr_bad >= std::max(1, cfg_.train.lr_patience)) {
      state_.lr_scale *= cfg_.train.lr_decay, state_.lr_bad = 0;
      spdlog::info("validation did not improve: learning rate scaled to {:.3g}x", state_.lr_scale);
    }
    early_stopped_ = cfg_.train.patience > 0 && state_.bad_validations >= cfg_.train.patience;
  }
  window_pause_ += seconds_since(start);
  spdlog::info("validation at step {}: ppl {:.3f} | BLEU {:.2f} | {}{} ({:.1f} s)", state_.step, ppl,
               bleu.score, improved ? "new best" : "no improvement x",
               improved ? "" : std::to_string(state_.bad_validations), seconds_since(start));
  log_samples(hyps);
  save_validation_output(hyps);
  append_metrics({{"kind", "valid"},
                  {"step", state_.step},
                  {"epoch", state_.epoch + 1},
                  {"valid_ppl", ppl},
                  {"valid_bleu", bleu.score},
                  {"best_step", state_.best_step},
                  {"lr", learning_rate()}});
}

// Removes all but the `keep` files step-N<ext> of `dir` with the highest N.
void keep_last_steps(const std::filesystem::path& dir, const std::string& ext, int keep) {
  std::map<int64_t, std::filesystem::path> files;  // step -> file
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const auto name = entry.path().filename().string();
    if (name.rfind("step-", 0) == 0 && entry.path().extension() == ext) {
      files.emplace(std::atoll(name.c_str() + 5), entry.path());
    }
  }
  std::error_code ec;
  while (files.size() > static_cast<size_t>(std::max(keep, 0))) {
    std::filesystem::remove(files.begin()->second, ec);
    files.erase(files.begin());
  }
}

// Three validation sentences (first, middle, last): source, reference and the current hypothesis.
void TrainerRun::log_samples(const std::vector<std::string>& hyps) const {
  const size_t n = hyps.size();
  if (n == 0 || opt_.quiet) return;
  for (const size_t i : std::set<size_t>{0, n / 2, n - 1}) {
    spdlog::info("  valid line {}: source: {} | reference: {} | hypothesis: {}", i + 1, valid_src_lines_[i],
                 valid_ref_lines_[i], hyps[i]);
  }
}

// valid/step-N.hyp, the last kKeptValidationOutputs of them; checkpoints/step-N.bin, the last
// train.keep_checkpoints of them.
void TrainerRun::save_validation_output(const std::vector<std::string>& hyps) {
  const auto name = "step-" + std::to_string(state_.step);
  fs::ensure_dir(dir_ / "valid");
  std::string text;
  for (const auto& h : hyps) text += h + "\n";
  fs::write_file_atomic(dir_ / "valid" / (name + ".hyp"), text);
  keep_last_steps(dir_ / "valid", ".hyp", kKeptValidationOutputs);
  if (cfg_.train.keep_checkpoints == 0) return;
  fs::ensure_dir(dir_ / model_files::kCheckpoints);
  save_weights(dir_ / model_files::kCheckpoints / (name + ".bin"), *model_);
  keep_last_steps(dir_ / model_files::kCheckpoints, ".bin", cfg_.train.keep_checkpoints);
}

// Validation translations with the engine `s2s translate` would use: the native CPU engine on the
// current weights (converted in memory), else LibTorch (CUDA, a CPU without the GEMMs of the precision).
std::vector<std::string> TrainerRun::translate_valid() {
  TranslateOptions topt;
  topt.search.beam_size = cfg_.train.valid_beam_size;
  topt.search.normalize = cfg_.decode.normalize;
  topt.search.early_exit = cfg_.decode.early_exit;
  topt.batch_size = cfg_.train.valid_batch_size;
  auto on_libtorch = [&] {
    return make_translator(model_, src_tok_, tgt_tok_, device_, topt, bf16_).translate(valid_src_lines_);
  };
  if (!device_.is_cpu()) return on_libtorch();
  std::shared_ptr<const infer::NativeNetwork> native;
  try {
    auto params = module_parameters(*model_);
    native = infer::load_native(cfg_.model, src_tok_->vocab_size(), tgt_tok_->vocab_size(), *params,
                                bf16_ ? infer::WeightType::kBf16 : infer::WeightType::kF32);
  } catch (const Error& e) {  // e.g. no bf16 GEMM on this CPU
    spdlog::debug("validation on LibTorch: {}", e.what());
    return on_libtorch();
  }
  auto engine = std::make_shared<infer::NativeEngine>(
      native, TargetIds{ids_.pad, ids_.bos, ids_.eos, tgt_tok_->unk_id()});
  topt.workers = threads_;  // one batch per thread, as `s2s translate` on the CPU
  topt.threads_per_worker = 1;
  return Translator(engine, src_tok_, tgt_tok_, topt).translate(valid_src_lines_);
}

void TrainerRun::save_last() {
  if (!main_) return;
  state_.elapsed_seconds = elapsed_at_start_ + seconds_since(run_start_);
  state_.rng_state = cpu_generator().get_state();
  save_checkpoint(dir_ / model_files::kLast, *model_, *optimizer_, state_, average_);
}

// train.ema_decay: average = d * average + (1 - d) * weights after each step, d = min(ema_decay, (1 + step)
// / (10 + step)) at the step's number (from 1), so that the first steps' weights fade quickly (as
// TensorFlow's ExponentialMovingAverage).
double TrainerRun::average_decay(int64_t step) const {
  const auto n = static_cast<double>(step);
  return std::min(cfg_.train.ema_decay, (1 + n) / (10 + n));
}

namespace {

// Swaps the parameters' data with `average` (storages only, no copy; swapping again restores them).
void swap_weights(std::vector<torch::Tensor>& params, std::vector<torch::Tensor>& average) {
  for (size_t i = 0; i < average.size(); ++i) {
    auto weights = params[i].data();
    params[i].set_data(average[i]);
    average[i] = weights;
  }
}

}  // namespace

// Validation and the checkpoint allocate other sizes than a step: they start from an empty tensor cache, and
// the memory they used goes back to the system, their cached tensor blocks included: the next step would
// otherwise allocate its own beside them (measured: the peak RSS of a run was set here).
// With ranks, rank 0 alone validates and saves while the others wait for the outcome.
void TrainerRun::validate_and_save() {
  if (main_) {
    runtime::release_cached_cpu_blocks();
    swap_weights(params_, average_);  // validation, best.bin and checkpoints/ see the moving average
    try {
      validate();
    } catch (...) {
      swap_weights(params_, average_);
      throw;
    }
    swap_weights(params_, average_);
    save_last();
    runtime::release_cached_cpu_blocks();
    runtime::release_free_memory();
  }
  share_validation_outcome();
}

// Rank 0's validation outcome (LR decay, early stopping, best step) on every rank, so all decide alike.
void TrainerRun::share_validation_outcome() {
  if (!group_) return;
  std::vector<torch::Tensor> v{torch::tensor(
      {state_.lr_scale, state_.best_metric, early_stopped_ ? 1.0 : 0.0, static_cast<double>(state_.best_step),
       static_cast<double>(state_.bad_validations), static_cast<double>(state_.lr_bad)},
      torch::kDouble)};
  group_->broadcast(v, "waiting for rank 0's validation");
  auto a = v[0].accessor<double, 1>();
  state_.lr_scale = a[0], state_.best_metric = a[1], early_stopped_ = a[2] != 0;
  state_.best_step = static_cast<int64_t>(a[3]), state_.bad_validations = static_cast<int64_t>(a[4]);
  state_.lr_bad = static_cast<int64_t>(a[5]);
}

void TrainerRun::share_cores() {
  if (!core_share_) return;
  const int next = core_share_->poll(threads_);
  if (next == threads_) return;
  spdlog::info("{}: training on {} of {} threads",
               next < threads_ ? "other jobs use our cores" : "cores free again", next, cfg_.train.threads);
  threads_ = next;
  runtime::configure_threads(threads_);
}

void TrainerRun::append_metrics(const nlohmann::json& record) {
  if (!main_) return;
  std::ofstream out(dir_ / model_files::kMetrics, std::ios::app);
  out << record.dump() << "\n";
}

// metrics.jsonl keeps the rows up to the checkpoint's step: rows of steps replayed after a kill would
// otherwise appear twice.
void TrainerRun::truncate_metrics() const {
  const auto file = dir_ / model_files::kMetrics;
  if (!main_ || !std::filesystem::exists(file)) return;
  std::string kept;
  size_t dropped = 0;
  for (const auto& line : fs::read_lines(file)) {
    const auto row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (row.is_object() && row.contains("step") && row["step"].is_number_integer() &&
        row["step"].get<int64_t>() <= state_.step) {
      kept += line + "\n";
    } else {
      ++dropped;
    }
  }
  if (dropped == 0) return;
  fs::write_file_atomic(file, kept);
  spdlog::info("{}: dropped {} rows after step {} (replayed from the checkpoint)", file.string(), dropped,
               state_.step);
}

std::string TrainerRun::stop_reason() const {
  const auto& t = cfg_.train;
  if (early_stopped_) return fmt::format("early stopping: {} validations without improvement", t.patience);
  if (t.max_steps > 0 && state_.step >= t.max_steps) return fmt::format("train.max_steps: {}", t.max_steps);
  if (t.max_epochs > 0 && state_.epoch >= t.max_epochs)
    return fmt::format("train.max_epochs: {}", t.max_epochs);
  return fmt::format("train.max_minutes: {}", t.max_minutes);
}

// With ranks, every input is agreed on (signals and the clock at each step, the rest is shared state), so
// all ranks stop at the same step.
bool TrainerRun::should_stop() const {
  const auto& t = cfg_.train;
  if (stop_signal() != 0 || early_stopped_) return true;
  if (t.max_steps > 0 && state_.step >= t.max_steps) return true;
  if (t.max_epochs > 0 && state_.epoch >= t.max_epochs) return true;
  return group_ ? agreed_time_up_ : time_up();
}

bool TrainerRun::time_up() const {
  const auto& t = cfg_.train;
  return t.max_minutes > 0 && elapsed_at_start_ + seconds_since(run_start_) >= 60 * t.max_minutes;
}

int TrainerRun::stop_signal() const {
  return group_ ? agreed_signal_ : g_stop_signal.load();
}

// The head of each run in train.log: version, command line and the effective config.
void TrainerRun::log_header(const std::shared_ptr<spdlog::sinks::sink>& file_sink) const {
  spdlog::logger file_only("train.log", file_sink);
  file_only.info("s2s {} (LibTorch {}), pid {}", version(), runtime::torch_version(), ::getpid());
  if (!opt_.command_line.empty()) file_only.info("command: {}", opt_.command_line);
  file_only.info("effective config:\n{}", dump_config(cfg_));
}

TrainSummary TrainerRun::run() {
  check_model_fits(cfg_);
  bf16_ = trains_in_bf16(cfg_.train.precision, device_);
  connect();
  std::shared_ptr<spdlog::sinks::sink> file_sink;
  if (main_) {
    fs::ensure_dir(dir_);
    lock_ = std::make_unique<fs::FileLock>(dir_ / model_files::kLock, "model dir '" + dir_.string() + "'");
    file_sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>((dir_ / model_files::kLog).string());
    spdlog::default_logger()->sinks().push_back(file_sink);
  }
  struct SinkGuard {
    bool pushed;
    ~SinkGuard() {
      if (pushed) spdlog::default_logger()->sinks().pop_back();
    }
  } sink_guard{file_sink != nullptr};
  // Ranks on one machine share its cores.
  threads_ = std::max(1, cfg_.train.threads / (group_ ? std::max(1, opt_.dist.local_world_size) : 1));
  runtime::configure_threads(threads_);
  if (device_.is_cpu()) runtime::install_caching_cpu_allocator();
  if (file_sink) log_header(file_sink);
  prepare_dir();
  load_data();
  build();
  early_stopped_ = cfg_.train.patience > 0 && state_.bad_validations >= cfg_.train.patience;
  agreed_time_up_ = cfg_.train.max_minutes > 0 && elapsed_at_start_ >= 60 * cfg_.train.max_minutes;
  if (state_.step > 0 && should_stop()) {
    spdlog::info(
        "training in {} is already finished at step {} ({}): nothing to do; raise that limit to "
        "train on",
        dir_.string(), state_.step, stop_reason());
    return {state_.step, 0};
  }
  StopSignals signals;
  BatchOptions bopt;
  bopt.batch_tokens = cfg_.train.batch_tokens * ranks_;  // global batches, one share per rank
  bopt.sentence_multiple = cfg_.train.batch_multiple;    // of the global batch (rank shares go by tokens)
  auto plan = plan_batches(src_lens_, tgt_lens_, bopt, static_cast<uint64_t>(cfg_.train.seed), state_.epoch);
  resume_position(bopt, plan.size());
  if (cfg_.train.share_cores && device_.is_cpu() && threads_ > 1) {
    runtime::CoreShareOptions share;  // watched from the first step on: start-up is not measured
    share.max_threads = cfg_.train.threads;
    core_share_ = std::make_unique<runtime::CoreShare>(share);
  }
  while (!should_stop()) {
    if (state_.batch_in_epoch >= static_cast<int64_t>(plan.size())) {
      ++state_.epoch, state_.batch_in_epoch = 0;
      if (should_stop()) break;
      plan = plan_batches(src_lens_, tgt_lens_, bopt, static_cast<uint64_t>(cfg_.train.seed), state_.epoch);
    }
    train_group(plan);
    share_cores();
    if (state_.step % cfg_.train.log_every == 0) log_progress(static_cast<int64_t>(plan.size()));
    if (state_.step % cfg_.train.valid_every == 0) validate_and_save();
  }
  if (stop_signal() == 0 && state_.step % cfg_.train.valid_every != 0) {
    validate_and_save();  // score the final weights
  } else {
    save_last();
    if (group_) group_->barrier("waiting for rank 0's checkpoint");
  }
  const TrainSummary summary{state_.step, stop_signal()};
  if (summary.stop_signal != 0 && main_) {
    spdlog::warn("interrupted by signal {}: checkpoint saved at step {} in {}", summary.stop_signal,
                 state_.step, (dir_ / model_files::kLast).string());
  } else if (summary.stop_signal != 0) {
    spdlog::warn("interrupted by signal {} at step {}: rank 0 saved the checkpoint", summary.stop_signal,
                 state_.step);
  } else {
    spdlog::info("training finished at step {} ({}); best step {}", state_.step, stop_reason(),
                 state_.best_step);
  }
  return summary;
}

}  // namespace

void prepare_vocabularies(const Config& config, const std::filesystem::path& dir) {
  auto [src_path, tgt_path] = tokenizer_paths(dir, config);
  auto provide = [&](const std::string& given, const std::filesystem::path& target,
                     const std::vector<std::filesystem::path>& inputs) {
    if (!given.empty()) {
      Tokenizer::load(given);  // fails early with a clear message when unusable
      if (!std::filesystem::exists(target)) fs::write_file_atomic(target, fs::read_file(given));
      return;
    }
    if (std::filesystem::exists(target)) return;
    SpmTrainOptions o;
    o.inputs = inputs;
    o.model_prefix = target.parent_path() / target.stem();
    o.vocab_size = config.vocab.size, o.model_type = config.vocab.model_type;
    o.character_coverage = config.vocab.character_coverage, o.max_sentences = config.vocab.max_sentences;
    o.seed = static_cast<uint32_t>(config.train.seed);
    spdlog::info("training SentencePiece model {} (vocab {}, {})", target.string(), o.vocab_size,
                 to_string(o.model_type));
    train_sentencepiece(o);
  };
  if (config.vocab.joint) {
    provide(config.vocab.src_model, src_path, {config.data.train_src, config.data.train_tgt});
  } else {
    provide(config.vocab.src_model, src_path, {config.data.train_src});
    provide(config.vocab.tgt_model, tgt_path, {config.data.train_tgt});
  }
}

TrainSummary train(const Config& config, const TrainRunOptions& options) {
  if (config.data.train_src.empty() || config.data.train_tgt.empty()) {
    throw Error("config: data.train_src and data.train_tgt are required for training");
  }
  // Unreadable or empty data fails here, before anything is written into the model dir.
  for (const auto& [file, key] : {std::pair{config.data.train_src, "data.train_src"},
                                  {config.data.train_tgt, "data.train_tgt"},
                                  {config.data.valid_src, "data.valid_src"},
                                  {config.data.valid_tgt, "data.valid_tgt"}}) {
    if (file.empty()) continue;
    std::ifstream in(file);
    if (!in || std::filesystem::is_directory(file)) {
      throw Error(std::string(key) + ": cannot read '" + file + "'" +
                  (std::filesystem::is_directory(file) ? ": it is a directory"
                                                       : ": " + std::string(std::strerror(errno))));
    }
    if (std::string_view(key).find("train") == std::string_view::npos) continue;
    std::string line;
    bool text = false;
    while (!text && std::getline(in, line)) text = !text::strip(line).empty();
    if (!text) throw Error(std::string(key) + ": '" + file + "' has no text (only empty lines)");
  }
  TrainerRun run(config, options);
  return run.run();
}

}  // namespace s2s
