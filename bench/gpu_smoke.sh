#!/usr/bin/env bash
# GPU smoke test, one command on a machine with CUDA and no Rust toolchain: a carried
# worker built with `--features cuda` trains both tasks for 2 epochs on the CPU and on the
# GPU from the same seed, and the GPU run must match the CPU run's shapes (windows, images,
# parameters, artifacts, forecast countries, the selected epoch's existence) and land in
# its loss range (covid losses within 0.05, VAE negative ELBO within 5 %: float sums run in
# another order on the GPU, so bit equality is not expected). Exits non-zero on the first
# mismatch, naming it.
#
# Build here (as bench/gpu.sh says), then there:
#   WICK_WORKER=bench/worker-cuda.gz WICK_DATA=../shared/data bash bench/gpu_smoke.sh
# Settings: CUDA_LIB (the CUDA 13 runtime folder), OUT (target/gpu-smoke), PYTHON (python3).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${WICK_WORKER:?set WICK_WORKER to the worker binary built with --features cuda (.gz is fine)}"
data=${WICK_DATA:-../shared/data}
out=${OUT:-target/gpu-smoke}
mkdir -p "$out"
export LD_LIBRARY_PATH=${CUDA_LIB:-/usr/local/cuda-13.0/targets/x86_64-linux/lib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
worker=$WICK_WORKER
if [[ $worker == *.gz ]]; then
  gunzip -c "$worker" >"$out/worker" && chmod +x "$out/worker" && worker=$out/worker
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
for dev in cpu cuda; do
  for task in covid vae; do
    args=(train --task "$task" --epochs 2 --seed 0 --data "$data" --out "$out/$task-$dev" --device "$dev" --json)
    [[ $task == vae ]] && args+=(--limit 500)
    start=$(date +%s.%N)
    "$worker" "${args[@]}" >"$out/$task-$dev.json" 2>"$out/$task-$dev.log" \
      || { echo "FAIL: $task on $dev:"; tail -5 "$out/$task-$dev.log"; exit 1; }
    echo "$task on $dev: $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s"
  done
done
${PYTHON:-python3} - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
fail = []
def load(task, dev):
    return json.loads((out / f"{task}-{dev}.json").read_text())
for task, same, close in [
    ("covid", ["windows_train", "windows_val", "windows_test", "params", "countries", "countries_in_c", "artifacts"],
     [("final_train_loss", 0.05, False), ("final_test_loss", 0.05, False)]),
    ("vae", ["images", "images_train", "images_val", "params", "artifacts"],
     [("final_neg_elbo", 0.05, True), ("selected_val_neg_elbo", 0.05, True)]),
]:
    cpu, gpu = load(task, "cpu"), load(task, "cuda")
    if "cuda" not in str(gpu.get("device", "")).lower() and "gpu" not in str(gpu.get("device", "")).lower():
        fail.append(f"{task}: the GPU run reports device {gpu.get('device')!r}")
    for k in same:
        if cpu.get(k) != gpu.get(k):
            fail.append(f"{task}: {k} differs: cpu {cpu.get(k)!r}, cuda {gpu.get(k)!r}")
    for k, tol, relative in close:
        a, b = cpu.get(k), gpu.get(k)
        if a is None or b is None:
            fail.append(f"{task}: {k} missing (cpu {a!r}, cuda {b!r})")
            continue
        gap = abs(a - b) / (abs(a) if relative else 1.0)
        status = "ok" if gap <= tol else "FAIL"
        print(f"{task} {k}: cpu {a:.4f} cuda {b:.4f} ({status})")
        if gap > tol:
            fail.append(f"{task}: {k} cpu {a} cuda {b}, beyond {tol}{' relative' if relative else ''}")
    print(f"{task}: {cpu.get('epoch_seconds_median', 0):.3f} s/epoch on cpu, {gpu.get('epoch_seconds_median', 0):.3f} on cuda")
fc = [json.loads((out / f"covid-{d}" / "forecast.json").read_text()) for d in ("cpu", "cuda")]
if [f["country"] for f in fc[0]] != [f["country"] for f in fc[1]]:
    fail.append("covid: forecast countries differ")
if fail:
    print("\n".join("FAIL: " + f for f in fail))
    sys.exit(1)
print("GPU smoke test passed")
PY
