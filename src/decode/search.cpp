#include "decode/search.h"

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

// The output layer, restricted to a vocabulary subset when one is given.
struct OutputLayer {
  torch::Tensor weight, bias;  // [vocab', out_dim], [vocab']
  std::vector<int64_t> ids;    // local index -> target id (empty: identity)
  int64_t to_global(int64_t local) const { return ids.empty() ? local : ids[static_cast<size_t>(local)]; }
};

OutputLayer output_layer(Seq2SeqImpl& model, const std::vector<int64_t>& subset,
                         const torch::Device& device) {
  if (subset.empty()) return {model.out_weight, model.out_bias, {}};
  auto index = torch::tensor(subset, torch::kInt64).to(device);
  return {model.out_weight.index_select(0, index), model.out_bias.index_select(0, index), subset};
}

}  // namespace

std::vector<std::vector<Hypothesis>> beam_search(Seq2SeqImpl& model, const torch::Tensor& src,
                                                 const torch::Tensor& src_lengths, const SearchOptions& opt,
                                                 const std::vector<int64_t>& vocab_subset) {
  torch::NoGradGuard no_grad;
  const int64_t batch = src.size(0), K = opt.beam_size, eos = model.vocabs.eos_id;
  const auto device = src.device();
  const auto output = output_layer(model, vocab_subset, device);
  auto state = model.start(src, src_lengths);
  state.index_select(
      torch::arange(batch, torch::TensorOptions(device).dtype(torch::kInt64)).repeat_interleave(K));

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
  auto tokens =
      torch::full({batch * K}, model.vocabs.bos_id, torch::TensorOptions(device).dtype(torch::kInt64));

  for (int64_t t = 0; !active.empty(); ++t) {
    const auto A = static_cast<int64_t>(active.size());
    torch::Tensor attn;
    auto out = model.decoder->step(tokens, state, opt.keep_attention ? &attn : nullptr);  // [A*K, out_dim]
    auto logits = torch::nn::functional::linear(out, output.weight, output.bias);
    auto logp = torch::log_softmax(logits.to(torch::kFloat), /*dim=*/1);  // [A*K, vocab or subset]
    const auto vocab = logp.size(1);
    auto prev = torch::from_blob(scores.data(), {A * K, 1}, torch::kFloat).to(device);
    auto [top_v, top_i] = (logp + prev).view({A, K * vocab}).topk(std::min<int64_t>(2 * K, K * vocab), 1);
    top_v = top_v.to(torch::kCPU).contiguous(), top_i = top_i.to(torch::kCPU).contiguous();
    if (opt.keep_attention) attn = attn.to(torch::kCPU, torch::kFloat).contiguous();
    const auto C = top_v.size(1);
    const float* tv = top_v.data_ptr<float>();
    const int64_t* ti = top_i.data_ptr<int64_t>();

    std::vector<int64_t> next_rows, next_tokens, keep_sentences;
    std::vector<float> next_scores;
    std::vector<Partial> next_partials;
    std::vector<SentenceSearch> still_active;
    for (int64_t a = 0; a < A; ++a) {
      auto& s = active[static_cast<size_t>(a)];
      const bool at_limit = t + 1 >= s.max_len;
      std::vector<int64_t> rows, toks;
      std::vector<float> vals;
      for (int64_t j = 0; j < C && static_cast<int64_t>(rows.size()) < K; ++j) {
        const float v = tv[a * C + j];
        if (v == kNegInf) break;
        const int64_t beam = ti[a * C + j] / vocab, tok = output.to_global(ti[a * C + j] % vocab),
                      row = a * K + beam;
        const float* arow = opt.keep_attention ? attn.data_ptr<float>() + row * attn.size(1) : nullptr;
        if (tok == eos || at_limit) {
          if (j < K) {
            auto h = finish(partials[static_cast<size_t>(row)], static_cast<int32_t>(tok), tok == eos, v,
                            opt.normalize);
            if (arow) h.attention.emplace_back(arow, arow + s.src_len);
            s.finished.push_back(std::move(h));
          }
          continue;
        }
        rows.push_back(row), toks.push_back(tok), vals.push_back(v);
      }
      const bool done = rows.empty() || static_cast<int64_t>(s.finished.size()) >= K;
      if (done) {
        std::stable_sort(s.finished.begin(), s.finished.end(), [](const Hypothesis& x, const Hypothesis& y) {
          return x.norm_score > y.norm_score;
        });
        if (static_cast<int64_t>(s.finished.size()) > opt.n_best)
          s.finished.resize(static_cast<size_t>(opt.n_best));
        results[static_cast<size_t>(s.index)] = std::move(s.finished);
        continue;
      }
      while (static_cast<int64_t>(rows.size()) < K)
        rows.push_back(rows[0]), toks.push_back(toks[0]), vals.push_back(kNegInf);
      for (size_t k = 0; k < rows.size(); ++k) {
        Partial p = partials[static_cast<size_t>(rows[k])];
        p.tokens.push_back(static_cast<int32_t>(toks[k]));
        if (opt.keep_attention) {
          const float* arow = attn.data_ptr<float>() + rows[k] * attn.size(1);
          p.attention.emplace_back(arow, arow + s.src_len);
        }
        next_partials.push_back(std::move(p));
      }
      next_rows.insert(next_rows.end(), rows.begin(), rows.end());
      next_tokens.insert(next_tokens.end(), toks.begin(), toks.end());
      next_scores.insert(next_scores.end(), vals.begin(), vals.end());
      keep_sentences.push_back(a);
      still_active.push_back(std::move(s));
    }
    if (still_active.empty()) break;
    auto long_opts = torch::TensorOptions().dtype(torch::kInt64);
    bool identity = true;  // greedy, or beams that kept their order: no state copy needed
    for (size_t r = 0; r < next_rows.size() && identity; ++r)
      identity = next_rows[r] == static_cast<int64_t>(r);
    if (!identity || next_rows.size() != static_cast<size_t>(A * K)) {
      state.index_select(torch::tensor(next_rows, long_opts).to(device));
    }
    if (static_cast<int64_t>(keep_sentences.size()) < A) {
      state.keys = state.keys.index_select(torch::tensor(keep_sentences, long_opts).to(device));
    }
    tokens = torch::tensor(next_tokens, long_opts).to(device);
    scores = std::move(next_scores);
    partials = std::move(next_partials);
    active = std::move(still_active);
  }
  return results;
}

}  // namespace s2s
