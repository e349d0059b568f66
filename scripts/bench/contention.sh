#!/usr/bin/env bash
# Sharing the cores: how much two jobs that run together lose against running them one after the other.
#
# For two models, the small one (emb 64, LSTM 64/128, 60 steps on the shipped demo data) and the reference
# (configs/multi30k-de-en.yaml, 40 steps), it times:
#   solo      one `s2s train` alone (wall clock, start-up included; the SentencePiece model is prepared once)
#   together  two identical `s2s train` started at once (wall clock until both have finished)
# and prints contention_ratio = together / (2 x solo) per model: 1.0 means no loss against running the two
# one after the other; below 1 the pair used the cores better than one job alone.
# Then `s2s translate` of a test set alone and beside a training (translate_beside_train_ratio).
# The last line is contention_ratio=<worst of the two models>.
#
# Env: S2S (binary), RUNS (best of N for each timing, default 1), WORK (scratch dir), MODELS ("small ref"),
# TRANSLATE_MODEL (a trained model dir for the translate part; default: the small model, trained here).
# Extra arguments go to every `s2s train` (e.g. --threads 1). Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
S2S=$(realpath "${S2S:-build/bin/s2s}")
RUNS=${RUNS:-1}
WORK=${WORK:-/tmp/s2s-bench-contention}
MODELS=${MODELS:-small ref}
SHARED=../shared/data/multi30k
mkdir -p "$WORK"

now() { date +%s.%N; }
# best_of CMD...: the smallest wall time of RUNS runs of CMD, in seconds.
best_of() {
  local best="" t0 t
  for _ in $(seq "$RUNS"); do
    t0=$(now)
    "$@"
    t=$(echo "$(now) - $t0" | bc)
    if [[ -z $best ]] || (($(echo "$t < $best" | bc))); then best=$t; fi
  done
  echo "$best"
}

# train_args NAME: the `s2s train` arguments for one of the two models.
train_args() {
  case "$1" in
    small)
      if [[ ! -f $WORK/small-spm.model ]]; then
        "$S2S" -q vocab -i data/train.de -i data/train.en -o "$WORK/small-spm" --vocab-size 4000
      fi
      echo "-c configs/demo.yaml --set vocab.src_model=$WORK/small-spm.model --set model.emb_dim=64" \
        "--set model.enc_hidden=64 --set model.dec_hidden=128 --set train.max_minutes=0" \
        "--set train.max_epochs=0 --set train.valid_every=1000000 --max-steps 60"
      ;;
    ref)
      [[ -d $SHARED ]] || { echo "needs $SHARED for the reference model" >&2; exit 2; }
      if [[ ! -f $WORK/ref-spm.model ]]; then
        "$S2S" -q vocab -i $SHARED/train.de -i $SHARED/train.en -o "$WORK/ref-spm" --vocab-size 8000
      fi
      echo "-c configs/multi30k-de-en.yaml --set vocab.src_model=$WORK/ref-spm.model" \
        "--set train.batch_tokens=4096 --set train.max_minutes=0 --set train.valid_every=1000000 --max-steps 40"
      ;;
  esac
}

EXTRA=("$@")
train_once() {  # train_once NAME DIR [more s2s train flags]
  rm -rf "$2"
  # shellcheck disable=SC2046
  "$S2S" -q train $(train_args "$1") --model-dir "$2" "${EXTRA[@]}" "${@:3}" >"$2.log" 2>&1 ||
    { cat "$2.log" >&2; exit 1; }
}
train_pair() {  # train_pair NAME: two at once
  train_once "$1" "$WORK/$1-a" &
  local a=$!
  train_once "$1" "$WORK/$1-b" &
  local b=$!
  wait $a && wait $b
}

worst=0
for m in $MODELS; do
  train_args "$m" >/dev/null  # prepares the SentencePiece model outside the timings
  solo=$(best_of train_once "$m" "$WORK/$m-solo")
  together=$(best_of train_pair "$m")
  ratio=$(echo "scale=3; $together / (2 * $solo)" | bc)
  printf '%s: solo_s=%.1f together_s=%.1f contention_ratio=%.3f\n' "$m" "$solo" "$together" "$ratio"
  if (($(echo "$ratio > $worst" | bc))); then worst=$ratio; fi
done

# Translate beside train: a model translates the test set (Multi30k test2016 when present) alone, then
# while the reference (or small) training runs.
MODEL=${TRANSLATE_MODEL:-$WORK/small-solo}
[[ -f $MODEL/best.bin ]] || {
  train_args small >/dev/null
  rm -rf "$MODEL"
  # shellcheck disable=SC2046
  "$S2S" -q train $(train_args small) --model-dir "$MODEL" --set train.valid_every=60 "${EXTRA[@]}"
}
SRC=data/test.de
[[ -f $SHARED/test2016.de ]] && SRC=$SHARED/test2016.de
translate_once() { "$S2S" -q translate -m "$MODEL" -i "$SRC" -o "$WORK/hyp.txt" "${TRANSLATE_ARGS[@]}"; }
TRANSLATE_ARGS=(--beam-size 5)
t_solo=$(best_of translate_once)
bg=small
[[ $MODELS == *ref* ]] && bg=ref
train_once "$bg" "$WORK/bg" --set train.max_steps=250 &  # long enough to outlast the translation
train_pid=$!
sleep 8  # past start-up (data loading, shortlist): the training is in its steps
t_beside=$(best_of translate_once)
wait $train_pid
tr_ratio=$(echo "scale=3; $t_beside / $t_solo" | bc)
printf 'translate: solo_s=%.2f beside_train_s=%.2f translate_beside_train_ratio=%.3f\n' "$t_solo" "$t_beside" "$tr_ratio"
echo "contention_ratio=$worst"
