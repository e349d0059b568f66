// The caching CPU allocator used in training: size classes, reuse of freed blocks, trimming of idle
// blocks, LibTorch's alignment, and tensors that work as usual on top of it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "libtorch/util/cpu_allocator.h"

namespace {

using s2s::runtime::caching_allocator_stats;
using s2s::runtime::caching_size_class;

TEST(CpuAllocator, SizeClassesRoundUpByAtMostAQuarter) {
  EXPECT_EQ(caching_size_class(1000), 1000u);  // small requests are not rounded
  EXPECT_EQ(caching_size_class(64 << 10), size_t{64} << 10);
  EXPECT_EQ(caching_size_class((64 << 10) + 1), (size_t{64} << 10) + (16 << 10));
  for (size_t n : {70000ul, 1000000ul, 3333333ul, 130000000ul}) {
    const auto c = caching_size_class(n);
    EXPECT_GE(c, n);
    EXPECT_LE(static_cast<double>(c), 1.25 * static_cast<double>(n)) << n;
  }
}

TEST(CpuAllocator, ReusesFreedBlocksAndTrimsIdleOnes) {
  s2s::runtime::install_caching_cpu_allocator();
  s2s::runtime::trim_idle_cpu_blocks();
  s2s::runtime::trim_idle_cpu_blocks();  // nothing of earlier tests stays cached
  const auto before = caching_allocator_stats();
  void* first = nullptr;
  {
    auto t = torch::ones({3 << 20}, torch::kFloat);  // 12 MB: a huge-page block
    first = t.data_ptr();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % 64, 0u);
    EXPECT_EQ(t.sum().item<float>(), static_cast<float>(3 << 20));
  }
  EXPECT_EQ(caching_allocator_stats().maps, before.maps + 1);
  {
    auto again = torch::empty({(3 << 20) - 100}, torch::kFloat);  // same size class: the same block
    EXPECT_EQ(again.data_ptr(), first);
    EXPECT_EQ(caching_allocator_stats().reuses, before.reuses + 1);
  }
  s2s::runtime::trim_idle_cpu_blocks();  // used since the last trim: kept
  EXPECT_GE(caching_allocator_stats().cached_bytes, 12 << 20);
  s2s::runtime::trim_idle_cpu_blocks();  // idle through a whole step: unmapped
  EXPECT_EQ(caching_allocator_stats().cached_bytes, 0);
  EXPECT_EQ(caching_allocator_stats().mapped_bytes, before.mapped_bytes);
}

// A step whose batch needs other sizes than the last one's maps its new blocks in place of the last step's
// idle ones, not beside them (that doubled the tensor memory at a step's peak: session 25), and keeps the
// blocks this step has freed so far for reuse.
TEST(CpuAllocator, NewSizesReplaceTheLastStepsIdleBlocks) {
  s2s::runtime::install_caching_cpu_allocator();
  s2s::runtime::release_cached_cpu_blocks();
  const auto before = caching_allocator_stats();
  { auto last_step = torch::empty({3 << 20}, torch::kFloat); }  // 12 MB, idle from now on
  s2s::runtime::trim_idle_cpu_blocks();                         // the step ends; it was used: kept
  const auto after_last_step = caching_allocator_stats();
  EXPECT_GE(after_last_step.cached_bytes, 12 << 20);
  { auto this_step = torch::empty({2 << 20}, torch::kFloat); }  // 8 MB, another size class
  const auto evicted = caching_allocator_stats();
  EXPECT_EQ(evicted.mapped_bytes - before.mapped_bytes, evicted.cached_bytes - before.cached_bytes);
  EXPECT_LE(evicted.mapped_bytes - before.mapped_bytes, 10 << 20);  // the 12 MB block is gone
  auto bigger = torch::empty({5 << 20}, torch::kFloat);  // 20 MB: the 8 MB block freed this step stays
  EXPECT_GE(caching_allocator_stats().cached_bytes - before.cached_bytes, 8 << 20);
  s2s::runtime::release_cached_cpu_blocks();
}

// A request of a size class with no free block takes the last step's idle block of the nearest size and
// resizes it (mremap): the pages it keeps were faulted in already, where a new block's pages would be
// zeroed by the kernel first (session 26: half the page clearing of a training step).
TEST(CpuAllocator, NewSizesResizeTheLastStepsIdleBlocks) {
  s2s::runtime::install_caching_cpu_allocator();
  s2s::runtime::release_cached_cpu_blocks();
  const auto before = caching_allocator_stats();
  void* last_step = nullptr;
  {
    auto t = torch::full({3 << 20}, 7.0f);  // 12 MB, idle from now on
    last_step = t.data_ptr();
  }
  s2s::runtime::trim_idle_cpu_blocks();  // the step ends
  {
    auto shrunk = torch::empty({2 << 20}, torch::kFloat);  // 8 MB: the 12 MB block, shrunk in place
    EXPECT_EQ(shrunk.data_ptr(), last_step);
    EXPECT_EQ(shrunk[0].item<float>(), 7.0f);  // its own pages, not fresh zeros
    EXPECT_EQ(shrunk[(2 << 20) - 1].item<float>(), 7.0f);
    const auto now = caching_allocator_stats();
    EXPECT_EQ(now.maps, before.maps + 1);
    EXPECT_EQ(now.recycles, before.recycles + 1);
    EXPECT_EQ(now.mapped_bytes - before.mapped_bytes, 8 << 20);
  }
  s2s::runtime::trim_idle_cpu_blocks();
  {
    auto grown = torch::empty({4 << 20}, torch::kFloat);  // 16 MB: the 8 MB block, grown
    EXPECT_EQ(grown[0].item<float>(), 7.0f);
    EXPECT_EQ(grown[(2 << 20) - 1].item<float>(), 7.0f);
    EXPECT_EQ(grown[(4 << 20) - 1].item<float>(), 0.0f);  // the new tail
    const auto now = caching_allocator_stats();
    EXPECT_EQ(now.maps, before.maps + 1);
    EXPECT_EQ(now.recycles, before.recycles + 2);
    EXPECT_EQ(now.mapped_bytes - before.mapped_bytes, 16 << 20);
    EXPECT_EQ(now.fresh_bytes - before.fresh_bytes, 20 << 20);  // 12 MB mapped + 8 MB grown
  }
  s2s::runtime::release_cached_cpu_blocks();
  EXPECT_EQ(caching_allocator_stats().mapped_bytes, before.mapped_bytes);
}

TEST(CpuAllocator, ReleaseUnmapsEvenRecentlyUsedBlocks) {
  s2s::runtime::install_caching_cpu_allocator();
  s2s::runtime::release_cached_cpu_blocks();
  const auto before = caching_allocator_stats();
  { auto t = torch::zeros({1 << 20}, torch::kFloat); }  // used in this "step", now idle
  EXPECT_GE(caching_allocator_stats().cached_bytes, 4 << 20);
  s2s::runtime::release_cached_cpu_blocks();
  EXPECT_EQ(caching_allocator_stats().cached_bytes, 0);
  EXPECT_EQ(caching_allocator_stats().mapped_bytes, before.mapped_bytes);
}

TEST(CpuAllocator, SmallTensorsAndResizesWork) {
  s2s::runtime::install_caching_cpu_allocator();
  auto t = torch::arange(10, torch::kFloat);
  t.resize_({1 << 20});  // storage grows through the allocator: small block to cached block
  t.fill_(2);
  EXPECT_EQ(t.sum().item<float>(), 2.0f * (1 << 20));
}

}  // namespace
