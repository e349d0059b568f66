#include "decode/beam.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "kernels/kernels.h"

namespace s2s {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Host-side record of one live hypothesis (tokens so far and, optionally, attention rows).
struct Partial {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> attention;
};

struct SentenceSearch {
  int64_t index = 0;                 // position in the input batch
  int64_t src_len = 0;               // source tokens
  int64_t max_len = 0;               // output tokens allowed (EOS included)
  std::vector<Hypothesis> finished;  // completed hypotheses
};

// Where the search stands after one step: the rows to continue, their last tokens and scores.
struct NextStep {
  std::vector<int64_t> rows, tokens;  // backpointer into the current rows; token to feed next
  std::vector<float> scores;          // cumulative log-probability per row
  std::vector<Partial> partials;      // host-side history per row
  std::vector<int64_t> kept;          // indices (into the active list) of sentences still searching
};

Hypothesis finish(const Partial& p, int32_t last_token, bool is_eos, double score, double alpha) {
  Hypothesis h;
  h.tokens = p.tokens;
  if (!is_eos) h.tokens.push_back(last_token);
  h.score = score;
  const auto length = static_cast<double>(h.tokens.size() + (is_eos ? 1 : 0));
  h.norm_score = alpha > 0 ? score / std::pow(length, alpha) : score;
  h.attention = p.attention;
  return h;
}

// Consumes sentence a's candidates: finished ones go to s.finished, up to K continue into `next`.
// Returns true when the sentence is done.
bool advance_sentence(SentenceSearch& s, int64_t a, int64_t t, const StepCandidates& cand,
                      const std::vector<Partial>& partials, int64_t eos, const SearchOptions& opt,
                      NextStep& next) {
  const int64_t K = opt.beam_size, C = cand.per_sentence;
  const float* tv = cand.values.data() + a * C;
  const int64_t* tr = cand.rows.data() + a * C;
  const int64_t* tt = cand.tokens.data() + a * C;
  auto attention_row = [&](int64_t row) {
    return cand.attention.empty() ? nullptr : cand.attention.data() + row * cand.attention_cols;
  };
  const bool at_limit = t + 1 >= s.max_len;
  bool top_finished = false;
  const auto first = next.rows.size();
  for (int64_t j = 0; j < C && static_cast<int64_t>(next.rows.size() - first) < K; ++j) {
    if (tv[j] == kNegInf) break;
    const int64_t row = tr[j], tok = tt[j];
    const float* arow = attention_row(row);
    if (tok == eos || at_limit) {
      if (j < K) {
        auto h = finish(partials[static_cast<size_t>(row)], static_cast<int32_t>(tok), tok == eos, tv[j],
                        opt.normalize);
        if (arow) h.attention.emplace_back(arow, arow + s.src_len);
        s.finished.push_back(std::move(h));
        top_finished |= j == 0;
      }
      continue;
    }
    Partial p = partials[static_cast<size_t>(row)];
    p.tokens.push_back(static_cast<int32_t>(tok));
    if (arow) p.attention.emplace_back(arow, arow + s.src_len);
    next.partials.push_back(std::move(p));
    next.rows.push_back(row), next.tokens.push_back(tok), next.scores.push_back(tv[j]);
  }
  const auto finished = static_cast<int64_t>(s.finished.size());
  const bool done = next.rows.size() == first || finished >= K ||
                    (opt.early_exit && top_finished && finished >= opt.n_best);
  if (done) {
    next.rows.resize(first), next.tokens.resize(first), next.scores.resize(first);
    next.partials.resize(first);
    return true;
  }
  while (static_cast<int64_t>(next.rows.size() - first) < K) {  // pad to K rows with dead hypotheses
    next.rows.push_back(next.rows[first]), next.tokens.push_back(next.tokens[first]);
    next.scores.push_back(kNegInf), next.partials.push_back(next.partials[first]);
  }
  return false;
}

// Best n_best finished hypotheses by normalized score.
std::vector<Hypothesis> best_of(std::vector<Hypothesis> finished, int n_best) {
  std::stable_sort(finished.begin(), finished.end(),
                   [](const Hypothesis& x, const Hypothesis& y) { return x.norm_score > y.norm_score; });
  if (static_cast<int>(finished.size()) > n_best) finished.resize(static_cast<size_t>(n_best));
  return finished;
}

// Indices of the n largest values of v[0..size) (n is 2 * beam size, size a vocabulary or shortlist).
void top_n(const float* v, int64_t size, int64_t n, std::vector<int64_t>& out) {
  out.resize(static_cast<size_t>(std::min(n, size)));
  if (!out.empty()) kernels::top_n(v, size, static_cast<int64_t>(out.size()), out.data());
}

}  // namespace

