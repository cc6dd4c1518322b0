//! The coordinator's settings: `Args`, the command line (with environment equivalents),
//! and `Config`, the runtime settings `serve` takes, built from `Args` by `TryFrom` and
//! checked by `validate` so that an embedded coordinator gets the same checks.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use wick_service::ServerArgs;
use wick_service::auth::Token;
use wick_service::tls::Tls;

/// wick coordinator: expands hyperparameter sweeps into trials and leases them to workers.
///
/// Workers pull trials over gRPC, heartbeat their leases and report every epoch; clients
/// submit and watch sweeps and ask for forecasts and samples. State lives in the store, so
/// a restarted coordinator continues where it stopped.
#[derive(Debug, Clone, Parser)]
#[command(version)]
pub struct Args {
    /// Address to serve the Sweeps and Work gRPC APIs on (port 0 picks a free port; the
    /// bound address is printed on stderr).
    #[arg(long, env = "WICK_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Object store holding sweeps, trials and artifacts: file:///abs/path, s3://bucket/prefix
    /// (credentials and endpoint from the AWS_* variables) or memory:// (nothing kept)
    /// [default: file://<current dir>/.wick/store].
    #[arg(long, env = "WICK_STORE")]
    pub store: Option<String>,
    /// A lease not renewed by a heartbeat for this many milliseconds is taken back and its
    /// trial queued again.
    #[arg(long, env = "WICK_LEASE_TTL_MS", default_value_t = 10_000)]
    pub lease_ttl_ms: u64,
    /// Workers are told to send a heartbeat this often (milliseconds); expired leases are
    /// also looked for at this interval. Must be below --lease-ttl-ms.
    #[arg(long, env = "WICK_HEARTBEAT_MS", default_value_t = 1_000)]
    pub heartbeat_ms: u64,
    /// Leases a trial may lose (its worker vanished) before it is marked failed.
    #[arg(long, env = "WICK_MAX_ATTEMPTS", default_value_t = 3)]
    pub max_attempts: u32,
    /// Largest data file a client may upload through the coordinator, in MiB (larger ones
    /// go into the store directly: client --store).
    #[arg(long, env = "WICK_MAX_UPLOAD_MIB", default_value_t = 4096)]
    pub max_upload_mib: u64,
    /// Metrics, logs, the token and TLS.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Invalid settings, each naming the flag to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting out of range.
    #[error("{0}")]
    Invalid(String),
}

/// The runtime settings of a coordinator.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// URL of the object store (see `Store::open`).
    pub store_url: String,
    /// How long a lease lives without a heartbeat.
    pub lease_ttl: Duration,
    /// How often workers heartbeat and the reaper looks for expired leases.
    pub heartbeat: Duration,
    /// Leases a trial may lose before it is marked failed.
    pub max_attempts: u32,
    /// Where to serve Prometheus metrics (`None`: nowhere).
    pub metrics_listen: Option<SocketAddr>,
    /// The bearer token every call must carry, and that workers require (`None`: calls are
    /// not authenticated).
    pub token: Option<Token>,
    /// TLS to serve with (`--tls-cert`, `--tls-key`) and to dial workers with (`--tls-ca`).
    pub tls: Tls,
    /// Largest data file accepted by UploadData, in bytes.
    pub max_upload: u64,
}

impl Default for Config {
    /// The production timings over an in-memory store: set `store_url` to keep anything.
    fn default() -> Self {
        Config {
            store_url: "memory://".into(),
            lease_ttl: Duration::from_millis(10_000),
            heartbeat: Duration::from_millis(1_000),
            max_attempts: 3,
            metrics_listen: None,
            token: None,
            tls: Tls::default(),
            max_upload: 4096 << 20,
        }
    }
}

impl Config {
    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.store_url.trim().is_empty() {
            return bad("the store URL is empty; pass --store file:///abs/path, s3://bucket/prefix or memory://".into());
        }
        if self.heartbeat.is_zero() {
            return bad("--heartbeat-ms must be at least 1".into());
        }
        // A lease must outlive at least one heartbeat, or every lease expires before its
        // worker can renew it.
        if self.lease_ttl <= self.heartbeat {
            return bad(format!(
                "--lease-ttl-ms ({} ms) must be above --heartbeat-ms ({} ms); a few heartbeats per lease (e.g. 10000 and 1000) tolerate a late one",
                self.lease_ttl.as_millis(),
                self.heartbeat.as_millis()
            ));
        }
        if self.max_attempts == 0 {
            return bad("--max-attempts must be at least 1".into());
        }
        if self.max_upload == 0 {
            return bad("--max-upload-mib must be at least 1".into());
        }
        Ok(())
    }
}

impl TryFrom<Args> for Config {
    type Error = ConfigError;

    fn try_from(a: Args) -> Result<Self, Self::Error> {
        let store_url = match a.store {
            Some(url) => url,
            None => {
                let cwd = std::env::current_dir().map_err(|e| {
                    ConfigError::Invalid(format!(
                        "cannot read the current folder for the default store ({e}); pass --store"
                    ))
                })?;
                format!("file://{}", cwd.join(".wick").join("store").display())
            }
        };
        let config = Config {
            store_url,
            lease_ttl: Duration::from_millis(a.lease_ttl_ms),
            heartbeat: Duration::from_millis(a.heartbeat_ms),
            max_attempts: a.max_attempts,
            max_upload: a.max_upload_mib.saturating_mul(1 << 20),
            metrics_listen: wick_service::metrics::parse_listen(&a.server.metrics_listen)
                .map_err(|e| ConfigError::Invalid(format!("{e:#}")))?,
            token: a
                .server
                .token
                .load()
                .map_err(|e| ConfigError::Invalid(format!("{e:#}")))?,
            tls: a
                .server
                .tls
                .load()
                .map_err(|e| ConfigError::Invalid(format!("{e:#}")))?,
        };
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("coordinator").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_are_the_production_timings_and_a_local_store() {
        let c = Config::try_from(parse(&[])).unwrap();
        assert_eq!(c.lease_ttl, Duration::from_secs(10));
        assert_eq!(c.heartbeat, Duration::from_secs(1));
        assert_eq!(c.max_attempts, 3);
        assert!(c.store_url.starts_with("file:///"), "{}", c.store_url);
        assert!(c.store_url.ends_with(".wick/store"), "{}", c.store_url);
        Config::default().validate().unwrap();
    }

    #[test]
    fn flags_override_and_bad_timings_name_the_flag() {
        let c = Config::try_from(parse(&[
            "--store",
            "memory://",
            "--lease-ttl-ms",
            "2000",
            "--heartbeat-ms",
            "300",
            "--max-attempts",
            "5",
        ]))
        .unwrap();
        assert_eq!(c.store_url, "memory://");
        assert_eq!(c.heartbeat, Duration::from_millis(300));
        assert_eq!(c.max_attempts, 5);
        let e = Config::try_from(parse(&["--lease-ttl-ms", "500", "--heartbeat-ms", "500"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--lease-ttl-ms"), "{e}");
        let e = Config::try_from(parse(&["--max-attempts", "0"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--max-attempts"), "{e}");
        let e = Config::try_from(parse(&["--heartbeat-ms", "0"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--heartbeat-ms"), "{e}");
    }
}
