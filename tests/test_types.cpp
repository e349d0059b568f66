// The enumerated settings (config/types.h): every name parses back to its value, unknown names get one
// message listing the choices and the closest one, and devices parse and print.
#include <gtest/gtest.h>

#include <set>

#include "config/types.h"
#include "test_util.h"

namespace {

template <class E>
void expect_round_trip(size_t count) {
  const auto& names = s2s::enum_names<E>();
  EXPECT_EQ(names.size(), count);
  std::set<std::string> seen;
  for (const auto& [value, name] : names) {
    EXPECT_EQ(s2s::parse_enum<E>(name, "key"), value) << name;
    EXPECT_EQ(s2s::to_string(value), name);
    EXPECT_TRUE(seen.insert(name).second) << "duplicate name " << name;
  }
}

TEST(Types, EveryNameRoundTrips) {
  expect_round_trip<s2s::Precision>(4);
  expect_round_trip<s2s::Switch>(3);
  expect_round_trip<s2s::EngineKind>(3);
  expect_round_trip<s2s::AttentionType>(3);
  expect_round_trip<s2s::LrSchedule>(3);
  expect_round_trip<s2s::EarlyStopMetric>(2);
  expect_round_trip<s2s::InvalidUtf8>(2);
  expect_round_trip<s2s::SubwordModel>(4);
  expect_round_trip<s2s::Alignment>(3);
}

TEST(Types, UnknownNameListsTheChoicesAndTheClosest) {
  const auto msg =
      s2s_test::error_of([] { s2s::parse_enum<s2s::SubwordModel>("wordpiece", "--model-type"); });
  EXPECT_EQ(msg, "--model-type must be one of unigram | bpe | char | word (got 'wordpiece')");
  EXPECT_EQ(s2s_test::error_of([] { s2s::parse_enum<s2s::Precision>("bf61", "decode.precision"); }),
            "decode.precision must be one of fp32 | bf16 | int8 | auto (got 'bf61', did you mean 'bf16'?)");
  EXPECT_EQ(s2s::enum_choices<s2s::EngineKind>(), "auto | native | torch");
}

TEST(Types, Devices) {
  using Kind = s2s::Device::Kind;
  EXPECT_TRUE(s2s::parse_device("cpu", "d").is_cpu());
  EXPECT_EQ(s2s::parse_device("cuda", "d"), (s2s::Device{Kind::kCuda, -1}));
  EXPECT_EQ(s2s::parse_device("cuda:3", "d"), (s2s::Device{Kind::kCuda, 3}));
  for (const std::string name : {"cpu", "cuda", "cuda:0", "cuda:12"}) {
    EXPECT_EQ(s2s::to_string(s2s::parse_device(name, "d")), name);
  }
  for (const std::string bad : {"gpu", "CPU", "cuda:", "cuda:x", "cuda:-1", "cuda0", "cuda:99999999999"}) {
    EXPECT_EQ(s2s_test::error_of([&] { s2s::parse_device(bad, "train.device"); }),
              "train.device must be cpu, cuda or cuda:N (got '" + bad + "')");
  }
}

}  // namespace
