// glibc malloc settings chosen on purpose (torch-free; used by both translation engines and training).
#pragma once

namespace s2s::runtime {

// Keeps glibc malloc from mmapping/unmapping the large per-step buffers (logits, gates) every step:
// measured page faults and kernel time vanish (see docs/BENCHMARKS.md). Call once, early.
void tune_allocator();

// Returns free heap memory of every malloc arena to the system (malloc_trim), e.g. between two phases that
// allocate on different threads.
void release_free_memory();

}  // namespace s2s::runtime
