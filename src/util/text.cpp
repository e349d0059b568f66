// UTF-8 and whitespace helpers (see text.h). Whitespace and lowercasing follow Python 3.11 (Unicode 14.0).
#include "util/text.h"

#include <algorithm>
#include <cstddef>
#include <iterator>

namespace s2s::text {
namespace {

constexpr char32_t kReplacement = 0xFFFD;

// One decoded UTF-8 sequence.
struct Decoded {
  char32_t cp;  // code point, or U+FFFD when malformed
  size_t len;   // bytes consumed (>= 1; a malformed sequence consumes its maximal valid prefix)
  bool ok;      // false when the sequence was malformed
};

// Decodes the sequence at s[i] (i < s.size()), following the Unicode "maximal subpart" replacement practice
// that Python's errors="replace" uses.
Decoded decode_one(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {b0, 1, true};
  int need = 0;
  char32_t cp = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte (excludes overlongs and surrogates)
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1, cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2, cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3, cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {kReplacement, 1, false};
  }
  size_t j = i + 1;
  for (int k = 0; k < need; ++k, ++j) {
    if (j >= s.size()) return {kReplacement, j - i, false};
    const auto b = static_cast<unsigned char>(s[j]);
    if (b < lo || b > hi) return {kReplacement, j - i, false};
    cp = (cp << 6) | (b & 0x3F);
    lo = 0x80, hi = 0xBF;
  }
  return {cp, j - i, true};
}

void append_utf8(std::string& out, char32_t c) {
  if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) c = kReplacement;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

// Byte length of the whitespace code point starting at s[i], or 0.
size_t space_len_at(std::string_view s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return is_unicode_space(b) ? 1 : 0;
  if (b != 0xC2 && b != 0xE1 && b != 0xE2 && b != 0xE3) return 0;  // lead bytes of non-ASCII spaces
  const Decoded d = decode_one(s, i);
  return d.ok && is_unicode_space(d.cp) ? d.len : 0;
}

// Byte length of the whitespace code point ending at s[end - 1], or 0.
size_t space_len_before(std::string_view s, size_t end) {
  for (size_t len = 1; len <= 3 && len <= end; ++len) {
    const Decoded d = decode_one(s, end - len);
    if (d.ok && d.len == len) return is_unicode_space(d.cp) ? len : 0;
  }
  return 0;
}

// Python's lowercase mapping as runs: code points first, first+step, ..., last map to cp + delta.
// Generated from CPython 3.11 (Unicode 14.0) str.lower(); U+0130 (two code points) is handled separately.
struct LowerRun {
  char32_t first;  // first code point of the run
  char32_t last;   // last code point of the run
  int step;        // 1 or 2 (alternating upper/lower blocks)
  int delta;       // lowercase = cp + delta
};
constexpr LowerRun kLowerRuns[] = {
    {0x0041, 0x005A, 1, 32},     {0x00C0, 0x00D6, 1, 32},     {0x00D8, 0x00DE, 1, 32},
    {0x0100, 0x012E, 2, 1},      {0x0132, 0x0136, 2, 1},      {0x0139, 0x0147, 2, 1},
    {0x014A, 0x0176, 2, 1},      {0x0178, 0x0178, 1, -121},   {0x0179, 0x017D, 2, 1},
    {0x0181, 0x0181, 1, 210},    {0x0182, 0x0184, 2, 1},      {0x0186, 0x0186, 1, 206},
    {0x0187, 0x0187, 1, 1},      {0x0189, 0x018A, 1, 205},    {0x018B, 0x018B, 1, 1},
    {0x018E, 0x018E, 1, 79},     {0x018F, 0x018F, 1, 202},    {0x0190, 0x0190, 1, 203},
    {0x0191, 0x0191, 1, 1},      {0x0193, 0x0193, 1, 205},    {0x0194, 0x0194, 1, 207},
    {0x0196, 0x0196, 1, 211},    {0x0197, 0x0197, 1, 209},    {0x0198, 0x0198, 1, 1},
    {0x019C, 0x019C, 1, 211},    {0x019D, 0x019D, 1, 213},    {0x019F, 0x019F, 1, 214},
    {0x01A0, 0x01A4, 2, 1},      {0x01A6, 0x01A6, 1, 218},    {0x01A7, 0x01A7, 1, 1},
    {0x01A9, 0x01A9, 1, 218},    {0x01AC, 0x01AC, 1, 1},      {0x01AE, 0x01AE, 1, 218},
    {0x01AF, 0x01AF, 1, 1},      {0x01B1, 0x01B2, 1, 217},    {0x01B3, 0x01B5, 2, 1},
    {0x01B7, 0x01B7, 1, 219},    {0x01B8, 0x01B8, 1, 1},      {0x01BC, 0x01BC, 1, 1},
    {0x01C4, 0x01C4, 1, 2},      {0x01C5, 0x01C5, 1, 1},      {0x01C7, 0x01C7, 1, 2},
    {0x01C8, 0x01C8, 1, 1},      {0x01CA, 0x01CA, 1, 2},      {0x01CB, 0x01DB, 2, 1},
    {0x01DE, 0x01EE, 2, 1},      {0x01F1, 0x01F1, 1, 2},      {0x01F2, 0x01F4, 2, 1},
    {0x01F6, 0x01F6, 1, -97},    {0x01F7, 0x01F7, 1, -56},    {0x01F8, 0x021E, 2, 1},
    {0x0220, 0x0220, 1, -130},   {0x0222, 0x0232, 2, 1},      {0x023A, 0x023A, 1, 10795},
    {0x023B, 0x023B, 1, 1},      {0x023D, 0x023D, 1, -163},   {0x023E, 0x023E, 1, 10792},
    {0x0241, 0x0241, 1, 1},      {0x0243, 0x0243, 1, -195},   {0x0244, 0x0244, 1, 69},
    {0x0245, 0x0245, 1, 71},     {0x0246, 0x024E, 2, 1},      {0x0370, 0x0372, 2, 1},
    {0x0376, 0x0376, 1, 1},      {0x037F, 0x037F, 1, 116},    {0x0386, 0x0386, 1, 38},
    {0x0388, 0x038A, 1, 37},     {0x038C, 0x038C, 1, 64},     {0x038E, 0x038F, 1, 63},
    {0x0391, 0x03A1, 1, 32},     {0x03A3, 0x03AB, 1, 32},     {0x03CF, 0x03CF, 1, 8},
    {0x03D8, 0x03EE, 2, 1},      {0x03F4, 0x03F4, 1, -60},    {0x03F7, 0x03F7, 1, 1},
    {0x03F9, 0x03F9, 1, -7},     {0x03FA, 0x03FA, 1, 1},      {0x03FD, 0x03FF, 1, -130},
    {0x0400, 0x040F, 1, 80},     {0x0410, 0x042F, 1, 32},     {0x0460, 0x0480, 2, 1},
    {0x048A, 0x04BE, 2, 1},      {0x04C0, 0x04C0, 1, 15},     {0x04C1, 0x04CD, 2, 1},
    {0x04D0, 0x052E, 2, 1},      {0x0531, 0x0556, 1, 48},     {0x10A0, 0x10C5, 1, 7264},
    {0x10C7, 0x10C7, 1, 7264},   {0x10CD, 0x10CD, 1, 7264},   {0x13A0, 0x13EF, 1, 38864},
    {0x13F0, 0x13F5, 1, 8},      {0x1C90, 0x1CBA, 1, -3008},  {0x1CBD, 0x1CBF, 1, -3008},
    {0x1E00, 0x1E94, 2, 1},      {0x1E9E, 0x1E9E, 1, -7615},  {0x1EA0, 0x1EFE, 2, 1},
    {0x1F08, 0x1F0F, 1, -8},     {0x1F18, 0x1F1D, 1, -8},     {0x1F28, 0x1F2F, 1, -8},
    {0x1F38, 0x1F3F, 1, -8},     {0x1F48, 0x1F4D, 1, -8},     {0x1F59, 0x1F5F, 2, -8},
    {0x1F68, 0x1F6F, 1, -8},     {0x1F88, 0x1F8F, 1, -8},     {0x1F98, 0x1F9F, 1, -8},
    {0x1FA8, 0x1FAF, 1, -8},     {0x1FB8, 0x1FB9, 1, -8},     {0x1FBA, 0x1FBB, 1, -74},
    {0x1FBC, 0x1FBC, 1, -9},     {0x1FC8, 0x1FCB, 1, -86},    {0x1FCC, 0x1FCC, 1, -9},
    {0x1FD8, 0x1FD9, 1, -8},     {0x1FDA, 0x1FDB, 1, -100},   {0x1FE8, 0x1FE9, 1, -8},
    {0x1FEA, 0x1FEB, 1, -112},   {0x1FEC, 0x1FEC, 1, -7},     {0x1FF8, 0x1FF9, 1, -128},
    {0x1FFA, 0x1FFB, 1, -126},   {0x1FFC, 0x1FFC, 1, -9},     {0x2126, 0x2126, 1, -7517},
    {0x212A, 0x212A, 1, -8383},  {0x212B, 0x212B, 1, -8262},  {0x2132, 0x2132, 1, 28},
    {0x2160, 0x216F, 1, 16},     {0x2183, 0x2183, 1, 1},      {0x24B6, 0x24CF, 1, 26},
    {0x2C00, 0x2C2F, 1, 48},     {0x2C60, 0x2C60, 1, 1},      {0x2C62, 0x2C62, 1, -10743},
    {0x2C63, 0x2C63, 1, -3814},  {0x2C64, 0x2C64, 1, -10727}, {0x2C67, 0x2C6B, 2, 1},
    {0x2C6D, 0x2C6D, 1, -10780}, {0x2C6E, 0x2C6E, 1, -10749}, {0x2C6F, 0x2C6F, 1, -10783},
    {0x2C70, 0x2C70, 1, -10782}, {0x2C72, 0x2C72, 1, 1},      {0x2C75, 0x2C75, 1, 1},
    {0x2C7E, 0x2C7F, 1, -10815}, {0x2C80, 0x2CE2, 2, 1},      {0x2CEB, 0x2CED, 2, 1},
    {0x2CF2, 0x2CF2, 1, 1},      {0xA640, 0xA66C, 2, 1},      {0xA680, 0xA69A, 2, 1},
    {0xA722, 0xA72E, 2, 1},      {0xA732, 0xA76E, 2, 1},      {0xA779, 0xA77B, 2, 1},
    {0xA77D, 0xA77D, 1, -35332}, {0xA77E, 0xA786, 2, 1},      {0xA78B, 0xA78B, 1, 1},
    {0xA78D, 0xA78D, 1, -42280}, {0xA790, 0xA792, 2, 1},      {0xA796, 0xA7A8, 2, 1},
    {0xA7AA, 0xA7AA, 1, -42308}, {0xA7AB, 0xA7AB, 1, -42319}, {0xA7AC, 0xA7AC, 1, -42315},
    {0xA7AD, 0xA7AD, 1, -42305}, {0xA7AE, 0xA7AE, 1, -42308}, {0xA7B0, 0xA7B0, 1, -42258},
    {0xA7B1, 0xA7B1, 1, -42282}, {0xA7B2, 0xA7B2, 1, -42261}, {0xA7B3, 0xA7B3, 1, 928},
    {0xA7B4, 0xA7C2, 2, 1},      {0xA7C4, 0xA7C4, 1, -48},    {0xA7C5, 0xA7C5, 1, -42307},
    {0xA7C6, 0xA7C6, 1, -35384}, {0xA7C7, 0xA7C9, 2, 1},      {0xA7D0, 0xA7D0, 1, 1},
    {0xA7D6, 0xA7D8, 2, 1},      {0xA7F5, 0xA7F5, 1, 1},      {0xFF21, 0xFF3A, 1, 32},
    {0x10400, 0x10427, 1, 40},   {0x104B0, 0x104D3, 1, 40},   {0x10570, 0x1057A, 1, 39},
    {0x1057C, 0x1058A, 1, 39},   {0x1058C, 0x10592, 1, 39},   {0x10594, 0x10595, 1, 39},
    {0x10C80, 0x10CB2, 1, 64},   {0x118A0, 0x118BF, 1, 32},   {0x16E40, 0x16E5F, 1, 32},
    {0x1E900, 0x1E921, 1, 34},
};

char32_t lower_cp(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  const auto* it = std::upper_bound(std::begin(kLowerRuns), std::end(kLowerRuns), c,
                                    [](char32_t v, const LowerRun& r) { return v < r.first; });
  if (it == std::begin(kLowerRuns)) return c;
  --it;
  if (c > it->last || (c - it->first) % it->step != 0) return c;
  return static_cast<char32_t>(static_cast<int64_t>(c) + it->delta);
}

// Unicode Cased / Case_Ignorable, as used by Python's final-sigma rule.
enum class CaseClass { kOther, kCased, kIgnorable };

// Exact classes below U+0590 (Latin, Greek, Cyrillic, Armenian); unlisted code points there are kOther.
struct CaseRange {
  char32_t first;   // first code point
  char32_t last;    // last code point
  CaseClass klass;  // class of the range
};
constexpr CaseClass kCs = CaseClass::kCased, kIg = CaseClass::kIgnorable;  // short names for the table
constexpr CaseRange kCaseRanges[] = {
    {0x27, 0x27, kIg},   {0x2E, 0x2E, kIg},   {0x3A, 0x3A, kIg},   {0x41, 0x5A, kCs},   {0x5E, 0x5E, kIg},
    {0x60, 0x60, kIg},   {0x61, 0x7A, kCs},   {0xA8, 0xA8, kIg},   {0xAA, 0xAA, kCs},   {0xAD, 0xAD, kIg},
    {0xAF, 0xAF, kIg},   {0xB4, 0xB4, kIg},   {0xB5, 0xB5, kCs},   {0xB7, 0xB8, kIg},   {0xBA, 0xBA, kCs},
    {0xC0, 0xD6, kCs},   {0xD8, 0xF6, kCs},   {0xF8, 0x1BA, kCs},  {0x1BC, 0x1BF, kCs}, {0x1C4, 0x293, kCs},
    {0x295, 0x2AF, kCs}, {0x2B0, 0x36F, kIg}, {0x370, 0x373, kCs}, {0x374, 0x375, kIg}, {0x376, 0x377, kCs},
    {0x37A, 0x37A, kIg}, {0x37B, 0x37D, kCs}, {0x37F, 0x37F, kCs}, {0x384, 0x385, kIg}, {0x386, 0x386, kCs},
    {0x387, 0x387, kIg}, {0x388, 0x38A, kCs}, {0x38C, 0x38C, kCs}, {0x38E, 0x3A1, kCs}, {0x3A3, 0x3F5, kCs},
    {0x3F7, 0x481, kCs}, {0x483, 0x489, kIg}, {0x48A, 0x52F, kCs}, {0x531, 0x556, kCs}, {0x559, 0x559, kIg},
    {0x55F, 0x55F, kIg}, {0x560, 0x588, kCs},
};

CaseClass case_class(char32_t c) {
  if (c < 0x590) {
    for (const CaseRange& r : kCaseRanges) {
      if (c < r.first) break;
      if (c <= r.last) return r.klass;
    }
    return CaseClass::kOther;
  }
  // Approximation above U+0590: common ignorables, then letters with case.
  if (c == 0x2018 || c == 0x2019 || c == 0x2024 || c == 0x2027 || (c >= 0x200B && c <= 0x200F) ||
      (c >= 0x180B && c <= 0x180F) || (c >= 0x2060 && c <= 0x2064) || c == 0xFEFF ||
      (c >= 0x1AB0 && c <= 0x1AFF) || (c >= 0x1DC0 && c <= 0x1DFF) || (c >= 0x20D0 && c <= 0x20FF) ||
      (c >= 0xFE00 && c <= 0xFE0F) || (c >= 0xFE20 && c <= 0xFE2F)) {
    return CaseClass::kIgnorable;
  }
  if ((c >= 0x1D00 && c <= 0x1DBF) || (c >= 0x1E00 && c <= 0x1FFF) || lower_cp(c) != c)
    return CaseClass::kCased;
  return CaseClass::kOther;
}

// Python's handle_capital_sigma(): U+03A3 lowers to final sigma after a cased letter (skipping
// case-ignorables) when no cased letter follows (skipping case-ignorables).
char32_t lower_sigma(const std::u32string& s, size_t i) {
  size_t j = i;
  while (j > 0 && case_class(s[j - 1]) == CaseClass::kIgnorable) --j;
  if (j == 0 || case_class(s[j - 1]) != CaseClass::kCased) return 0x3C3;
  j = i + 1;
  while (j < s.size() && case_class(s[j]) == CaseClass::kIgnorable) ++j;
  return (j == s.size() || case_class(s[j]) != CaseClass::kCased) ? 0x3C2 : 0x3C3;
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const Decoded d = decode_one(s, i);
    if (!d.ok) return false;
    i += d.len;
  }
  return true;
}

