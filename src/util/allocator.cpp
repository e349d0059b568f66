#include "util/allocator.h"

#include <malloc.h>
#include <unistd.h>

#include <cstdlib>

#include "util/error.h"
#include "util/fs.h"

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

std::optional<std::string> huge_page_tunables(const char* current, const std::string& thp_mode) {
  const std::string tunables = current ? current : "";
  if (thp_mode.find("[madvise]") == std::string::npos) return std::nullopt;
  if (tunables.find("glibc.malloc.hugetlb=") != std::string::npos) return std::nullopt;
  return tunables.empty() ? "glibc.malloc.hugetlb=1" : tunables + ":glibc.malloc.hugetlb=1";
}

void reexec_with_huge_page_heap(char** argv) {
  std::string mode;  // stays empty where the kernel has no THP
  try {
    mode = fs::read_file("/sys/kernel/mm/transparent_hugepage/enabled");
  } catch (const Error&) {
  }
  const char* current = std::getenv("GLIBC_TUNABLES");
  const auto tunables = huge_page_tunables(current, mode);
  if (!tunables) return;
  const std::string before = current ? current : "";
  if (setenv("GLIBC_TUNABLES", tunables->c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);
  if (current) {  // the exec failed: go on as we are
    setenv("GLIBC_TUNABLES", before.c_str(), 1);
  } else {
    unsetenv("GLIBC_TUNABLES");
  }
}

}  // namespace s2s::runtime