std::vector<std::vector<Hypothesis>> beam_search(StepScorer& scorer, const std::vector<int64_t>& src_lengths,
                                                 const SearchOptions& opt, int64_t bos, int64_t eos) {
  const auto batch = static_cast<int64_t>(src_lengths.size());
  const int64_t K = opt.beam_size;
  std::vector<SentenceSearch> active(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b) {
    auto& s = active[static_cast<size_t>(b)];
    s.index = b;
    s.src_len = src_lengths[static_cast<size_t>(b)];
    s.max_len = static_cast<int64_t>(opt.max_length_factor * static_cast<double>(s.src_len)) + 5;
  }
  std::vector<std::vector<Hypothesis>> results(static_cast<size_t>(batch));
  std::vector<Partial> partials(static_cast<size_t>(batch * K));
  std::vector<float> scores(static_cast<size_t>(batch * K), kNegInf);
  for (int64_t b = 0; b < batch; ++b) scores[static_cast<size_t>(b * K)] = 0;  // one live beam at the start
  std::vector<int64_t> tokens(static_cast<size_t>(batch * K), bos);

  for (int64_t t = 0; !active.empty(); ++t) {
    const auto A = static_cast<int64_t>(active.size());
    const auto cand = select_candidates(scorer.step(tokens, A, K, opt.keep_attention), scores, A, K);
    NextStep next;
    std::vector<SentenceSearch> still_active;
    for (int64_t a = 0; a < A; ++a) {
      auto& s = active[static_cast<size_t>(a)];
      if (advance_sentence(s, a, t, cand, partials, eos, opt, next)) {
        results[static_cast<size_t>(s.index)] = best_of(std::move(s.finished), opt.n_best);
      } else {
        next.kept.push_back(a);
        still_active.push_back(std::move(s));
      }
    }
    if (still_active.empty()) break;
    // Greedy, or beams that kept their order and all sentences: the scorer's state is already in place.
    bool identity = next.rows.size() == static_cast<size_t>(A * K);
    for (size_t r = 0; r < next.rows.size() && identity; ++r)
      identity = next.rows[r] == static_cast<int64_t>(r);
    if (!identity) scorer.reorder(next.rows, next.kept, A, K);
    tokens = std::move(next.tokens);
    scores = std::move(next.scores);
    partials = std::move(next.partials);
    active = std::move(still_active);
  }
  return results;
}

StepCandidates select_candidates(const StepScores& step, const std::vector<float>& scores, int64_t A,
                                 int64_t K) {
  const float* logits = step.logits;
  const float* logsumexp = step.logsumexp;
  const int64_t V = step.vocab;
  static const std::vector<int64_t> kIdentity;
  const auto& ids = step.ids ? *step.ids : kIdentity;
  const int64_t per_row = std::min<int64_t>(2 * K, V), C = std::min<int64_t>(2 * K, K * per_row);
  StepCandidates c;
  c.per_sentence = C;
  c.values.reserve(static_cast<size_t>(A * C));
  c.rows.reserve(static_cast<size_t>(A * C));
  c.tokens.reserve(static_cast<size_t>(A * C));
  std::vector<float> pool(static_cast<size_t>(K * per_row));  // one sentence's K * per_row candidates
  std::vector<int64_t> pool_row(pool.size()), pool_tok(pool.size()), best;
  for (int64_t a = 0; a < A; ++a) {
    for (int64_t k = 0; k < K; ++k) {
      const int64_t row = a * K + k;
      const float* x = logits + row * V;
      const bool dead = scores[static_cast<size_t>(row)] == kNegInf;  // padding of a sentence's K rows
      if (dead) {
        best.resize(static_cast<size_t>(per_row));
        std::iota(best.begin(), best.end(), 0);
      } else {
        top_n(x, V, per_row, best);
      }
      const float base = scores[static_cast<size_t>(row)] - logsumexp[row];
      for (int64_t j = 0; j < per_row; ++j) {
        const auto p = static_cast<size_t>(k * per_row + j);
        const auto local = best[static_cast<size_t>(j)];
        pool[p] = dead ? kNegInf : x[local] + base;
        pool_row[p] = row;
        pool_tok[p] = ids.empty() ? local : ids[static_cast<size_t>(local)];
      }
    }
    top_n(pool.data(), static_cast<int64_t>(pool.size()), C, best);
    for (const auto p : best) {
      c.values.push_back(pool[static_cast<size_t>(p)]);
      c.rows.push_back(pool_row[static_cast<size_t>(p)]);
      c.tokens.push_back(pool_tok[static_cast<size_t>(p)]);
    }
  }
  if (step.attention) {
    c.attention.assign(step.attention, step.attention + A * K * step.attention_cols);
    c.attention_cols = step.attention_cols;
  }
  return c;
}

}  // namespace s2s
