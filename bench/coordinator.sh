#!/usr/bin/env bash
# The coordinator against a slow store: its throughput and RPC latencies when every store
# call has a real round-trip time. The store is s3s-fs (an S3-compatible server on a local
# folder) behind `delay_proxy`, which adds a one-way delay to each direction. For every
# delay, each case runs on a fresh coordinator with a bucket of its own, its sweep is
# submitted with the delay off (the old coordinator writes a submission one object at a
# time), and `overhead` plays the workers (no training) with the delay on:
#   a. 1 probe:       1 worker, one-epoch trials back to back (the cost of one trial);
#   b. 64 probes:     64 workers, one-epoch trials, heartbeats every 300 ms;
#   c. 256 reporting: 256 workers, 40-epoch trials reported every 250 ms, heartbeats
#                     every 1000 ms (a busy cluster of short epochs).
# The CPU seconds of the coordinator, and of s3s-fs and the proxy together (they share
# the machine: at 0 ms s3s-fs is often the busier), during each case come from
# /proc/PID/stat. It prints one markdown table and writes every case's raw JSON
# (overhead's object plus the case's settings and CPU) as one line to a file it names.
# With BEFORE_BIN set every case also runs with $BEFORE_BIN/coordinator, in alternation
# with WICK_BIN's, so that before and after rows come from one run on one machine.
# Everything it starts is killed and its scratch folder removed when it exits.
#
# A case ends when its sweep's trials are done or after its seconds, whichever comes
# first: no call is started after that, trials still running are dropped, and calls
# already sent are waited for (a slow coordinator's case lasts longer than its seconds).
# Sweeps are kept small because s3s-fs lists (Complete does, twice) by walking the whole
# bucket, so its listing slows down with every object in it, which a real store's does
# not. Coordinators run with --lease-ttl-ms 10000 --heartbeat-ms 1000.
#
# Usage (from a clone, after `cargo build --release`; s3s-fs from
#   `cargo install s3s-fs --version 0.14.1 --features binary --locked`):
#   bench/coordinator.sh                                   about 3 minutes by default
#   BEFORE_BIN=/path/to/old/release bench/coordinator.sh   about 6 minutes
# Settings (environment):
#   WICK_BIN (target/release): coordinator, client, overhead, delay_proxy;
#   BEFORE_BIN (unset): a folder with an older coordinator to compare with;
#   WICK_DATA (../shared/data); DELAYS ("0 10 25": one-way delays in ms);
#   CASES ("a b c"); OUT (target/bench-coordinator-DATE.jsonl: the raw JSON lines);
#   KEEP (set: keep the scratch folder with every process's log);
#   a: A_TRIALS (100), A_SECONDS (10);
#   b: B_WORKERS (64), B_TRIALS (320), B_HEARTBEAT_MS (300), B_SECONDS (10);
#   c: C_WORKERS (256), C_TRIALS (512), C_EPOCHS (40), C_REPORT_MS (250),
#      C_HEARTBEAT_MS (1000), C_SECONDS (20).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${WICK_BIN:-$root/target/release}
before=${BEFORE_BIN:-}
data=$(realpath "${WICK_DATA:-$root/../shared/data}")
delays=${DELAYS:-0 10 25}
cases=${CASES:-a b c}
out=${OUT:-$root/target/bench-coordinator-$(date +%Y%m%d-%H%M%S).jsonl}
s3s=$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")
for b in coordinator client overhead delay_proxy; do
  [ -x "$bin/$b" ] || { echo "coordinator.sh: $bin/$b is missing; build first: cargo build --release" >&2; exit 2; }
done
if [ -n "$before" ] && [ ! -x "$before/coordinator" ]; then
  echo "coordinator.sh: BEFORE_BIN=$before has no coordinator" >&2; exit 2
fi
[ -x "$s3s" ] || { echo "coordinator.sh: s3s-fs is missing: cargo install s3s-fs --version 0.14.1 --features binary --locked" >&2; exit 2; }
[ -f "$data/covid/covid_19.csv" ] || { echo "coordinator.sh: no $data/covid/covid_19.csv; set WICK_DATA" >&2; exit 2; }
unset WICK_COORDINATOR WICK_STORE WICK_TOKEN WICK_TOKEN_FILE WICK_TLS_CA WICK_TLS_CERT WICK_TLS_KEY

