// Batched beam search (greedy = beam 1), independent of how a step is computed. A `StepScorer` (the
// LibTorch model, or the native CPU engine) feeds one token per live hypothesis and returns the scores of
// every output token; the search alone selects the extensions, keeps finished hypotheses aside on the host,
// drops finished sentences from the batch and only asks the scorer to reorder its state by index.
#pragma once

#include <cstdint>
#include <vector>

namespace s2s {

struct SearchOptions {
  int beam_size = 5;               // hypotheses kept per sentence (1 = greedy)
  int n_best = 1;                  // hypotheses returned per sentence (<= beam_size)
  double normalize = 0.6;          // rank finished hypotheses by score / length^normalize (0 = raw score)
  double max_length_factor = 2.0;  // at most factor * source length + 5 output tokens
  bool keep_attention = false;     // return attention weights (for --alignment)
  bool early_exit = false;         // a sentence ends once its best candidate is finished (and n_best are);
                                   // false: it searches on until beam_size hypotheses are finished
};

struct Hypothesis {
  std::vector<int32_t> tokens;                // output ids without EOS
  double score = 0;                           // sum of token log-probabilities (EOS included)
  double norm_score = 0;                      // score / length^normalize, used for ranking
  std::vector<std::vector<float>> attention;  // per output token (EOS included): weights over source tokens
};

// One step's scores from the model, in host memory owned by the scorer (valid until its next call):
// log p(token j | row) = logits[row * vocab + j] - logsumexp[row].
struct StepScores {
  const float* logits = nullptr;              // [A * K, vocab] over the output vocabulary or a subset of it
  const float* logsumexp = nullptr;           // [A * K]
  int64_t vocab = 0;                          // columns of `logits`
  const std::vector<int64_t>* ids = nullptr;  // column -> target id (null or empty: identity)
  const float* attention = nullptr;           // [A * K, attention_cols] (null unless asked for)
  int64_t attention_cols = 0;                 // padded source length of the attention rows
};

// One step's best extensions per active sentence, on the host, best first.
struct StepCandidates {
  int64_t per_sentence = 0;      // C: candidates per sentence
  std::vector<float> values;     // [A, C] cumulative log-probability (-inf: no candidate)
  std::vector<int64_t> rows;     // [A, C] hypothesis row extended (sentence * K + beam)
  std::vector<int64_t> tokens;   // [A, C] target token id
  std::vector<float> attention;  // [A * K, attention_cols] weights of this step (empty unless asked for)
  int64_t attention_cols = 0;    // padded source length of the attention rows
};

// The model side of the search. Rows are hypotheses, K consecutive rows per active sentence.
class StepScorer {
 public:
  virtual ~StepScorer() = default;
  // Feeds `tokens` [A * K] (one per hypothesis row) and returns the scores of the next token for every row.
  virtual StepScores step(const std::vector<int64_t>& tokens, int64_t A, int64_t K, bool keep_attention) = 0;
  // Continues from hypothesis `rows` (indices into the current A * K rows, in the new order) and keeps only
  // the sentences `kept` (indices into the A active ones, ascending).
  // Not called when the rows stay 0..A*K-1 (then every sentence is kept).
  virtual void reorder(const std::vector<int64_t>& rows, const std::vector<int64_t>& kept, int64_t A,
                       int64_t K) = 0;
};

// Searches a batch whose sentences have `src_lengths` tokens; the scorer holds K rows per sentence.
// Returns, per sentence, up to n_best hypotheses, best first.
std::vector<std::vector<Hypothesis>> beam_search(StepScorer& scorer, const std::vector<int64_t>& src_lengths,
                                                 const SearchOptions& options, int64_t bos, int64_t eos);

// The search's selection: each sentence's 2K best (row, token) by scores[row] (the row's cumulative
// log-probability) + log p(token | row), exact, without materializing a log_softmax.
StepCandidates select_candidates(const StepScores& step, const std::vector<float>& scores, int64_t A,
                                 int64_t K);

}  // namespace s2s
