// UTF-8 and whitespace helpers shared by the data pipeline, the translator and the metrics.
// Whitespace follows Python's str.isspace()/str.split() (sacreBLEU reads lines that way).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace s2s::text {

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view s);

// Replaces every malformed UTF-8 sequence by U+FFFD and NUL bytes by a space; returns the number of fixes.
int sanitize_utf8(std::string& s);

// Decodes UTF-8 to code points; malformed bytes decode to U+FFFD.
std::u32string decode_utf8(std::string_view s);

// Encodes code points as UTF-8.
std::string encode_utf8(std::u32string_view s);

// Python str.isspace() for a single code point.
bool is_unicode_space(char32_t c);

// Python str.rstrip(): removes trailing Unicode whitespace.
std::string_view rstrip(std::string_view s);

// Python str.strip().
std::string_view strip(std::string_view s);

// Python str.split() with no argument: splits on runs of Unicode whitespace, drops empty pieces.
std::vector<std::string> split_whitespace(std::string_view s);

// Python str.lower(): full Unicode lowercase mapping (U+0130 -> "i\u0307"); Greek final sigma is exact below
// U+0590 and approximated above. Malformed UTF-8 becomes U+FFFD.
std::string to_lower(std::string_view s);

// Strips a trailing '\r' (CRLF input).
std::string_view chomp_cr(std::string_view s);

// The lines of `s` split on '\n', each chomp_cr'ed (a missing final newline is fine), as views into s.
std::vector<std::string_view> split_lines(std::string_view s);

// Levenshtein-closest entry of `candidates` to `word` ("" when nothing is reasonably close).
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace s2s::text
