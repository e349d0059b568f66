// Error type thrown by the library. The message is one actionable line that names the file, line or key
// involved; apps/ catches it, logs it and exits non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace s2s {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace s2s
