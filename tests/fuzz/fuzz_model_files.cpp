// The LibTorch-free model file readers: best.bin (the streaming reader and the native engine's indexed
// source, float32 or converted by s2s convert) and shortlist.txt. Damaged files must be rejected with
// s2s::Error, never read out of bounds.
#include "data/shortlist.h"
#include "fuzz_util.h"
#include "infer/parameters.h"
#include "infer/weights_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = s2s_fuzz::as_file(data, size);
  s2s_fuzz::expect_clean([&] {
    s2s::WeightsFileReader in(file);
    for (uint64_t i = 0; i < in.count() && i < 64; ++i) {
      const auto entry = in.next();
      if (entry.numel() > (1 << 20))
        return;  // a plausible header for a large tensor: the size check covers it
      std::vector<float> values(static_cast<size_t>(entry.numel()));
      in.read_float(values.data(), entry.numel());
    }
  });
  s2s_fuzz::expect_clean([&] {
    auto params = s2s::infer::open_weights_file(file);
    (void)params->get("decoder.bias0", {8});
  });
  s2s_fuzz::expect_clean([&] {  // a matrix: as stored in a converted file, else made from the parameter
    auto params = s2s::infer::open_weights_file(file);
    const s2s::infer::MatrixLayout layout{4, 8, s2s::infer::WeightType::kInt8, false, true};
    (void)params->matrix("decoder.w_rec1", layout, [&] { return params->get("decoder.w_rec1", {4, 8}); });
  });
  s2s_fuzz::expect_clean([&] { (void)s2s::load_shortlist(file, 1000); });
  return 0;
}
