// Building blocks of the mteval-style tokenizers (BLEU's 13a, TER's tercom): sacreBLEU writes them as Python
// regex substitutions; these are the same passes on UTF-8 bytes. Internal to src/metrics.
#pragma once

#include <string>
#include <string_view>

#include "util/text.h"

namespace s2s::metrics::rules {

// Replaces every occurrence of `from` (non-overlapping, left to right).
inline void replace_all(std::string& s, std::string_view from, std::string_view to) {
  size_t hit = s.find(from);
  if (hit == std::string::npos) return;
  std::string out;
  size_t pos = 0;
  for (; hit != std::string::npos; hit = s.find(from, pos)) {
    out.append(s, pos, hit - pos).append(to);
    pos = hit + from.size();
  }
  out.append(s, pos, std::string::npos);
  s.swap(out);
}

// Python ' '.join(s.split()).
inline std::string join_words(std::string_view s) {
  std::string out;
  for (const std::string& w : text::split_whitespace(s)) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

inline bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// The ASCII characters mteval pads with spaces: the class [\{-\~\[-\` -\&\(-\+\:-\@\/] (space included,
// which is harmless).
inline bool is_mteval_symbol(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  return (c >= 0x7B && c <= 0x7E) || (c >= 0x5B && c <= 0x60) || (c >= 0x20 && c <= 0x26) ||
         (c >= 0x28 && c <= 0x2B) || (c >= 0x3A && c <= 0x40) || c == 0x2F;
}

// One left-to-right, non-overlapping regex substitution over a two-character pattern: where match(a, b)
// holds, emit(out, a, b) replaces the pair. Byte-wise scanning equals Python's code-point scanning here
// because every pattern involves an ASCII character on the side that decides a match.
template <typename Match, typename Emit>
std::string substitute_pairs(const std::string& s, Match match, Emit emit) {
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  size_t i = 0;
  while (i < s.size()) {
    if (i + 1 < s.size() && match(s[i], s[i + 1])) {
      emit(out, s[i], s[i + 1]);
      i += 2;
    } else {
      out += s[i++];
    }
  }
  return out;
}

// " " + s + " " with every mteval symbol padded by spaces (the first regex pass of 13a and tercom).
inline std::string pad_symbols(std::string_view s) {
  std::string padded = " ";
  padded.reserve(s.size() * 3 + 2);
  for (char c : s) {
    if (is_mteval_symbol(c)) {
      padded.append({' ', c, ' '});
    } else {
      padded += c;
    }
  }
  padded += ' ';
  return padded;
}

// The number rules of both tokenizers, in sacreBLEU's order: ([^0-9])([\.,]) -> "\1 \2 ",
// ([\.,])([^0-9]) -> " \1 \2", ([0-9])(-) -> "\1 \2 ".
inline std::string split_dots_commas_dashes(const std::string& padded) {
  const auto is_dot_comma = [](char c) { return c == '.' || c == ','; };
  auto out = substitute_pairs(
      padded, [&](char a, char b) { return !is_digit(a) && is_dot_comma(b); },
      [](std::string& o, char a, char b) {
        o.append({a, ' ', b, ' '});
      });
  out = substitute_pairs(
      out, [&](char a, char b) { return is_dot_comma(a) && !is_digit(b); },
      [](std::string& o, char a, char b) {
        o.append({' ', a, ' ', b});
      });
  return substitute_pairs(
      out, [](char a, char b) { return is_digit(a) && b == '-'; },
      [](std::string& o, char a, char b) {
        o.append({a, ' ', b, ' '});
      });
}

}  // namespace s2s::metrics::rules
