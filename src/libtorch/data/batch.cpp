#include "libtorch/data/batch.h"

namespace s2s {
namespace {

// Writes sequences into a [n, max_len] pad-filled tensor; `prefix`/`suffix` (-1 = none) wrap each row.
torch::Tensor pad_rows(size_t n, const std::function<std::pair<const int32_t*, int64_t>(size_t)>& row,
                       int64_t pad, int64_t prefix, int64_t suffix) {
  const int64_t extra = (prefix >= 0) + (suffix >= 0);
  int64_t max_len = 1;
  for (size_t i = 0; i < n; ++i) max_len = std::max(max_len, row(i).second + extra);
  auto out = torch::full({static_cast<int64_t>(n), max_len}, pad, torch::kInt64);
  auto acc = out.accessor<int64_t, 2>();
  for (size_t i = 0; i < n; ++i) {
    auto [data, len] = row(i);
    int64_t k = 0;
    if (prefix >= 0) acc[static_cast<int64_t>(i)][k++] = prefix;
    for (int64_t j = 0; j < len; ++j) acc[static_cast<int64_t>(i)][k++] = data[j];
    if (suffix >= 0) acc[static_cast<int64_t>(i)][k++] = suffix;
  }
  return out;
}

}  // namespace

Batch Batch::to(const torch::Device& device) const {
  if (device.is_cpu()) return *this;
  return {src.to(device), src_lengths.to(device), tgt_in.defined() ? tgt_in.to(device) : tgt_in,
          tgt_out.defined() ? tgt_out.to(device) : tgt_out, tgt_tokens};
}

Batch make_source_batch(const std::vector<std::vector<int32_t>>& sources, const SpecialIds& ids) {
  Batch b;
  b.src = pad_rows(
      sources.size(),
      [&](size_t i) {
        return std::pair{sources[i].data(), static_cast<int64_t>(sources[i].size())};
      },
      ids.pad, -1, -1);
  b.src_lengths = torch::empty({static_cast<int64_t>(sources.size())}, torch::kInt64);
  for (size_t i = 0; i < sources.size(); ++i) {
    b.src_lengths[static_cast<int64_t>(i)] = std::max<int64_t>(1, static_cast<int64_t>(sources[i].size()));
  }
  return b;
}

Batch make_batch(const ParallelCorpus& corpus, const std::vector<int64_t>& indices, const SpecialIds& ids) {
  auto src_row = [&](size_t i) {
    return std::pair{corpus.src.data(indices[i]), corpus.src.length(indices[i])};
  };
  auto tgt_row = [&](size_t i) {
    return std::pair{corpus.tgt.data(indices[i]), corpus.tgt.length(indices[i])};
  };
  Batch b;
  b.src = pad_rows(indices.size(), src_row, ids.pad, -1, -1);
  b.tgt_in = pad_rows(indices.size(), tgt_row, ids.pad, ids.bos, -1);
  b.tgt_out = pad_rows(indices.size(), tgt_row, ids.pad, -1, ids.eos);
  b.src_lengths = torch::empty({static_cast<int64_t>(indices.size())}, torch::kInt64);
  auto lens = b.src_lengths.accessor<int64_t, 1>();
  for (size_t i = 0; i < indices.size(); ++i) {
    lens[static_cast<int64_t>(i)] = std::max<int64_t>(1, corpus.src.length(indices[i]));
    b.tgt_tokens += corpus.tgt.length(indices[i]) + 1;
  }
  return b;
}

}  // namespace s2s
