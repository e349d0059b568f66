// Decodes a PNG far enough to trust it: signature, chunk CRCs, IHDR, and the zlib stream of the IDAT chunks
// inflating to exactly the bytes its size and pixel format need (zlib, Debian zlib1g-dev).
#pragma once

#include <zlib.h>

#include <cstdint>
#include <string>

namespace s2s_test {

struct PngInfo {
  bool ok = false;
  std::string why;  // when not ok
  uint32_t width = 0, height = 0;
};

inline uint32_t be32(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
         (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}

inline PngInfo decode_png(const std::string& png) {
  PngInfo info;
  if (png.size() < 8 || png.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0)
    return info.why = "no PNG signature", info;
  std::string idat;
  int channels = 0, depth = 0;
  bool end = false;
  for (size_t at = 8; at + 12 <= png.size() && !end;) {
    const uint32_t len = be32(png, at);
    if (at + 12 + len > png.size()) return info.why = "truncated chunk", info;
    const std::string type = png.substr(at + 4, 4);
    const auto crc = crc32(0, reinterpret_cast<const Bytef*>(png.data() + at + 4), len + 4);
    if (crc != be32(png, at + 8 + len)) return info.why = "bad CRC in " + type, info;
    if (type == "IHDR") {
      info.width = be32(png, at + 8), info.height = be32(png, at + 12);
      depth = uint8_t(png[at + 16]);
      const int color = uint8_t(png[at + 17]);
      channels = color == 6 ? 4 : color == 2 ? 3 : color == 4 ? 2 : 1;
    } else if (type == "IDAT") {
      idat += png.substr(at + 8, len);
    } else if (type == "IEND") {
      end = true;
    }
    at += 12 + len;
  }
  if (!end || info.width == 0 || idat.empty()) return info.why = "no IHDR/IDAT/IEND", info;
  // Each row: a filter byte, then width * channels * depth / 8 bytes (non-interlaced).
  const uLongf expected = info.height * (1 + (info.width * channels * depth + 7) / 8);
  std::string raw(expected + 1, '\0');
  uLongf got = raw.size();
  if (uncompress(reinterpret_cast<Bytef*>(&raw[0]), &got, reinterpret_cast<const Bytef*>(idat.data()),
                 idat.size()) != Z_OK) {
    return info.why = "the image data does not inflate", info;
  }
  if (got != expected) return info.why = "the image data has the wrong size", info;
  info.ok = true;
  return info;
}

}  // namespace s2s_test
