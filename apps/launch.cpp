#include "launch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "util/error.h"

namespace s2s::app {
namespace {

constexpr int kMaxRanks = 1024;
volatile pid_t g_ranks[kMaxRanks];  // pids of the running ranks, for the signal handler
volatile int g_rank_count = 0;
volatile sig_atomic_t g_signal = 0;

extern "C" void forward_signal(int sig) {
  g_signal = sig;
  for (int r = 0; r < g_rank_count; ++r) {
    if (g_ranks[r] > 0) ::kill(g_ranks[r], sig);
  }
}

// A TCP port that is free on 127.0.0.1 now (the kernel picks it), for rank 0's rendezvous.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(std::string("cannot open a socket to find a free port: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  if (!ok) throw Error(std::string("cannot find a free port on 127.0.0.1: ") + std::strerror(errno));
  return ntohs(addr.sin_port);
}

pid_t spawn_rank(const std::vector<std::string>& argv, int rank, int nproc, int port) {
  const pid_t pid = ::fork();
  if (pid < 0)
    throw Error(std::string("cannot start rank ") + std::to_string(rank) + ": " + std::strerror(errno));
  if (pid > 0) return pid;
  const auto set = [](const char* name, const std::string& value) { ::setenv(name, value.c_str(), 1); };
  set("MASTER_ADDR", "127.0.0.1"), set("MASTER_PORT", std::to_string(port));
  set("WORLD_SIZE", std::to_string(nproc)), set("RANK", std::to_string(rank));
  set("LOCAL_RANK", std::to_string(rank)), set("LOCAL_WORLD_SIZE", std::to_string(nproc));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execv("/proc/self/exe", args.data());
  ::_exit(127);
}

// "exited with code 1" / "was killed by signal 9 (Killed)".
std::string describe(int status) {
  if (WIFSIGNALED(status)) {
    return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) +
           ")";
  }
  return "exited with code " + std::to_string(WEXITSTATUS(status));
}

bool stopped_cleanly(int status) {
  if (!WIFEXITED(status)) return false;
  const int code = WEXITSTATUS(status);
  return code == 0 || code == 128 + SIGINT || code == 128 + SIGTERM;
}

}  // namespace

std::vector<std::string> without_nproc(const std::vector<std::string>& argv) {
  std::vector<std::string> out;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--nproc") {
      ++i;  // and its value
    } else if (argv[i].rfind("--nproc=", 0) != 0) {
      out.push_back(argv[i]);
    }
  }
  return out;
}

int launch_local_ranks(const std::vector<std::string>& argv, int nproc) {
  if (nproc > kMaxRanks)
    throw Error("--nproc " + std::to_string(nproc) + " is above " + std::to_string(kMaxRanks));
  if (const char* rank = std::getenv("RANK"); rank != nullptr && *rank != '\0') {
    throw Error(
        "--nproc starts its own ranks, but RANK is set (under torchrun or srun?): drop --nproc there");
  }
  const int port = free_port();
  spdlog::info("starting {} ranks on this machine (rendezvous 127.0.0.1:{})", nproc, port);
  struct sigaction sa {};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {
  }, old_term{};
  ::sigaction(SIGINT, &sa, &old_int), ::sigaction(SIGTERM, &sa, &old_term);
  for (int r = 0; r < nproc; ++r) {
    g_ranks[r] = spawn_rank(argv, r, nproc, port);
    g_rank_count = r + 1;
  }
  int running = nproc, code = 0, stop_code = 0;
  auto give_up_at = std::chrono::steady_clock::time_point::max();  // after a rank failed
  while (running > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      if (std::chrono::steady_clock::now() > give_up_at) {
        spdlog::error("the other ranks did not stop within 60 s of the failure: killing them");
        for (int r = 0; r < nproc; ++r) {
          if (g_ranks[r] > 0) ::kill(g_ranks[r], SIGKILL);
        }
        give_up_at = std::chrono::steady_clock::time_point::max();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    int rank = 0;
    while (rank < nproc && g_ranks[rank] != pid) ++rank;
    if (rank == nproc) continue;  // not one of ours
    g_ranks[rank] = 0, --running;
    if (stopped_cleanly(status)) {
      if (WEXITSTATUS(status) != 0) stop_code = WEXITSTATUS(status);
      continue;
    }
    if (code == 0) {
      spdlog::error("rank {} (pid {}) {}; the other ranks stop", rank, pid, describe(status));
      give_up_at = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    } else {
      spdlog::warn("rank {} (pid {}) {} after the first failure", rank, pid, describe(status));
    }
    code = 1;
  }
  ::sigaction(SIGINT, &old_int, nullptr), ::sigaction(SIGTERM, &old_term, nullptr);
  g_rank_count = 0;
  if (code != 0) return code;
  return g_signal != 0 ? 128 + g_signal : stop_code;
}

}  // namespace s2s::app