# Case settings: workers, trials, epochs (= reports per trial), ms between reports,
# heartbeat ms (0 = none), seconds, label.
case_a="1 ${A_TRIALS:-100} 1 0 0 ${A_SECONDS:-10} 1-probe"
case_b="${B_WORKERS:-64} ${B_TRIALS:-320} 1 0 ${B_HEARTBEAT_MS:-300} ${B_SECONDS:-10} ${B_WORKERS:-64}-probes"
case_c="${C_WORKERS:-256} ${C_TRIALS:-512} ${C_EPOCHS:-40} ${C_REPORT_MS:-250} ${C_HEARTBEAT_MS:-1000} ${C_SECONDS:-20} ${C_WORKERS:-256}-reporting"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wick-coordinator.XXXXXX")
pids=()
coord_pid= # the running case's coordinator, stopped at the end of each case
stop_all() {
  if [ -n "$coord_pid" ]; then kill "$coord_pid" 2>/dev/null || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; [ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_listening() { # log file, marker
  for _ in $(seq 600); do
    grep -q "$2" "$1" 2>/dev/null && return
    sleep 0.1
  done
  echo "coordinator.sh: no '$2' in $1:" >&2; cat "$1" >&2; exit 1
}

wait_port() { # port, name
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
    sleep 0.1
  done
  echo "coordinator.sh: $2 does not accept connections on port $1" >&2; exit 1
}

# User + system CPU seconds of process $1 so far.
cpu_s() {
  awk -v t="$(getconf CLK_TCK)" '{printf "%.3f\n", ($14 + $15) / t}' "/proc/$1/stat"
}

# The store: buckets on a local folder, reached directly by the client and through a
# delay proxy by the coordinator and the probes.
s3_port=$(free_port)
mkdir -p "$tmp/s3"
RUST_LOG=warn "$s3s" --host 127.0.0.1 --port "$s3_port" --access-key wickbench \
  --secret-key wickbenchsecret "$tmp/s3" > "$tmp/s3s-fs.log" 2>&1 &
s3s_pid=$!
pids+=("$s3s_pid")
wait_port "$s3_port" s3-fs
export AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=wickbench AWS_SECRET_ACCESS_KEY=wickbenchsecret \
  AWS_REGION=us-east-1
direct=http://127.0.0.1:$s3_port

# Sets the running proxy's delay to $1 ms and waits until it says so.
set_delay() {
  local seen
  seen=$(grep -c 'delay now' "$proxy_log" || true)
  echo "$1" > "$tmp/delay-ms"
  kill -HUP "$proxy_pid"
  for _ in $(seq 100); do
    (( $(grep -c 'delay now' "$proxy_log" || true) > seen )) && return
    sleep 0.05
  done
  echo "coordinator.sh: the delay proxy did not take the new delay:" >&2; cat "$proxy_log" >&2; exit 1
}

# One case on a fresh coordinator and bucket: appends its JSON line to $out.
run_case() { # build label, coordinator binary, delay ms, proxy endpoint, case settings...
  local build=$1 coord=$2 delay=$3 endpoint=$4 workers=$5 trials=$6 epochs=$7 every=$8 hb=$9
  local seconds=${10} label=${11}
  local name=$build-$delay-$label port store url
  mkdir -p "$tmp/$name" "$tmp/s3/$name"
  port=$(free_port)
  store=s3://$name/sweeps url=http://127.0.0.1:$port
  set_delay 0
  AWS_ENDPOINT_URL=$endpoint "$coord" --listen "127.0.0.1:$port" --store "$store" \
    --lease-ttl-ms 10000 --heartbeat-ms 1000 2> "$tmp/$name/coordinator.log" &
  coord_pid=$!
  wait_listening "$tmp/$name/coordinator.log" 'listening on'
  AWS_ENDPOINT_URL=$direct "$bin/client" --coordinator "$url" --store "$store" --json sweep \
    --task covid --data "$data" --cell rnn --hidden 4 --l 12 --epochs "$epochs" \
    --seed "$(seq -s, 0 $((trials - 1)))" --detach > "$tmp/$name/sweep.json"
  set_delay "$delay"
  local cpu0 t0 t1 cpu1 store0 store1
  # The store's side (s3s-fs and the proxy) shares the machine: if it is busy, the
  # coordinator's numbers are partly the store's.
  store0=$(echo "$(cpu_s "$s3s_pid") + $(cpu_s "$proxy_pid")" | bc)
  cpu0=$(cpu_s "$coord_pid") t0=$(date +%s.%N)
  AWS_ENDPOINT_URL=$endpoint "$bin/overhead" --coordinator "$url" --store "$store" \
    --trials "$trials" --concurrency "$workers" --reports "$epochs" --report-every-ms "$every" \
    --heartbeat-ms "$hb" --seconds "$seconds" --json > "$tmp/$name/overhead.json" \
    2> "$tmp/$name/overhead.log" \
    || { echo "coordinator.sh: overhead failed in $name:" >&2; cat "$tmp/$name/overhead.log" >&2; exit 1; }
  t1=$(date +%s.%N) cpu1=$(cpu_s "$coord_pid")
  store1=$(echo "$(cpu_s "$s3s_pid") + $(cpu_s "$proxy_pid")" | bc)
  kill "$coord_pid"; wait "$coord_pid" 2>/dev/null || true
  coord_pid=
  python3 - "$tmp/$name/overhead.json" "$build" "$delay" "$label" "$cpu0" "$cpu1" "$t0" "$t1" \
    "$store0" "$store1" \
    >> "$out" <<'PY'
import json, sys
f, build, delay, label, cpu0, cpu1, t0, t1, store0, store1 = sys.argv[1:]
v = json.load(open(f))
cpu, wall = float(cpu1) - float(cpu0), float(t1) - float(t0)
store = float(store1) - float(store0)
# The CPU is measured over overhead's whole life (registering and the last calls
# included), so it is divided by that wall time, not by the probe's own wall_s.
v.update(coordinator=build, delay_ms=int(delay), case=label, coordinator_cpu_s=cpu,
         probe_run_s=wall, coordinator_cores=cpu / wall if wall > 0 else 0.0,
         store_cpu_s=store, store_cores=store / wall if wall > 0 else 0.0)
print(json.dumps(v))
PY
}

builds=("after $bin/coordinator")
[ -n "$before" ] && builds=("before $before/coordinator" "after $bin/coordinator")
mkdir -p "$(dirname "$out")"
: > "$out"
turn=0
for delay in $delays; do
  proxy_log=$tmp/proxy-$delay.log
  echo 0 > "$tmp/delay-ms"
  "$bin/delay_proxy" --listen 127.0.0.1:0 --upstream "127.0.0.1:$s3_port" \
    --delay-file "$tmp/delay-ms" 2> "$proxy_log" &
  proxy_pid=$!
  pids+=("$proxy_pid")
  wait_listening "$proxy_log" 'delay proxy on'
  endpoint=http://$(grep -o 'delay proxy on [^ ]*' "$proxy_log" | cut -d' ' -f4)
  for c in $cases; do
    var=case_$c
    [ -n "${!var:-}" ] || { echo "coordinator.sh: unknown case '$c' (a, b or c)" >&2; exit 2; }
    read -r workers trials epochs every hb seconds label <<< "${!var}"
    # Every other case runs the after build first, so that a drift of the machine's load
    # favours neither.
    order=("${builds[@]}")
    if (( turn % 2 == 1 && ${#builds[@]} == 2 )); then order=("${builds[1]}" "${builds[0]}"); fi
    turn=$((turn + 1))
    for b in "${order[@]}"; do
      read -r build coord <<< "$b"
      echo "== $build coordinator, store $delay ms away (one way), $label: $workers workers, $trials trials of $epochs epochs, at most ${seconds} s" >&2
      run_case "$build" "$coord" "$delay" "$endpoint" "$workers" "$trials" "$epochs" "$every" "$hb" "$seconds" "$label"
    done
  done
done
stop_all

python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def q(v, k):
    p = v.get(k) or {}
    if p.get("p50_ms") is None:
        return "-"
    return f"{p['p50_ms']:.1f} / {p['p99_ms']:.1f}"
print("| coordinator | delay | probes | trials/s | reports/s | lease p50/p99 ms | heartbeat p50/p99 ms "
      "| progress p50/p99 ms | complete p50/p99 ms | expired leases | coordinator cores "
      "| store + proxy cores |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
# Grouped by case (in the order run), then delay, before above after.
cases = list(dict.fromkeys(v["case"] for v in rows))
rows.sort(key=lambda v: (cases.index(v["case"]), v["delay_ms"], v["coordinator"] != "before"))
for v in rows:
    print(f"| {v['coordinator']} | {v['delay_ms']} ms | {v['case']} | {v['trials_per_s']:.1f} "
          f"| {v['reports_per_s']:.1f} | {q(v, 'lease')} | {q(v, 'heartbeat')} | {q(v, 'progress')} "
          f"| {q(v, 'complete')} | {v['expired_leases']} | {v['coordinator_cores']:.2f} "
          f"| {v['store_cores']:.2f} |")
PY
echo "raw JSON lines (one per case): $out" >&2