int sanitize_utf8(std::string& s) {
  int fixes = 0;
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const Decoded d = decode_one(s, i);
    if (!d.ok) {
      append_utf8(out, kReplacement);
      ++fixes;
    } else if (d.cp == 0) {
      out += ' ';
      ++fixes;
    } else {
      out.append(s, i, d.len);
    }
    i += d.len;
  }
  if (fixes > 0) s.swap(out);
  return fixes;
}

std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const Decoded d = decode_one(s, i);
    out += d.cp;
    i += d.len;
  }
  return out;
}

std::string encode_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

bool is_unicode_space(char32_t c) {
  if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
  switch (c) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

std::string_view rstrip(std::string_view s) {
  size_t end = s.size();
  while (size_t len = space_len_before(s, end)) end -= len;
  return s.substr(0, end);
}

std::string_view strip(std::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    const size_t len = space_len_at(s, begin);
    if (len == 0) break;
    begin += len;
  }
  return rstrip(s.substr(begin));
}

std::vector<std::string> split_whitespace(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0, start = 0;
  bool in_token = false;
  while (i < s.size()) {
    const size_t len = space_len_at(s, i);
    if (len > 0) {
      if (in_token) out.emplace_back(s.substr(start, i - start));
      in_token = false;
      i += len;
    } else {
      if (!in_token) start = i;
      in_token = true;
      ++i;
    }
  }
  if (in_token) out.emplace_back(s.substr(start));
  return out;
}

