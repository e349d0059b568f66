// Helpers shared by the test files: unique temp directories, raw file writes, and checks on s2s::Error.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "util/error.h"

namespace s2s_test {

// A fresh empty directory under the system temp dir, unique per process and call.
inline std::filesystem::path unique_temp_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  auto dir = std::filesystem::temp_directory_path() /
             ("s2s_test_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Writes exactly `bytes` (binary, truncating).
inline void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The message of the s2s::Error that `fn` throws ("" and a test failure when it throws nothing or
// something else).
inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const s2s::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected s2s::Error, got another exception: " << e.what();
    return "";
  } catch (...) {
    ADD_FAILURE() << "expected s2s::Error, got a non-standard exception";
    return "";
  }
  ADD_FAILURE() << "expected s2s::Error, nothing was thrown";
  return "";
}

// Fixture base: a fresh temp directory per test (dir_), removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  explicit TempDirTest(std::string tag) : tag_(std::move(tag)) {}
  void SetUp() override { dir_ = unique_temp_dir(tag_); }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  std::filesystem::path dir_;

 private:
  std::string tag_;
};

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace s2s_test

#define EXPECT_CONTAINS(haystack, needle)               \
  EXPECT_TRUE(s2s_test::contains((haystack), (needle))) \
      << "'" << (haystack) << "' does not contain '" << (needle) << "'"
