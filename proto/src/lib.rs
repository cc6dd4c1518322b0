//! The wick gRPC protocol (`wick.v1`): the coordinator's client and worker APIs and the
//! worker's inference API. The distributed layer is built on top of the single-trial
//! training path in `wick-worker`; until it lands this crate holds no messages.
