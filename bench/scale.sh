#!/usr/bin/env bash
# The distributed layer's cost, measured on loopback over a local-folder store:
#  1. makespan of one 8-trial sweep with 1 worker, then with 2 workers, each worker pinned
#     to its own core (taskset) with one tensor thread; the ratio is the scaling;
#  2. the coordinator's overhead per trial: 100 one-epoch trials run by `overhead`, a
#     probe that speaks the worker protocol without training (lease, progress, staged
#     model file, complete).
# Everything it starts is killed and its scratch folder removed when it exits.
#
# Usage (from a clone, after `cargo build --release`):   bench/scale.sh
# Settings (environment): WICK_BIN (target/release), WICK_DATA (../shared/data),
#   EPOCHS (15, per trial of the makespan sweep), REPEAT (10 pairs of sweeps, 1 then 2
#   workers; the median ratio is the result, with a bootstrap 90 % interval: on a shared
#   host single pairs range over ±0.1), TRIALS (100, for the overhead probe),
#   KEEP (set: keep the scratch folder with every process's log)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${WICK_BIN:-$root/target/release}
data=$(realpath "${WICK_DATA:-$root/../shared/data}")
epochs=${EPOCHS:-15}
repeat=${REPEAT:-10}
probe_trials=${TRIALS:-100}
for b in coordinator worker client overhead; do
  [ -x "$bin/$b" ] || { echo "scale.sh: $bin/$b is missing; build first: cargo build --release" >&2; exit 2; }
done
unset WICK_COORDINATOR WICK_STORE WICK_TOKEN WICK_TOKEN_FILE WICK_TLS_CA WICK_TLS_CERT WICK_TLS_KEY

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wick-scale.XXXXXX")
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; [ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

wait_listening() { # log file
  for _ in $(seq 600); do
    grep -q 'listening on' "$1" 2>/dev/null && return
    sleep 0.1
  done
  echo "scale.sh: no 'listening on' in $1:" >&2; cat "$1" >&2; exit 1
}

# Starts a coordinator on a fresh store in $tmp/$1; sets $url and $store.
coordinator() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  store=file://$tmp/$1/store url=http://127.0.0.1:$port
  mkdir -p "$tmp/$1/store"
  "$bin/coordinator" --listen "127.0.0.1:$port" --store "$store" 2> "$tmp/$1/coordinator.log" &
  pids+=($!)
  wait_listening "$tmp/$1/coordinator.log"
}

worker() { # run name, worker name, core
  taskset -c "$3" "$bin/worker" serve --coordinator "$url" --store "$store" --name "$2" \
    --listen 127.0.0.1:0 --threads 1 --slots 1 --cache "$tmp/$1/cache-$2" \
    2> "$tmp/$1/$2.log" &
  pids+=($!)
  wait_listening "$tmp/$1/$2.log"
}

# One sweep, timed from submission to the last trial's end (the client waits for it).
makespan() { # run name, cores...
  local run=$1; shift
  coordinator "$run"
  local i=0
  for core in "$@"; do worker "$run" "w$i" "$core"; i=$((i + 1)); done
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -f "%U %S" -o "$tmp/$run/client-cpu.txt" \
    "$bin/client" --coordinator "$url" --store "$store" --json sweep --data "$data" \
    --task covid --cell lstm --hidden 32 --l 12 --epochs "$epochs" --seed 0,1,2,3,4,5,6,7 \
    > "$tmp/$run/sweep.json"
  end=$(date +%s.%N)
  # CPU seconds the coordinator (the first process started) and the workers used.
  for p in "${pids[@]}"; do
    awk -v t="$(getconf CLK_TCK)" '{printf "%.2f ", ($14 + $15) / t}' "/proc/$p/stat"
  done > "$tmp/$run/cpu.txt"
  stop_all
  python3 - "$tmp/$run/sweep.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
trials = s.get("trials", [])
bad = [t for t in trials if t.get("state") != "succeeded"]
if len(trials) != 8 or bad:
    sys.exit(f"scale.sh: the sweep did not end with 8 succeeded trials: {s}")
PY
  echo "$end - $start" | bc
}

