//! `delay_proxy`: a TCP proxy that adds a one-way delay in each direction, to put a real
//! round-trip time between the coordinator and a store on loopback
//! (`bench/coordinator.sh`). The relaying is [`wick_bench::delay`]'s; this file parses
//! the command line and re-reads the delay on SIGHUP. See `delay_proxy --help`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use wick_bench::delay::{self, Delay};

/// TCP proxy that delays every byte by --delay-ms in each direction (a round trip through
/// it takes twice that longer), without cutting throughput or reordering. Runs until
/// killed.
#[derive(Debug, Parser)]
#[command(
    name = "delay_proxy",
    version,
    after_long_help = "EXAMPLES: a store 25 ms away (50 ms round trip):\n  \
delay_proxy --listen 127.0.0.1:0 --upstream 127.0.0.1:9000 --delay-ms 25\n\n\
A delay changed while it runs (fill a store at full speed, then measure):\n  \
echo 0 > /tmp/delay; delay_proxy --upstream 127.0.0.1:9000 --delay-file /tmp/delay &\n  \
echo 25 > /tmp/delay; kill -HUP $!\n\n\
It prints `delay proxy on ADDR` on stderr once it accepts connections, and\n\
`delay proxy: delay now D ms` after each change."
)]
struct Args {
    /// Address to accept connections on (port 0 picks a free port; see the stderr line).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Address every accepted connection is relayed to, HOST:PORT.
    #[arg(long)]
    upstream: String,
    /// One-way delay in milliseconds, added to each direction (0 passes bytes at once).
    #[arg(long, default_value_t = 0, conflicts_with = "delay_file")]
    delay_ms: u64,
    /// File holding the one-way delay in milliseconds, read at start and again on every
    /// SIGHUP; a change applies to open connections too, so a client's pooled
    /// connections keep their place.
    #[arg(long)]
    delay_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let delay = Delay::new(Duration::from_millis(args.delay_ms));
    if let Some(file) = &args.delay_file {
        delay.set(read_delay(file)?);
        let mut hangups = signal(SignalKind::hangup()).context("cannot watch for SIGHUP")?;
        let (file, delay) = (file.clone(), delay.clone());
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                // A bad file keeps the old delay: the benchmark's log says why.
                match read_delay(&file) {
                    Ok(d) => {
                        delay.set(d);
                        eprintln!("delay proxy: delay now {} ms", d.as_millis());
                    }
                    Err(e) => eprintln!("delay proxy: {e:#}; the delay stays as it was"),
                }
            }
        });
    }
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!("delay proxy on {}", listener.local_addr()?);
    delay::serve(listener, args.upstream, delay)
        .await
        .context("accepting a connection failed")
}

/// The delay written in `file`, whole milliseconds.
fn read_delay(file: &Path) -> Result<Duration> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the delay from {}", file.display()))?;
    let ms: u64 = text.trim().parse().with_context(|| {
        format!(
            "{} should hold a delay in whole milliseconds, not {text:?}",
            file.display()
        )
    })?;
    Ok(Duration::from_millis(ms))
}
