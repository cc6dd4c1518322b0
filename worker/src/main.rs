//! The `worker` binary: `worker train` runs one trial of either coursework task on this
//! machine and writes its artifacts.

use clap::{Parser, Subcommand};
use wick_worker::train::{self, TrainArgs};

/// wick worker: trains the COVID-19 sequence models and the face VAE.
///
/// `worker train` runs one trial end to end on this machine, with no server: it loads the
/// data, trains (checkpointing after every epoch with --ckpt-dir, and resuming from the
/// newest checkpoint), writes pictures, forecasts and the model into --out, and prints a
/// summary (one JSON object with --json).
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
}

fn main() {
    let cli = Cli::parse();
    let Command::Train(args) = &cli.command;
    let threads = args.threads();
    if threads > 0 {
        // candle sizes its matmul parallelism and rayon its pool from this variable; it is
        // set before either starts, while the process is still single-threaded.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    }
    let result = match cli.command {
        Command::Train(args) => train::run(&args).map(|summary| {
            if args.json {
                println!("{summary}");
            } else {
                train::print_human(&summary);
            }
        }),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
