#!/usr/bin/env bash
# The training benchmark on one GPU, for a machine with CUDA, PyTorch and no Rust toolchain
# or internet: it runs a carried worker binary built with `--features cuda` and the PyTorch
# reference on the same GPU, then prints the ratio table (bench/train.sh does the work).
#
# Build here (see DEVELOPERS.md for nvcc from PyPI and the libcuda stub):
#   source ../shared/gpu/cuda-toolchain.sh
#   CUDA_COMPUTE_CAP=90 cargo build --release -p wick-worker --features cuda --target-dir target/cuda
#   gzip -c target/cuda/release/worker > bench/worker-cuda.gz
# Run there, from the repository root, with the data and the reference beside it:
#   WICK_WORKER=bench/worker-cuda.gz WICK_DATA=... WICK_REFERENCE=... bash bench/gpu.sh
# Settings: as bench/train.sh; PYTHON (python3, the one with torch), CUDA_LIB (the CUDA 13
# runtime folder), COVID_EPOCHS (100), VAE28_EPOCHS (10), VAE64_EPOCHS (5).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${WICK_WORKER:?set WICK_WORKER to the worker binary built with --features cuda (.gz is fine)}"
export LD_LIBRARY_PATH=${CUDA_LIB:-/usr/local/cuda-13.0/targets/x86_64-linux/lib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export WICK_BENCH_DEVICE=cuda WICK_BENCH_PYTHON=${PYTHON:-python3}
export COVID_EPOCHS=${COVID_EPOCHS:-100} VAE28_EPOCHS=${VAE28_EPOCHS:-10} VAE64_EPOCHS=${VAE64_EPOCHS:-5}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
exec bash bench/train.sh
