// Training: prepares the model directory (config, SentencePiece models), reads the corpus, then runs the
// loop (label-smoothed CE, Adam, warmup + schedule, clipping, accumulation), validates (perplexity and
// BLEU), keeps best/last checkpoints, and resumes exactly from last.pt when the directory has one.
#pragma once

#include <filesystem>

#include "config/config.h"
#include "libtorch/train/distributed.h"

namespace s2s {

struct TrainRunOptions {
  std::filesystem::path model_dir;  // where config, vocabularies, checkpoints and metrics live
  bool quiet = false;               // no progress lines (warnings and errors only)
  std::string command_line;         // how s2s was called, for the head of train.log
  dist::DistOptions dist;           // data-parallel ranks (world size 1: this process alone)
};

// Validation hypotheses kept in <model dir>/valid/step-N.hyp (older ones are removed).
inline constexpr int kKeptValidationOutputs = 5;

struct TrainSummary {
  int64_t steps = 0;    // optimizer steps done (all runs)
  int stop_signal = 0;  // SIGINT or SIGTERM that stopped the run (checkpoint saved); 0: it ran to its end
};

// Trains (or resumes) into options.model_dir, holding its lock file; a finished run is a no-op. Throws
// s2s::Error on bad input, a model dir in use, or a diverged loss (before anything is saved).
TrainSummary train(const Config& config, const TrainRunOptions& options);

// Prepares the SentencePiece model(s) of a model dir: copies configured ones in or trains new ones.
void prepare_vocabularies(const Config& config, const std::filesystem::path& model_dir);

}  // namespace s2s
