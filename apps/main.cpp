// s2s command line: train | translate | eval | vocab. Logs go to stderr; stdout carries data only.
// Every error ends as one line on stderr and a non-zero exit code.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "commands.h"
#include "util/allocator.h"

namespace {

// --set section.key=value (repeatable). Appends, so overrides from typed flags given with it are kept
// (binding the vector directly would let CLI11 replace them).
void add_set_option(CLI::App* cmd, std::vector<std::string>& overrides) {
  cmd->add_option_function<std::vector<std::string>>(
      "--set",
      [&overrides](const std::vector<std::string>& v) {
        overrides.insert(overrides.end(), v.begin(), v.end());
      },
      "Override a config value: section.key=value (repeatable)");
}

// Maps a typed CLI flag onto a "decode.key=value" override when the user gave it.
template <class T>
void add_decode_flag(CLI::App* cmd, s2s::app::DecodeArgs& d, const std::string& flag, const std::string& key,
                     const std::string& help) {
  const auto name = flag.substr(flag.rfind(',') + 1);  // the long name, for error messages
  cmd->add_option_function<T>(
      flag,
      [&d, key, name](const T& v) {
        const auto value = CLI::detail::to_string(v);
        d.overrides.push_back("decode." + key + "=" + value);
        d.typed.emplace_back(d.overrides.back(), name + " " + value);
      },
      help + " [default: the model's decode." + key + "]");
}

// The options of every command that runs models: -m (repeatable), batching, threads, device, precision;
// with `search`, also the search's (beam, n-best, length normalization, shortlist).
void add_decode_options(CLI::App* cmd, s2s::app::DecodeArgs& d, bool require_model, bool search = true) {
  auto* model = cmd->add_option("-m,--model,--model-dir", d.models,
                                "Model directory written by `s2s train`; repeat for an ensemble");
  if (require_model) model->required();
  cmd->add_option("--weights", d.weights, "Ensemble weights, one per -m (normalized; default equal)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  add_decode_flag<int>(cmd, d, "--batch-size", "batch_size",
                       "Sentences per batch (0 = auto: 16 at beam 5 on a CPU)");
  add_decode_flag<int>(cmd, d, "--batch-tokens", "batch_tokens",
                       "Source tokens per batch (overrides --batch-size)");
  add_decode_flag<int>(cmd, d, "--max-length", "max_length", "Crop input lines to N subword tokens");
  add_decode_flag<int>(cmd, d, "--threads", "threads", "CPU threads");
  add_decode_flag<int>(cmd, d, "--workers", "workers",
                       "Batches decoded concurrently, threads/workers threads each (0 = one per thread)");
  add_decode_flag<std::string>(cmd, d, "--device", "device", "cpu | cuda | cuda:N");
  add_decode_flag<std::string>(
      cmd, d, "--precision", "precision",
      "auto (int8 on CPUs with VNNI, else bf16 with AVX512-BF16, else fp32) | fp32 | bf16 "
      "| int8");
  add_decode_flag<std::string>(cmd, d, "--engine", "engine",
                               "auto | native (CPU, no LibTorch) | torch (LibTorch, CPU or CUDA)");
  add_decode_flag<int>(cmd, d, "--read-ahead", "read_ahead", "Lines sorted by length together for batching");
  add_set_option(cmd, d.overrides);
  if (!search) return;
  add_decode_flag<int>(cmd, d, "-b,--beam-size", "beam_size", "Beam size (1 = greedy)");
  add_decode_flag<int>(cmd, d, "--n-best", "n_best", "Print N hypotheses per line (Moses n-best format)");
  add_decode_flag<double>(cmd, d, "--normalize", "normalize",
                          "Length normalization exponent alpha (0 = off)");
  add_decode_flag<double>(cmd, d, "--max-length-factor", "max_length_factor", "Output length limit factor");
  cmd->add_option_function<std::string>(
         "--shortlist",
         [&d](const std::string& file) {
           if (file.empty()) d.overrides.push_back("decode.shortlist=true");
           d.shortlist_file = file;
         },
         "Require the model dir's lexical shortlist (used by default when present), or use FILE instead")
      ->expected(0, 1)
      ->default_str("");
  cmd->add_flag_callback(
      "--no-shortlist", [&d] { d.overrides.push_back("decode.shortlist=false"); },
      "Exact search over the whole vocabulary (with --precision fp32: the exact fp32 search)");
}

void setup_logging(const std::string& level, bool quiet) {  // before parsing: usage errors are logged too
  auto logger = spdlog::stderr_color_mt("s2s");
  logger->set_pattern("[%Y-%m-%d %H:%M:%S] [%^%l%$] %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(quiet ? spdlog::level::warn : spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::info);  // progress lines reach log files as they happen
}

}  // namespace

int main(int argc, char** argv) {
  s2s::runtime::reexec_with_huge_page_heap(argv);
  CLI::App app{"s2s: LSTM encoder-attention-decoder neural machine translation (LibTorch)", "s2s"};
  app.require_subcommand(1);
  app.fallthrough();                                // -q and --log-level work before or after the subcommand
  app.option_defaults()->always_capture_default();  // --help shows every default
  app.set_version_flag(
      "--version", std::function<std::string()>(s2s::app::version_text));  // loads LibTorch only when asked
  std::string log_level = "info";
  bool quiet = false;
  app.add_option("--log-level", log_level, "trace | debug | info | warn | error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_flag("-q,--quiet", quiet, "Only warnings and errors on stderr");

  s2s::app::TrainArgs train;
  for (int i = 0; i < argc; ++i) {
    train.command_line += (i ? " " : "") + std::string(argv[i]);
    train.argv.emplace_back(argv[i]);
  }
  auto* train_cmd = app.add_subcommand("train", "Train (or resume) a model in --model-dir");
  train_cmd->add_option("-c,--config", train.config, "YAML config file");
  train_cmd
      ->add_option("--model-dir", train.model_dir,
                   "Model directory (created; resumed when it has a checkpoint)")
      ->required();
  add_set_option(train_cmd, train.overrides);
  train_cmd->add_flag("--dump-config", train.dump_config, "Print the effective config and exit");
  auto train_flag = [&](auto type, const std::string& flag, const std::string& key, const std::string& help) {
    using T = decltype(type);
    train_cmd->add_option_function<T>(
        flag,
        [&train, key, flag](const T& v) {
          train.overrides.push_back(key + "=" + CLI::detail::to_string(v));
          train.typed.emplace_back(train.overrides.back(), flag + " " + CLI::detail::to_string(v));
        },
        help + " [default: the config's " + key + "]");
  };
  train_flag(int{}, "--threads", "train.threads", "CPU threads");
  train_flag(std::string{}, "--device", "train.device", "cpu | cuda | cuda:N");
  train_flag(int64_t{}, "--seed", "train.seed", "Random seed");
  train_flag(int64_t{}, "--max-steps", "train.max_steps", "Stop after N optimizer steps (absolute)");
  train_flag(std::string{}, "--precision", "train.precision", "fp32 | bf16");
  train_cmd->add_flag("-q,--quiet", train.quiet, "No progress lines");
  train_cmd->add_option("--nproc", train.nproc, "Data-parallel ranks to start on this machine (README)")
      ->check(CLI::Range(1, 1024));
  train_cmd->add_option("--dist-addr", train.dist_addr,
                        "host:port of rank 0 for the rendezvous [default: MASTER_ADDR:MASTER_PORT]");
  train_cmd->add_option("--world-size", train.world_size, "Ranks in the job [default: WORLD_SIZE, else 1]")
      ->check(CLI::Range(1, 65535));
  train_cmd->add_option("--rank", train.rank, "This process's rank [default: RANK, else 0]")
      ->check(CLI::Range(0, 65534));
  train_cmd
      ->add_option("--dist-timeout", train.dist_timeout,
                   "Seconds to wait for the rendezvous and for any one collective")
      ->check(CLI::Range(1, 86400));

  s2s::app::TranslateArgs translate;
  auto* translate_cmd = app.add_subcommand("translate", "Translate lines from stdin/-i to stdout/-o");
  add_decode_options(translate_cmd, translate.decode, /*require_model=*/true);
  translate_cmd->add_option("-i,--input", translate.input, "Input file (default: stdin)");
  translate_cmd->add_option("-o,--output", translate.output, "Output file (default: stdout)");
  translate_cmd->add_flag("--scores", translate.decode.scores,
                          "Append ' ||| F0= score ||| normalized score'");
  translate_cmd
      ->add_option("--alignment", translate.decode.alignment,
                   "Append attention alignments: none | hard | soft")
      ->check(CLI::IsMember({"none", "hard", "soft"}));
  translate_cmd->add_flag_callback(
      "--no-spm-decode", [&translate] { translate.decode.spm_decode = false; },
      "Print the SentencePiece pieces (what --alignment indexes) instead of detokenized text");

  s2s::app::EvalArgs eval;
  auto* eval_cmd =
      app.add_subcommand("eval", "BLEU/chrF of a hypothesis file, or translate --src and score it");
  add_decode_options(eval_cmd, eval.decode, /*require_model=*/false);
  eval_cmd->add_option("--hyp", eval.hyps,
                       "Hypothesis file (detokenized; - for stdin); repeat with --paired-bs, baseline first");
  eval_cmd->add_option("--ref", eval.refs, "Reference file; repeat for several references")->required();
  eval_cmd->add_option("--src", eval.src, "Source file to translate with --model");
  eval_cmd->add_option("-o,--output", eval.output, "With --model: also write the translations to this file");
  eval_cmd
      ->add_option("--metrics", eval.metrics, "Metrics: bleu,chrf,ter (sacreBLEU's -m; default bleu,chrf)")
      ->delimiter(',')
      ->check(CLI::IsMember({"bleu", "chrf", "ter"}));
  eval_cmd->add_option("--chrf-word-order", eval.chrf_word_order, "chrF word n-gram order (2 = chrF++)")
      ->check(CLI::Range(0, 10));
  eval_cmd->add_flag("--ter-case-sensitive", eval.ter_case_sensitive, "Case-sensitive TER");
  eval_cmd->add_option("-w,--width", eval.width, "Decimals of the scores (default 1, as sacreBLEU)")
      ->check(CLI::Range(0, 16));
  eval_cmd->add_flag("--score-only", eval.score_only, "Print only the scores");
  eval_cmd->add_flag("--json", eval.json, "Print JSON with full-precision numbers");
  eval_cmd->add_flag("--sentence-level", eval.sentence_level, "Score every line instead (one metric)");
  eval_cmd->add_flag("--lowercase", eval.lowercase, "Case-insensitive BLEU/chrF");
  eval_cmd->add_flag("--paired-bs", eval.paired_bs, "Paired bootstrap resampling between the --hyp systems");
  eval_cmd->add_option("--paired-bs-n", eval.paired_bs_n, "Bootstrap samples (default 1000)")
      ->check(CLI::Range(1, 1000000));

  s2s::app::ScoreArgs score;
  auto* score_cmd = app.add_subcommand(
      "score", "Score given translations: log-probability of each --tgt line given its --src line");
  add_decode_options(score_cmd, score.decode, /*require_model=*/true, /*search=*/false);
  score_cmd->add_option("--src", score.src, "Source lines ('-': stdin)")->required();
  score_cmd->add_option("--tgt", score.tgt, "Target lines, one per source line ('-': stdin)")->required();
  score_cmd->add_option("-o,--output", score.output, "Output file (default: stdout)");
  score_cmd->add_flag("--normalize", score.normalize,
                      "Divide each score by its target length (EOS included)");
  score_cmd->add_flag("--word-scores", score.word_scores,
                      "Append ' ||| ' and the score of every target token");

  s2s::app::ServeArgs serve;
  auto* serve_cmd = app.add_subcommand("serve", "HTTP/JSON translation server: POST /translate, GET /health");
  add_decode_options(serve_cmd, serve.decode, /*require_model=*/true);
  serve_cmd->add_option("--host", serve.host, "Address to listen on")->capture_default_str();
  serve_cmd->add_option("--port", serve.port, "TCP port (0: any free port, logged)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  serve_cmd->add_option("--max-lines", serve.max_lines, "Lines per request (more: HTTP 413)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve_cmd->add_option("--max-request-kb", serve.max_request_kb, "Request body size (more: HTTP 413)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve_cmd->add_option("--batch-wait-ms", serve.batch_wait_ms, "How long a batch waits for more requests")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();

  s2s::app::PlotArgs plot;
  auto* plot_cmd = app.add_subcommand(
      "plot", "PNG of the training curves (loss, perplexity, BLEU, LR), or of one sentence's attention");
  add_decode_options(plot_cmd, plot.decode, /*require_model=*/true);
  plot_cmd->add_option("-o,--output", plot.output, "PNG file to write")->required();
  plot_cmd->add_option("--attention", plot.attention, "Translate this sentence and draw its attention");
  plot_cmd->add_option("--width", plot.width, "Width in pixels")
      ->check(CLI::Range(100, 10000))
      ->capture_default_str();
  plot_cmd->add_option("--height", plot.height, "Height in pixels")
      ->check(CLI::Range(100, 10000))
      ->capture_default_str();

  s2s::app::VocabArgs vocab;
  auto* vocab_cmd = app.add_subcommand("vocab", "Train a SentencePiece model from raw text");
  vocab_cmd->add_option("-i,--input", vocab.inputs, "Raw text file(s), one sentence per line")->required();
  vocab_cmd->add_option("-o,--model-prefix", vocab.model_prefix, "Writes <prefix>.model and <prefix>.vocab")
      ->required();
  vocab_cmd->add_option("--vocab-size", vocab.vocab_size, "Vocabulary size");
  vocab_cmd->add_option("--model-type", vocab.model_type, "unigram | bpe | char | word");
  vocab_cmd->add_option("--character-coverage", vocab.character_coverage, "Character coverage");
  vocab_cmd->add_option("--seed", vocab.seed, "Random seed");
  vocab_cmd->add_option("--max-sentences", vocab.max_sentences, "Sentences sampled for training");
  vocab_cmd->add_option("--threads", vocab.threads, "Training threads");
  vocab_cmd->add_flag("--force", vocab.force, "Replace an existing <prefix>.model");

  s2s::app::AverageArgs average;
  auto* average_cmd = app.add_subcommand("average", "Average checkpoints into a new model dir");
  average_cmd->add_option("-m,--model,--model-dir", average.model_dir,
                          "Model dir (its checkpoints with --last)");
  average_cmd->add_option("--last", average.last, "Average the N most recent checkpoints")
      ->check(CLI::Range(1, 1000));
  average_cmd->add_option("-i,--input", average.inputs, "Weights files to average (repeat)");
  average_cmd->add_option("-o,--output", average.output, "The new model dir")->required();
  average_cmd->add_flag("--force", average.force, "Replace best.bin in an existing output dir");

  s2s::app::ConvertArgs convert;
  auto* convert_cmd = app.add_subcommand(
      "convert", "Convert a model's weights to int8 or bf16 for the native CPU engine, into a new model dir");
  convert_cmd->add_option("-m,--model,--model-dir", convert.model_dir, "Model dir (its best.bin)")
      ->required();
  convert_cmd->add_option("-o,--output", convert.output, "The new model dir")->required();
  convert_cmd->add_option("--precision", convert.precision,
                          "int8 | bf16 | auto (int8 on CPUs with VNNI, else bf16 with AVX512-BF16)");
  convert_cmd->add_flag("--force", convert.force, "Replace best.bin in an existing output dir");

  setup_logging("info", false);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {  // a usage error: one line, exit 1, as every other user error
    std::string msg = e.what();
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    const auto* sub = app.get_subcommands().empty() ? nullptr : app.get_subcommands().front();
    spdlog::error("{} (see s2s {}--help)", msg, sub ? sub->get_name() + " " : "");
    return 1;
  }
  int code = 0;
  try {
    spdlog::set_level(quiet || train.quiet ? spdlog::level::warn : spdlog::level::from_str(log_level));
    if (const char* tunables = std::getenv("GLIBC_TUNABLES")) spdlog::debug("GLIBC_TUNABLES={}", tunables);
    if (*train_cmd) code = s2s::app::run_train(train);
    if (*translate_cmd) code = s2s::app::run_translate(translate);
    if (*eval_cmd) code = s2s::app::run_eval(eval);
    if (*score_cmd) code = s2s::app::run_score(score);
    if (*serve_cmd) code = s2s::app::run_serve(serve);
    if (*plot_cmd) code = s2s::app::run_plot(plot);
    if (*vocab_cmd) code = s2s::app::run_vocab(vocab);
    if (*average_cmd) code = s2s::app::run_average(average);
    if (*convert_cmd) code = s2s::app::run_convert(convert);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (const auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
    spdlog::error("{}", msg);
    return 1;
  }
  // stdout carries the results: a write that failed (a full disk, a closed pipe) is an error, as in
  // coreutils.
  std::cout.flush();
  const bool written = static_cast<bool>(std::cout) && std::fflush(stdout) == 0 && !std::ferror(stdout);
  if (!written || std::fclose(stdout) != 0) {
    spdlog::error("cannot write to standard output: {}", std::strerror(errno));
    return 1;
  }
  return code;
}
