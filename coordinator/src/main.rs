//! The `coordinator` binary: will expand sweeps into trials and lease them to workers over
//! gRPC. Until the distributed layer lands it only explains how to run a single trial.

use clap::Parser;

/// wick coordinator: hands the trials of a hyperparameter sweep to workers.
///
/// The distributed sweep service is not available in this version; run one trial on this
/// machine with `worker train` (see `worker train --help`).
#[derive(Parser)]
#[command(version)]
struct Args {}

fn main() -> anyhow::Result<()> {
    Args::parse();
    anyhow::bail!(
        "the coordinator service is not available in this version; run a single trial with `worker train --help`"
    )
}
