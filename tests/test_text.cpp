// UTF-8 and whitespace helpers: validity, sanitizing, decoding, and Python-compatible whitespace handling.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "util/text.h"

namespace {

using s2s::text::chomp_cr;
using s2s::text::decode_utf8;
using s2s::text::encode_utf8;
using s2s::text::is_unicode_space;
using s2s::text::is_valid_utf8;
using s2s::text::rstrip;
using s2s::text::sanitize_utf8;
using s2s::text::split_whitespace;
using s2s::text::strip;
using s2s::text::to_lower;

const std::string kFffd = "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER

TEST(TextUtf8, ValidSequences) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9D\x84\x9E"));  // é, €, U+1D11E
  EXPECT_TRUE(is_valid_utf8("\xF4\x8F\xBF\xBF"));                            // U+10FFFF
  EXPECT_TRUE(is_valid_utf8("\xED\x9F\xBF"));                                // U+D7FF, just below surrogates
  EXPECT_TRUE(is_valid_utf8(std::string("a\0b", 3)));                        // NUL is valid UTF-8
}

TEST(TextUtf8, InvalidSequences) {
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xC1\xBF"));          // overlong
  EXPECT_FALSE(is_valid_utf8("\xE0\x80\xAF"));      // overlong 3-byte
  EXPECT_FALSE(is_valid_utf8("\xF0\x80\x80\xAF"));  // overlong 4-byte
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xED\xBF\xBF"));      // surrogate U+DFFF
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(is_valid_utf8("\xF5\x80\x80\x80"));  // invalid lead byte
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));          // truncated at end
  EXPECT_FALSE(is_valid_utf8("\xE2\x82x"));         // truncated before ASCII
  EXPECT_FALSE(is_valid_utf8("\x80"));              // stray continuation byte
  EXPECT_FALSE(is_valid_utf8("\xFF"));
}

TEST(TextUtf8, SanitizeReplacesMaximalSubparts) {
  std::string s = "ok";
  EXPECT_EQ(sanitize_utf8(s), 0);
  EXPECT_EQ(s, "ok");

  s = "a\xE2\x82"
      "b";  // truncated 3-byte sequence: one U+FFFD
  EXPECT_EQ(sanitize_utf8(s), 1);
  EXPECT_EQ(s, "a" + kFffd + "b");

  s = "\xC0\xAF";  // overlong: C0 and AF are each invalid
  EXPECT_EQ(sanitize_utf8(s), 2);
  EXPECT_EQ(s, kFffd + kFffd);

  s = "\xED\xA0\x80";  // surrogate: three replacements, as Python's errors="replace"
  EXPECT_EQ(sanitize_utf8(s), 3);
  EXPECT_EQ(s, kFffd + kFffd + kFffd);

  s = "\xF0\x9F\x98";  // truncated emoji: one replacement
  EXPECT_EQ(sanitize_utf8(s), 1);
  EXPECT_EQ(s, kFffd);

  s = std::string("x\0y\0", 4);  // NUL bytes become spaces
  EXPECT_EQ(sanitize_utf8(s), 2);
  EXPECT_EQ(s, "x y ");
  EXPECT_TRUE(is_valid_utf8(s));
}

TEST(TextUtf8, DecodeEncodeRoundTrip) {
  const std::string s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E";
  const std::u32string cps = decode_utf8(s);
  EXPECT_EQ(cps, (std::u32string{U'a', 0xE9, 0x20AC, 0x1D11E}));
  EXPECT_EQ(encode_utf8(cps), s);
  EXPECT_EQ(decode_utf8("a\xFF"
                        "b"),
            (std::u32string{U'a', 0xFFFD, U'b'}));
  EXPECT_EQ(encode_utf8(std::u32string{0xD800, 0x110000}), kFffd + kFffd);  // unencodable -> U+FFFD
}

TEST(TextWhitespace, PythonIsspace) {
  for (char32_t c : {0x09, 0x0A,   0x0B,   0x0C,   0x0D,   0x1C,   0x1D,   0x1E,   0x1F,   0x20,  0x85,
                     0xA0, 0x1680, 0x2000, 0x2005, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000}) {
    EXPECT_TRUE(is_unicode_space(c)) << std::hex << static_cast<uint32_t>(c);
  }
  for (char32_t c : {0x00, 0x08, 0x21, 0x41, 0x180E, 0x200B, 0x2060, 0xFEFF, 0xFFFD}) {
    EXPECT_FALSE(is_unicode_space(c)) << std::hex << static_cast<uint32_t>(c);
  }
}

