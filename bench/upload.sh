#!/usr/bin/env bash
# Data into the store: `client sweep --data` through the coordinator (UploadData, streamed
# in 1 MiB chunks, stored as 8 MiB parts, joined and SHA-256 checked) against the client
# writing the store itself (`--store`, one multipart upload). For each faces size, each
# way runs on a fresh coordinator and a bucket of its own, so nothing is "already there";
# the sweep is submitted with --detach and no worker, so the time is the data's and the
# submission's. The faces folder is the shared one repeated (hard links under new names),
# so the archive grows with the repeat count; the case table is the shared one.
# Prints one markdown table: MiB sent, seconds, MiB/s, the ratio of the two ways, and the
# coordinator's CPU seconds and peak RSS (VmHWM) for the run, which shows that it streams
# (its memory does not grow with the file). Everything it starts is killed and its
# scratch folder removed when it exits.
#
# Usage (from a clone, after `cargo build --release`; s3s-fs from
#   `cargo install s3s-fs --version 0.14.1 --features binary --locked`):
#   bench/upload.sh                      about five minutes (most of it linking the faces copies)
# Settings (environment): WICK_BIN (target/release): coordinator, client;
#   WICK_DATA (../shared/data); REPEATS ("1 4 16": copies of the faces folder);
#   KEEP (set: keep the scratch folder with every process's log).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${WICK_BIN:-$root/target/release}
data=$(realpath "${WICK_DATA:-$root/../shared/data}")
repeats=${REPEATS:-1 4 16}
s3s=$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")
for b in coordinator client; do
  [ -x "$bin/$b" ] || { echo "upload.sh: $bin/$b is missing; build first: cargo build --release" >&2; exit 2; }
done
[ -x "$s3s" ] || { echo "upload.sh: s3s-fs is missing: cargo install s3s-fs --version 0.14.1 --features binary --locked" >&2; exit 2; }
[ -f "$data/covid/covid_19.csv" ] && [ -d "$data/anime-faces" ] ||
  { echo "upload.sh: no covid/covid_19.csv and anime-faces/ in $data; set WICK_DATA" >&2; exit 2; }
unset WICK_COORDINATOR WICK_STORE WICK_TOKEN WICK_TOKEN_FILE WICK_TLS_CA WICK_TLS_CERT WICK_TLS_KEY

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wick-upload.XXXXXX")
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for() { # what, command...
  local what=$1; shift
  for _ in $(seq 300); do "$@" 2>/dev/null && return; sleep 0.1; done
  echo "upload.sh: $what did not come up" >&2; exit 1
}
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat"; }
hwm_mib() { awk '/VmHWM/ {printf "%d", $2 / 1024}' "/proc/$1/status"; }

s3_port=$(free_port)
mkdir -p "$tmp/s3"
RUST_LOG=warn "$s3s" --host 127.0.0.1 --port "$s3_port" --access-key wickbench \
  --secret-key wickbenchsecret "$tmp/s3" > "$tmp/s3s-fs.log" 2>&1 &
pids+=($!)
wait_for s3s-fs bash -c "exec 3<>/dev/tcp/127.0.0.1/$s3_port"
export AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=wickbench AWS_SECRET_ACCESS_KEY=wickbenchsecret \
  AWS_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:$s3_port

# One submission by way $1 (coordinator|store) with faces $2: sets secs, mib, cpu, hwm.
run() {
  local way=$1 faces=$2 name=$1-$(basename "$2") port log coord t0 t1 store_flag=()
  mkdir -p "$tmp/s3/$name"
  port=$(free_port) log=$tmp/$name.coordinator.log
  "$bin/coordinator" --listen "127.0.0.1:$port" --store "s3://$name/wick" 2> "$log" &
  coord=$!
  pids+=("$coord")
  wait_for coordinator grep -q 'listening on' "$log"
  [ "$way" = store ] && store_flag=(--store "s3://$name/wick")
  t0=$(date +%s.%N)
  "$bin/client" --coordinator "http://127.0.0.1:$port" "${store_flag[@]}" --json sweep \
    --data "$data" --faces "$faces" --l 12 --kl 1 --detach > "$tmp/$name.json" 2> "$tmp/$name.err" ||
    { echo "upload.sh: the $way sweep failed:" >&2; cat "$tmp/$name.err" >&2; exit 1; }
  t1=$(date +%s.%N)
  local bytes via
  bytes=$(python3 -c 'import json,sys; print(sum(d["bytes"] for d in json.load(open(sys.argv[1]))["data"]))' "$tmp/$name.json")
  via=$(python3 -c 'import json,sys; print(",".join(sorted({d["via"] for d in json.load(open(sys.argv[1]))["data"]})))' "$tmp/$name.json")
  [ "$via" = "$way" ] || { echo "upload.sh: expected data via $way, got $via" >&2; exit 1; }
  secs=$(echo "$t1 - $t0" | bc) mib=$(echo "scale=1; $bytes / 1048576" | bc)
  cpu=$(cpu_s "$coord") hwm=$(hwm_mib "$coord")
  kill "$coord"; wait "$coord" 2>/dev/null || true
}

echo "| faces | MiB | through the coordinator s (MiB/s) | --store s (MiB/s) | ratio | coordinator CPU s | coordinator peak RSS MiB |"
echo "|---|---|---|---|---|---|---|"
for r in $repeats; do
  faces=$tmp/faces-x$r
  mkdir -p "$faces"
  for i in $(seq "$r"); do
    for f in "$data"/anime-faces/*; do ln "$f" "$faces/$i-$(basename "$f")" 2>/dev/null || cp "$f" "$faces/$i-$(basename "$f")"; done
  done
  run coordinator "$faces"
  cs=$secs ccpu=$cpu chwm=$hwm
  run store "$faces"
  ss=$secs shwm=$hwm
  printf '| %d x %d images | %s | %.2f (%.0f) | %.2f (%.0f) | %.2f | %s | %s (with --store: %s) |\n' \
    "$r" "$(ls "$data/anime-faces" | wc -l)" "$mib" "$cs" "$(echo "$mib / $cs" | bc -l)" \
    "$ss" "$(echo "$mib / $ss" | bc -l)" "$(echo "$cs / $ss" | bc -l)" "$ccpu" "$chwm" "$shwm"
done
