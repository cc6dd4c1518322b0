//! The `worker` binary: `worker train` runs one trial of either coursework task on this
//! machine and writes its artifacts; `worker serve` joins a coordinator, runs the trials
//! it leases and serves inference until SIGTERM or ctrl-c.

use clap::{Parser, Subcommand};
use wick_worker::serve::{self, ServeArgs};
use wick_worker::train::{self, TrainArgs};

/// wick worker: trains the COVID-19 sequence models and the face VAE.
///
/// `worker train` runs one trial end to end on this machine, with no server: it loads the
/// data, trains (checkpointing after every epoch with --ckpt-dir, and resuming from the
/// newest checkpoint), writes pictures, forecasts and the model into --out, and prints a
/// summary (one JSON object with --json).
///
/// `worker serve` pulls trials from a coordinator, keeps their checkpoints and artifacts in
/// the shared store, and answers inference calls; SIGTERM hands its trials back.
#[derive(Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train one trial locally and write its artifacts.
    Train(Box<TrainArgs>),
    /// Run trials leased from a coordinator and serve inference.
    Serve(Box<ServeArgs>),
}

/// Sets the tensor-math thread count; 0 leaves the default (all cores).
fn set_threads(threads: usize) {
    if threads > 0 {
        // candle sizes its matmul parallelism and rayon its pool from this variable; it is
        // set before either starts, while the process is still single-threaded.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    }
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => {
            set_threads(args.threads());
            train::run(&args).map(|summary| {
                if args.json {
                    println!("{summary}");
                } else {
                    train::print_human(&summary);
                }
            })
        }
        Command::Serve(args) => {
            set_threads(args.threads.unwrap_or(0));
            run_serve(&args)
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run_serve(args: &ServeArgs) -> anyhow::Result<()> {
    wick_service::init_logs(args.server.json_logs);
    let config = args.config()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(serve::run(config, stop_signal()))
}

/// Completes on the first SIGTERM or ctrl-c; a second one exits at once, for a worker
/// stuck in a long epoch.
async fn stop_signal() {
    wait_signal().await;
    tokio::spawn(async {
        wait_signal().await;
        eprintln!("second stop signal: exiting without handing trials back");
        std::process::exit(130);
    });
}

async fn wait_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
