//! The `client` binary: will start sweeps and ask for forecasts and samples over
//! gRPC. Until the distributed layer lands it only explains how to run a single trial.

use clap::Parser;

/// wick client: starts sweeps, watches them, asks for forecasts and samples.
///
/// The distributed sweep service is not available in this version; run one trial on this
/// machine with `worker train` (see `worker train --help`).
#[derive(Parser)]
#[command(version)]
struct Args {}

fn main() -> anyhow::Result<()> {
    Args::parse();
    anyhow::bail!(
        "the client service is not available in this version; run a single trial with `worker train --help`"
    )
}
