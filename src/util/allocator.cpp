#include "util/allocator.h"

#include <malloc.h>

namespace s2s::runtime {

void tune_allocator() {
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
}

void use_one_arena() {
  mallopt(M_ARENA_MAX, 1);
}

void release_free_memory() {
  malloc_trim(0);
}

}  // namespace s2s::runtime
