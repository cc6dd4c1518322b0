//! The subcommands. Each returns an [`Outcome`] — its JSON document and its text — and
//! `main` prints one of the two, so `--json` output is always exactly one document.
//! Live progress goes to stderr meanwhile.
//!
//! - `sweep`: `sweep` (upload, submit, watch, report).
//! - `watch`: `watch` and the event loop and final report `sweep` shares.
//! - `status`: `list`, `status`, `cancel`, `best`.
//! - `predict`: `predict` (and the world map).
//! - `sample`: `sample`.
//! - `images`: `reconstruct`, `interpolate`.
//! - `artifacts`: `artifacts ls`, `artifacts get`.
//! - `report`: `report` (the HTML page of a sweep).
//! - `compare`: `compare --by`.
//! - `backtest`: `backtest` (forecasts against what happened); `rolling`: its rolling form
//!   (`--from DATE --days N`).
//! - `data`: `data fetch` (the public datasets, downloaded; no coordinator involved).

mod artifacts;
mod backtest;
mod compare;
mod data;
mod images;
mod predict;
mod report;
mod rolling;
mod sample;
mod status;
mod sweep;
mod trials;
mod watch;

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::cli::{ArtifactsCommand, Cli, Command, DataCommand};
use crate::connect::{self, Session};

/// What a command produced.
#[derive(Debug)]
pub struct Outcome {
    /// The `--json` document.
    pub json: Value,
    /// The text for a person (ends with a newline, or is empty).
    pub text: String,
}

/// Ctrl-C ended the command: `main` prints this note (no "error:") and exits with 130.
#[derive(Debug)]
pub struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

/// The command line asks for something that cannot run, found before anything was
/// submitted: `main` prints it as an error and exits with 2, as clap does for flags it
/// cannot parse, so a script can tell a mistake in its call from a failure.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// A usage error with the message of `e`.
pub fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    Usage(e.to_string()).into()
}

/// A watched sweep ended with failed trials: `main` prints the report as usual (the JSON
/// document too), then says how many failed and exits with 1.
#[derive(Debug)]
pub struct TrialsFailed {
    /// The report of the sweep.
    pub outcome: Outcome,
    /// Trials that ended failed.
    pub failed: usize,
    /// Trials of the sweep.
    pub total: usize,
    /// The sweep, for the message.
    pub sweep_id: String,
}

impl std::fmt::Display for TrialsFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} trials of sweep {} failed; `client status {}` shows why, and submitting the sweep again runs them again",
            self.failed, self.total, self.sweep_id, self.sweep_id
        )
    }
}

impl std::error::Error for TrialsFailed {}

/// True for commands that need workers: the ones that train or run a model.
fn needs_workers(c: &Command) -> bool {
    matches!(
        c,
        Command::Sweep(_)
            | Command::Watch { .. }
            | Command::Predict(_)
            | Command::Sample(_)
            | Command::Reconstruct(_)
            | Command::Interpolate(_)
    )
}

/// Runs the command of `cli` against its coordinator, starting and stopping the embedded
/// one when there is no `--coordinator`.
pub async fn run(cli: Cli) -> Result<Outcome> {
    let g = &cli.global;
    // Fetching data needs no coordinator: starting an embedded one would only cost time.
    if let Command::Data(DataCommand::Fetch(a)) = &cli.command {
        return data::fetch(a, g.json).await;
    }
    if let Command::Sweep(s) = &cli.command
        && s.detach
        && g.coordinator.is_none()
    {
        return Err(usage(
            "--detach needs a coordinator that outlives this command: without --coordinator the coordinator and workers run inside this client and stop when it exits. Start `coordinator` and `worker serve` and pass --coordinator URL, or drop --detach",
        ));
    }
    if g.coordinator.is_none() && g.workers == 0 && needs_workers(&cli.command) {
        return Err(usage(
            "--workers must be at least 1 in embedded mode: the in-process workers train the trials and answer predict and sample",
        ));
    }
    // Mistakes in the sweep's flags are found before any server starts.
    if let Command::Sweep(s) = &cli.command {
        s.spec(Default::default()).map_err(usage)?;
    }
    let workers = if needs_workers(&cli.command) {
        g.workers
    } else {
        0
    };
    let session = Session::open(g, workers).await?;
    let result = dispatch(&session, &cli).await;
    let (target, embedded) = (session.target.clone(), session.is_embedded());
    // The command's answer stands even if a server stops badly afterwards; say so.
    if let Err(e) = close(session).await {
        eprintln!("warning: {e:#}");
    }
    result.map_err(|e| connect::explain(e, &target, embedded))
}

/// Stops the session; a second Ctrl-C while embedded servers shut down exits at once.
async fn close(session: Session) -> Result<()> {
    tokio::select! {
        r = session.close() => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted while stopping the embedded servers");
            std::process::exit(130)
        }
    }
}

/// Runs the subcommand against an open session.
async fn dispatch(s: &Session, cli: &Cli) -> Result<Outcome> {
    let json = cli.global.json;
    match &cli.command {
        Command::Sweep(a) => sweep::run(s, a, json).await,
        Command::Watch { sweep } => watch::run(s, sweep, json).await,
        Command::List => status::list(s).await,
        Command::Status { sweep } => status::status(s, sweep).await,
        Command::Cancel { sweep } => status::cancel(s, sweep).await,
        Command::Best(a) => status::best(s, a).await,
        Command::Predict(a) => predict::run(s, a).await,
        Command::Sample(a) => sample::run(s, a).await,
        Command::Reconstruct(a) => images::reconstruct(s, a).await,
        Command::Interpolate(a) => images::interpolate(s, a).await,
        Command::Artifacts(ArtifactsCommand::Ls { trial }) => artifacts::ls(s, trial).await,
        Command::Artifacts(ArtifactsCommand::Get { trial, name, out }) => {
            artifacts::get(s, trial, name, out.as_deref()).await
        }
        Command::Report(a) => report::run(s, a).await,
        Command::Compare(a) => compare::run(s, a).await,
        Command::Backtest(a) => backtest::run(s, a).await,
        Command::Data(_) => unreachable!("`run` answers data commands without a session"),
    }
}

/// Writes a file the user asked for, saying which one could not be written.
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads an input file the user named.
fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}
