// Running the s2s binary from tests: spawn with pipes, wait with a timeout, signal.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace s2s_test {

struct Child {
  pid_t pid = -1;
  int stdin_fd = -1;   // write end of the child's stdin (-1 when stdin is /dev/null)
  int stdout_fd = -1;  // read end of the child's stdout
};

// Starts `binary` (S2S_BINARY) with `args`; stderr goes to `stderr_file`.
inline Child spawn(const std::vector<std::string>& args, const std::string& stderr_file,
                   bool pipe_stdin = false, const char* binary = S2S_BINARY) {
  int in[2] = {-1, -1}, out[2];
  if (pipe_stdin && ::pipe(in) != 0) return {};
  if (::pipe(out) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (pipe_stdin) {
      ::dup2(in[0], 0);
      ::close(in[1]);
    } else {
      const int devnull = ::open("/dev/null", O_RDONLY);
      ::dup2(devnull, 0);
    }
    ::dup2(out[1], 1);
    ::close(out[0]);
    const int err = ::open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(err, 2);
    std::vector<char*> argv{const_cast<char*>(binary)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(binary, argv.data());
    ::_exit(127);
  }
  if (pipe_stdin) ::close(in[0]);
  ::close(out[1]);
  return {pid, pipe_stdin ? in[1] : -1, out[0]};
}

// Reads whatever the child writes to stdout until EOF.
inline std::string read_all(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  return s;
}

// Reads one line from fd, waiting at most `timeout_ms`; returns false on timeout/EOF.
inline bool read_line(int fd, std::string& line, int timeout_ms) {
  line.clear();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char c;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    if (::read(fd, &c, 1) != 1) return false;
    if (c == '\n') return true;
    line.push_back(c);
  }
  return false;
}

// Waits for the child; returns its wait status.
inline int wait_status(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

}  // namespace s2s_test
