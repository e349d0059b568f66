// The enumerated settings of the toolkit, each with one name table and one parser (as CTranslate2's
// types.h): the config reader and the command line parse names once; the code compares enums, never strings.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace s2s {

// GEMM arithmetic (bf16: fp32 sums; int8: native engine, int32 sums); auto: the fastest the CPU runs
// natively.
enum class Precision { kFp32, kBf16, kInt8, kAuto };
enum class Switch { kAuto, kOn, kOff };            // a feature used when available (auto), always, or never
enum class EngineKind { kAuto, kNative, kTorch };  // decoding engine (auto: native when it can)
enum class ModelType { kRnn, kTransformer };       // model family
enum class AttentionType { kBahdanau, kLuongDot, kLuongGeneral };  // RNN attention scoring function
enum class Activation { kRelu, kGelu };                            // Transformer feed-forward activation
enum class LrSchedule { kPlateau, kConstant, kInverseSqrt };       // learning-rate schedule after warmup
enum class EarlyStopMetric { kBleu, kPpl };                        // validation metric that selects best.bin
enum class InvalidUtf8 { kSkip, kError };                          // a training pair with invalid UTF-8
enum class SubwordModel { kUnigram, kBpe, kChar, kWord };          // SentencePiece model type
enum class Alignment { kNone, kHard, kSoft };  // translate output: none, best source position, all weights

// Where tensors live: the CPU, or CUDA device `index` (-1: the current one).
struct Device {
  enum class Kind { kCpu, kCuda };
  Kind kind = Kind::kCpu;
  int index = -1;

  bool is_cpu() const { return kind == Kind::kCpu; }
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

// Every value of enum E with its name, in declaration order (defined for each enum above).
template <class E>
const std::vector<std::pair<E, std::string>>& enum_names();

// The name of `value`, e.g. "luong-general".
template <class E>
const std::string& to_string(E value);

// Parses a name; throws s2s::Error "<what> must be one of a | b (got 'x', did you mean 'a'?)".
template <class E>
E parse_enum(const std::string& name, const std::string& what);

// "a | b | c", for help texts and messages.
template <class E>
std::string enum_choices();

// "cpu", "cuda" or "cuda:N"; throws s2s::Error "<what> must be cpu, cuda or cuda:N (got 'x')".
Device parse_device(const std::string& name, const std::string& what);
std::string to_string(const Device& device);

}  // namespace s2s
