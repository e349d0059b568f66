#include "util/fs.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/error.h"
#include "util/text.h"

namespace s2s::fs {
namespace {

std::string errno_text() {
  return std::strerror(errno);
}

void fsync_path(const std::filesystem::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

std::string read_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw Error("'" + path.string() + "' is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path.string() + "': " + errno_text());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error("cannot read '" + path.string() + "': " + errno_text());
  return ss.str();
}

std::vector<std::string> read_lines(const std::filesystem::path& path) {
  const auto data = read_file(path);
  std::vector<std::string> lines;
  for (const auto line : text::split_lines(data)) lines.emplace_back(line);
  return lines;
}

void rename_atomic(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    throw Error("cannot move '" + from.string() + "' to '" + to.string() + "': " + errno_text());
  }
  auto dir = to.parent_path();
  fsync_path(dir.empty() ? "." : dir, O_RDONLY | O_DIRECTORY);
}

void write_atomic(const std::filesystem::path& path, const std::function<void(std::ostream&)>& writer) {
  const auto tmp = path.string() + ".tmp." + std::to_string(::getpid());
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) throw Error("cannot write '" + tmp + "': " + errno_text());
      writer(out);
      out.flush();
      if (!out) throw Error("cannot write '" + tmp + "': " + errno_text());
    }
    std::error_code ec;
    const auto existing = std::filesystem::status(path, ec);
    if (std::filesystem::is_regular_file(existing))
      std::filesystem::permissions(tmp, existing.permissions(), ec);
    fsync_path(tmp, O_RDONLY);
    rename_atomic(tmp, path);
  } catch (...) {
    std::remove(tmp.c_str());  // never leave a half-written temp file behind
    throw;
  }
}

void write_output(const std::filesystem::path& path, const std::function<void(std::ostream&)>& writer) {
  std::error_code ec;
  auto target = path;
  for (int hops = 0; std::filesystem::is_symlink(target, ec); ++hops) {  // also a dangling link: its target
    const auto next = std::filesystem::read_symlink(target, ec);
    if (ec || hops == 40) throw Error("cannot resolve output '" + path.string() + "': too many symlinks");
    target = next.is_absolute() ? next : target.parent_path() / next;
  }
  const auto status = std::filesystem::status(target, ec);
  if (std::filesystem::is_directory(status)) throw Error("output '" + path.string() + "' is a directory");
  if (!std::filesystem::exists(status) || std::filesystem::is_regular_file(status)) {
    return write_atomic(target, writer);
  }
  std::ofstream out(target, std::ios::binary);  // FIFO, device or socket: no temp file, no rename
  if (!out) throw Error("cannot open output '" + path.string() + "': " + errno_text());
  writer(out);
  out.flush();
  if (!out) throw Error("cannot write output '" + path.string() + "': " + errno_text());
}

void check_not_same_file(const std::filesystem::path& input, const std::filesystem::path& output) {
  std::error_code ec;
  if (std::filesystem::equivalent(input, output, ec)) {
    throw Error("output '" + output.string() + "' is the input file '" + input.string() +
                "': it would be replaced before it is read; write to another file");
  }
}

void write_file_atomic(const std::filesystem::path& path, const std::string& contents) {
  write_atomic(path, [&](std::ostream& out) {
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  });
}

MappedFile map_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open '" + path.string() + "': " + errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const auto why = errno_text();
    ::close(fd);
    throw Error("cannot read '" + path.string() + "': " + why);
  }
  MappedFile m;
  m.size = static_cast<int64_t>(st.st_size), m.inode = st.st_ino, m.device = st.st_dev;
  void* p =
      m.size > 0 ? ::mmap(nullptr, static_cast<size_t>(m.size), PROT_READ, MAP_PRIVATE, fd, 0) : nullptr;
  const auto why = errno_text();
  ::close(fd);  // the mapping keeps the file
  if (p == MAP_FAILED) throw Error("cannot map '" + path.string() + "' into memory: " + why);
  if (p == nullptr) return m;
  ::madvise(p, static_cast<size_t>(m.size), MADV_WILLNEED);
  const auto bytes = static_cast<size_t>(m.size);
  m.data = std::shared_ptr<const char>(static_cast<const char*>(p),
                                       [bytes](const char* q) { ::munmap(const_cast<char*>(q), bytes); });
  return m;
}

void drop_mapped_pages(const char* begin, int64_t bytes) {
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto start = reinterpret_cast<uintptr_t>(begin);
  const auto first = (start + page - 1) / page * page,
             last = (start + static_cast<uintptr_t>(bytes)) / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

void ensure_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    throw Error("cannot create directory '" + dir.string() + "': " + (ec ? ec.message() : "not a directory"));
  }
}

FileLock::FileLock(const std::filesystem::path& file, const std::string& what) {
  fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("cannot open lock file '" + file.string() + "': " + errno_text());
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char pid[32] = {};
    const auto n = ::pread(fd_, pid, sizeof pid - 1, 0);
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK) throw Error("cannot lock '" + file.string() + "': " + std::strerror(err));
    const std::string holder = n > 0 ? std::string(text::strip(std::string_view(pid, static_cast<size_t>(n))))
                                     : std::string("unknown");
    throw Error(what + " is in use by another process (pid " + holder + ", lock file '" + file.string() +
                "')");
  }
  const auto me = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    spdlog::debug("cannot write the pid into '{}'", file.string());  // the lock itself holds
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock; the file stays (removing it would race a new owner)
}

}  // namespace s2s::fs
