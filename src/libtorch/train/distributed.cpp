#include "libtorch/train/distributed.h"

#include <c10/util/Logging.h>
#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef S2S_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#ifdef C10_USE_GLOG
#include <glog/logging.h>
#endif

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

#include "util/error.h"

namespace s2s::dist {
namespace {

constexpr int64_t kBucketBytes = 25 << 20;                   // gradients are summed in buckets of ~25 MB
constexpr auto kHeartbeat = std::chrono::milliseconds(500);  // each rank bumps its alive counter this often

// The first line of an exception's message: c10 appends a backtrace after it.
std::string first_line(const std::exception& e) {
  std::string s = e.what();
  return s.substr(0, s.find('\n'));
}

int env_int(const char* name, int fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  char* end = nullptr;
  const long v = std::strtol(value, &end, 10);
  if (*end != '\0' || v < 0 || v > (1 << 30)) {
    throw Error(std::string("environment variable ") + name + "='" + value +
                "' is not a non-negative integer");
  }
  return static_cast<int>(v);
}

// Silences c10's log for its lifetime. c10 logs through glog where LibTorch was built with it (Debian's),
// else through its own logger (PyTorch's wheels).
class QuietC10Log {
 public:
#ifdef C10_USE_GLOG
  QuietC10Log() : saved_(FLAGS_minloglevel) {
    FLAGS_minloglevel = google::GLOG_FATAL;
  }
  ~QuietC10Log() {
    FLAGS_minloglevel = saved_;
  }
#else
  QuietC10Log() : saved_(FLAGS_caffe2_log_level) {
    FLAGS_caffe2_log_level = 3;  // FATAL
  }
  ~QuietC10Log() {
    FLAGS_caffe2_log_level = saved_;
  }
#endif
  QuietC10Log(const QuietC10Log&) = delete;
  QuietC10Log& operator=(const QuietC10Log&) = delete;

