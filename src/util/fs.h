// File helpers: reading line files and writing files atomically (temp file + fsync + rename), so that an
// interrupted write never leaves a half-written file in place of a good one.
#pragma once

#include <filesystem>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

namespace s2s::fs {

// Reads a text file split on '\n' (a trailing '\r' is removed, a missing final newline is fine).
// Throws s2s::Error naming the path when it cannot be read.
std::vector<std::string> read_lines(const std::filesystem::path& path);

// Reads a whole file into a string; throws s2s::Error naming the path.
std::string read_file(const std::filesystem::path& path);

// Writes `contents` to `path` atomically: <path>.tmp.<pid> is written, flushed, fsynced and renamed.
void write_file_atomic(const std::filesystem::path& path, const std::string& contents);

// Same, with a writer callback that streams into the temp file.
void write_atomic(const std::filesystem::path& path, const std::function<void(std::ostream&)>& writer);

// Renames `from` over `to` atomically and fsyncs the directory.
void rename_atomic(const std::filesystem::path& from, const std::filesystem::path& to);

// Creates the directory (and parents); throws s2s::Error naming it on failure.
void ensure_dir(const std::filesystem::path& dir);

// An exclusive advisory lock (flock) on `file`, held for the object's lifetime; the file holds the owner's
// pid. Throws s2s::Error "<what> is in use by another process (pid N, ...)" when another process holds it.
// The lock dies with its process (kill -9 included), so a stale file never blocks.
class FileLock {
 public:
  FileLock(const std::filesystem::path& file, const std::string& what);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace s2s::fs
