//! # wick-bench
//!
//! Benchmarks of a running wick cluster. [`load`] drives the coordinator's client-facing
//! calls (`Predict`, `Sample`, `WatchSweep`) from many concurrent gRPC clients for a
//! bounded time and request count, checks every answer, and reports throughput and
//! latency percentiles ([`report`]); the `loadgen` binary puts it on the command line and
//! `bench/serve.sh` runs it against a coordinator and worker it starts itself. The
//! integration tests use the same library to load a real cluster.
//!
//! [`probe`] is the other side of the coordinator: simulated workers that run trials
//! without training, for the `overhead` binary (`bench/scale.sh`, `bench/coordinator.sh`).
//! [`delay`] is a TCP proxy that puts a network's round-trip time in front of a local
//! store, for the `delay_proxy` binary (`bench/coordinator.sh`).

pub mod delay;
pub mod load;
pub mod probe;
pub mod report;
