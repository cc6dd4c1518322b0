#!/usr/bin/env bash
# Serving benchmark: starts a coordinator and one worker on loopback over a local-folder
# store, trains one small covid trial and one small VAE trial with the client, then drives
# Predict and Sample with `loadgen` and prints its tables. Everything it starts is killed
# and its scratch folder removed when it exits, however it exits.
#
# Usage (from a clone, after `cargo build --release`):
#   bench/serve.sh
# Settings (environment):
#   CLIENTS=8        concurrent clients per method      SECONDS_PER_RUN=10  length of each run
#   REPEAT=1         runs of each method (for the spread of the numbers)
#   SAMPLE_CLIENTS=2 concurrent Sample clients           LOADGEN_THREADS=1   loadgen's threads
#   WICK_BIN=target/release   where the binaries are    WICK_DATA=../shared/data  the data
#   JSON=1           loadgen prints JSON instead of tables
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${WICK_BIN:-$root/target/release}
data=${WICK_DATA:-$root/../shared/data}
clients=${CLIENTS:-8}
sample_clients=${SAMPLE_CLIENTS:-2}
seconds=${SECONDS_PER_RUN:-10}
repeat=${REPEAT:-1}
threads=${LOADGEN_THREADS:-1}
format=()
[ "${JSON:-0}" = 1 ] && format=(--json)

for b in coordinator worker client loadgen; do
  if [ ! -x "$bin/$b" ]; then
    echo "serve.sh: $bin/$b is missing; build first: cargo build --release (or set WICK_BIN)" >&2
    exit 2
  fi
done
if [ ! -f "$data/covid/covid_19.csv" ] || [ ! -d "$data/anime-faces" ]; then
  echo "serve.sh: no data at $data (covid/covid_19.csv, anime-faces/); set WICK_DATA" >&2
  exit 2
fi

# A developer's cluster settings must not redirect or authenticate these calls.
unset WICK_COORDINATOR WICK_STORE WICK_TOKEN WICK_TOKEN_FILE WICK_TLS_CA WICK_TLS_CERT WICK_TLS_KEY

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wick-serve.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The address after "listening on " in the log $1, waiting up to 60 s for it.
address() {
  for _ in $(seq 600); do
    local a
    a=$(grep -o 'listening on [^ ]*' "$1" 2>/dev/null | head -1 | cut -d' ' -f3 || true)
    if [ -n "$a" ]; then echo "$a"; return; fi
    sleep 0.1
  done
  echo "serve.sh: no 'listening on' line in $1 after 60 s:" >&2
  cat "$1" >&2
  exit 1
}

store="file://$tmp/store"
"$bin/coordinator" --listen 127.0.0.1:0 --store "$store" 2>"$tmp/coordinator.log" &
pids+=($!)
url="http://$(address "$tmp/coordinator.log")"
"$bin/worker" serve --coordinator "$url" --store "$store" --listen 127.0.0.1:0 \
  --name bench --device cpu --cache "$tmp/cache" 2>"$tmp/worker.log" &
pids+=($!)
address "$tmp/worker.log" >/dev/null

client() { "$bin/client" --coordinator "$url" --store "$store" --json "$@"; }
echo "training one covid (RNN, L = 12) and one VAE (KL 1, 200 images) trial, 1 epoch each..." >&2
client sweep --data "$data" --l 12 --cell rnn --kl 1 --epochs 1 --limit 200 >"$tmp/sweep.json"
id() { grep -o '"id": *"[^"]*"' | head -1 | sed 's/.*"\([^"]*\)"$/\1/'; }
covid=$(client best --task covid | id)
vae=$(client best --task vae | id)
echo "covid trial $covid, VAE trial $vae; coordinator $url" >&2

loadgen() { "$bin/loadgen" --coordinator "$url" --threads "$threads" --seconds "$seconds" "${format[@]}" "$@"; }
for i in $(seq "$repeat"); do
  echo "== predict (country TW), $clients clients, ${seconds} s, run $i of $repeat" >&2
  loadgen --method predict --trial "$covid" --country TW --clients "$clients"
  echo "== sample (n = 16), $sample_clients clients, ${seconds} s, run $i of $repeat" >&2
  loadgen --method sample --trial "$vae" --n 16 --clients "$sample_clients"
done