# Pairs in alternation, so that a change of load on the machine hits both sides; every
# other pair runs the 2-worker sweep first, so that a steady drift favours neither.
pairs=""
for r in $(seq "$repeat"); do
  if (( r % 2 == 0 )); then
    echo "== [$r/$repeat] 8 trials (LSTM32, L=12, $epochs epochs), 2 workers on cores 0 and 1" >&2
    two=$(makespan "two-$r" 0 1)
    echo "== [$r/$repeat] the same sweep, 1 worker on core 0" >&2
    one=$(makespan "one-$r" 0)
  else
    echo "== [$r/$repeat] 8 trials (LSTM32, L=12, $epochs epochs), 1 worker on core 0" >&2
    one=$(makespan "one-$r" 0)
    echo "== [$r/$repeat] the same sweep, 2 workers on cores 0 and 1" >&2
    two=$(makespan "two-$r" 0 1)
  fi
  pairs="$pairs $one:$two:$(cat "$tmp/one-$r/cpu.txt" | tr ' ' ,):$(cat "$tmp/two-$r/cpu.txt" | tr ' ' ,)"
done

echo "== coordinator overhead: $probe_trials one-epoch trials through the protocol, no training" >&2
coordinator probe
seeds=$(seq -s, 0 $((probe_trials - 1)))
"$bin/client" --coordinator "$url" --store "$store" --json sweep --data "$data" --task covid \
  --cell rnn --hidden 4 --l 12 --epochs 1 --seed "$seeds" --detach > /dev/null
"$bin/overhead" --coordinator "$url" --store "$store" --trials "$probe_trials" --json > "$tmp/probe.json"
stop_all

python3 - "$tmp/probe.json" $pairs <<'PY'
import json, random, statistics, sys
probe = json.load(open(sys.argv[1]))
runs = []
for p in sys.argv[2:]:
    one, two, cpu1, cpu2 = p.split(":")
    runs.append((float(one), float(two), cpu1.strip(",").split(","), cpu2.strip(",").split(",")))
print("| run | makespan, 1 worker | makespan, 2 workers | ratio | CPU s, coordinator / workers (1 worker; 2 workers) |")
print("|---|---|---|---|---|")
for i, (one, two, c1, c2) in enumerate(runs, 1):
    print(f"| {i} | {one:.2f} s | {two:.2f} s | {two / one:.3f} | {c1[0]} / {' + '.join(c1[1:])}; {c2[0]} / {' + '.join(c2[1:])} |")
ratios = [two / one for one, two, _, _ in runs]
ratio = statistics.median(ratios)
# How sure the median is: the 5th and 95th percentiles of the medians of 2,000 resamples
# of the pairs (seeded, so a table reprints the same).
rng = random.Random(0)
boot = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(2000))
# The ratio splits exactly into two factors (per pair, reported as medians):
#   ratio = 0.5 × inflation × busy(1 worker) / busy(2 workers)
# inflation: the workers' CPU seconds with 2 workers over those with 1, for the same trials
#   (cores slowing each other down, work a worker repeats once per process);
# busy: the workers' CPU seconds over the cores they were given × the makespan (what is
#   left: waiting for the sweep to start and end, a worker out of trials while the other
#   finishes, the unpinned coordinator and client taking the cores).
def cpu(xs):
    return sum(float(x) for x in xs[1:])
inflation = statistics.median(cpu(c2) / cpu(c1) for _, _, c1, c2 in runs)
busy1 = statistics.median(cpu(c1) / one for one, _, c1, _ in runs)
busy2 = statistics.median(cpu(c2) / (2 * two) for _, two, _, c2 in runs)
print()
print("| measure | value |")
print("|---|---|")
print(f"| median ratio 2 workers / 1 worker, {len(runs)} pairs | **{ratio:.3f}** (target ≤ 0.55; "
      f"90 % interval {boot[100]:.3f}–{boot[1899]:.3f}, range {min(ratios):.3f}–{max(ratios):.3f}) |")
print(f"| median makespan, 1 worker / 2 workers | "
      f"{statistics.median(r[0] for r in runs):.2f} s / {statistics.median(r[1] for r in runs):.2f} s |")
print(f"| &nbsp;&nbsp;workers' CPU seconds, 2 workers / 1 worker (median) | {inflation:.3f} |")
print(f"| &nbsp;&nbsp;workers busy: 1 worker; 2 workers (CPU s / cores × makespan, median) | "
      f"{busy1:.3f}; {busy2:.3f} |")
print(f"| coordinator overhead per trial (lease + progress + complete, p50 / p99) | "
      f"**{probe['rpcs_total']['p50_ms']:.2f}** / {probe['rpcs_total']['p99_ms']:.2f} ms (target < 20 ms) |")
for k in ("lease", "progress", "complete", "staging_write"):
    print(f"| &nbsp;&nbsp;{k} p50 / p99 | {probe[k]['p50_ms']:.2f} / {probe[k]['p99_ms']:.2f} ms |")
print(f"| probe trials, wall time per trial | {probe['trials']}, {probe['per_trial_ms']:.2f} ms |")
PY
