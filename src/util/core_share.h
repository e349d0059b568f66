// Sharing the cores with other jobs (torch-free). OpenMP workers spin at barriers: when another process
// takes one of their cores, a 2-thread training waits for a descheduled partner at every barrier and
// collapses (measured: two trainings together 5.5x slower than one after the other). CoreShare watches,
// between training steps, how long this process's threads waited for a CPU (run delay from
// /proc/self/task/*/schedstat) and how idle the machine was (/proc/stat), and says how many threads to
// use: fewer while our threads wait for cores, more again when cores stay idle.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace s2s::runtime {

// Cumulative counters read at one moment.
struct CpuSample {
  double wall_s = 0;          // monotonic clock
  double run_delay_s = 0;     // summed over this process's threads: time runnable but not running
  double machine_idle_s = 0;  // summed over all CPUs: idle + iowait time
};

// Reads the counters now; nullopt where /proc does not provide them (then nothing adapts).
std::optional<CpuSample> read_cpu_sample();

struct CoreShareOptions {
  int max_threads = 2;            // the configured thread count: never more
  double window_s = 1.0;          // decide at most this often
  double contended_delay = 0.25;  // run delay per wall second (summed over threads) that means sharing
  double idle_cores = 0.6;        // idle CPUs (averaged over the window) that mean a core is free again
};

// The thread-count decision from two samples (a pure function, for tests).
int decide_threads(const CpuSample& before, const CpuSample& now, int current, const CoreShareOptions& o);

class CoreShare {
 public:
  explicit CoreShare(const CoreShareOptions& options);
  // Called between steps with the thread count in use; returns the count to use from now on.
  int poll(int current);

 private:
  CoreShareOptions options_;
  std::optional<CpuSample> last_;
};

}  // namespace s2s::runtime
