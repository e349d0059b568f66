#include "util/allocator.h"

#include <gtest/gtest.h>

namespace {

using s2s::runtime::huge_page_tunables;

const std::string kMadvise = "always [madvise] never\n";

TEST(Allocator, HugePageTunablesOnlyWhereTheKernelWaitsForMadvise) {
  EXPECT_EQ(huge_page_tunables(nullptr, kMadvise), "glibc.malloc.hugetlb=1");
  EXPECT_EQ(huge_page_tunables("", kMadvise), "glibc.malloc.hugetlb=1");
  EXPECT_EQ(huge_page_tunables(nullptr, "[always] madvise never\n"), std::nullopt);  // the heap has them
  EXPECT_EQ(huge_page_tunables(nullptr, "always madvise [never]\n"), std::nullopt);  // nobody has them
  EXPECT_EQ(huge_page_tunables(nullptr, ""), std::nullopt);  // no such file: no THP in this kernel
}

TEST(Allocator, HugePageTunablesKeepTheUsersAndItsChoice) {
  EXPECT_EQ(huge_page_tunables("glibc.malloc.arena_max=2", kMadvise),
            "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1");
  EXPECT_EQ(huge_page_tunables("glibc.malloc.hugetlb=0", kMadvise), std::nullopt);  // turned off
  EXPECT_EQ(huge_page_tunables("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2", kMadvise), std::nullopt);
}

}  // namespace
