#include "common.h"

#include <fcntl.h>
#include <unistd.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "config/model_dir.h"
#include "metrics/bleu.h"
#include "metrics/chrf.h"
#include "util/error.h"
#include "util/fs.h"

namespace s2s::app {

Config decode_config(const DecodeArgs& d) {
  return read_model_dir_config(d.model_dir, d.overrides);
}

TranslateOptions translate_options(const DecodeConfig& c, const DecodeArgs& d) {
  TranslateOptions o;
  o.search.beam_size = c.beam_size, o.search.n_best = c.n_best, o.search.normalize = c.normalize;
  o.search.max_length_factor = c.max_length_factor, o.search.keep_attention = !d.alignment.empty();
  o.search.early_exit = c.early_exit;
  const bool cpu = c.device == "cpu";
  o.workers = c.workers > 0 ? c.workers : (cpu ? c.threads : 1);
  o.threads_per_worker = std::max(1, c.threads / o.workers);
  o.batch_size = c.batch_size, o.batch_tokens = c.batch_tokens, o.max_length = c.max_length;
  o.read_ahead = c.read_ahead, o.scores = d.scores, o.alignment = d.alignment;
  if (c.shortlist) {
    const auto file = std::filesystem::path(d.model_dir) / model_files::kShortlist;
    if (!std::filesystem::exists(file)) {
      throw Error("--shortlist: model dir '" + d.model_dir + "' has no " + model_files::kShortlist +
                  " (written by s2s train; run train on it again to create it)");
    }
    auto shortlist = load_shortlist(file);
    shortlist.limit(c.shortlist_per_source, c.shortlist_frequent);
    o.shortlist = std::make_shared<const Shortlist>(std::move(shortlist));
  }
  return o;
}

void print_scores(const std::vector<std::string>& hyps, const std::vector<std::string>& refs,
                  const EvalArgs& a, std::optional<double> ppl) {
  metrics::BleuOptions bopt;
  bopt.lowercase = a.lowercase;
  metrics::ChrfOptions copt;
  copt.lowercase = a.lowercase;
  const auto bleu = metrics::corpus_bleu(hyps, refs, bopt);
  const auto chrf = metrics::corpus_chrf(hyps, refs, copt);
  if (a.json) {
    nlohmann::json j;
    j["bleu"] = {{"score", bleu.score},        {"precisions", bleu.precisions}, {"bp", bleu.bp},
                 {"ratio", bleu.ratio},        {"sys_len", bleu.sys_len},       {"ref_len", bleu.ref_len},
                 {"signature", bleu.signature}};
    j["chrf"] = {{"score", chrf.score}, {"signature", chrf.signature}};
    if (ppl) j["ppl"] = *ppl;
    if (a.sentence_level) {
      auto& rows = j["sentences"] = nlohmann::json::array();
      for (size_t i = 0; i < hyps.size(); ++i) {
        rows.push_back({{"bleu", metrics::sentence_bleu(hyps[i], refs[i], bopt).score},
                        {"chrf", metrics::sentence_chrf(hyps[i], refs[i], copt).score}});
      }
    }
    std::cout << j.dump(1) << "\n";
    return;
  }
  if (a.sentence_level) {
    for (size_t i = 0; i < hyps.size(); ++i) {
      std::cout << i << "\t" << metrics::sentence_bleu(hyps[i], refs[i], bopt).format() << "\t"
                << metrics::sentence_chrf(hyps[i], refs[i], copt).format() << "\n";
    }
  }
  std::cout << bleu.format() << "\n"
            << bleu.signature << "\n"
            << chrf.format() << "\n"
            << chrf.signature << "\n";
  if (ppl) std::cout << "ppl = " << *ppl << "\n";
}

int64_t translate_io(Translator& translator, const TranslateArgs& a) {
  int fd = STDIN_FILENO;
  if (!a.input.empty()) {
    fd = ::open(a.input.c_str(), O_RDONLY);
    if (fd < 0) throw Error("cannot open input '" + a.input + "'");
  }
  int64_t lines = 0;
  if (a.output.empty()) {
    lines = translator.translate_stream(fd, std::cout);
  } else {
    fs::write_atomic(a.output, [&](std::ostream& out) { lines = translator.translate_stream(fd, out); });
  }
  if (fd != STDIN_FILENO) ::close(fd);
  return lines;
}

}  // namespace s2s::app
