#include "config/types.h"

#include <algorithm>

#include "util/error.h"
#include "util/text.h"

namespace s2s {

#define S2S_ENUM_NAMES(E, ...)                                              \
  template <>                                                               \
  const std::vector<std::pair<E, std::string>>& enum_names<E>() {           \
    static const std::vector<std::pair<E, std::string>> names{__VA_ARGS__}; \
    return names;                                                           \
  }

S2S_ENUM_NAMES(Precision, {Precision::kFp32, "fp32"}, {Precision::kBf16, "bf16"}, {Precision::kInt8, "int8"},
               {Precision::kAuto, "auto"})
S2S_ENUM_NAMES(Switch, {Switch::kAuto, "auto"}, {Switch::kOn, "true"}, {Switch::kOff, "false"})
S2S_ENUM_NAMES(EngineKind, {EngineKind::kAuto, "auto"}, {EngineKind::kNative, "native"},
               {EngineKind::kTorch, "torch"})
S2S_ENUM_NAMES(ModelType, {ModelType::kRnn, "rnn"}, {ModelType::kTransformer, "transformer"})
S2S_ENUM_NAMES(Activation, {Activation::kRelu, "relu"}, {Activation::kGelu, "gelu"})
S2S_ENUM_NAMES(AttentionType, {AttentionType::kBahdanau, "bahdanau"}, {AttentionType::kLuongDot, "luong-dot"},
               {AttentionType::kLuongGeneral, "luong-general"})
S2S_ENUM_NAMES(LrSchedule, {LrSchedule::kPlateau, "plateau"}, {LrSchedule::kConstant, "constant"},
               {LrSchedule::kInverseSqrt, "inverse-sqrt"})
S2S_ENUM_NAMES(EarlyStopMetric, {EarlyStopMetric::kBleu, "bleu"}, {EarlyStopMetric::kPpl, "ppl"})
S2S_ENUM_NAMES(InvalidUtf8, {InvalidUtf8::kSkip, "skip"}, {InvalidUtf8::kError, "error"})
S2S_ENUM_NAMES(SubwordModel, {SubwordModel::kUnigram, "unigram"}, {SubwordModel::kBpe, "bpe"},
               {SubwordModel::kChar, "char"}, {SubwordModel::kWord, "word"})
S2S_ENUM_NAMES(Alignment, {Alignment::kNone, "none"}, {Alignment::kHard, "hard"}, {Alignment::kSoft, "soft"})
#undef S2S_ENUM_NAMES

template <class E>
const std::string& to_string(E value) {
  for (const auto& [v, name] : enum_names<E>()) {
    if (v == value) return name;
  }
  throw Error("internal error: enum value " + std::to_string(static_cast<int>(value)) + " has no name");
}

template <class E>
std::string enum_choices() {
  std::string list;
  for (const auto& [v, name] : enum_names<E>()) list += (list.empty() ? "" : " | ") + name;
  return list;
}

template <class E>
E parse_enum(const std::string& name, const std::string& what) {
  std::vector<std::string> known;
  for (const auto& [v, n] : enum_names<E>()) {
    if (n == name) return v;
    known.push_back(n);
  }
  const auto hint = text::closest_match(name, known);
  throw Error(what + " must be one of " + enum_choices<E>() + " (got '" + name + "'" +
              (hint.empty() ? "" : ", did you mean '" + hint + "'?") + ")");
}

#define S2S_ENUM_INSTANTIATE(E)                \
  template const std::string& to_string<E>(E); \
  template std::string enum_choices<E>();      \
  template E parse_enum<E>(const std::string&, const std::string&);
S2S_ENUM_INSTANTIATE(Precision)
S2S_ENUM_INSTANTIATE(Switch)
S2S_ENUM_INSTANTIATE(EngineKind)
S2S_ENUM_INSTANTIATE(ModelType)
S2S_ENUM_INSTANTIATE(Activation)
S2S_ENUM_INSTANTIATE(AttentionType)
S2S_ENUM_INSTANTIATE(LrSchedule)
S2S_ENUM_INSTANTIATE(EarlyStopMetric)
S2S_ENUM_INSTANTIATE(InvalidUtf8)
S2S_ENUM_INSTANTIATE(SubwordModel)
S2S_ENUM_INSTANTIATE(Alignment)
#undef S2S_ENUM_INSTANTIATE

Device parse_device(const std::string& name, const std::string& what) {
  if (name == "cpu") return {};
  if (name == "cuda") return {Device::Kind::kCuda, -1};
  const bool indexed =
      name.rfind("cuda:", 0) == 0 && name.size() > 5 && name.size() < 9 &&
      std::all_of(name.begin() + 5, name.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  if (!indexed) throw Error(what + " must be cpu, cuda or cuda:N (got '" + name + "')");
  return {Device::Kind::kCuda, std::stoi(name.substr(5))};
}

std::string to_string(const Device& device) {
  if (device.is_cpu()) return "cpu";
  return device.index < 0 ? "cuda" : "cuda:" + std::to_string(device.index);
}

}  // namespace s2s
