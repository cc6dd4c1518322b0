#!/usr/bin/env python3
"""Reads the JSON files bench/train.sh wrote (wick's `worker train --json` and the PyTorch
reference's summaries, one folder r1, r2, ... per repeat) and prints a Markdown table: per
configuration the median epoch time of the training steps, the throughput, and the ratio
PyTorch time / wick time (above 1 means wick is faster). With several repeats each side's
fastest run is reported, with the range of all its runs. Standard library only."""
import glob
import json
import os
import platform
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def runs(pattern):
    """Every repeat's JSON matching `pattern`."""
    return [load(p) for p in sorted(glob.glob(pattern))]


def spread(values, scale, digits):
    """' (lo–hi)' over the runs when there are several."""
    if len(values) < 2:
        return ""
    return f" ({min(values) * scale:.{digits}f}–{max(values) * scale:.{digits}f})"


def main(out, threads, device):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    print(f"Device: {device}. Threads: wick {threads}, PyTorch {threads} (torch.set_num_threads). CPU: {cpu}.")
    for name in ("load-start.txt", "load-end.txt"):
        p = os.path.join(out, name)
        if os.path.exists(p):
            print(f"{name[:-4]}: {open(p).read().strip()}")
    print()
    print("| configuration | windows | wick ms/epoch | PyTorch ms/epoch | speed-up | wick windows/s | PyTorch windows/s | infer 185 countries wick / PyTorch (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    for cell, hidden in (("rnn", 32), ("lstm", 64), ("gru", 64)):
        for l in (12, 40):
            name = f"covid-{cell}{hidden}-l{l}"
            ws = runs(os.path.join(out, "wick", "r*", name + ".json"))
            ts = [r["cells"][0] for r in runs(os.path.join(out, "torch", "r*", f"covid_{device}_{name}.json"))]
            if not (ws and ts):
                continue
            w = min(ws, key=lambda r: r["epoch_seconds_median"])
            t = min(ts, key=lambda r: r["median_epoch_train_s"])
            wms, tms = w["epoch_seconds_median"] * 1e3, t["median_epoch_train_s"] * 1e3
            wr = spread([r["epoch_seconds_median"] for r in ws], 1e3, 1)
            tr = spread([r["median_epoch_train_s"] for r in ts], 1e3, 1)
            print(f"| {cell.upper()}{hidden} L={l} | {w['windows_train']} | {wms:.1f}{wr} | {tms:.1f}{tr} | **{tms / wms:.2f}×** | "
                  f"{w['train_samples_per_second']:,.0f} | {t['train_samples_per_s']:,.0f} | "
                  f"{w.get('infer_all_countries_ms', float('nan')):.2f} / {t['infer_end_to_end_ms_median']:.2f} |")
    print()
    print("| configuration | images | wick s/epoch | PyTorch s/epoch | speed-up | wick images/s | PyTorch images/s |")
    print("|---|---|---|---|---|---|---|")
    torch_runs = [r for t in runs(os.path.join(out, "torch", "r*", f"vae_{device}_vae.json")) for r in t["runs"]]
    for size in (28, 64):
        wr = runs(os.path.join(out, "wick", "r*", f"vae-{size}.json"))
        tr = [r for r in torch_runs if r["size"] == size]
        if not (wr and tr):
            continue
        w = min(wr, key=lambda r: r["epoch_seconds_median"])
        t = min(tr, key=lambda r: r["median_epoch_s"])
        ws, ts = w["epoch_seconds_median"], t["median_epoch_s"]
        wsp = spread([r["epoch_seconds_median"] for r in wr], 1, 3)
        tsp = spread([r["median_epoch_s"] for r in tr], 1, 3)
        print(f"| VAE {size}×{size}, KL 1 | {w['images']} | {ws:.3f}{wsp} | {ts:.3f}{tsp} | **{ts / ws:.2f}×** | "
              f"{w['images_per_second']:,.0f} | {t['images_per_s']:,.0f} |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "?", sys.argv[3] if len(sys.argv) > 3 else "cpu")
