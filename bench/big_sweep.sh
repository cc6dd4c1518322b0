#!/usr/bin/env bash
# One very large sweep: what the coordinator costs in memory and in restart time when it
# holds N trials (100,000 by default, the most one sweep may hold). On a local s3s-fs:
#  1. a random-search sweep of N covid trials is submitted (one log entry);
#  2. `overhead` plays 64 workers for a few seconds (leases, 3 reports each, completions),
#     so the log holds trial entries after the submission, not only the snapshot;
#  3. the coordinator is killed with SIGKILL and started again; the restart time is from
#     its start until `client list` answers with the sweep (snapshot + log replay);
#  4. RSS (VmRSS) and peak RSS (VmHWM) of the coordinator after each step.
# It prints one markdown table and one JSON line. Everything it starts is killed and its
# scratch folder removed when it exits.
#
# Usage (from a clone, after `cargo build --release`; s3s-fs as for coordinator.sh):
#   bench/big_sweep.sh                      about 1 minute
# Settings (environment): WICK_BIN (target/release), WICK_DATA (../shared/data),
#   TRIALS (100000), WORKERS (64), TRAFFIC_SECONDS (5, of probe traffic),
#   KEEP (keep the scratch folder with every log).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${WICK_BIN:-$root/target/release}
data=$(realpath "${WICK_DATA:-$root/../shared/data}")
trials=${TRIALS:-100000}
workers=${WORKERS:-64}
traffic=${TRAFFIC_SECONDS:-5}
s3s=$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")
for b in coordinator client overhead; do
  [ -x "$bin/$b" ] || { echo "big_sweep.sh: $bin/$b is missing; build first: cargo build --release" >&2; exit 2; }
done
[ -x "$s3s" ] || { echo "big_sweep.sh: s3s-fs is missing: cargo install s3s-fs --version 0.14.1 --features binary --locked" >&2; exit 2; }
[ -f "$data/covid/covid_19.csv" ] || { echo "big_sweep.sh: no $data/covid/covid_19.csv; set WICK_DATA" >&2; exit 2; }
unset WICK_COORDINATOR WICK_STORE WICK_TOKEN WICK_TOKEN_FILE WICK_TLS_CA WICK_TLS_CERT WICK_TLS_KEY

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wick-big.XXXXXX")
pids=()
coord_pid=
cleanup() {
  [ -n "$coord_pid" ] && kill "$coord_pid" 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for_log() { # file, marker
  for _ in $(seq 1200); do
    grep -q "$2" "$1" 2>/dev/null && return
    sleep 0.05
  done
  echo "big_sweep.sh: no '$2' in $1:" >&2; cat "$1" >&2; exit 1
}
rss_mb() { # pid, field (VmRSS or VmHWM)
  awk -v f="$2:" '$1 == f {printf "%.0f\n", $2 / 1024}' "/proc/$1/status"
}
now() { date +%s.%N; }

s3_port=$(free_port)
mkdir -p "$tmp/s3/big"
RUST_LOG=warn "$s3s" --host 127.0.0.1 --port "$s3_port" --access-key wickbench \
  --secret-key wickbenchsecret "$tmp/s3" > "$tmp/s3s-fs.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$s3_port") 2>/dev/null && break; sleep 0.1; done
export AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=wickbench AWS_SECRET_ACCESS_KEY=wickbenchsecret \
  AWS_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:$s3_port
store=s3://big/sweeps
port=$(free_port)
url=http://127.0.0.1:$port

start_coordinator() { # log file
  "$bin/coordinator" --listen "127.0.0.1:$port" --store "$store" 2> "$1" &
  coord_pid=$!
  wait_for_log "$1" 'listening on'
}
client() { "$bin/client" --coordinator "$url" --store "$store" --json "$@"; }

start_coordinator "$tmp/coordinator-1.log"
rss_idle=$(rss_mb "$coord_pid" VmRSS)
t0=$(now)
client sweep --task covid --data "$data" --random "$trials" --lr 1e-5..1e-1:log \
  --hidden 4..64 --epochs 3 --detach > "$tmp/sweep.json"
t1=$(now)
sweep=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sweep"])' "$tmp/sweep.json")
rss_submitted=$(rss_mb "$coord_pid" VmRSS)
"$bin/overhead" --coordinator "$url" --store "$store" --trials "$trials" \
  --concurrency "$workers" --reports 3 --heartbeat-ms 300 --seconds "$traffic" --json \
  > "$tmp/overhead.json" 2> "$tmp/overhead.log" \
  || { echo "big_sweep.sh: overhead failed:" >&2; cat "$tmp/overhead.log" >&2; exit 1; }
rss_run=$(rss_mb "$coord_pid" VmRSS)
peak_run=$(rss_mb "$coord_pid" VmHWM)
kill -9 "$coord_pid"; wait "$coord_pid" 2>/dev/null || true

t2=$(now)
start_coordinator "$tmp/coordinator-2.log"
t3=$(now)
client status "$sweep" > "$tmp/status.json"
t4=$(now)
rss_restarted=$(rss_mb "$coord_pid" VmRSS)
peak_restarted=$(rss_mb "$coord_pid" VmHWM)
kill "$coord_pid"; wait "$coord_pid" 2>/dev/null || true
coord_pid=
store_mb=$(du -sm "$tmp/s3/big/sweeps/coordinator" | cut -f1)

python3 - "$tmp" "$trials" "$t0" "$t1" "$t2" "$t3" "$t4" "$rss_idle" "$rss_submitted" \
  "$rss_run" "$peak_run" "$rss_restarted" "$peak_restarted" "$store_mb" <<'PY'
import json, re, sys
tmp, n, t0, t1, t2, t3, t4 = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:8])
idle, submitted, run, peak_run, restarted, peak_restarted, store_mb = map(int, sys.argv[8:15])
status = json.load(open(f"{tmp}/status.json"))
trials = status["trials"]
states = {}
for t in trials:
    states[t["state"]] = states.get(t["state"], 0) + 1
probe = json.load(open(f"{tmp}/overhead.json"))
log = re.sub(r"\x1b\[[0-9;]*m", "", open(f"{tmp}/coordinator-2.log").read())
m = re.search(r"state recovered from the log snapshot=(\d+) segments=(\d+) entries=(\d+) ms=(\d+)", log)
recovered = dict(zip(["snapshot", "segments", "entries", "ms"], map(int, m.groups()))) if m else {}
assert len(trials) == n, f"the restarted coordinator lists {len(trials)} trials, not {n}"
v = dict(trials=n, submit_s=t1 - t0, rss_idle_mb=idle, rss_submitted_mb=submitted,
         rss_after_traffic_mb=run, peak_rss_mb=peak_run, probe_trials_done=probe.get("trials"),
         restart_s=t3 - t2, restart_and_status_s=t4 - t2, rss_restarted_mb=restarted,
         peak_rss_restarted_mb=peak_restarted, coordinator_store_mb=store_mb,
         states=states, recovered=recovered)
print(f"| trials | submit | RSS idle / submitted / after traffic (peak) | restart to listening | restart + status | RSS after restart (peak) | log + snapshots |")
print(f"|---|---|---|---|---|---|---|")
print(f"| {n:,} | {v['submit_s']:.1f} s | {idle} / {submitted} / {run} MB ({peak_run} MB) "
      f"| {v['restart_s']:.1f} s | {v['restart_and_status_s']:.1f} s | {restarted} MB ({peak_restarted} MB) | {store_mb} MB |")
print(f"states after restart: {states}; recovered: {recovered}; probe trials done: {probe.get('trials')}")
print(json.dumps(v))
PY
