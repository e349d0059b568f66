#include "libtorch/util/cpu_allocator.h"

#include <c10/core/CPUAllocator.h>
#include <sys/mman.h>
#include <torch/version.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace s2s::runtime {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kAlignment = 64;  // what LibTorch's default CPU allocator guarantees

struct Block {
  size_t size;           // the size class
  bool used_since_trim;  // handed out since the last trim()
  bool idle;             // in its free list
};

// Maps `size` bytes; from 2 MiB on the start is 2 MiB aligned and transparent huge pages are requested.
void* map_block(size_t size) {
  if (size < kHugePage) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  void* raw = mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto addr = reinterpret_cast<uintptr_t>(raw);
  const auto aligned = (addr + kHugePage - 1) & ~(kHugePage - 1);
  if (aligned > addr) munmap(raw, aligned - addr);
  munmap(reinterpret_cast<void*>(aligned + size), addr + kHugePage - aligned);
  madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(aligned);
}

// Gives the mapping [p, p + old_size) the size `size` and returns its new address, keeping its pages (how
// many bytes of them: *kept): a shrink unmaps the tail in place; a growth extends in place where the address
// space is free, else moves the block (2 MiB aligned from 2 MiB on, like map_block), and only the new tail
// faults. A huge-page block grows from its last 2 MiB boundary: a tail of small pages inside the grown range
// would keep that range from huge pages for good. nullptr, with p unmapped, when mremap fails.
void* resize_block(void* p, size_t old_size, size_t size, size_t* kept) {
  if (size > old_size && old_size >= kHugePage && old_size % kHugePage != 0) {
    const size_t whole = old_size / kHugePage * kHugePage;
    munmap(static_cast<char*>(p) + whole, old_size - whole);
    old_size = whole;
  }
  *kept = std::min(old_size, size);
  void* q = mremap(p, old_size, size, 0);
  if (q != MAP_FAILED) return q;
  void* target = map_block(size);  // a reserved range, never touched: mremap replaces it
  q = target == nullptr ? MAP_FAILED : mremap(p, old_size, size, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  if (q == MAP_FAILED) {
    if (target != nullptr) munmap(target, size);
    munmap(p, old_size);
    return nullptr;
  }
  if (size >= kHugePage) madvise(q, size, MADV_HUGEPAGE);
  return q;
}

// Data pointer == context (LibTorch's raw_allocate requires it): big blocks are found by address.
class CachingCpuAllocator final : public c10::Allocator {
 public:
// LibTorch 2.3 made allocate() non-const and added copy_data().
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  c10::DataPtr allocate(size_t n) override {
    return allocate_block(n);
  }
  void copy_data(void* dest, const void* src, size_t count) const override {
    default_copy_data(dest, src, count);
  }
#else
  c10::DataPtr allocate(size_t n) const override {
    return allocate_block(n);
  }
#endif

  c10::DeleterFnPtr raw_deleter() const override {
    return &deallocate;
  }

  // Unmaps the idle blocks not handed out since the previous call (all idle blocks when `all`).
  void trim(bool all) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& entry : free_) {
      auto& list = entry.second;
      size_t kept = 0;
      for (void* p : list) {
        auto it = blocks_.find(p);
        if (it->second.used_since_trim && !all) {
          it->second.used_since_trim = false, list[kept++] = p;
        } else {
          unmap_idle(it);
        }
      }
      list.resize(kept);
    }
    for (auto& [p, block] : blocks_) {
      if (!block.idle) block.used_since_trim = false;  // a block in use now counts from its next request
    }
  }

  CachingAllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  static CachingCpuAllocator& instance() {
    static auto* allocator = new CachingCpuAllocator();  // never destroyed: tensors may outlive main
    return *allocator;
  }

 private:
  c10::DataPtr allocate_block(size_t n) const {
    void* p = n < kMinCachedBytes ? small(n) : take(caching_size_class(n));
    return {p, p, &deallocate, c10::Device(c10::kCPU)};
  }

  static void* small(size_t n) {
    void* p = nullptr;
    if (posix_memalign(&p, kAlignment, std::max<size_t>(n, 1)) != 0) throw std::bad_alloc();
    return p;
  }

  static void deallocate(void* p) {
    if (p != nullptr && !instance().put(p)) std::free(p);
  }

  void* take(size_t size) const {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto& list = free_[size];
      if (!list.empty()) {
        void* p = list.back();
        list.pop_back();
        auto& block = blocks_.at(p);
        block.used_since_trim = true, block.idle = false;
        stats_.cached_bytes -= static_cast<int64_t>(size), ++stats_.reuses;
        return p;
      }
      if (void* p = recycle_stale(size)) return p;
      evict_stale(size);
    }
    void* p = map_block(size);
    if (p == nullptr) throw std::bad_alloc();
    std::lock_guard<std::mutex> lock(mutex_);
    blocks_.emplace(p, Block{size, true, false});
    stats_.mapped_bytes += static_cast<int64_t>(size), ++stats_.maps;
    stats_.fresh_bytes += static_cast<int64_t>(size);
    return p;
  }

  // Serves a request of `size` bytes from the idle block that no request took since the last trim (the
  // previous batch's sizes) whose size is closest to it: the smallest at least as big, else the biggest,
  // among blocks of its kind (huge-page or not). mremap gives the block its new size, keeping the pages it
  // had, which a new block would first fault in and have the kernel zero (measured, fp32: page faults -43%,
  // the kernel's page clearing 4.0% -> 2.2% of a step's samples, docs/BENCHMARKS.md session 26). A grown
  // block evicts as many stale bytes as it grew, so the tensor memory stays as without recycling. nullptr
  // when there is no such block or mremap fails.
  void* recycle_stale(size_t size) const {
    auto best = blocks_.end();
    for (auto& entry : free_) {
      for (void* p : entry.second) {
        auto it = blocks_.find(p);
        const auto n = it->second.size;
        if (it->second.used_since_trim || (n >= kHugePage) != (size >= kHugePage)) continue;
        if (best == blocks_.end() || closer(n, best->second.size, size)) best = it;
      }
    }
    if (best == blocks_.end()) return nullptr;
    void* old = best->first;
    const size_t old_size = best->second.size;
    auto& list = free_[old_size];
    list.erase(std::find(list.begin(), list.end(), old));
    forget_idle(best);
    size_t kept = 0;
    void* p = resize_block(old, old_size, size, &kept);
    if (p == nullptr) return nullptr;
    blocks_.emplace(p, Block{size, true, false});
    stats_.mapped_bytes += static_cast<int64_t>(size), ++stats_.recycles;
    stats_.fresh_bytes += static_cast<int64_t>(size - kept);
    if (size > old_size) evict_stale(size - old_size);
    return p;
  }

  // Whether a block of n bytes serves a request of `size` better than one of m bytes (see recycle_stale).
  static bool closer(size_t n, size_t m, size_t size) {
    if ((n >= size) != (m >= size)) return n >= size;
    return n >= size ? n < m : n > m;
  }

  // Unmaps idle blocks that no request took since the last trim (the previous step's, of sizes this step has
  // not asked for so far), at least `bytes` of them where there are: a new block replaces them instead of
  // adding to them.
  void evict_stale(size_t bytes) const {
    size_t freed = 0;
    for (auto& entry : free_) {
      auto& list = entry.second;
      size_t kept = 0;
      for (void* p : list) {
        auto it = blocks_.find(p);
        if (freed < bytes && !it->second.used_since_trim) {
          freed += it->second.size;
          unmap_idle(it);
        } else {
          list[kept++] = p;
        }
      }
      list.resize(kept);
      if (freed >= bytes) return;
    }
  }

  // Unmaps an idle block (the caller takes it off its free list).
  void unmap_idle(std::unordered_map<void*, Block>::iterator it) const {
    munmap(it->first, it->second.size);
    forget_idle(it);
  }

  // Drops an idle block from the bookkeeping, leaving its mapping to the caller.
  void forget_idle(std::unordered_map<void*, Block>::iterator it) const {
    stats_.mapped_bytes -= static_cast<int64_t>(it->second.size);
    stats_.cached_bytes -= static_cast<int64_t>(it->second.size);
    blocks_.erase(it);
  }

  // Returns a big block to its free list; false when p is not one (a small allocation).
  bool put(void* p) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = blocks_.find(p);
    if (it == blocks_.end()) return false;
    it->second.idle = true;
    free_[it->second.size].push_back(p);
    stats_.cached_bytes += static_cast<int64_t>(it->second.size);
    return true;
  }

  mutable std::mutex mutex_;
  mutable std::unordered_map<void*, Block> blocks_;              // every big block, in use or idle
  mutable std::unordered_map<size_t, std::vector<void*>> free_;  // size class -> idle blocks
  mutable CachingAllocatorStats stats_;
};

bool g_installed = false;

}  // namespace

size_t caching_size_class(size_t n) {
  if (n < kMinCachedBytes) return n;
  size_t top = size_t{1} << (63 - __builtin_clzll(n));  // largest power of two <= n
  const size_t step = top / 4;                          // four classes per octave: <= 25% rounding
  return (n + step - 1) / step * step;
}

void install_caching_cpu_allocator() {
  if (g_installed) return;
  c10::SetCPUAllocator(&CachingCpuAllocator::instance(), /*priority=*/10);
  g_installed = true;
}

void trim_idle_cpu_blocks() {
  if (g_installed) CachingCpuAllocator::instance().trim(/*all=*/false);
}

void release_cached_cpu_blocks() {
  if (g_installed) CachingCpuAllocator::instance().trim(/*all=*/true);
}

CachingAllocatorStats caching_allocator_stats() {
  return CachingCpuAllocator::instance().stats();
}

}  // namespace s2s::runtime
