//! Embedded mode: the real coordinator (`wick_coordinator::serve`) and N real workers
//! (`wick_worker::serve::run`) inside the client's own runtime, on loopback ports, over a
//! `file://` store in `--home`. The client then talks to them over gRPC like a remote
//! client. Because the coordinator keeps its state in that store, a later command with the
//! same `--home` reloads every sweep and trial the earlier ones left.
//!
//! Stopping is ordered: workers first (each hands its lease back while the coordinator is
//! still there to record it), then the coordinator. A server that ends on its own before
//! that is reported through [`Embedded::failure`], so a command never waits on a stream
//! nobody will feed.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use wick_common::store::Store;

/// The in-process servers of one command.
pub struct Embedded {
    /// URL of the coordinator's gRPC endpoint (`http://127.0.0.1:<port>`).
    url: String,
    /// The store both use, which the client writes datasets into.
    store: Store,
    /// Fires the workers' shutdown.
    stop_workers: watch::Sender<bool>,
    /// Fires the coordinator's shutdown (after the workers have stopped).
    stop_coordinator: watch::Sender<bool>,
    /// The workers' tasks.
    workers: Vec<JoinHandle<()>>,
    /// The coordinator's task.
    coordinator: JoinHandle<()>,
    /// The first unexpected end of a server, as a message.
    failed: watch::Sender<Option<String>>,
}

/// A future that completes when `rx` turns true (or its sender is gone).
async fn fired(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Runs a server as a task; if it ends with an error or a panic, or at all before it was
/// told to stop, the first such end is recorded in `failed`.
fn supervise(
    what: String,
    server: impl Future<Output = Result<()>> + Send + 'static,
    stopping: watch::Receiver<bool>,
    failed: watch::Sender<Option<String>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // An inner task, so a panic arrives here as a JoinError instead of vanishing.
        let message = match tokio::spawn(server).await {
            Err(e) => Some(format!("{what} panicked: {e}")),
            Ok(Err(e)) => Some(format!("{what} failed: {e:#}")),
            Ok(Ok(())) if !*stopping.borrow() => Some(format!("{what} stopped on its own")),
            Ok(Ok(())) => None,
        };
        if let Some(m) = message {
            failed.send_if_modified(|slot| slot.is_none() && slot.replace(m).is_none());
        }
    })
}

impl Embedded {
    /// Starts a coordinator over `<home>/store` and `workers` workers caching data in
    /// `<home>/cache`, training on `device`.
    pub async fn start(home: &Path, workers: u32, device: &str) -> Result<Embedded> {
        let home = std::path::absolute(home)
            .with_context(|| format!("cannot resolve --home {}", home.display()))?;
        let store_url = Store::file_url(&home.join("store"))?;
        let store = Store::open(&store_url)?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot open a loopback port for the embedded coordinator")?;
        let url = format!("http://{}", listener.local_addr()?);
        let (failed, _) = watch::channel(None);

        let (stop_coordinator, stopping) = watch::channel(false);
        let config = wick_coordinator::Config {
            store_url: store_url.clone(),
            ..wick_coordinator::Config::default()
        };
        let coordinator = supervise(
            "the embedded coordinator".into(),
            wick_coordinator::serve(listener, config, fired(stopping.clone())),
            stopping,
            failed.clone(),
        );

        let (stop_workers, stopping) = watch::channel(false);
        let cache = home.join("cache");
        let workers = (1..=workers)
            .map(|i| {
                let name = format!("embedded-{i}");
                let mut config = wick_worker::serve::ServeConfig::new(&url, &store_url);
                config.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
                config.name = name.clone();
                config.slots = 1;
                config.cache = cache.clone();
                config.device = device.to_string();
                supervise(
                    format!("embedded worker {name}"),
                    wick_worker::serve::run(config, fired(stopping.clone())),
                    stopping.clone(),
                    failed.clone(),
                )
            })
            .collect();
        Ok(Embedded {
            url,
            store,
            stop_workers,
            stop_coordinator,
            workers,
            coordinator,
            failed,
        })
    }

    /// The coordinator's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The store the servers use.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Completes with the reason once a server has ended unexpectedly.
    pub fn failure(&self) -> impl Future<Output = anyhow::Error> + Send + use<> {
        let mut rx = self.failed.subscribe();
        async move {
            let message = rx
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|m| m.clone());
            match message {
                Some(m) => anyhow!("{m}"),
                None => std::future::pending().await,
            }
        }
    }

    /// Stops the workers, then the coordinator, and waits for both; reports the first
    /// unexpected end of either, if there was one.
    pub async fn stop(self) -> Result<()> {
        self.stop_workers.send_replace(true);
        // The supervisors catch their server's panics, so joining them cannot fail.
        for w in self.workers {
            let _ = w.await;
        }
        self.stop_coordinator.send_replace(true);
        let _ = self.coordinator.await;
        let failed = self.failed.borrow().clone();
        match failed {
            Some(m) => Err(anyhow!("{m}")),
            None => Ok(()),
        }
    }
}
