//! # wick-coordinator
//!
//! The coordinator of wick's distributed sweeps: it expands a sweep into trials, leases
//! them to pulling workers with fencing, streams their progress to watching clients,
//! keeps every state change in the object store so a restart loses nothing, and routes
//! inference calls to live workers. [`serve`] runs it on a listener; the `coordinator`
//! binary and the client's embedded mode both call it.
//!
//! # Layout
//!
//! - `config`: the command line (`Args`) and the runtime settings (`Config`).
//! - `error`: the error type, one variant per gRPC status code.
//! - `grid`: a sweep spec expanded into validated trial configurations.
//! - `records`: the durable documents (trial and sweep records, specs, data references).
//! - `state`: the in-memory state machine of sweeps, trials, leases and workers.
//! - `wal`: the write-ahead log and snapshots in the store, and recovery from them.
//! - `journal`: the queue of changes waiting for the log, and their watermarks.
//! - `commit`: the committer (group commit, snapshots) and the settler (documents).
//! - `persist`: the per-trial and per-sweep documents, promoting staged artifacts.
//! - `events`: fan-out of sweep events to watching clients.
//! - `coordinator`: the operations, each applied under a lock, then made durable.
//! - `inference`: routing of inference calls to live workers.
//! - `metrics`: the Prometheus metrics.
//! - `sweeps_service`, `work_service`: the gRPC services over `coordinator`.

mod commit;
pub mod config;
mod coordinator;
pub mod error;
mod events;
pub mod grid;
mod inference;
mod journal;
mod metrics;
mod persist;
pub mod records;
mod state;
mod sweeps_service;
pub mod upload;
mod wal;
mod work_service;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use wick_common::store::Store;
use wick_proto::v1::sweeps_server::SweepsServer;
use wick_proto::v1::work_server::WorkServer;
use wick_service::auth::RequireToken;

pub use config::{Args, Config, ConfigError};

use crate::coordinator::Coordinator;
use crate::sweeps_service::SweepsService;
use crate::work_service::WorkService;

/// Largest request the services accept (images sent to Reconstruct and Interpolate).
const MAX_REQUEST: usize = 64 * 1024 * 1024;

/// Serves the `Sweeps`, `Work` and gRPC health services on `listener` until `shutdown`
/// completes: opens the store, loads the state an earlier coordinator left, runs the
/// lease reaper and, with `config.metrics_listen`, the Prometheus endpoint (its address
/// printed on stderr as `coordinator metrics on ADDR`). Watches end and the reaper stops
/// when `shutdown` fires. With `config.token`, every call but health checks (which
/// Kubernetes probes make without credentials) must carry it.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    let store = Store::open(&config.store_url)?;
    let (stop, stopped) = watch::channel(false);
    let (core, committed) = Coordinator::start(config, store, stopped)
        .await
        .context("cannot load the coordinator's state from the store")?;
    let reaper = tokio::spawn(reap(core.clone()));
    let metrics = match config_metrics(&core).await? {
        Some((listener, addr)) => {
            eprintln!("coordinator metrics on {addr}");
            let render_core = core.clone();
            let render: wick_service::metrics::Render = Arc::new(move || {
                let core = render_core.clone();
                Box::pin(async move { core.render_metrics().await })
            });
            let mut stopped = core.shutdown.clone();
            let done = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            Some(tokio::spawn(wick_service::metrics::serve(
                listener, render, done,
            )))
        }
        None => None,
    };

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<SweepsServer<SweepsService>>().await;
    health.set_serving::<WorkServer<WorkService>>().await;
    let auth = RequireToken::new(core.config.token.clone());
    let sweeps = SweepsServer::new(SweepsService::new(core.clone()))
        .max_decoding_message_size(MAX_REQUEST)
        .max_encoding_message_size(MAX_REQUEST);
    let work =
        WorkServer::new(WorkService { core: core.clone() }).max_decoding_message_size(MAX_REQUEST);
    let sweeps = InterceptedService::new(sweeps, auth.clone());
    let work = InterceptedService::new(work, auth);
    let signal = async move {
        shutdown.await;
        tracing::info!("coordinator shutting down");
        // Ends open watches, which would otherwise hold the graceful shutdown open.
        let _ = stop.send(true);
    };
    tracing::info!(addr = ?listener.local_addr().ok(), store = %core.store.url(), "coordinator serving");
    let mut server = Server::builder();
    if let Some(tls) = core.config.tls.server() {
        server = server
            .tls_config(tls)
            .context("cannot serve TLS with --tls-cert and --tls-key")?;
    }
    // Nagle's algorithm off: a reply written in pieces (a watch's events, a response and its
    // trailers) would otherwise wait ~40 ms for the client's delayed ACK.
    server
        .add_service(health_service)
        .add_service(sweeps)
        .add_service(work)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), signal)
        .await
        .context("the gRPC server failed")?;
    reaper.await.context("the lease reaper panicked")?;
    committed.await.context("the committer panicked")?;
    if let Some(metrics) = metrics {
        metrics.await.context("the metrics server panicked")??;
    }
    Ok(())
}

/// The bound metrics listener and its address, when metrics were asked for.
async fn config_metrics(
    core: &Coordinator,
) -> anyhow::Result<Option<(TcpListener, std::net::SocketAddr)>> {
    let Some(addr) = core.config.metrics_listen else {
        return Ok(None);
    };
    let listener = wick_service::metrics::bind(addr).await?;
    let addr = listener
        .local_addr()
        .context("the metrics listener has no address")?;
    Ok(Some((listener, addr)))
}

/// Every heartbeat interval, takes back the leases that expired, until shutdown.
async fn reap(core: Arc<Coordinator>) {
    let mut stopped = core.shutdown.clone();
    let mut tick = tokio::time::interval(core.config.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        if let Err(e) = core.reap().await {
            tracing::warn!(
                "lease reaper: {e}; trying again in {:?}",
                core.config.heartbeat
            );
        }
    }
}
