//! # wick-worker
//!
//! Everything one worker needs to run a trial of either coursework task on one machine:
//!
//! - `device`: choosing the CPU or a CUDA GPU (`cpu`, `cuda:N`, `auto`).
//! - `rng`: seeded random streams, one per (seed, purpose, epoch), so a resumed run draws
//!   exactly what an uninterrupted one would.
//! - `params`: named trainable tensors and their initialisation.
//! - `adam`: Adam that updates parameters in place and whose state is checkpointable.
//! - `ckpt`: safetensors checkpoints (model + optimizer + epoch + config + history).
//! - `covid`: the RNN / LSTM / GRU classifier, its training loop and its artifacts.
//! - `vae`: the image-folder loader, the MLP VAE, its training loop and its artifacts.
//! - `data`: where the datasets are (`--data`, `--covid-csv`, `--faces`, `WICK_DATA`).
//! - `progress`: progress bars on a terminal, silence otherwise.
//! - `train`: `worker train`, one trial end to end, with its JSON summary.
//! - `serve`: `worker serve`, the distributed worker: leases, checkpoints and artifacts in
//!   the store, progress to the coordinator, and the inference server.

pub mod adam;
pub mod ckpt;
pub mod covid;
pub mod data;
pub mod device;
pub mod kernels;
pub mod params;
pub mod progress;
pub mod rng;
pub mod serve;
pub mod train;
pub mod vae;
