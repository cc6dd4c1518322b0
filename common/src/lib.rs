//! # wick-common
//!
//! What the `coordinator`, `worker` and `client` binaries share, free of any
//! machine-learning dependency:
//!
//! - `error`: the crate's error type.
//! - `trial`: a trial's configuration (task and hyperparameters) and its validation.
//! - `country`: country names and ISO 3166 alpha-2 codes, with close-match suggestions.
//! - `ids`: content-derived ids of trials, sweeps and datasets.
//! - `store`: the shared object store (`file://`, `s3://`, `memory://`) and its key layout.
//! - `covid`: loading cumulative case tables (three CSV layouts) and preparing the
//!   windows of the COVID-19 task.

pub mod country;
pub mod covid;
pub mod error;
pub mod ids;
pub mod store;
pub mod trial;

pub use error::{Error, Result};
