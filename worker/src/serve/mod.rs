//! `worker serve`: the distributed worker. It registers with the coordinator, pulls
//! leases for as many trials as it has slots, runs each with the same code as
//! `worker train` (resuming from the trial's latest checkpoint in the store), reports
//! progress at most every `--report-every-ms` (an epoch with a checkpoint, and the last,
//! at once) with a checkpoint at most every `--checkpoint-every-ms`, stages the final artifacts for the coordinator to promote, and serves inference on the
//! trials in the store. On shutdown it stops taking work and hands its trials back at
//! their next epoch boundary.
//!
//! - `shutdown`: the stop switch shared by the tasks.
//! - `retry`: exponential backoff over transient coordinator and store failures.
//! - `data_cache`: datasets fetched once from the store or the web into a local folder.
//! - `staging`: the store keys a lease writes, and moving files there.
//! - `lease_loop`: registration, heartbeats and the per-slot loop asking for work.
//! - `attempt`: one leased trial, from data to Complete or Fail.
//! - `models`: trials loaded for inference, in a small LRU.
//! - `inference`: the `Inference` gRPC service over `models`.
//! - `health`: the gRPC health status Kubernetes probes, from probes of the coordinator
//!   and the store.
//! - `metrics`: the Prometheus metrics.

mod attempt;
pub mod data_cache;
mod health;
pub mod inference;
mod lease_loop;
mod metrics;
mod models;
mod retry;
mod shutdown;
mod staging;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use tonic::transport::{Channel, Endpoint};
use tracing::Instrument;
use wick_common::store::Store;
use wick_service::ServerArgs;
use wick_service::auth::{Token, with_token};
use wick_service::tls::Tls;

use crate::device;
use crate::serve::data_cache::DataCache;
use crate::serve::inference::InferenceService;
use crate::serve::lease_loop::Worker;
use crate::serve::metrics::WorkerMetrics;
use crate::serve::shutdown::Shutdown;

/// How often an idle slot asks for work by default.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Least time between two checkpoints of a running trial, unless configured.
pub const DEFAULT_CHECKPOINT_EVERY: Duration = Duration::from_secs(10);
/// Least time between two progress reports of a running trial, unless configured.
pub const DEFAULT_REPORT_EVERY: Duration = Duration::from_millis(250);
/// Most trials one worker runs at once: beyond it the slots only fight over the cores.
pub const MAX_SLOTS: usize = 64;
/// How long a call to the coordinator may take before it counts as failed (and is retried).
const RPC_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for the coordinator to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Flags of `worker serve`.
#[derive(Debug, Args)]
#[command(after_long_help = "EXAMPLES:\n  \
worker serve --coordinator http://127.0.0.1:50051 --store file:///srv/wick\n  \
worker serve --coordinator http://coord:50051 --store s3://wick/prod --device cuda:0 --slots 2 \\\n    --listen 0.0.0.0:50061 --advertise 10.1.2.3:50061 --metrics-listen 0.0.0.0:9090 --token-file /run/wick/token\n\n\
HEALTH: the inference port also serves grpc.health.v1: service \"liveness\" is SERVING while the\n\
process runs; service \"\" is SERVING only while the coordinator and the store answer.")]
pub struct ServeArgs {
    /// Coordinator to pull work from, http://HOST:PORT.
    #[arg(long, env = "WICK_COORDINATOR")]
    pub coordinator: String,
    /// Object store shared with the coordinator: file:///abs/path, s3://bucket/prefix
    /// (credentials and endpoint from the AWS_* variables) or memory://.
    #[arg(long, env = "WICK_STORE")]
    pub store: String,
    /// Address of this worker's inference and health server, IP:PORT (port 0 picks a free
    /// one), or `none` to serve no inference.
    #[arg(long, env = "WICK_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: String,
    /// HOST:PORT the coordinator should dial for inference, when it differs from --listen
    /// (e.g. the pod IP when listening on 0.0.0.0) [default: the --listen address, with a
    /// wildcard IP replaced by the host name].
    #[arg(long, env = "WICK_ADVERTISE", value_name = "HOST:PORT")]
    pub advertise: Option<String>,
    /// Device: cpu, cuda:N, or auto (a GPU if there is one).
    #[arg(long, env = "WICK_DEVICE", default_value = "auto")]
    pub device: String,
    /// Trials to run at once.
    #[arg(long, env = "WICK_SLOTS", default_value_t = 1)]
    pub slots: usize,
    /// Name shown in status and logs [default: the host name].
    #[arg(long, env = "WICK_WORKER_NAME")]
    pub name: Option<String>,
    /// Folder for downloaded datasets and running trials' files
    /// [default: wick-worker-NAME in the system temporary folder].
    #[arg(long, env = "WICK_CACHE")]
    pub cache: Option<PathBuf>,
    /// CPU threads for the tensor math [default: all cores].
    #[arg(long, env = "WICK_THREADS")]
    pub threads: Option<usize>,
    /// Least time between two checkpoints of a running trial, in ms; the last epoch always
    /// gets one. A killed worker's trial resumes from its latest checkpoint, so this bounds
    /// the training lost (plus the epoch in progress). 0 = after every epoch.
    #[arg(long, env = "WICK_CHECKPOINT_EVERY_MS", default_value_t = 10_000)]
    pub checkpoint_every_ms: u64,
    /// Least time between two progress reports of a running trial, in ms: shorter epochs
    /// go several to a report, which spares the coordinator a call and a store write per
    /// epoch. An epoch with a checkpoint, and the last, are reported at once. 0 = every
    /// epoch.
    #[arg(long, env = "WICK_REPORT_EVERY_MS", default_value_t = 250)]
    pub report_every_ms: u64,
    /// Metrics, logs, the token and TLS.
    #[command(flatten)]
    pub server: ServerArgs,
}

