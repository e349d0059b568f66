// The s2s subcommands. main.cpp parses the command line (CLI11) into these option structs; the
// functions call into the library and return the process exit code. Errors propagate as exceptions.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace s2s::app {

// Typed flags (--n-best 3) map onto config overrides (decode.n_best=3); this pairs each override with the
// flag as the user typed it, so that errors name the flag.
using TypedFlags = std::vector<std::pair<std::string, std::string>>;

// `message` with every "--set <override>" of a typed flag replaced by the flag as typed (header-only: both
// the executable and the LibTorch plugin use it).
inline std::string name_typed_flags(std::string message, const TypedFlags& typed) {
  for (const auto& [item, flag] : typed) {
    const auto set = "--set " + item;
    for (auto at = message.find(set); at != std::string::npos; at = message.find(set, at))
      message.replace(at, set.size(), flag);
  }
  return message;
}

struct TrainArgs {
  std::string config;                  // -c/--config YAML file (optional when the model dir has one)
  std::string model_dir;               // --model-dir
  std::vector<std::string> overrides;  // --set section.key=value, and the typed flags mapped onto train.*
  TypedFlags typed;                    // override -> the flag as typed, for errors
  bool dump_config = false;            // print the effective config and exit
  bool quiet = false;                  // --quiet
  std::string command_line;            // the whole command, for train.log
  std::vector<std::string> argv;       // the command line as given (--nproc re-runs it once per rank)
  int nproc = 1;                       // --nproc: ranks to start on this machine (this process supervises)
  std::string dist_addr;               // --dist-addr host:port of rank 0 (else MASTER_ADDR:MASTER_PORT)
  int world_size = 0;                  // --world-size (0: WORLD_SIZE, else 1)
  int rank = -1;                       // --rank (-1: RANK, else 0)
  int dist_timeout = 600;              // --dist-timeout: seconds for the rendezvous and any one collective
};

struct DecodeArgs {
  std::vector<std::string> models;     // -m/--model: model directories (several: an ensemble)
  std::vector<double> weights;         // --weights: one per model (ensembles; default equal)
  std::vector<std::string> overrides;  // --set decode.key=value, and the flags below mapped onto decode.*
  TypedFlags typed;                    // override -> the flag as typed, for errors
  bool scores = false;                 // --scores
  std::string alignment = "none";      // --alignment none|hard|soft
  bool spm_decode = true;              // --no-spm-decode: print SentencePiece pieces
  std::string shortlist_file;  // --shortlist FILE: the user's own shortlist instead of the model dir's
  // The first (or only) model directory; empty when none was given.
  std::string model_dir() const { return models.empty() ? std::string() : models.front(); }
};

struct TranslateArgs {
  DecodeArgs decode;
  std::string input;   // -i (default stdin)
  std::string output;  // -o (default stdout; written atomically when a file)
};

struct EvalArgs {
  DecodeArgs decode;
  std::vector<std::string>
      hyps;  // --hyp FILE ('-': stdin); several with --paired-bs (the first is the baseline)
  std::vector<std::string> refs;     // --ref FILE, one per reference
  std::string src;                   // --src: translate it with --model, then score
  std::string output;                // -o: keep the translations of --src in this file
  std::vector<std::string> metrics;  // -m bleu,chrf,ter (default bleu,chrf; bleu with --sentence-level)
  int chrf_word_order = 0;           // --chrf-word-order (2 = chrF++)
  bool ter_case_sensitive = false;   // --ter-case-sensitive
  int width = 1;                     // -w: decimals of the scores (sacreBLEU's default 1)
  bool score_only = false;           // -b: print the scores only
  bool json = false;                 // --json
  bool sentence_level = false;       // --sentence-level: one line per sentence (one metric)
  bool lowercase = false;            // --lowercase (BLEU and chrF)
  bool paired_bs = false;            // --paired-bs: paired bootstrap resampling between the --hyp systems
  int paired_bs_n = 1000;            // --paired-bs-n: bootstrap samples
};

struct ScoreArgs {
  DecodeArgs decode;
  std::string src;           // --src: source lines ('-': stdin)
  std::string tgt;           // --tgt: target lines to score, one per source line ('-': stdin)
  std::string output;        // -o: scores file (default stdout; written atomically)
  bool normalize = false;    // --normalize: divide by the target length (tokens with EOS)
  bool word_scores = false;  // --word-scores: append the log-probability of every token
};

struct ServeArgs {
  DecodeArgs decode;
  std::string host = "127.0.0.1";  // --host
  int port = 8080;                 // --port (0: any free port, logged)
  int max_lines = 1000;            // --max-lines: lines per request (more: 413)
  int max_request_kb = 1024;       // --max-request-kb: request body size (more: 413)
  int batch_wait_ms = 5;           // --batch-wait-ms: how long a batch waits for more requests
};

struct PlotArgs {
  DecodeArgs decode;      // -m: the model dir (its metrics.jsonl; the model itself with --attention)
  std::string output;     // -o: the PNG file
  std::string attention;  // --attention "source sentence": draw its attention instead of the curves
  int width = 1200;       // --width in pixels
  int height = 900;       // --height in pixels
};

struct VocabArgs {
  std::vector<std::string> inputs;     // -i raw text files
  std::string model_prefix;            // -o prefix: writes <prefix>.model and <prefix>.vocab
  int vocab_size = 8000;               // --vocab-size
  std::string model_type = "unigram";  // --model-type
  double character_coverage = 1.0;     // --character-coverage
  int seed = 1234;                     // --seed
  long max_sentences = 1000000;        // --max-sentences
  int threads = 2;                     // --threads
  bool force = false;                  // --force: replace an existing <prefix>.model
};

int run_train(const TrainArgs& args);
int run_translate(const TranslateArgs& args);
int run_eval(const EvalArgs& args);
int run_score(const ScoreArgs& args);
int run_serve(const ServeArgs& args);
int run_plot(const PlotArgs& args);
int run_vocab(const VocabArgs& args);

struct AverageArgs {
  std::string model_dir;            // -m: the model dir whose checkpoints (--last) and files are used
  int last = 0;                     // --last N: average the N most recent checkpoints/step-*.bin
  std::vector<std::string> inputs;  // -i: explicit weights files instead
  std::string output;               // -o: the new, self-contained model dir
  bool force = false;               // --force: replace best.bin in an existing -o dir
};

int run_average(const AverageArgs& args);

struct ConvertArgs {
  std::string model_dir;           // -m: the model dir whose best.bin is converted
  std::string output;              // -o: the new, self-contained model dir
  std::string precision = "auto";  // --precision int8 | bf16 | auto (what translate's auto picks here)
  bool force = false;              // --force: replace best.bin in an existing -o dir
};

int run_convert(const ConvertArgs& args);
std::string version_text();

}  // namespace s2s::app