 private:
  int saved_;
};

#ifdef S2S_GLOO
bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

std::shared_ptr<::gloo::transport::Device> gloo_device(const std::string& addr) {
  if (const char* iface = std::getenv("GLOO_SOCKET_IFNAME"); iface != nullptr && *iface != '\0') {
    return c10d::ProcessGroupGloo::createDeviceForInterface(iface);
  }
  if (is_loopback(addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}
#endif

class C10dGroup final : public Group {
 public:
  C10dGroup(const DistOptions& o, const c10::Device& device) : o_(o), device_(device) {
    // Under torchrun, its agent hosts the store on MASTER_PORT and every rank is a client, as in
    // torch.distributed's env:// rendezvous; keys are per restart attempt.
    const char* agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
    const bool agent_store = agent != nullptr && std::string(agent) == "True";
    if (agent_store) {
      const char* attempt = std::getenv("TORCHELASTIC_RESTART_COUNT");
      prefix_ = fmt::format("/worker/attempt_{}/s2s/", attempt != nullptr ? attempt : "0");
    }
    store_ = open_store(o_.rank == 0 && !agent_store);
    check_membership();
    probe_ = open_store(false);
    heartbeat_ = std::thread([this] { beat(); });
    const auto prefixed = c10::make_intrusive<c10d::PrefixStore>(prefix_ + "pg", store_);
    try {
      if (device.is_cuda()) {
#ifdef USE_C10D_NCCL
        bind(c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, o_.rank, o_.world_size));
#else
        throw Error("data-parallel training on CUDA needs NCCL, and this LibTorch was built without it");
#endif
      } else {
#ifdef S2S_GLOO
        auto opts = c10d::ProcessGroupGloo::Options::create();
        opts->timeout = o_.timeout;
        opts->devices.push_back(gloo_device(o_.addr));
        bind(c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, o_.rank, o_.world_size, opts));
#else
        throw Error("data-parallel training on the CPU needs Gloo, and this LibTorch was built without it");
#endif
      }
    } catch (const Error&) {
      stop_heartbeat();  // no destructor runs after a constructor throws: a running thread would terminate
      throw;
    } catch (const std::exception& e) {
      stop_heartbeat();
      throw Error("cannot connect to the other ranks: " + first_line(e));
    }
  }

  ~C10dGroup() override {
    stop_heartbeat();
  }

  template <class ProcessGroup>
  void bind(const c10::intrusive_ptr<ProcessGroup>& pg) {
    allreduce_ = [pg](std::vector<torch::Tensor>& t) { return pg->allreduce(t); };
    broadcast_ = [pg](std::vector<torch::Tensor>& t) { return pg->broadcast(t); };
  }

  int rank() const override {
    return o_.rank;
  }
  int size() const override {
    return o_.world_size;
  }

  void all_reduce(std::vector<torch::Tensor>& tensors, const std::string& what) override {
    for (size_t i = 0; i < tensors.size();) {
      std::vector<torch::Tensor> bucket;  // each [numel], flattened
      int64_t bytes = 0;
      size_t j = i;
      const auto size = [&](size_t k) {
        return tensors[k].defined() ? static_cast<int64_t>(tensors[k].nbytes()) : 0;
      };
      for (; j < tensors.size() && (bucket.empty() || bytes + size(j) <= kBucketBytes); ++j) {
        if (!tensors[j].defined()) continue;
        bucket.push_back(tensors[j].reshape({-1}));
        bytes += size(j);
      }
      if (!bucket.empty()) {
        std::vector<torch::Tensor> flat{torch::cat(bucket).to(device_)};  // [sum of numel]
        wait(allreduce_(flat), what);
        int64_t offset = 0;
        for (size_t k = i; k < j; ++k) {
          if (!tensors[k].defined()) continue;
          const int64_t n = tensors[k].numel();
          tensors[k].view({-1}).copy_(flat[0].narrow(0, offset, n));
          offset += n;
        }
      }
      i = j;
    }
  }

  std::vector<double> sum(const std::vector<double>& values, const std::string& what) override {
    std::vector<torch::Tensor> t{torch::tensor(values, torch::kDouble).to(device_)};  // [values]
    wait(allreduce_(t), what);
    const auto host = t[0].cpu();
    auto acc = host.accessor<double, 1>();
    std::vector<double> out(values.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = acc[static_cast<int64_t>(i)];
    return out;
  }

  void broadcast(std::vector<torch::Tensor>& tensors, const std::string& what) override {
    for (auto& t : tensors) {
      std::vector<torch::Tensor> one{t.to(device_)};  // NCCL takes device tensors only
      wait(broadcast_(one), what);
      if (!one[0].is_same(t)) t.copy_(one[0]);
    }
  }

  std::string broadcast_bytes(const std::string& bytes, const std::string& what) override {
    std::vector<torch::Tensor> size{
        torch::tensor({static_cast<int64_t>(bytes.size())}, torch::kInt64).to(device_)};
    wait(broadcast_(size), what);
    const int64_t n = size[0].item<int64_t>();
    if (n == 0) return {};                         // an empty tensor has no data pointer to copy through
    auto host = torch::empty({n}, torch::kUInt8);  // [n]
    if (o_.rank == 0) std::memcpy(host.data_ptr(), bytes.data(), bytes.size());
    std::vector<torch::Tensor> data{host.to(device_)};
    wait(broadcast_(data), what);
    host = data[0].cpu();
    return {static_cast<const char*>(host.data_ptr()), static_cast<size_t>(n)};
  }

  void barrier(const std::string& what) override {
    std::vector<torch::Tensor> t{torch::zeros({1}, device_)};
    wait(allreduce_(t), what);  // an all-reduce: Gloo's barrier does not honour the timeout
  }

 private:
  void stop_heartbeat() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (heartbeat_.joinable()) heartbeat_.join();
  }

  c10::intrusive_ptr<c10d::TCPStore> open_store(bool server) const {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(o_.port);
    so.isServer = server;
    so.waitWorkers = false;  // check_membership waits, with a message that says who is missing
    so.timeout = o_.timeout;
    const auto where = fmt::format("{}:{}", o_.addr, o_.port);
    // c10d logs each failed bind before it throws: the one-line error below says it all.
    const QuietC10Log quiet;
    try {
      return c10::make_intrusive<c10d::TCPStore>(o_.addr, so);
    } catch (const std::exception& e) {
      const std::string what = first_line(e);
      if (server && what.find("Address already in use") != std::string::npos) {
        throw Error(
            fmt::format("rank 0 cannot listen on {} for the rendezvous: the port is in use (another "
                        "job? pick another port with --dist-addr or MASTER_PORT)",
                        where));
      }
      throw Error(server ? fmt::format("rank 0 cannot listen on {} for the rendezvous: {} (is another job "
                                       "using the port? pick another with --dist-addr or MASTER_PORT)",
                                       where, what)
                         : fmt::format("rank {} cannot reach rank 0 at {} within {} s: {} (check --dist-addr "
                                       "or MASTER_ADDR/MASTER_PORT, and that rank 0 runs)",
                                       o_.rank, where, o_.timeout.count(), what));
    }
  }

  // Every rank announces itself; all agree on the world size, and all are there before the timeout.
  void check_membership() {
    const auto deadline = std::chrono::steady_clock::now() + o_.timeout;
    try {
      if (o_.rank == 0)
        store_->set(prefix_ + "world_size", std::vector<uint8_t>{static_cast<uint8_t>(o_.world_size),
                                                                 static_cast<uint8_t>(o_.world_size >> 8)});
      const auto ws = store_->get(prefix_ + "world_size");
      const int theirs = ws.size() == 2 ? ws[0] | (ws[1] << 8) : -1;
      if (theirs != o_.world_size) {
        throw Error(
            fmt::format("rank {} was started with world size {}, rank 0 with {}: start every rank with "
                        "the same --world-size / WORLD_SIZE",
                        o_.rank, o_.world_size, theirs));
      }
      int64_t joined = store_->add(prefix_ + "joined", 1);
      while (joined < o_.world_size) {
        if (std::chrono::steady_clock::now() > deadline) {
          throw Error(
              fmt::format("only {} of {} ranks joined the rendezvous at {}:{} within {} s "
                          "(check --world-size / WORLD_SIZE and that every rank was started)",
                          joined, o_.world_size, o_.addr, o_.port, o_.timeout.count()));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        joined = store_->add(prefix_ + "joined", 0);
      }
      if (joined > o_.world_size) {
        throw Error(
            fmt::format("{} processes joined a rendezvous of world size {} at {}:{}: two jobs share the "
                        "port, or ranks repeat",
                        joined, o_.world_size, o_.addr, o_.port));
      }
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(
          fmt::format("the rendezvous at {}:{} failed: {} (is rank 0 of this job listening there? check "
                      "--dist-addr or MASTER_ADDR/MASTER_PORT)",
                      o_.addr, o_.port, first_line(e)));
    }
  }

  void beat() {
    const auto key = prefix_ + "alive/" + std::to_string(o_.rank);
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      try {
        probe_->add(key, 1);
      } catch (const std::exception&) {
        return;  // the store (rank 0) is gone: the next collective reports it
      }
      wake_.wait_for(lock, kHeartbeat, [this] { return stopping_; });
    }
  }

  // The ranks whose heartbeat stopped, e.g. "rank 1"; rank 0 when its store cannot be reached.
  std::string lost_ranks() {
    std::vector<int64_t> before(static_cast<size_t>(o_.world_size));
    try {
      std::unique_lock<std::mutex> lock(mutex_);
      stopping_ = true;  // our own heartbeat stops: only the probe uses the connection now
      for (int r = 0; r < o_.world_size; ++r)
        before[r] = probe_->add(prefix_ + "alive/" + std::to_string(r), 0);
      lock.unlock();
      std::this_thread::sleep_for(kHeartbeat * 5);
      std::vector<std::string> lost;
      for (int r = 0; r < o_.world_size; ++r) {
        if (r != o_.rank && probe_->add(prefix_ + "alive/" + std::to_string(r), 0) == before[r]) {
          lost.push_back(std::to_string(r));
        }
      }
      if (lost.empty()) return "another rank";
      return (lost.size() == 1 ? "rank " : "ranks ") + fmt::format("{}", fmt::join(lost, ", "));
    } catch (const std::exception&) {
      return o_.rank == 0 ? std::string("another rank") : std::string("rank 0");
    }
  }

  void wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what) {
    try {
      work->wait();
    } catch (const std::exception& e) {
      const auto lost = lost_ranks();
      throw Error(
          fmt::format("lost {} during {} ({}); this rank stops, the model dir keeps its last "
                      "checkpoint",
                      lost, what, first_line(e)));
    }
  }

