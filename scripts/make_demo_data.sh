#!/usr/bin/env bash
# Rebuilds the shipped demo sample data/{train,valid,test}.{de,en} from the Tatoeba/ManyThings corpus in
# ../shared/data/tatoeba-deu-eng (CC BY 2.0). Deterministic: a fixed-seed shuffle (the source is sorted by
# length), 30,000 training pairs of at most 12 words, 500 validation and 500 test pairs from its own splits.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:-../shared/data/tatoeba-deu-eng}
seed() { openssl enc -aes-256-ctr -pass pass:s2s-demo -nosalt </dev/zero 2>/dev/null; }
sample() {  # split count out_prefix
  paste "$SRC/$1.de" "$SRC/$1.en" | awk -F'\t' 'split($2, w, " ") <= 12' | shuf -n "$2" --random-source=<(seed) > /tmp/s2s_pairs.tsv
  cut -f1 /tmp/s2s_pairs.tsv > "data/$3.de"
  cut -f2 /tmp/s2s_pairs.tsv > "data/$3.en"
}
sample train 30000 train
sample valid 500 valid
sample test 500 test
rm -f /tmp/s2s_pairs.tsv
wc -l data/*.de data/*.en
