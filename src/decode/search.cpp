#include "decode/search.h"

#include <ATen/autocast_mode.h>

#include "model/ops.h"

#include <cmath>
#include <limits>

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

// The output layer for one batch, restricted to a vocabulary subset when one is given. The weight is
// stored transposed and contiguous (a plain [K, N] GEMM operand) and, under autocast, cast once per batch
// instead of once per step.
struct OutputLayer {
  torch::Tensor weight_t, bias;  // [out_dim, vocab'], [vocab']
  std::vector<int64_t> ids;      // local index -> target id (empty: identity)
  int64_t to_global(int64_t local) const { return ids.empty() ? local : ids[static_cast<size_t>(local)]; }
  torch::Tensor logits(const torch::Tensor& hidden) const { return torch::addmm(bias, hidden, weight_t); }
};

OutputLayer output_layer(Seq2SeqImpl& model, const std::vector<int64_t>& subset,
                         const torch::Device& device) {
  OutputLayer out{model.out_weight, model.out_bias, subset};
  if (!subset.empty()) {
    auto index = torch::tensor(subset, torch::kInt64).to(device);
    out.weight_t = out.weight_t.index_select(0, index), out.bias = out.bias.index_select(0, index);
  }
  out.weight_t = out.weight_t.t().contiguous();
  if (device.is_cpu() && at::autocast::is_cpu_enabled()) {
    const auto dtype = at::autocast::get_autocast_cpu_dtype();
    out.weight_t = out.weight_t.to(dtype), out.bias = out.bias.to(dtype);
  }
  return out;
}

// Where the search stands after one step: the rows to continue, their last tokens and scores.
struct NextStep {
  std::vector<int64_t> rows, tokens;  // backpointer into the current rows; token to feed next
  std::vector<float> scores;          // cumulative log-probability per row
  std::vector<Partial> partials;      // host-side history per row
  std::vector<int64_t> kept;          // indices (into the active list) of sentences still searching
};

// One step's best candidates per sentence, on the host, best first.
struct Candidates {
  torch::Tensor values;     // [A, C] float: cumulative log-probability
  torch::Tensor rows;       // [A, C] int64: hypothesis row (a * K + beam) extended
  torch::Tensor tokens;     // [A, C] int64: output-layer index of the token (local to a shortlist)
  torch::Tensor attention;  // [A*K, src_len] float, or undefined
};

