#include "util/core_share.h"

#include <dirent.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace s2s::runtime {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Sum of the run delays (ns, second field of schedstat) of this process's threads, in seconds.
std::optional<double> own_run_delay() {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return std::nullopt;
  double total = 0;
  bool any = false;
  while (const dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(std::string("/proc/self/task/") + e->d_name + "/schedstat");
    unsigned long long on_cpu = 0, delay = 0;
    if (in >> on_cpu >> delay) total += static_cast<double>(delay) * 1e-9, any = true;
  }
  closedir(dir);
  if (!any) return std::nullopt;
  return total;
}

// Idle + iowait time of all CPUs together, in seconds (first line of /proc/stat, in USER_HZ ticks).
std::optional<double> machine_idle() {
  std::ifstream in("/proc/stat");
  std::string line, cpu;
  if (!std::getline(in, line)) return std::nullopt;
  std::istringstream fields(line);
  unsigned long long user, nice, system, idle, iowait;
  if (!(fields >> cpu >> user >> nice >> system >> idle >> iowait) || cpu != "cpu") return std::nullopt;
  return static_cast<double>(idle + iowait) / 100.0;
}

}  // namespace

std::optional<CpuSample> read_cpu_sample() {
  auto delay = own_run_delay();
  auto idle = machine_idle();
  if (!delay || !idle) return std::nullopt;
  return CpuSample{now_s(), *delay, *idle};
}

int decide_threads(const CpuSample& before, const CpuSample& now, int current, const CoreShareOptions& o) {
  const double wall = now.wall_s - before.wall_s;
  if (wall <= 0) return current;
  const double delay = (now.run_delay_s - before.run_delay_s) / wall;       // threads waiting, on average
  const double idle = (now.machine_idle_s - before.machine_idle_s) / wall;  // CPUs idle, on average
  if (delay > o.contended_delay && current > 1) return current - 1;
  if (idle > o.idle_cores && delay < o.contended_delay / 2 && current < o.max_threads) return current + 1;
  return current;
}

CoreShare::CoreShare(const CoreShareOptions& options) : options_(options), last_(read_cpu_sample()) {}

int CoreShare::poll(int current) {
  if (!last_ || now_s() - last_->wall_s < options_.window_s) return current;  // /proc read once a window
  const auto now = read_cpu_sample();
  if (!now) return current;
  const int next = decide_threads(*last_, *now, current, options_);
  last_ = now;
  return next;
}

}  // namespace s2s::runtime