std::string to_lower(std::string_view s) {
  if (std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(lower_cp(static_cast<unsigned char>(c)));
    return out;
  }
  const std::u32string cps = decode_utf8(s);
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < cps.size(); ++i) {
    const char32_t c = cps[i];
    if (c == 0x130) {  // LATIN CAPITAL LETTER I WITH DOT ABOVE -> "i" + COMBINING DOT ABOVE
      append_utf8(out, 'i');
      append_utf8(out, 0x307);
    } else {
      append_utf8(out, c == 0x3A3 ? lower_sigma(cps, i) : lower_cp(c));
    }
  }
  return out;
}

std::string_view chomp_cr(std::string_view s) {
  if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_lines(std::string_view s) {
  std::vector<std::string_view> lines;
  for (size_t start = 0; start < s.size();) {
    const auto end = std::min(s.find('\n', start), s.size());
    lines.push_back(chomp_cr(s.substr(start, end - start)));
    start = end + 1;
  }
  return lines;
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& cand : candidates) {
    std::vector<size_t> row(cand.size() + 1);
    for (size_t j = 0; j <= cand.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= word.size(); ++i) {
      size_t diag = row[0];
      row[0] = i;
      for (size_t j = 1; j <= cand.size(); ++j) {
        const size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (word[i - 1] == cand[j - 1] ? 0 : 1)});
        diag = up;
      }
    }
    if (row[cand.size()] < best_distance) best_distance = row[cand.size()], best = cand;
  }
  return best;
}

}  // namespace s2s::text
