// CoreShare: fewer threads while our threads wait for a CPU, more when cores stay idle, never more than
// configured; and real /proc readings are available and move forward.
#include <gtest/gtest.h>

#include "util/core_share.h"

namespace {

using s2s::runtime::CoreShareOptions;
using s2s::runtime::CpuSample;
using s2s::runtime::decide_threads;

TEST(CoreShare, WaitingForCoresDropsAThread) {
  CoreShareOptions o;
  o.max_threads = 4;
  // 1 s in which our threads waited 0.9 s in total for a CPU; no idle CPU.
  EXPECT_EQ(decide_threads({0, 0, 0}, {1, 0.9, 0}, 4, o), 3);
  EXPECT_EQ(decide_threads({0, 0, 0}, {1, 0.9, 0}, 1, o), 1);  // never below one
}

TEST(CoreShare, IdleCoresGiveThreadsBackUpToTheConfiguredCount) {
  CoreShareOptions o;
  o.max_threads = 2;
  EXPECT_EQ(decide_threads({0, 0, 0}, {2, 0.01, 1.8}, 1, o), 2);  // ~0.9 CPUs idle, no waiting
  EXPECT_EQ(decide_threads({0, 0, 0}, {2, 0.01, 1.8}, 2, o), 2);  // already at the configured count
  EXPECT_EQ(decide_threads({0, 0, 0}, {2, 0.01, 0.2}, 1, o), 1);  // busy machine: stay
}

TEST(CoreShare, SteadyWhenNeitherWaitingNorIdle) {
  CoreShareOptions o;
  EXPECT_EQ(decide_threads({0, 0, 0}, {1, 0.05, 0.1}, 2, o), 2);
  EXPECT_EQ(decide_threads({5, 1, 1}, {5, 1, 1}, 2, o), 2);  // no time passed
}

TEST(CoreShare, ReadsThisMachine) {
  const auto a = s2s::runtime::read_cpu_sample();
  ASSERT_TRUE(a.has_value()) << "/proc/self/task/*/schedstat or /proc/stat unreadable";
  volatile double x = 0;
  for (int i = 0; i < 20000000; ++i) x = x + 1;
  const auto b = s2s::runtime::read_cpu_sample();
  ASSERT_TRUE(b.has_value());
  EXPECT_GT(b->wall_s, a->wall_s);
  EXPECT_GE(b->run_delay_s, a->run_delay_s);
  EXPECT_GE(b->machine_idle_s, a->machine_idle_s);
}

}  // namespace
