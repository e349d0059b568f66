#!/usr/bin/env bash
# Training throughput of the reference model (configs/multi30k-de-en.yaml: emb 256, bi-LSTM 2x256,
# decoder LSTM 2x512, Luong general + input feeding, joint SentencePiece 8k, ~BATCH_TOKENS target tokens/batch,
# 2 threads) on Multi30k: WARMUP steps, then STEPS timed steps, no validation.
# Prints train_peak_rss_mb=<peak resident memory of the whole command, /usr/bin/time %M> and, as its last
# line, train_tokens_per_s=<number>. Extra arguments go to `s2s train` (e.g.
# --set train.precision=fp32). Env: S2S (binary), WARMUP (default 20), STEPS (default 100), WORK (scratch dir),
# CONFIG (default configs/multi30k-de-en.yaml; configs/multi30k-de-en-transformer.yaml for the Transformer),
# BATCH_TOKENS (default 4096, issue 9's batch, fixed so figures stay comparable whatever the config trains with).
set -euo pipefail
cd "$(dirname "$0")/../.."
S2S=${S2S:-build/bin/s2s}
WARMUP=${WARMUP:-20}
STEPS=${STEPS:-100}
WORK=${WORK:-/tmp/s2s-bench-train}
CONFIG=${CONFIG:-configs/multi30k-de-en.yaml}
BATCH_TOKENS=${BATCH_TOKENS:-4096}
[[ -d ../shared/data/multi30k ]] || { echo "needs ../shared/data/multi30k" >&2; exit 2; }
mkdir -p "$WORK"
# The SentencePiece model is trained once and reused (its training is not part of the throughput).
if [[ ! -f $WORK/spm.model ]]; then
  "$S2S" -q vocab -i ../shared/data/multi30k/train.de -i ../shared/data/multi30k/train.en -o "$WORK/spm" --vocab-size 8000
fi
rm -rf "$WORK/run"
/usr/bin/time -f %M -o "$WORK/peak_rss_kb" "$S2S" train -c "$CONFIG" --model-dir "$WORK/run" --set vocab.src_model="$WORK/spm.model" \
  --set train.log_every="$WARMUP" --set train.valid_every=1000000 --set train.max_minutes=0 --set train.batch_tokens="$BATCH_TOKENS" \
  --max-steps $((WARMUP + STEPS)) "$@" >&2
echo "train_peak_rss_mb=$(($(tail -n 1 "$WORK/peak_rss_kb") / 1024))"
python3 - "$WORK/run/metrics.jsonl" "$WARMUP" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"train_loss"' in l]
warm = int(sys.argv[2])
a = next(r for r in rows if r["step"] == warm)
b = rows[-1]
print(f"steps={b['step'] - a['step']} seconds={b['elapsed_s'] - a['elapsed_s']:.1f} loss={b['train_loss']:.4f}")
print(f"train_tokens_per_s={(b['total_tokens'] - a['total_tokens']) / (b['elapsed_s'] - a['elapsed_s']):.0f}")
PY
