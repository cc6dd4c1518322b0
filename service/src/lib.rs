//! # wick-service
//!
//! What the `coordinator` and `worker serve` processes share around their gRPC services:
//! log setup ([`init_logs`]), their shared flags ([`ServerArgs`]), the bearer token every
//! call carries ([`auth`]), TLS ([`tls`]) and the Prometheus endpoint ([`metrics`]). Kept
//! apart from the services so that the client, which only dials, shares the token and TLS
//! code without taking the servers.

pub mod auth;
pub mod metrics;
pub mod tls;

/// The flags every wick server takes besides its own: where to serve metrics, how to log,
/// the bearer token and TLS.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 0.0.0.0:9090; port 0 picks a
    /// free port, printed on stderr), or `none`.
    #[arg(
        long,
        env = "WICK_METRICS_LISTEN",
        default_value = "none",
        value_name = "ADDR"
    )]
    pub metrics_listen: String,
    #[command(flatten)]
    pub token: auth::TokenArgs,
    #[command(flatten)]
    pub tls: tls::TlsArgs,
    /// Write one JSON object per line instead of text (for log collectors); RUST_LOG
    /// filters (default info).
    #[arg(long, env = "WICK_JSON_LOGS")]
    pub json_logs: bool,
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), as text or, with `json`, as
/// one JSON object per line for log collectors. Span fields (the trial and worker ids the
/// services attach) are printed on every line inside the span.
pub fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    // Colour codes only for a person at a terminal: a file or a log collector gets plain text.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    // A second initialisation (tests that start several servers in one process) keeps the
    // first subscriber instead of panicking.
    let _ = if json {
        logs.json().try_init()
    } else {
        logs.try_init()
    };
}
