//! The `client` binary: starts and watches hyperparameter sweeps and asks trained models
//! for forecasts and faces, against a coordinator over gRPC or, without `--coordinator`,
//! against one it runs in-process for the length of the command.
//!
//! # Layout
//!
//! - `cli`: the command line and the sweep grid it describes.
//! - `connect`: the session with the coordinator (remote or embedded) and error messages.
//! - `embedded`: the in-process coordinator and workers of embedded mode.
//! - `upload`: getting a sweep's data into the store (content-addressed, once).
//! - `relay`: sending it through the coordinator when the client has no store.
//! - `bundle`: the face folder as one deterministic tar.
//! - `render`: trials as JSON and as text tables.
//! - `progress`: progress bars (or lines) for a sweep's events.
//! - `commands`: one module per group of subcommands.
//!
//! # Exit status
//!
//! - 0: the command did what was asked; for `sweep` and `watch`, every trial succeeded,
//!   stopped early or was cancelled.
//! - 1: a trial of the watched sweep failed (the report is printed first, `--json` too),
//!   or the command failed (no coordinator, an unknown sweep, a store error, a data file
//!   that does not parse...).
//! - 2: usage: clap's parse errors, and the client's own refusals of its flags, including
//!   a sweep the coordinator refuses as invalid before storing anything.
//! - 130: interrupted (Ctrl-C).

mod bundle;
mod cli;
mod commands;
mod connect;
mod embedded;
mod progress;
mod relay;
mod render;
mod upload;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // Embedded servers log through tracing; warnings only, on stderr, unless RUST_LOG says
    // otherwise, so the output stays readable (and stdout stays pure JSON with --json).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.global.json;
    let output = |out: &commands::Outcome| match json {
        true => {
            let text = serde_json::to_string_pretty(&out.json).unwrap_or_default();
            emit(&format!("{text}\n"))
        }
        false => emit(&out.text),
    };
    let e = match runtime.block_on(commands::run(cli)) {
        Ok(out) => return output(&out),
        Err(e) => e,
    };
    if let Some(note) = e.downcast_ref::<commands::Interrupted>() {
        eprintln!("{note}");
        return ExitCode::from(130);
    }
    if let Some(u) = e.downcast_ref::<commands::Usage>() {
        eprintln!("error: {u}");
        return ExitCode::from(2);
    }
    match e.downcast::<commands::TrialsFailed>() {
        // The report stands (a script reads it) and the status says it holds failures.
        Ok(failed) => {
            let code = output(&failed.outcome);
            eprintln!("error: {failed}");
            match code == ExitCode::SUCCESS {
                true => ExitCode::FAILURE,
                false => code,
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the result to stdout. A reader that closed early (`| head`) has all it wanted:
/// that is not an error (`println!` would panic on it).
fn emit(text: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            ExitCode::FAILURE
        }
    }
}
