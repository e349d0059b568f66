// The server's request parser on arbitrary bodies: it either returns lines and a beam size within the limits,
// or throws an HttpError with 400 or 413. Any other exception, a crash or a sanitizer report is a finding.
#include "fuzz_util.h"
#include "serve/server.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  s2s::serve::ServeOptions o;
  o.max_lines = 8, o.max_beam_size = 16;
  const std::string body(reinterpret_cast<const char*>(data), size);
  try {
    const auto r = s2s::serve::parse_request(body, o);
    if (r.lines.size() > o.max_lines || r.beam_size < 1 || r.beam_size > o.max_beam_size) __builtin_trap();
    for (const auto& line : r.lines) {
      if (line.find('\n') != std::string::npos || line.find('\r') != std::string::npos) __builtin_trap();
    }
  } catch (const s2s::serve::HttpError& e) {
    if (e.status != 400 && e.status != 413) __builtin_trap();
  }
  return 0;
}
