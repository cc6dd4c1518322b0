//! # wick-bench
//!
//! Benchmarks of a running wick cluster. [`load`] drives the coordinator's client-facing
//! calls (`Predict`, `Sample`, `WatchSweep`) from many concurrent gRPC clients for a
//! bounded time and request count, checks every answer, and reports throughput and
//! latency percentiles ([`report`]); the `loadgen` binary puts it on the command line and
//! `bench/serve.sh` runs it against a coordinator and worker it starts itself. The
//! integration tests use the same library to load a real cluster.

pub mod load;
pub mod report;
