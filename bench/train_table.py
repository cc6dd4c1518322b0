#!/usr/bin/env python3
"""Reads the JSON files bench/train.sh wrote (wick's `worker train --json` and the PyTorch
reference's summaries) and prints a Markdown table: per configuration the median epoch
time of the training steps, the throughput, and the ratio PyTorch time / wick time
(above 1 means wick is faster). Standard library only."""
import json
import os
import platform
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


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
            wp, tp = os.path.join(out, "wick", name + ".json"), os.path.join(out, "torch", f"covid_{device}_{name}.json")
            if not (os.path.exists(wp) and os.path.exists(tp)):
                continue
            w, t = load(wp), load(tp)["cells"][0]
            wms, tms = w["epoch_seconds_median"] * 1e3, t["median_epoch_train_s"] * 1e3
            print(f"| {cell.upper()}{hidden} L={l} | {w['windows_train']} | {wms:.1f} | {tms:.1f} | **{tms / wms:.2f}×** | "
                  f"{w['train_samples_per_second']:,.0f} | {t['train_samples_per_s']:,.0f} | "
                  f"{w.get('infer_all_countries_ms', float('nan')):.2f} / {t['infer_end_to_end_ms_median']:.2f} |")
    print()
    print("| configuration | images | wick s/epoch | PyTorch s/epoch | speed-up | wick images/s | PyTorch images/s |")
    print("|---|---|---|---|---|---|---|")
    tp = os.path.join(out, "torch", f"vae_{device}_vae.json")
    runs = load(tp)["runs"] if os.path.exists(tp) else []
    for size in (28, 64):
        wp = os.path.join(out, "wick", f"vae-{size}.json")
        t = next((r for r in runs if r["size"] == size), None)
        if not os.path.exists(wp) or t is None:
            continue
        w = load(wp)
        ws, ts = w["epoch_seconds_median"], t["median_epoch_s"]
        print(f"| VAE {size}×{size}, KL 1 | {w['images']} | {ws:.3f} | {ts:.3f} | **{ts / ws:.2f}×** | "
              f"{w['images_per_second']:,.0f} | {t['images_per_s']:,.0f} |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "?", sys.argv[3] if len(sys.argv) > 3 else "cpu")
