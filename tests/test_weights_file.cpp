// The LibTorch-free best.bin reader on hand-made files: shapes whose element count would overflow or exceed
// the file are damage (found by tests/fuzz/fuzz_model_files), as are unknown magics; so are a converted
// file's (s2s convert) matrices beyond its end. Version-3 files align
// each parameter's data to 64 bytes, and the mapped reader reads it in place; version-2 files still load.
#include <gtest/gtest.h>

#include <cstring>

#include "infer/converted_weights.h"
#include "infer/weights_file.h"
#include "test_util.h"
#include "util/fs.h"

namespace {

template <class T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// A version-2 file (no alignment padding) with one parameter "x" of `shape` and no data.
std::string header_only(const std::vector<int64_t>& shape) {
  std::string out(s2s::kWeightsMagicV2, sizeof s2s::kWeightsMagicV2);
  put<uint64_t>(out, 1);
  put<uint32_t>(out, 1);
  out += "x";
  put<uint32_t>(out, static_cast<uint32_t>(shape.size()));
  for (auto s : shape) put<int64_t>(out, s);
  return out;
}

class WeightsFile : public s2s_test::TempDirTest {
 protected:
  WeightsFile() : TempDirTest("weights_file") {}
  std::string error_for(const std::string& bytes) {
    const auto file = dir_ / "w.bin";
    s2s::fs::write_file_atomic(file, bytes);
    return s2s_test::error_of([&] {
      s2s::WeightsFileReader in(file);
      in.next();
    });
  }
};

TEST_F(WeightsFile, ShapesLargerThanTheFileAreDamage) {
  const int64_t big = int64_t{1} << 32;
  for (const auto& shape : {std::vector<int64_t>{big, big, big}, std::vector<int64_t>{big, big},
                            std::vector<int64_t>{1 << 20}, std::vector<int64_t>{-1}}) {
    EXPECT_CONTAINS(error_for(header_only(shape)), "is damaged (shape of x)");
  }
}

TEST_F(WeightsFile, AFittingShapeReadsAndTheChecksumIsVerified) {
  auto bytes = header_only({2});
  const float values[2] = {1.5f, -2.0f};
  bytes.append(reinterpret_cast<const char*>(values), sizeof values);
  put<uint64_t>(bytes, s2s::weights_checksum(values, sizeof values));
  const auto file = dir_ / "ok.bin";
  s2s::fs::write_file_atomic(file, bytes);
  s2s::WeightsFileReader in(file);
  ASSERT_EQ(in.next().numel(), 2);
  float got[2];
  in.read_float(got, 2);
  EXPECT_EQ(got[1], -2.0f);
  bytes[bytes.size() - 9] ^= 1;  // a flipped bit in the data
  s2s::fs::write_file_atomic(file, bytes);
  s2s::WeightsFileReader damaged(file);
  damaged.next();
  EXPECT_CONTAINS(s2s_test::error_of([&] { damaged.read_float(got, 2); }),
                  "checksum mismatch in parameter x");
}

TEST_F(WeightsFile, UnknownMagicIsNotAWeightsFile) {
  EXPECT_CONTAINS(error_for("S2SWEIG9" + std::string(8, '\0')), "is not an s2s weights file");
}

// Two parameters, values base + k.
void write_pair(const std::filesystem::path& file, float base, const std::string& second = "b") {
  s2s::write_weights_file(file, 2, [&](uint64_t i, const s2s::WriteParameter& write) {
    const std::vector<float> v = {base, base + 1, base + 2, base + 3};
    if (i == 0) write("a", {2, 2}, v.data());
    if (i == 1) write(second, {3}, v.data());
  });
}

TEST_F(WeightsFile, AveragingGivesTheElementWiseMean) {
  write_pair(dir_ / "x.bin", 1), write_pair(dir_ / "y.bin", 2), write_pair(dir_ / "z.bin", 6);
  s2s::average_weights_files({dir_ / "x.bin", dir_ / "y.bin", dir_ / "z.bin"}, dir_ / "mean.bin");
  s2s::WeightsFileReader in(dir_ / "mean.bin");
  ASSERT_EQ(in.count(), 2u);
  auto a = in.next();
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 2}));
  float got[4];
  in.read_float(got, 4);
  for (int k = 0; k < 4; ++k) EXPECT_FLOAT_EQ(got[k], 3.0f + static_cast<float>(k));  // (1 + 2 + 6) / 3 + k
  auto b = in.next();
  EXPECT_EQ(b.shape, (std::vector<int64_t>{3}));
  in.read_float(got, 3);
  EXPECT_FLOAT_EQ(got[2], 5.0f);
}

