// The metrics' tokenizers and scores: the input is "hypothesis\nreference[\treference2...]"; BLEU (13a and
// none), chrF++, TER (all tokenizer options) must score it without crashing, within [0, 100] where bounded.
#include "fuzz_util.h"
#include "metrics/bleu.h"
#include "metrics/chrf.h"
#include "metrics/ter.h"
#include "util/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;  // TER is quadratic in the line length; long lines add nothing here
  std::string text(reinterpret_cast<const char*>(data), size);
  s2s::text::sanitize_utf8(text);  // the line readers hand the metrics valid UTF-8
  const auto nl = text.find('\n');
  const std::string hyp = text.substr(0, nl);
  std::vector<std::string> refs;
  const std::string rest = nl == std::string::npos ? std::string() : text.substr(nl + 1);
  for (size_t start = 0;;) {
    const auto tab = rest.find('\t', start);
    refs.push_back(rest.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos || refs.size() == 4) break;
    start = tab + 1;
  }
  s2s_fuzz::expect_clean([&] {
    for (const char* tok : {"13a", "none"}) {
      s2s::metrics::BleuOptions b;
      b.tokenize = tok, b.effective_order = true, b.lowercase = (size % 2) == 0;
      const auto bleu =
          s2s::metrics::bleu_from_stats(s2s::metrics::bleu_sentence_stats(hyp, refs, b), b, refs.size());
      if (!(bleu.score >= 0 && bleu.score <= 100.0000001)) __builtin_trap();
    }
    s2s::metrics::ChrfOptions c;
    c.word_order = 2;
    const auto chrf =
        s2s::metrics::chrf_from_stats(s2s::metrics::chrf_sentence_stats(hyp, refs, c), c, refs.size());
    if (!(chrf.score >= 0 && chrf.score <= 100.0000001)) __builtin_trap();
    for (int flags = 0; flags < 16; flags += 5) {
      s2s::metrics::TerOptions t;
      t.case_sensitive = flags & 1, t.normalized = flags & 2, t.no_punct = flags & 4,
      t.asian_support = flags & 8;
      const auto ter = s2s::metrics::sentence_ter(hyp, refs, t);
      if (!(ter.score >= 0)) __builtin_trap();
    }
  });
  return 0;
}
