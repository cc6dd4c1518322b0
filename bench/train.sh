#!/usr/bin/env bash
# Training and inference speed of wick against the PyTorch reference, side by side on this
# machine: the same configurations, data, batch sizes, epochs and thread count, run in
# alternation (wick, then PyTorch, per configuration) so that a change of load on the
# machine hits both. Prints a table of ratios and writes everything under $OUT.
#
#   bash bench/train.sh            # covid 30 epochs, VAE 28x28 3 epochs, 64x64 2 epochs
#   bash bench/train.sh --quick    # covid 8 epochs, VAE 2 / 1 epochs
#
# Settings (environment): WICK_BENCH_THREADS (1), WICK_DATA (../shared/data),
# WICK_REFERENCE (../shared/reference), WICK_BENCH_VENV (~/.cache/wick-bench-venv; created
# with torch, numpy and pillow from PyPI when missing), OUT (target/bench/train-<time>),
# REPEAT (1: run every configuration's pair this many times, in alternation, and report
# each side's fastest run: on a shared machine, the run least disturbed by others),
# WICK_BENCH_DEVICE (cpu, or cuda: both sides on the first GPU), WICK_WORKER (a worker
# binary, possibly .gz, to use instead of building one), WICK_BENCH_PYTHON (a python with
# torch to use instead of the venv), COVID_EPOCHS / VAE28_EPOCHS / VAE64_EPOCHS, ONLY (a
# shell pattern: run only the configurations it matches, e.g. ONLY=covid-lstm64-l40 or
# ONLY='vae-*'; names are covid-<cell><hidden>-l<L>, vae-28 and vae-64).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

covid_epochs=30 vae28_epochs=3 vae64_epochs=2
if [[ "${1:-}" == "--quick" ]]; then covid_epochs=8 vae28_epochs=2 vae64_epochs=1; fi
covid_epochs=${COVID_EPOCHS:-$covid_epochs}
vae28_epochs=${VAE28_EPOCHS:-$vae28_epochs}
vae64_epochs=${VAE64_EPOCHS:-$vae64_epochs}
threads=${WICK_BENCH_THREADS:-1}
repeat=${REPEAT:-1}
device=${WICK_BENCH_DEVICE:-cpu}
wick_device=$device; [[ $device == cuda ]] && wick_device=cuda:0
data=$(realpath "${WICK_DATA:-$root/../shared/data}")
reference=$(realpath "${WICK_REFERENCE:-$root/../shared/reference}")
venv=${WICK_BENCH_VENV:-$HOME/.cache/wick-bench-venv}
out=${OUT:-$root/target/bench/train-$(date +%Y%m%d-%H%M%S)}
for r in $(seq "$repeat"); do mkdir -p "$out/wick/r$r" "$out/torch/r$r"; done

for f in "$data/covid/covid_19.csv" "$reference/covid_ref.py" "$reference/vae_ref.py"; do
    [[ -e "$f" ]] || { echo "missing $f (set WICK_DATA / WICK_REFERENCE)" >&2; exit 2; }
done
python=${WICK_BENCH_PYTHON:-$venv/bin/python}
if [[ -z "${WICK_BENCH_PYTHON:-}" ]] && ! "$python" -c "import torch, numpy, PIL" 2>/dev/null; then
    echo "== installing torch, numpy, pillow into $venv (once)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q torch numpy pillow
fi
if [[ -n "${WICK_WORKER:-}" ]]; then
    worker=$WICK_WORKER
    if [[ $worker == *.gz ]]; then
        gunzip -c "$worker" > "$out/worker" && chmod +x "$out/worker" && worker=$out/worker
    fi
else
    echo "== building wick (release)" >&2
    cargo build --release -q -p wick-worker
    worker=$root/target/release/worker
fi

# Both sides get the same thread count; OpenMP/MKL read these too.
export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
uptime > "$out/load-start.txt"

run_wick() { # repeat, name, then worker train flags
    local dir=$out/wick/r$1 name=$2; shift 2
    echo "== wick  $name ($(basename "$dir"))" >&2
    "$worker" train "$@" --data "$data" --device "$wick_device" --threads "$threads" --out "$dir/$name" --json \
        > "$dir/$name.json" 2> "$dir/$name.log"
}
run_torch() { # repeat, script, tag, then flags
    local dir=$out/torch/r$1 script=$2 tag=$3; shift 3
    echo "== torch $tag ($(basename "$dir"))" >&2
    "$python" "$reference/$script" --device "$device" --threads "$threads" --out "$dir" \
        --tag "_$tag" "$@" > "$dir/$tag.log" 2>&1
}

only=${ONLY:-*}
# shellcheck disable=SC2053 # $only is a pattern on purpose
want() { [[ $1 == $only ]]; }

for cell in rnn lstm gru; do
    hidden=64; [[ $cell == rnn ]] && hidden=32
    for l in 12 40; do
        name=covid-$cell$hidden-l$l
        want "$name" || continue
        for r in $(seq "$repeat"); do
            run_wick "$r" "$name" --time-inference --task covid --cell "$cell" --hidden "$hidden" --l "$l" --epochs "$covid_epochs"
            run_torch "$r" covid_ref.py "$name" --models "$cell" --lengths "$l" --epochs "$covid_epochs" \
                --csv "$data/covid/covid_19.csv"
        done
    done
done
for r in $(seq "$repeat"); do
    want vae-28 || want vae-64 || break
    want vae-28 && run_wick "$r" vae-28 --task vae --size 28 --kl 1 --epochs "$vae28_epochs"
    want vae-64 && run_wick "$r" vae-64 --task vae --size 64 --kl 1 --epochs "$vae64_epochs"
    # The reference runs both sizes in one process (it decodes the JPEGs once).
    run_torch "$r" vae_ref.py vae --kl-weights 1 --epochs "$vae28_epochs" --epochs64 "$vae64_epochs" \
        --images "$data/anime-faces"
done

uptime > "$out/load-end.txt"
python3 "$root/bench/train_table.py" "$out" "$threads" "$device" | tee "$out/table.md"
