// UTF-8 handling and the line readers used for corpora and scoring: decoding, sanitizing, Python-style
// whitespace splitting and lowercasing, and reading a file as sacreBLEU does.
#include "fuzz_util.h"
#include "metrics/bleu.h"
#include "util/fs.h"
#include "util/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::string sanitized = text;
  s2s::text::sanitize_utf8(sanitized);
  if (!s2s::text::is_valid_utf8(sanitized)) __builtin_trap();  // sanitizing must give valid UTF-8
  if (s2s::text::encode_utf8(s2s::text::decode_utf8(sanitized)) != sanitized) __builtin_trap();
  (void)s2s::text::split_whitespace(sanitized);
  (void)s2s::text::to_lower(sanitized);
  (void)s2s::text::strip(sanitized);
  const auto file = s2s_fuzz::as_file(data, size);
  s2s_fuzz::expect_clean([&] {
    for (const auto& line : s2s::metrics::read_lines_for_scoring(file)) {
      if (!s2s::text::is_valid_utf8(line)) __builtin_trap();
    }
    (void)s2s::fs::read_lines(file);
  });
  return 0;
}