TEST(TextWhitespace, SplitOnEveryUnicodeSpace) {
  // NBSP, ideographic space, tab, line separator, NEL and a run of mixed spaces all split.
  EXPECT_EQ(split_whitespace("a\xC2\xA0"
                             "b\xE3\x80\x80"
                             "c\td\xE2\x80\xA8"
                             "e\xC2\x85"
                             "f \t\xE2\x80\x89 g"),
            (std::vector<std::string>{"a", "b", "c", "d", "e", "f", "g"}));
  EXPECT_EQ(split_whitespace("  lead and trail  "), (std::vector<std::string>{"lead", "and", "trail"}));
  EXPECT_TRUE(split_whitespace("").empty());
  EXPECT_TRUE(split_whitespace(" \t\xC2\xA0 ").empty());
  // Zero-width space and BOM are not whitespace in Python.
  EXPECT_EQ(split_whitespace("a\xE2\x80\x8B"
                             "b \xEF\xBB\xBF"),
            (std::vector<std::string>{"a\xE2\x80\x8B"
                                      "b",
                                      "\xEF\xBB\xBF"}));
  // Multi-byte letters whose bytes resemble space encodings stay intact (U+00E0, U+2026, U+3001).
  EXPECT_EQ(split_whitespace("\xC3\xA0\xE2\x80\xA6\xE3\x80\x81"),
            (std::vector<std::string>{"\xC3\xA0\xE2\x80\xA6\xE3\x80\x81"}));
}

TEST(TextWhitespace, RstripAndStrip) {
  EXPECT_EQ(rstrip("abc \t\r\n"), "abc");
  EXPECT_EQ(rstrip("abc\xE2\x80\xA8"), "abc");              // U+2028 LINE SEPARATOR
  EXPECT_EQ(rstrip("abc\xC2\xA0\xE3\x80\x80 "), "abc");     // NBSP + U+3000 + space
  EXPECT_EQ(rstrip("abc\xE2\x80\x8B"), "abc\xE2\x80\x8B");  // U+200B is not whitespace
  EXPECT_EQ(rstrip("  abc"), "  abc");
  EXPECT_EQ(rstrip(" \xC2\x85 "), "");
  EXPECT_EQ(rstrip("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(strip("\xE3\x80\x80 x y\t"), "x y");
  EXPECT_EQ(strip(""), "");
}

TEST(TextWhitespace, ChompCr) {
  EXPECT_EQ(chomp_cr("line\r"), "line");
  EXPECT_EQ(chomp_cr("line"), "line");
  EXPECT_EQ(chomp_cr("line\r\r"), "line\r");
  EXPECT_EQ(chomp_cr(""), "");
}

TEST(TextLower, MatchesPythonLower) {
  EXPECT_EQ(to_lower("Hello WORLD 123"), "hello world 123");
  EXPECT_EQ(to_lower("\xC3\x80\xC3\x89\xC3\x9E"), "\xC3\xA0\xC3\xA9\xC3\xBE");  // ÀÉÞ -> àéþ
  EXPECT_EQ(to_lower("\xC3\x9F"), "\xC3\x9F");                                  // ß unchanged
  EXPECT_EQ(to_lower("\xC4\xB0"), "i\xCC\x87");                                 // İ -> i + U+0307
  EXPECT_EQ(to_lower("\xD0\x91\xD0\xAF"), "\xD0\xB1\xD1\x8F");                  // БЯ -> бя
  EXPECT_EQ(to_lower("\xE2\x84\xAA"), "k");                                     // KELVIN SIGN -> k
  EXPECT_EQ(to_lower("\xF0\x90\x90\x80"), "\xF0\x90\x90\xA8");                  // Deseret U+10400
  // Greek capital sigma: final form at the end of a word, medial form elsewhere.
  EXPECT_EQ(to_lower("\xCE\xA3\xCE\x91\xCE\xA3"), "\xCF\x83\xCE\xB1\xCF\x82");    // ΣΑΣ -> σας
  EXPECT_EQ(to_lower("\xCE\x91\xCE\xA3 \xCE\x91"), "\xCE\xB1\xCF\x82 \xCE\xB1");  // ΑΣ Α -> ας α
  EXPECT_EQ(to_lower("\xCE\xA3"), "\xCF\x83");                                    // lone Σ -> σ
  EXPECT_EQ(to_lower("\xCE\x91\xCE\xA3'\xCE\x91"), "\xCE\xB1\xCF\x83'\xCE\xB1");  // ' is case-ignorable
}

}  // namespace