  DistOptions o_;
  std::string prefix_ = "s2s/";  // of every key this job puts in the store
  c10::intrusive_ptr<c10d::TCPStore> store_, probe_;
  // The process group's collectives: LibTorch 1.13 derives the groups from ProcessGroup, 2.x from Backend.
  using Collective = std::function<c10::intrusive_ptr<c10d::Work>(std::vector<torch::Tensor>&)>;
  Collective allreduce_, broadcast_;
  torch::Device device_;  // where the tensors of the collectives live (CUDA for NCCL)
  std::thread heartbeat_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
};

}  // namespace

DistOptions options_from_env() {
  DistOptions o;
  if (const char* addr = std::getenv("MASTER_ADDR"); addr != nullptr && *addr != '\0') o.addr = addr;
  o.port = env_int("MASTER_PORT", o.port);
  o.world_size = env_int("WORLD_SIZE", 0);
  o.enabled = o.world_size > 0;
  o.world_size = std::max(o.world_size, 1);
  o.rank = env_int("RANK", 0);
  o.local_rank = env_int("LOCAL_RANK", 0);
  o.local_world_size = env_int("LOCAL_WORLD_SIZE", 1);
  return o;
}

void validate(const DistOptions& o, const std::string& source) {
  if (o.world_size < 1)
    throw Error(fmt::format("{}: world size {} must be at least 1", source, o.world_size));
  if (o.rank < 0 || o.rank >= o.world_size) {
    throw Error(fmt::format("{}: rank {} is outside 0..{} (world size {})", source, o.rank, o.world_size - 1,
                            o.world_size));
  }
  if (o.port < 1 || o.port > 65535)
    throw Error(fmt::format("{}: port {} is outside 1..65535", source, o.port));
  if (o.world_size > 65535)
    throw Error(fmt::format("{}: world size {} is above 65535", source, o.world_size));
  if (o.timeout.count() < 1) throw Error(fmt::format("{}: the timeout must be at least 1 s", source));
}

std::unique_ptr<Group> Group::connect(const DistOptions& options, const c10::Device& device) {
  // Gloo writes to its peers' sockets with write(2): once a peer died, the default SIGPIPE would kill this
  // rank silently before its read failed and named the lost rank (as Python, which ignores SIGPIPE,
  // never sees). Ignored, the write fails with EPIPE and the collective throws.
  ::signal(SIGPIPE, SIG_IGN);
  return std::make_unique<C10dGroup>(options, device);
}

}  // namespace s2s::dist
