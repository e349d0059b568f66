#include "metrics/stats.h"

#include "util/error.h"

namespace s2s::metrics {

StatRows sentence_stats(const std::vector<std::string>& hyps,
                        const std::vector<std::vector<std::string>>& refs, const SentenceStatsFn& fn,
                        const std::string& metric) {
  if (refs.empty()) throw Error(metric + ": no reference");
  for (size_t r = 0; r < refs.size(); ++r) {
    if (refs[r].size() != hyps.size()) {
      throw Error(metric + ": the hypothesis has " + std::to_string(hyps.size()) +
                  " lines but the reference" +
                  (refs.size() > 1 ? " " + std::to_string(r + 1) : std::string()) + " has " +
                  std::to_string(refs[r].size()));
    }
  }
  StatRows rows;
  rows.reserve(hyps.size());
  std::vector<std::string> line_refs(refs.size());
  for (size_t i = 0; i < hyps.size(); ++i) {
    for (size_t r = 0; r < refs.size(); ++r) line_refs[r] = refs[r][i];
    rows.push_back(fn(hyps[i], line_refs));
  }
  return rows;
}

std::vector<double> sum_rows(const StatRows& rows, size_t width) {
  std::vector<double> sum(width, 0.0);
  for (const auto& row : rows) {
    if (row.size() != width) {
      throw Error("internal error: statistics rows of " + std::to_string(row.size()) + " and " +
                  std::to_string(width) + " values");
    }
    for (size_t k = 0; k < width; ++k) sum[k] += row[k];
  }
  return sum;
}

}  // namespace s2s::metrics
