#!/usr/bin/env bash
# Forecast quality of served covid models: a time-split sweep (LSTM64 and GRU64 at several
# window lengths, 500 epochs, the served epoch chosen on a 15 % validation split and
# calibrated there), then for each trial a rolling backtest over 30 forecast days and the
# 1-day backtest of the first, against the later long-format file. Prints one markdown
# table (the README's "Honest forecasts" table) and keeps everything under $OUT.
#
#   bash bench/backtest.sh                  # L = 7, 12, 14, 21, 28 (about 6 min on 2 cores)
#   L=12 bash bench/backtest.sh             # the issue's configuration only
#
# Settings (environment): WICK_DATA (../shared/data), L (comma list), FROM (2020-04-13),
# DAYS (30), WORKERS (2), OUT (target/bench/backtest-<time>).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
data=${WICK_DATA:-$root/../shared/data}
ls=${L:-7,12,14,21,28}
from=${FROM:-2020-04-13}
days=${DAYS:-30}
out=${OUT:-$root/target/bench/backtest-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
cargo build --release -q -p wick-client
client="$root/target/release/client --home $out/home"
actual="$data/covid/countries-aggregated.csv"

# A failed trial (e.g. a window too long to leave a validation set) is reported, not fatal.
$client sweep --data "$data" --task covid --cell lstm,gru --l "$ls" --split time \
  --workers "${WORKERS:-2}" --json >"$out/sweep.json" 2>"$out/sweep.log" || true
for id in $(python3 -c 'import json,sys; [print(t["id"]) for t in json.load(open(sys.argv[1]))["trials"] if t["state"] == "succeeded"]' "$out/sweep.json"); do
  $client backtest --trial "$id" --from "$from" --days "$days" --actual "$actual" \
    --plot "$out/$id.png" --json >"$out/$id-rolling.json"
  $client backtest --trial "$id" --from "$from" --days 1 --actual "$actual" --json >"$out/$id-1day.json"
done
python3 - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
rows = []
for t in json.load(open(out / "sweep.json"))["trials"]:
    if t["state"] != "succeeded":
        print(f"trial {t['id']} ({t['config']['cell']} L={t['config']['l']}) {t['state']}: {t.get('message', '')}")
        continue
    m, c = t["metrics"], t["config"]
    r = json.load(open(out / f"{t['id']}-rolling.json"))
    one = json.load(open(out / f"{t['id']}-1day.json"))
    rows.append((c["l"], c["cell"], m, r, one))
print("| model | L | served epoch | val acc | test acc (served) | best test acc (epoch) | T | val ECE before → after "
      "| 30-day acc / always no | Brier / baseline | log loss / baseline | 1-day acc / always no |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for l, cell, m, r, one in sorted(rows, key=lambda x: (x[0], x[1])):
    b = r["base_rate"]
    print(f"| {cell.upper()}{m['hidden']} | {l} | {m['selected_epoch']} | {m['selected_val_acc']:.3f} "
          f"| {m['selected_test_acc']:.3f} | {m['best_test_acc']:.3f} ({m['best_epoch']}) | {m['temperature']:.2f} "
          f"| {m['val_ece_before']:.3f} → {m['val_ece_after']:.3f} | {r['accuracy']:.3f} / {r['always_no_accuracy']:.3f} "
          f"| {r['brier']:.4f} / {b['brier']:.4f} | {r['log_loss']:.4f} / {b['log_loss']:.4f} "
          f"| {one['accuracy']:.3f} / {one['always_no_accuracy']:.3f} |")
PY
echo "details: $out"
