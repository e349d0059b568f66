// Shared by the libFuzzer harnesses: s2s::Error is the expected way to reject bad input; anything else that
// escapes (another exception, a crash, a sanitizer report) is a finding.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "util/error.h"

namespace s2s_fuzz {

// Runs `fn`, swallowing only s2s::Error.
template <class Fn>
void expect_clean(Fn&& fn) {
  try {
    fn();
  } catch (const s2s::Error&) {
  }
}

// A per-process scratch file holding the input, for readers that take a path.
inline std::filesystem::path as_file(const uint8_t* data, size_t size) {
  static const auto path = (std::filesystem::exists("/dev/shm") ? std::filesystem::path("/dev/shm")
                                                                : std::filesystem::temp_directory_path()) /
                           ("s2s_fuzz_" + std::to_string(::getpid()));
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

}  // namespace s2s_fuzz
