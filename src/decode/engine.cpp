#include "decode/engine.h"

#include <algorithm>
#include <string>

#include "util/error.h"

namespace s2s {
namespace {

std::vector<int64_t> source_lengths(const std::vector<std::vector<int32_t>>& batch) {
  std::vector<int64_t> lengths;
  for (const auto& s : batch) lengths.push_back(static_cast<int64_t>(s.size()));
  return lengths;
}

// The column of target id `id` in a step's scores (a subset's ids are sorted).
int64_t column_of(const StepScores& s, int64_t id) {
  if (!s.ids || s.ids->empty()) return id < s.vocab ? id : -1;
  const auto it = std::lower_bound(s.ids->begin(), s.ids->end(), id);
  return it != s.ids->end() && *it == id ? it - s.ids->begin() : -1;
}

}  // namespace

std::vector<std::vector<Hypothesis>> Engine::translate_batch(const std::vector<std::vector<int32_t>>& batch,
                                                             const std::vector<int64_t>& vocab_subset,
                                                             const SearchOptions& options) {
  const auto scorer = start(batch, vocab_subset, options.beam_size);
  const auto special = ids();
  return beam_search(*scorer, source_lengths(batch), options, special.bos, special.eos);
}

std::vector<std::vector<float>> Engine::score_batch(const std::vector<std::vector<int32_t>>& sources,
                                                    const std::vector<std::vector<int32_t>>& targets) {
  const auto scorer = start(sources, {}, 1);
  const auto special = ids();
  return force_decode(*scorer, targets, special.bos, special.eos);
}

std::vector<std::vector<float>> force_decode(StepScorer& scorer,
                                             const std::vector<std::vector<int32_t>>& targets, int64_t bos,
                                             int64_t eos) {
  const auto n = targets.size();
  std::vector<std::vector<float>> scores(n);
  std::vector<size_t> active(n);  // row r of the scorer holds sentence active[r]
  for (size_t i = 0; i < n; ++i) active[i] = i;
  for (size_t t = 0; !active.empty(); ++t) {
    const auto A = static_cast<int64_t>(active.size());
    std::vector<int64_t> tokens;  // [A] the previous target token of every row
    for (const auto i : active) tokens.push_back(t == 0 ? bos : targets[i][t - 1]);
    const auto step = scorer.step(tokens, A, 1, false);
    std::vector<int64_t> kept;  // rows whose target goes on after this step
    for (int64_t r = 0; r < A; ++r) {
      const auto& target = targets[active[static_cast<size_t>(r)]];
      const int64_t next = t < target.size() ? target[t] : eos;
      const auto col = column_of(step, next);
      if (col < 0) throw Error("target id " + std::to_string(next) + " is outside the model's vocabulary");
      scores[active[static_cast<size_t>(r)]].push_back(step.logits[r * step.vocab + col] - step.logsumexp[r]);
      if (t < target.size()) kept.push_back(r);
    }
    if (static_cast<int64_t>(kept.size()) < A && !kept.empty()) scorer.reorder(kept, kept, A, 1);
    std::vector<size_t> next_active;
    for (const auto r : kept) next_active.push_back(active[static_cast<size_t>(r)]);
    active = std::move(next_active);
  }
  return scores;
}

}  // namespace s2s
