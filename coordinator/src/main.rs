//! The `coordinator` binary: parses the flags, sets up logging, binds the listener and
//! runs `wick_coordinator::serve` until Ctrl-C or SIGTERM.

use anyhow::Context;
use clap::Parser;
use wick_coordinator::{Args, Config, serve};

/// Completes on Ctrl-C or (on Unix) SIGTERM, the signal Kubernetes stops pods with.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM ({e}); stop with Ctrl-C");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    wick_service::init_logs(args.server.json_logs);
    let listen = args.listen;
    let config = Config::try_from(args)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!("cannot listen on {listen}; pick another address with --listen")
        })?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    // Tests and scripts read the port from this line when started with --listen 127.0.0.1:0.
    eprintln!("coordinator listening on {addr}");
    serve(listener, config, shutdown_signal()).await
}
