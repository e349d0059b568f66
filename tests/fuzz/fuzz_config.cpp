// The YAML config reader: parse, validate and dump any text; a dumped config must parse back to itself.
#include "config/config.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  s2s_fuzz::expect_clean([&] {
    const auto config = s2s::parse_config(text, "fuzz.yaml", "/base");
    const auto dumped = s2s::dump_config(config);
    if (s2s::dump_config(s2s::parse_config(dumped, "dumped.yaml", "/base")) != dumped) __builtin_trap();
  });
  return 0;
}
