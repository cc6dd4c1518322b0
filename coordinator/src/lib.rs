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
//! - `persist`: reading and writing those documents, promoting staged artifacts.
//! - `events`: fan-out of sweep events to watching clients.
//! - `coordinator`: the operations, each planned under a lock, persisted, then applied.
//! - `inference`: routing of inference calls to live workers.
//! - `sweeps_service`, `work_service`: the gRPC services over `coordinator`.

pub mod config;
mod coordinator;
pub mod error;
mod events;
pub mod grid;
mod inference;
mod persist;
pub mod records;
mod state;
mod sweeps_service;
mod work_service;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use wick_common::store::Store;
use wick_proto::v1::sweeps_server::SweepsServer;
use wick_proto::v1::work_server::WorkServer;

pub use config::{Args, Config, ConfigError};

use crate::coordinator::Coordinator;
use crate::sweeps_service::SweepsService;
use crate::work_service::WorkService;

/// Largest request the services accept (images sent to Reconstruct and Interpolate).
const MAX_REQUEST: usize = 64 * 1024 * 1024;

/// Serves the `Sweeps`, `Work` and gRPC health services on `listener` until `shutdown`
/// completes: opens the store, loads the state an earlier coordinator left, and runs
/// the lease reaper. Watches end and the reaper stops when `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    let store = Store::open(&config.store_url)?;
    let (stop, stopped) = watch::channel(false);
    let core = Arc::new(
        Coordinator::open(config, store, stopped)
            .await
            .context("cannot load the coordinator's state from the store")?,
    );
    let reaper = tokio::spawn(reap(core.clone()));

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<SweepsServer<SweepsService>>().await;
    health.set_serving::<WorkServer<WorkService>>().await;
    let sweeps = SweepsServer::new(SweepsService { core: core.clone() })
        .max_decoding_message_size(MAX_REQUEST)
        .max_encoding_message_size(MAX_REQUEST);
    let work =
        WorkServer::new(WorkService { core: core.clone() }).max_decoding_message_size(MAX_REQUEST);
    let signal = async move {
        shutdown.await;
        tracing::info!("coordinator shutting down");
        // Ends open watches, which would otherwise hold the graceful shutdown open.
        let _ = stop.send(true);
    };
    tracing::info!(addr = ?listener.local_addr().ok(), store = %core.store.url(), "coordinator serving");
    Server::builder()
        .add_service(health_service)
        .add_service(sweeps)
        .add_service(work)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), signal)
        .await
        .context("the gRPC server failed")?;
    reaper.await.context("the lease reaper panicked")?;
    Ok(())
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