// Consumes sentence a's candidates: finished ones go to s.finished, up to K continue into `next`.
// Returns true when the sentence is done.
bool advance_sentence(SentenceSearch& s, int64_t a, int64_t t, const Candidates& cand,
                      const std::vector<Partial>& partials, const OutputLayer& output, int64_t eos,
                      const SearchOptions& opt, NextStep& next) {
  const int64_t K = opt.beam_size, C = cand.values.size(1);
  const float* tv = cand.values.data_ptr<float>() + a * C;
  const int64_t* tr = cand.rows.data_ptr<int64_t>() + a * C;
  const int64_t* tt = cand.tokens.data_ptr<int64_t>() + a * C;
  auto attention_row = [&](int64_t row) {
    return cand.attention.defined() ? cand.attention.data_ptr<float>() + row * cand.attention.size(1)
                                    : nullptr;
  };
  const bool at_limit = t + 1 >= s.max_len;
  bool top_finished = false;
  const auto first = next.rows.size();
  for (int64_t j = 0; j < C && static_cast<int64_t>(next.rows.size() - first) < K; ++j) {
    if (tv[j] == kNegInf) break;
    const int64_t row = tr[j], tok = output.to_global(tt[j]);
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

// Scores one step and returns each sentence's 2K best (row, token) candidates on the host. Exact top-2K of
// log_softmax + previous score over all K rows, without materializing log_softmax: each row's 2K best
// logits minus the row's logsumexp, then the best 2K of those K * 2K per sentence.
Candidates top_candidates(Seq2SeqImpl& model, const OutputLayer& output, DecoderState& state,
                          const torch::Tensor& tokens, const std::vector<float>& scores, int64_t A, int64_t K,
                          bool keep_attention) {
  torch::Tensor attn;
  auto out = model.decoder->step(tokens, state, keep_attention ? &attn : nullptr);  // [A*K, out_dim]
  auto logits = output.logits(out);                                                 // [A*K, vocab']
  const auto per_row = std::min<int64_t>(2 * K, logits.size(1));
  auto [row_v, row_i] = logits.topk(per_row, /*dim=*/1);  // [A*K, per_row]
  auto prev = torch::from_blob(const_cast<float*>(scores.data()), {A * K, 1}, torch::kFloat).to(out.device());
  auto cand = row_v.to(torch::kFloat) - row_logsumexp(logits).unsqueeze(1) + prev;  // [A*K, per_row]
  auto [values, flat] = cand.view({A, K * per_row}).topk(std::min<int64_t>(2 * K, K * per_row), 1);
  const auto base = torch::arange(A, flat.options()).unsqueeze(1) * K;  // [A, 1]
  Candidates c;
  c.values = values.to(torch::kCPU).contiguous();
  c.rows = (base + flat.div(per_row, /*rounding_mode=*/"floor")).to(torch::kCPU).contiguous();
  c.tokens = row_i.view({A, K * per_row}).gather(1, flat).to(torch::kCPU).contiguous();
  if (keep_attention) c.attention = attn.to(torch::kCPU, torch::kFloat).contiguous();
  return c;
}

// Applies the step's selection to the decoder state: reorder hypothesis rows, drop finished sentences.
void reorder_state(DecoderState& state, const NextStep& next, int64_t A, int64_t K) {
  bool identity = next.rows.size() == static_cast<size_t>(A * K);  // greedy, or beams that kept their order
  for (size_t r = 0; r < next.rows.size() && identity; ++r)
    identity = next.rows[r] == static_cast<int64_t>(r);
  if (!identity) state.index_select(next.rows);
  if (static_cast<int64_t>(next.kept.size()) < A) state.keys = state.keys.index_select(next.kept);
}

}  // namespace

std::vector<std::vector<Hypothesis>> beam_search(Seq2SeqImpl& model, const torch::Tensor& src,
                                                 const torch::Tensor& src_lengths, const SearchOptions& opt,
                                                 const std::vector<int64_t>& vocab_subset) {
  torch::NoGradGuard no_grad;
  const int64_t batch = src.size(0), K = opt.beam_size, eos = model.vocabs.eos_id;
  const auto device = src.device();
  const auto long_opts = torch::TensorOptions(device).dtype(torch::kInt64);
  const auto output = output_layer(model, vocab_subset, device);
  auto state = model.start(src, src_lengths);
  std::vector<int64_t> beams;  // every sentence's row repeated for its K hypotheses
  for (int64_t b = 0; b < batch; ++b) beams.insert(beams.end(), static_cast<size_t>(K), b);
  state.index_select(beams);

  auto lengths_cpu = src_lengths.to(torch::kCPU);
  std::vector<SentenceSearch> active(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b) {
    auto& s = active[static_cast<size_t>(b)];
    s.index = b;
    s.src_len = lengths_cpu[b].item<int64_t>();
    s.max_len = static_cast<int64_t>(opt.max_length_factor * static_cast<double>(s.src_len)) + 5;
  }
  std::vector<std::vector<Hypothesis>> results(static_cast<size_t>(batch));
  std::vector<Partial> partials(static_cast<size_t>(batch * K));
  std::vector<float> scores(static_cast<size_t>(batch * K), kNegInf);
  for (int64_t b = 0; b < batch; ++b) scores[static_cast<size_t>(b * K)] = 0;  // one live beam at the start
  auto tokens = torch::full({batch * K}, model.vocabs.bos_id, long_opts);

  for (int64_t t = 0; !active.empty(); ++t) {
    const auto A = static_cast<int64_t>(active.size());
    const auto cand = top_candidates(model, output, state, tokens, scores, A, K, opt.keep_attention);
    NextStep next;
    std::vector<SentenceSearch> still_active;
    for (int64_t a = 0; a < A; ++a) {
      auto& s = active[static_cast<size_t>(a)];
      if (advance_sentence(s, a, t, cand, partials, output, eos, opt, next)) {
        results[static_cast<size_t>(s.index)] = best_of(std::move(s.finished), opt.n_best);
      } else {
        next.kept.push_back(a);
        still_active.push_back(std::move(s));
      }
    }
    if (still_active.empty()) break;
    reorder_state(state, next, A, K);
    tokens = torch::tensor(next.tokens, long_opts.device(torch::kCPU)).to(device);
    scores = std::move(next.scores);
    partials = std::move(next.partials);
    active = std::move(still_active);
  }
  return results;
}

}  // namespace s2s
