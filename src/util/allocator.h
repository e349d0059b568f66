// glibc malloc settings chosen on purpose (torch-free; used by both translation engines and training).
#pragma once

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

}  // namespace s2s::runtime
