// File helpers: atomic writes (content replaced, no temp file left behind), line reading (CRLF, missing
// final newline, empty file), read errors naming the path, ensure_dir and rename_atomic.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_util.h"
#include "util/error.h"
#include "util/fs.h"

namespace {

namespace stdfs = std::filesystem;
using s2s_test::contains;
using s2s_test::error_of;
using s2s_test::write_bytes;

std::string read_bytes(const stdfs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class Fs : public s2s_test::TempDirTest {
 protected:
  Fs() : TempDirTest("fs") {}

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : stdfs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  std::vector<std::string> lines_of(const std::string& content) {
    const auto f = dir_ / "lines.txt";
    write_bytes(f, content);
    return s2s::fs::read_lines(f);
  }
};

using Lines = std::vector<std::string>;

// ---------------------------------------------------------------------------------------------------------
// write_file_atomic / write_atomic

TEST_F(Fs, WriteFileAtomicCreatesAndReplaces) {
  const auto f = dir_ / "out.txt";
  s2s::fs::write_file_atomic(f, "first version, rather long\n");
  EXPECT_EQ(read_bytes(f), "first version, rather long\n");
  s2s::fs::write_file_atomic(f, "second\n");  // shorter: no leftover bytes of the first version
  EXPECT_EQ(read_bytes(f), "second\n");
  EXPECT_EQ(names(), (std::vector<std::string>{"out.txt"}));  // no temp file left behind
}

TEST_F(Fs, WriteFileAtomicEmptyAndBinary) {
  const auto f = dir_ / "bin.dat";
  s2s::fs::write_file_atomic(f, "");
  EXPECT_TRUE(stdfs::exists(f));
  EXPECT_EQ(stdfs::file_size(f), 0u);
  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(i));
  binary += std::string(100000, '\0');
  s2s::fs::write_file_atomic(f, binary);
  EXPECT_EQ(read_bytes(f), binary);
  EXPECT_EQ(names(), (std::vector<std::string>{"bin.dat"}));
}

TEST_F(Fs, WriteFileAtomicIntoMissingDirectoryNamesThePath) {
  const auto f = dir_ / "no" / "such" / "dir" / "out.txt";
  const auto msg = error_of([&] { s2s::fs::write_file_atomic(f, "x"); });
  EXPECT_CONTAINS(msg, (dir_ / "no" / "such" / "dir").string());
  EXPECT_FALSE(stdfs::exists(f));
}

TEST_F(Fs, WriteFileAtomicOverADirectoryFailsAndKeepsIt) {
  const auto sub = dir_ / "sub";
  stdfs::create_directories(sub / "inner");
  const auto msg = error_of([&] { s2s::fs::write_file_atomic(sub, "x"); });
  EXPECT_CONTAINS(msg, sub.string());
  EXPECT_TRUE(stdfs::is_directory(sub / "inner"));
  // Nothing but the directory is left in dir_.
  EXPECT_EQ(names(), (std::vector<std::string>{"sub"}));
}

TEST_F(Fs, WriteAtomicStreamsIntoTheFile) {
  const auto f = dir_ / "stream.txt";
  s2s::fs::write_atomic(f, [](std::ostream& out) {
    for (int i = 0; i < 1000; ++i) out << i << "\n";
  });
  const auto lines = s2s::fs::read_lines(f);
  ASSERT_EQ(lines.size(), 1000u);
  EXPECT_EQ(lines.front(), "0");
  EXPECT_EQ(lines.back(), "999");
  EXPECT_EQ(names(), (std::vector<std::string>{"stream.txt"}));
}

// When the writer fails half-way, the old file must stay intact and the half-written temp file must not
// be left lying around (e.g. `s2s translate -o out.txt` failing on a bad input line).
TEST_F(Fs, WriteAtomicWriterThrowsKeepsOldFileAndLeavesNoTemp) {
  const auto f = dir_ / "keep.txt";
  s2s::fs::write_file_atomic(f, "good old content\n");
  EXPECT_THROW(s2s::fs::write_atomic(f,
                                     [](std::ostream& out) {
                                       out << "half-written";
                                       throw std::runtime_error("writer failed");
                                     }),
               std::runtime_error);
  EXPECT_EQ(read_bytes(f), "good old content\n");
  EXPECT_EQ(names(), (std::vector<std::string>{"keep.txt"}));
}

// ---------------------------------------------------------------------------------------------------------
// read_lines / read_file

TEST_F(Fs, ReadLinesBasic) {
  EXPECT_EQ(lines_of("a\nb\nc\n"), (Lines{"a", "b", "c"}));
  EXPECT_EQ(lines_of("a\nb\nc"), (Lines{"a", "b", "c"}));  // no final newline
  EXPECT_EQ(lines_of(""), Lines{});                        // empty file
  EXPECT_EQ(lines_of("\n"), (Lines{""}));
  EXPECT_EQ(lines_of("a\n\nb\n"), (Lines{"a", "", "b"}));
  EXPECT_EQ(lines_of("\n\n"), (Lines{"", ""}));
  EXPECT_EQ(lines_of("  spaced  \n"), (Lines{"  spaced  "}));  // no stripping besides '\r'
}

TEST_F(Fs, ReadLinesCrlf) {
  EXPECT_EQ(lines_of("a\r\nb\r\n"), (Lines{"a", "b"}));
  EXPECT_EQ(lines_of("a\r\nb"), (Lines{"a", "b"}));
  EXPECT_EQ(lines_of("a\r\nb\r"), (Lines{"a", "b"}));  // final CR without LF
  EXPECT_EQ(lines_of("a\nb\r\nc\n"), (Lines{"a", "b", "c"}));
  EXPECT_EQ(lines_of("\r\n"), (Lines{""}));
  EXPECT_EQ(lines_of("x\ry\n"), (Lines{"x\ry"}));  // a CR inside a line is kept
  EXPECT_EQ(lines_of("a\r\r\n"), (Lines{"a\r"}));  // only one trailing CR is removed
}

TEST_F(Fs, ReadLinesKeepsBytes) {
  const std::string weird = std::string("\xff\xfe", 2) + std::string(1, '\0') + "\xc3\xa4";
  EXPECT_EQ(lines_of(weird + "\n" + weird), (Lines{weird, weird}));
}

TEST_F(Fs, ReadFileReturnsExactBytes) {
  const auto f = dir_ / "exact.bin";
  std::string data = "line\r\nnext";
  data.push_back('\0');
  data += "\xff";
  write_bytes(f, data);
  EXPECT_EQ(s2s::fs::read_file(f), data);
  write_bytes(f, "");
  EXPECT_EQ(s2s::fs::read_file(f), "");
}

TEST_F(Fs, ReadFileMissingNamesThePath) {
  const auto missing = dir_ / "missing.txt";
  auto msg = error_of([&] { s2s::fs::read_file(missing); });
  EXPECT_CONTAINS(msg, missing.string());
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  msg = error_of([&] { s2s::fs::read_lines(missing); });
  EXPECT_CONTAINS(msg, missing.string());
}

TEST_F(Fs, ReadFileDirectoryNamesThePath) {
  auto msg = error_of([&] { s2s::fs::read_file(dir_); });
  EXPECT_CONTAINS(msg, dir_.string());
  EXPECT_CONTAINS(msg, "directory");
  msg = error_of([&] { s2s::fs::read_lines(dir_); });
  EXPECT_CONTAINS(msg, dir_.string());
}

TEST_F(Fs, ReadFileUnreadableNamesThePath) {
  if (::geteuid() == 0) GTEST_SKIP() << "root can read files without read permission";
  const auto f = dir_ / "secret.txt";
  write_bytes(f, "x");
  stdfs::permissions(f, stdfs::perms::none);
  const auto msg = error_of([&] { s2s::fs::read_file(f); });
  EXPECT_CONTAINS(msg, f.string());
  stdfs::permissions(f, stdfs::perms::owner_all);
}

// ---------------------------------------------------------------------------------------------------------
// ensure_dir / rename_atomic

TEST_F(Fs, EnsureDirCreatesParentsAndIsIdempotent) {
  const auto nested = dir_ / "a" / "b" / "c";
  s2s::fs::ensure_dir(nested);
  EXPECT_TRUE(stdfs::is_directory(nested));
  EXPECT_NO_THROW(s2s::fs::ensure_dir(nested));  // already there
  EXPECT_NO_THROW(s2s::fs::ensure_dir(dir_));
}

TEST_F(Fs, EnsureDirOverAFileNamesIt) {
  const auto file = dir_ / "plain.txt";
  write_bytes(file, "x");
  auto msg = error_of([&] { s2s::fs::ensure_dir(file); });
  EXPECT_CONTAINS(msg, file.string());
  EXPECT_EQ(read_bytes(file), "x");  // untouched
  // A file in the middle of the path.
  msg = error_of([&] { s2s::fs::ensure_dir(file / "sub"); });
  EXPECT_CONTAINS(msg, (file / "sub").string());
}

TEST_F(Fs, RenameAtomicMovesAndReplaces) {
  const auto a = dir_ / "a.txt", b = dir_ / "b.txt";
  write_bytes(a, "A");
  write_bytes(b, "B");
  s2s::fs::rename_atomic(a, b);
  EXPECT_FALSE(stdfs::exists(a));
  EXPECT_EQ(read_bytes(b), "A");
}

TEST_F(Fs, RenameAtomicMissingSourceNamesBoth) {
  const auto a = dir_ / "nothing.txt", b = dir_ / "dest.txt";
  const auto msg = error_of([&] { s2s::fs::rename_atomic(a, b); });
  EXPECT_CONTAINS(msg, a.string());
  EXPECT_CONTAINS(msg, b.string());
}

TEST_F(Fs, RelativePathInCurrentDirectory) {
  // write_file_atomic with a bare file name (no parent directory) works in the current directory.
  const auto name = "s2s_test_fs_rel_" + std::to_string(::getpid()) + ".txt";
  const auto cwd = stdfs::current_path();
  stdfs::current_path(dir_);
  s2s::fs::write_file_atomic(name, "rel");
  EXPECT_EQ(read_bytes(dir_ / name), "rel");
  stdfs::current_path(cwd);
}

}  // namespace