impl ServeArgs {
    /// The runtime settings these flags describe, validated. (`--threads` and
    /// `--json-logs` are process-wide and applied by the binary before the runtime starts.)
    pub fn config(&self) -> Result<ServeConfig> {
        let mut c = ServeConfig::new(&self.coordinator, &self.store);
        c.listen = match self.listen.trim() {
            "none" => None,
            addr => Some(addr.parse().with_context(|| {
                format!("--listen '{addr}' is not IP:PORT (e.g. 127.0.0.1:0) or `none`")
            })?),
        };
        c.advertise = self.advertise.clone();
        c.metrics_listen = wick_service::metrics::parse_listen(&self.server.metrics_listen)?;
        c.token = self.server.token.load()?;
        c.tls = self.server.tls.load()?;
        c.device = self.device.clone();
        c.slots = self.slots;
        c.checkpoint_every = Duration::from_millis(self.checkpoint_every_ms);
        c.report_every = Duration::from_millis(self.report_every_ms);
        if let Some(name) = &self.name {
            c.name = name.clone();
            c.cache = default_cache(name);
        }
        if let Some(cache) = &self.cache {
            c.cache = cache.clone();
        }
        c.validate()?;
        Ok(c)
    }
}

/// Settings of a running worker; `ServeConfig::new` fills in the defaults.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Coordinator URL (`http://HOST:PORT`; a bare `HOST:PORT` gets `http://`).
    pub coordinator: String,
    /// Object store URL, the same the coordinator uses.
    pub store: String,
    /// Where the inference server listens (port 0 = any free port); `None` = no server.
    pub listen: Option<SocketAddr>,
    /// The address the coordinator dials for inference (`None`: derived from `listen`).
    pub advertise: Option<String>,
    /// Where to serve Prometheus metrics (`None`: nowhere).
    pub metrics_listen: Option<SocketAddr>,
    /// The cluster's bearer token: sent to the coordinator, required of inference callers.
    pub token: Option<Token>,
    /// TLS to serve inference with and to dial the coordinator with.
    pub tls: Tls,
    /// `cpu`, `cuda:N` or `auto`.
    pub device: String,
    /// Trials run at once.
    pub slots: usize,
    /// Name shown in status and logs.
    pub name: String,
    /// Folder for cached datasets and the files of running trials.
    pub cache: PathBuf,
    /// How long an idle slot waits before asking for work again.
    pub poll_interval: Duration,
    /// The least time between two checkpoints of a running trial (zero: every epoch).
    pub checkpoint_every: Duration,
    /// The least time between two progress reports of a running trial (zero: every epoch).
    pub report_every: Duration,
}

