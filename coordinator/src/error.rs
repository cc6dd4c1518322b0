//! The coordinator's error type. Each variant is one gRPC status code, so a handler turns
//! any failure into the right `Status` with `?`, and the message always says what to do.

/// Errors of the coordinator's operations, by the status code they travel as.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is wrong (a bad hyperparameter, a malformed key); names the field.
    #[error("{0}")]
    InvalidArgument(String),
    /// An unknown sweep, trial, worker or artifact; says how to find the right one.
    #[error("{0}")]
    NotFound(String),
    /// The request is well-formed but not allowed now (an ended lease, the wrong task).
    #[error("{0}")]
    FailedPrecondition(String),
    /// Something the coordinator depends on is down (the store, every inference worker).
    #[error("{0}")]
    Unavailable(String),
    /// The answer would be too large to send.
    #[error("{0}")]
    ResourceExhausted(String),
}

/// `Result` with the coordinator's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl From<wick_common::Error> for Error {
    fn from(e: wick_common::Error) -> Self {
        match e {
            wick_common::Error::InvalidConfig(m) => Error::InvalidArgument(m),
            // Store failures are the only other kind the coordinator meets: the store is
            // unreachable or refused, which another try may get past.
            other => Error::Unavailable(other.to_string()),
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidArgument(m) => tonic::Status::invalid_argument(m),
            Error::NotFound(m) => tonic::Status::not_found(m),
            Error::FailedPrecondition(m) => tonic::Status::failed_precondition(m),
            Error::Unavailable(m) => tonic::Status::unavailable(m),
            Error::ResourceExhausted(m) => tonic::Status::resource_exhausted(m),
        }
    }
}
