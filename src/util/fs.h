// File helpers: reading line files and writing files atomically (temp file + fsync + rename), so that an
// interrupted write never leaves a half-written file in place of a good one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <memory>
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

// Writes a user's output file the way coreutils do: a regular file (or a missing one) is replaced atomically,
// keeping its permissions; through a symlink, the file it points to is replaced and the link kept; a FIFO or
// a device is streamed into. Every write error throws s2s::Error naming the path and the reason.
void write_output(const std::filesystem::path& path, const std::function<void(std::ostream&)>& writer);

// Throws s2s::Error when `output` and `input` are the same file (-o naming the -i file).
void check_not_same_file(const std::filesystem::path& input, const std::filesystem::path& output);

// A file mapped read-only into memory; unmapped when the last copy of `data` goes.
struct MappedFile {
  std::shared_ptr<const char> data;  // null for an empty file
  int64_t size = 0;                  // bytes
  uint64_t inode = 0, device = 0;    // which file was mapped
};

// Maps `path` read-only (private, read-ahead advised); throws s2s::Error naming it when it cannot.
MappedFile map_file(const std::filesystem::path& path);

// Drops the pages of a read-only mapping that lie wholly inside [begin, begin + bytes) from this process's
// memory; they stay in the page cache and read again if touched.
void drop_mapped_pages(const char* begin, int64_t bytes);

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
