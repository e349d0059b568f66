// glibc malloc settings chosen on purpose (torch-free; used by both translation engines and training).
#pragma once

#include <optional>
#include <string>

namespace s2s::runtime {

// Keeps glibc malloc from mmapping/unmapping the large per-step buffers (logits, gates) every step:
// measured page faults and kernel time vanish (see docs/BENCHMARKS.md). Call once, early.
void tune_allocator();

// One malloc arena for every thread (M_ARENA_MAX 1). The native engine's workers reuse thread-local buffers
// and allocate little per step, so sharing costs no time, and one heap instead of one per worker lowers the
// peak RSS of translating test2016 by 17-22 MB (docs/BENCHMARKS.md). Call before the workers start.
void use_one_arena();

// Returns free heap memory of every malloc arena to the system (malloc_trim), e.g. between two phases that
// allocate on different threads.
void release_free_memory();

// The GLIBC_TUNABLES value that backs the malloc heap with transparent huge pages (glibc.malloc.hugetlb=1),
// `current` (the environment's value, or null) with it appended; nullopt when there is nothing to do: the
// kernel's THP mode (`thp_mode`, /sys/kernel/mm/transparent_hugepage/enabled) is not [madvise] (with
// [always] the heap has them already, with [never] nobody does), or `current` sets glibc.malloc.hugetlb
// itself (=0 turns this off).
std::optional<std::string> huge_page_tunables(const char* current, const std::string& thp_mode);

// glibc reads its tunables once, at start-up: when huge_page_tunables() has a value, re-executes this program
// (/proc/self/exe, the same argv and pid) with it. On 4 KB pages, a greedy test2016 translation spent ~15% of
// its time in page faults of its heap (docs/BENCHMARKS.md, session 21). Returns, changing nothing, when there
// is nothing to do or the exec fails. Call first thing in main.
void reexec_with_huge_page_heap(char** argv);

}  // namespace s2s::runtime
