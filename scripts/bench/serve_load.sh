#!/usr/bin/env bash
# Load test of `s2s serve` on localhost: REQUESTS requests (default 2000) of one Multi30k test2016 line each from
# CLIENTS concurrent clients (default 32), beam BEAM (default 5), against MODEL_DIR. Prints the server's
# requests/s, p50/p99 latency and the number of failed requests as its last line.
# Usage: scripts/bench/serve_load.sh MODEL_DIR [extra serve options]
# Env: S2S (binary, default build/bin/s2s), REQUESTS, CLIENTS, BEAM, PORT (default 18080).
set -euo pipefail
cd "$(dirname "$0")/../.."
S2S=${S2S:-build/bin/s2s}
MODEL=${1:?usage: serve_load.sh MODEL_DIR [serve options]}
shift
SRC=../shared/data/multi30k/test2016.de
[[ -f $SRC ]] || { echo "needs $SRC" >&2; exit 2; }
PORT=${PORT:-18080}
LOG=$(mktemp)
"$S2S" serve -m "$MODEL" --port "$PORT" --threads 2 "$@" 2> "$LOG" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -f "$LOG"' EXIT
for _ in $(seq 300); do grep -q "serving" "$LOG" && break; sleep 0.1; done
grep -q "serving" "$LOG" || { cat "$LOG" >&2; exit 1; }
python3 scripts/bench/serve_load.py "$PORT" "$SRC" "${REQUESTS:-2000}" "${CLIENTS:-32}" "${BEAM:-5}"
kill -TERM $SERVER
rc=0
wait $SERVER || rc=$?
echo "server exit code after SIGTERM: $rc" >&2