TEST_F(WeightsFile, AveragingFilesOfAnotherModelIsRefused) {
  write_pair(dir_ / "x.bin", 1), write_pair(dir_ / "other.bin", 1, "c");
  EXPECT_CONTAINS(s2s_test::error_of([&] {
                    s2s::average_weights_files({dir_ / "x.bin", dir_ / "other.bin"}, dir_ / "mean.bin");
                  }),
                  "cannot average '" + (dir_ / "other.bin").string() + "'");
  EXPECT_FALSE(std::filesystem::exists(dir_ / "mean.bin"));  // nothing half-written
}

TEST_F(WeightsFile, MappedReadsAreInPlaceForAlignedFilesAndCopiesForVersion2) {
  const auto file = dir_ / "v3.bin";
  write_pair(file, 1, "bb");  // names of different lengths: the padding differs
  s2s::WeightsFileReader in(file);
  std::vector<int64_t> offsets;
  for (int i = 0; i < 2; ++i) offsets.push_back(in.skip(in.next().numel()));
  for (auto offset : offsets) EXPECT_EQ(offset % 64, 0) << "data at offset " << offset;
  std::vector<float> copy;
  const float* b = in.mapped_float_at(offsets[1], 3, "bb", &copy);
  EXPECT_TRUE(copy.empty());  // a pointer into the mapping
  EXPECT_EQ(std::vector<float>(b, b + 3), (std::vector<float>{1, 2, 3}));

  auto v2 = header_only({2});  // data right after a 29-byte header: not float-aligned
  const float values[2] = {1.5f, -2.0f};
  v2.append(reinterpret_cast<const char*>(values), sizeof values);
  put<uint64_t>(v2, s2s::weights_checksum(values, sizeof values));
  s2s::fs::write_file_atomic(dir_ / "v2.bin", v2);
  s2s::WeightsFileReader old(dir_ / "v2.bin");
  const auto offset = old.skip(old.next().numel());
  const float* x = old.mapped_float_at(offset, 2, "x", &copy);
  EXPECT_EQ(x, copy.data());
  EXPECT_EQ(copy, (std::vector<float>{1.5f, -2.0f}));
  v2[v2.size() - 9] ^= 1;  // a flipped bit in the data
  s2s::fs::write_file_atomic(dir_ / "v2.bin", v2);
  s2s::WeightsFileReader damaged(dir_ / "v2.bin");
  EXPECT_CONTAINS(s2s_test::error_of([&] { damaged.mapped_float_at(offset, 2, "x", &copy); }),
                  "checksum mismatch in parameter x");
}

// A training saves best.bin by rename: a reader that indexed the old file must not read the new one's bytes
// at the old offsets.
TEST_F(WeightsFile, AFileReplacedAfterItsIndexWasReadIsRefused) {
  const auto file = dir_ / "best.bin";
  write_pair(file, 1);
  s2s::WeightsFileReader in(file);
  const auto offset = in.skip(in.next().numel());
  write_pair(file, 2);  // replaced atomically: another inode
  std::vector<float> copy;
  EXPECT_CONTAINS(s2s_test::error_of([&] { in.mapped_float_at(offset, 4, "a", &copy); }),
                  "was replaced while it was read");
}

// A converted file (s2s convert) whose matrix header claims more bytes than the file holds is damage, also
// when rows x cols x 2 bytes would overflow a 64-bit count (2^31 x 2^31 bf16 values).
TEST_F(WeightsFile, ConvertedMatricesLargerThanTheFileAreDamage) {
  for (const int64_t size : {int64_t{1} << 31, int64_t{1} << 30, int64_t{1000}}) {
    std::string out(s2s::infer::kConvertedMagic, sizeof s2s::infer::kConvertedMagic);
    put<uint32_t>(out, 1), put<uint32_t>(out, 0), put<uint64_t>(out, 1);  // bf16, one entry
    put<uint32_t>(out, 1), put<uint32_t>(out, 1), out += "w";             // a matrix named "w"
    put<int64_t>(out, size), put<int64_t>(out, size), put<uint32_t>(out, 0);
    out.append(128, '\0');
    const auto file = dir_ / "converted.bin";
    s2s::fs::write_file_atomic(file, out);
    EXPECT_CONTAINS(s2s_test::error_of([&] { s2s::infer::open_converted_weights(file); }),
                    "is truncated or damaged")
        << size;
  }
}

}  // namespace