impl ServeConfig {
    /// Defaults: inference on 127.0.0.1 at a free port, device `auto`, one slot, the host
    /// name, a cache folder in the system temporary folder, polling every 500 ms, a checkpoint
    /// at most every 10 s, a progress report at most every 250 ms.
    pub fn new(coordinator: impl Into<String>, store: impl Into<String>) -> Self {
        let name = host_name();
        ServeConfig {
            coordinator: coordinator.into(),
            store: store.into(),
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            advertise: None,
            metrics_listen: None,
            token: None,
            tls: Tls::default(),
            device: "auto".into(),
            slots: 1,
            cache: default_cache(&name),
            name,
            poll_interval: DEFAULT_POLL_INTERVAL,
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            report_every: DEFAULT_REPORT_EVERY,
        }
    }

    /// Rejects settings a worker cannot run with, naming the flag.
    pub fn validate(&self) -> Result<()> {
        if self.coordinator.trim().is_empty() {
            bail!("no coordinator: pass --coordinator http://HOST:PORT or set WICK_COORDINATOR");
        }
        if self.store.trim().is_empty() {
            bail!(
                "no store: pass --store URL (file:///abs/path, s3://bucket/prefix) or set WICK_STORE"
            );
        }
        if !(1..=MAX_SLOTS).contains(&self.slots) {
            bail!(
                "--slots must be between 1 and {MAX_SLOTS}, got {}",
                self.slots
            );
        }
        if self.name.trim().is_empty() {
            bail!("--name must not be empty");
        }
        if let Some(a) = &self.advertise {
            let port = a
                .rsplit_once(':')
                .map(|(host, port)| (host, port.parse::<u16>()));
            if !matches!(port, Some((host, Ok(p))) if !host.is_empty() && p > 0) {
                bail!("--advertise '{a}' is not HOST:PORT (e.g. 10.1.2.3:50061)");
            }
        }
        if self.poll_interval.is_zero() {
            bail!("the poll interval must be longer than zero");
        }
        Ok(())
    }
}

/// This machine's host name, or `worker` when it cannot be read.
pub fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .chain(
            ["HOSTNAME", "COMPUTERNAME"]
                .iter()
                .filter_map(|v| std::env::var(v).ok()),
        )
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "worker".into())
}

/// `wick-worker-<name>` in the system temporary folder, with the name made path-safe.
pub fn default_cache(name: &str) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    std::env::temp_dir().join(format!("wick-worker-{safe}"))
}

/// The address the coordinator should dial: a wildcard bind is advertised by host name.
fn advertised(local: SocketAddr) -> String {
    if local.ip().is_unspecified() {
        format!("{}:{}", host_name(), local.port())
    } else {
        local.to_string()
    }
}

/// A lazily connected channel to the coordinator: a coordinator that is not up yet is
/// waited for by the retrying callers, not refused here.
fn connect(url: &str, tls: &Tls) -> Result<Channel> {
    let url = if url.contains("://") {
        url.to_string()
    } else {
        format!("{}://{url}", tls.scheme())
    };
    let endpoint = Endpoint::from_shared(url.clone()).with_context(|| {
        format!("--coordinator '{url}' is not a URL like http://127.0.0.1:50051")
    })?;
    Ok(tls
        .endpoint(endpoint)
        .context("--coordinator")?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(RPC_TIMEOUT)
        .connect_lazy())
}

