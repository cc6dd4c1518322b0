#!/usr/bin/env bash
# Peak memory (VmHWM, the resident high-water mark from /proc) of:
#  1. `worker train` on the 64×64 VAE (all 5,000 faces, 2 epochs): what dominates is the
#     decoded image set, 5,000 × 12,288 floats = 246 MB, next to the model's 10 MB;
#  2. a coordinator holding a 1,000-trial sweep (queued, no worker): its trial table.
# Usage (after `cargo build --release`): bench/memory.sh
# Settings: WICK_BIN (target/release), WICK_DATA (../shared/data), VAE_EPOCHS (2)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${WICK_BIN:-$root/target/release}
data=$(realpath "${WICK_DATA:-$root/../shared/data}")
unset WICK_COORDINATOR WICK_STORE WICK_TOKEN WICK_TOKEN_FILE
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wick-memory.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

hwm_mb() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# 1. The worker: poll its high-water mark until it exits (the last reading is the peak).
"$bin/worker" train --task vae --size 64 --kl 1 --epochs "${VAE_EPOCHS:-2}" --data "$data" \
  --out "$tmp/vae" --json > "$tmp/vae.json" 2> "$tmp/vae.log" &
pid=$!
worker_peak=0
while kill -0 "$pid" 2>/dev/null; do
  v=$(hwm_mb "$pid" 2>/dev/null || true)
  [ -n "$v" ] && worker_peak=$v
  sleep 0.2
done
wait "$pid"; pid=

# 2. The coordinator with 1,000 queued trials (grid: 10 L × 10 hidden × 10 seeds).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$tmp/store"
"$bin/coordinator" --listen "127.0.0.1:$port" --store "file://$tmp/store" 2> "$tmp/coordinator.log" &
pid=$!
for _ in $(seq 600); do grep -q 'listening on' "$tmp/coordinator.log" && break; sleep 0.1; done
idle=$(hwm_mb "$pid")
"$bin/client" --coordinator "http://127.0.0.1:$port" --store "file://$tmp/store" --json sweep \
  --data "$data" --task covid --cell rnn --l 5,6,7,8,9,10,11,12,13,14 \
  --hidden 4,5,6,7,8,9,10,11,12,13 --seed 0,1,2,3,4,5,6,7,8,9 --epochs 1 --detach > "$tmp/sweep.json"
sweep=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sweep"])' "$tmp/sweep.json")
trials=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["trial_ids"]))' "$tmp/sweep.json")
# A full status read too: the answer holds every trial at once.
"$bin/client" --coordinator "http://127.0.0.1:$port" --json status "$sweep" > /dev/null
coord=$(hwm_mb "$pid")

echo "| process | peak RSS |"
echo "|---|---|"
echo "| worker train, VAE 64×64, 5,000 images | ${worker_peak} MB |"
echo "| coordinator, idle | ${idle} MB |"
echo "| coordinator holding a ${trials}-trial sweep | ${coord} MB |"
