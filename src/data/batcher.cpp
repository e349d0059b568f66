#include "data/batcher.h"

#include <algorithm>
#include <numeric>
#include <random>

namespace s2s {
namespace {

// Deterministic Fisher-Yates (std::shuffle's algorithm is implementation-defined).
template <class T>
void shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = rng() % i;
    std::swap(v[i - 1], v[j]);
  }
}

}  // namespace

BatchPlan plan_batches(const std::vector<int32_t>& src_lengths, const std::vector<int32_t>& tgt_lengths,
                       const BatchOptions& options, uint64_t seed, int64_t epoch) {
  const auto n = static_cast<int64_t>(src_lengths.size());
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed * 1000003ULL + static_cast<uint64_t>(epoch));
  if (options.shuffle) shuffle(order, rng);

  auto cost = [&](int64_t i) {
    return std::max<int64_t>(src_lengths[static_cast<size_t>(i)], tgt_lengths[static_cast<size_t>(i)] + 1);
  };
  const int64_t mean_cost = n == 0 ? 1 : std::max<int64_t>(1, [&] {
    int64_t total = 0;
    for (int64_t i = 0; i < n; ++i) total += cost(i);
    return total / n;
  }());
  const int64_t pool_size = std::max<int64_t>(1, options.batch_tokens / mean_cost * options.pool_batches);

  BatchPlan plan;
  // A batch lists its longest target first: the decoder's training recurrence then runs, at each position,
  // only the leading rows whose sentences reach it (decoder_recurrence.h, DecoderRecurrenceInputs::active).
  auto add = [&](std::vector<int64_t> batch) {
    std::stable_sort(batch.begin(), batch.end(), [&](int64_t a, int64_t b) {
      return tgt_lengths[static_cast<size_t>(a)] > tgt_lengths[static_cast<size_t>(b)];
    });
    plan.push_back(std::move(batch));
  };
  for (int64_t begin = 0; begin < n; begin += pool_size) {
    const auto end = std::min(n, begin + pool_size);
    std::stable_sort(order.begin() + begin, order.begin() + end, [&](int64_t a, int64_t b) {
      const auto sa = src_lengths[static_cast<size_t>(a)], sb = src_lengths[static_cast<size_t>(b)];
      return sa != sb ? sa < sb : tgt_lengths[static_cast<size_t>(a)] < tgt_lengths[static_cast<size_t>(b)];
    });
    std::vector<int64_t> batch;
    int64_t max_cost = 0;
    for (auto k = begin; k < end; ++k) {
      const auto i = order[static_cast<size_t>(k)];
      const auto grown = std::max(max_cost, cost(i));
      if (!batch.empty() && grown * static_cast<int64_t>(batch.size() + 1) > options.batch_tokens) {
        // The sentences beyond the last full multiple start the next batch (the pool is sorted by length).
        const auto size = static_cast<int64_t>(batch.size()),
                   m = std::max<int64_t>(1, options.sentence_multiple);
        const auto keep = size >= 4 * m ? size - size % m : size;  // moves at most a quarter
        std::vector<int64_t> carried(batch.begin() + keep, batch.end());
        batch.resize(static_cast<size_t>(keep));
        add(std::move(batch));
        batch = std::move(carried);
        max_cost = 0;
        for (const auto j : batch) max_cost = std::max(max_cost, cost(j));
      }
      batch.push_back(i);
      max_cost = std::max(max_cost, cost(i));
    }
    if (!batch.empty()) add(std::move(batch));
  }
  if (options.shuffle) shuffle(plan, rng);
  return plan;
}

BatchPlan split_batch(const std::vector<int64_t>& batch, const std::vector<int32_t>& tgt_lengths, int parts) {
  BatchPlan shares(static_cast<size_t>(std::max(parts, 1)));
  int64_t total = 0;
  for (const int64_t i : batch) total += tgt_lengths[static_cast<size_t>(i)] + 1;
  int64_t before = 0;  // target tokens of the sentences ahead of this one
  for (const int64_t i : batch) {
    const int64_t tokens = tgt_lengths[static_cast<size_t>(i)] + 1;
    // The share whose token range holds this sentence's middle: contiguous, and balanced by tokens.
    const int64_t share = std::min<int64_t>(
        (2 * before + tokens) * static_cast<int64_t>(shares.size()) / (2 * std::max<int64_t>(total, 1)),
        static_cast<int64_t>(shares.size()) - 1);
    shares[static_cast<size_t>(share)].push_back(i);
    before += tokens;
  }
  return shares;
}

}  // namespace s2s
