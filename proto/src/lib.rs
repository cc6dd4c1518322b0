//! The wick gRPC protocol (`wick.v1`, in `wick/v1/wick.proto`): the coordinator's `Sweeps`
//! API for clients and `Work` API for workers, and the workers' `Inference` API. The code
//! is generated at build time with protox, so no `protoc` is needed.

#![allow(clippy::all, missing_docs)]

/// Generated messages, clients and servers of `wick.v1`.
pub mod v1 {
    tonic::include_proto!("wick.v1");
}

pub use v1::*;