/// Runs a worker until `shutdown` completes: serves inference and health (when
/// `config.listen` is set) and metrics (when `config.metrics_listen` is), registers, and
/// runs leased trials; on shutdown it stops asking for work, hands running trials back at
/// their next epoch boundary and returns. The `worker serve` binary and the client's
/// embedded mode both call this. Every log line inside carries the worker's name.
pub async fn run(
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let span = tracing::info_span!("worker", worker = %config.name);
    run_in_span(config, shutdown).instrument(span).await
}

async fn run_in_span(
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    config.validate()?;
    let store = Store::open(&config.store)?;
    let device = device::parse(&config.device)?;
    let cache = Arc::new(DataCache::new(config.cache.join("data"), store.clone()));
    let metrics = Arc::new(WorkerMetrics::new(&store));
    let channel = with_token(
        connect(&config.coordinator, &config.tls)?,
        config.token.as_ref(),
    );
    let stop = Shutdown::new();
    {
        let stop = stop.clone();
        tokio::spawn(
            async move {
                shutdown.await;
                tracing::info!(
                    "shutting down: no new work; running trials are handed back at their next epoch"
                );
                stop.trigger();
            }
            .in_current_span(),
        );
    }
    // The map's shapes are built before the worker listens or takes work, so a trial's
    // artifacts cost the same whether or not it is this worker's first.
    match tokio::task::spawn_blocking(wick_viz::preload).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("cannot prepare the plots: {e}"),
        Err(e) => tracing::warn!("preparing the plots crashed: {e}"),
    }
    let mut tasks = Vec::new();
    if let Some(addr) = config.metrics_listen {
        let listener = wick_service::metrics::bind(addr).await?;
        let local = listener
            .local_addr()
            .context("the metrics listener has no address")?;
        eprintln!("worker {} metrics on {local}", config.name);
        let m = metrics.clone();
        let render: wick_service::metrics::Render = Arc::new(move || {
            let page = m.render();
            Box::pin(async move { page })
        });
        let stop = stop.clone();
        tasks.push(tokio::spawn(
            wick_service::metrics::serve(listener, render, async move { stop.wait().await })
                .in_current_span(),
        ));
    }
    let mut inference_addr = String::new();
    if let Some(addr) = config.listen {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} for inference; pick another --listen address")
        })?;
        let local = listener
            .local_addr()
            .context("the inference listener has no address")?;
        tracing::info!("worker {} inference listening on {local}", config.name);
        inference_addr = config
            .advertise
            .clone()
            .unwrap_or_else(|| advertised(local));
        let (reporter, health_service) = tonic_health::server::health_reporter();
        tokio::spawn(
            health::watch(
                reporter,
                channel.clone(),
                store.clone(),
                metrics.clone(),
                stop.clone(),
            )
            .in_current_span(),
        );
        let service = InferenceService::new(store.clone(), cache.clone(), device.clone())
            .with_metrics(metrics.inference.clone());
        tasks.push(tokio::spawn(
            inference::serve(
                listener,
                service,
                health_service,
                config.token.clone(),
                config.tls.server(),
                stop.clone(),
            )
            .in_current_span(),
        ));
    }
    let worker = Arc::new(Worker {
        name: config.name.clone(),
        device,
        slots: config.slots,
        inference_addr,
        poll: config.poll_interval,
        checkpoint_every: config.checkpoint_every,
        report_every: config.report_every,
        client: wick_proto::v1::work_client::WorkClient::new(channel),
        store,
        cache,
        work_dir: config.cache.join("work"),
        stop: stop.clone(),
        metrics,
        state: Default::default(),
    });
    let result = lease_loop::run(worker).await;
    // Also ends the servers when the lease loop failed on its own.
    stop.trigger();
    for task in tasks {
        task.await.context("a worker server panicked")??;
    }
    tracing::info!("worker stopped");
    result
}
