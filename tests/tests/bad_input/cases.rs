//! The catalogue: every bad input with the answer it must get. Each row names the input,
//! how it is given (a client command, a detached sweep, a raw gRPC call), the exit status,
//! gRPC code or trial state expected, and the fragments of the message that name the
//! problem and what to do about it.
//!
//! - `data`: case tables and face folders.
//! - `spec`: hyperparameters and grids.
//! - `trials`: questions to trained trials; unknown sweeps, trials and artifacts.
//! - `wire`: wrong addresses, and raw gRPC calls a client would never make.

#[path = "data.rs"]
mod data;
#[path = "spec.rs"]
mod spec;
#[path = "trials.rs"]
mod trials;
#[path = "wire.rs"]
mod wire;

use tonic::Code;

use crate::harness::{Act, Case, Ctx, Seen, Want, Writes};

/// Owned arguments.
pub fn s(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// A client command refused with `exit` and a message holding `says`; nothing written.
pub fn cli(name: &'static str, args: Vec<String>, exit: i32, says: &[&str]) -> Case {
    Case {
        name,
        act: Act::Cli(args),
        want: Want::Exit(exit),
        says: s(says),
        logs: vec![],
        writes: Writes::Nothing,
    }
}

/// A covid sweep of one small trial over `csv`, with `extra` flags (which replace the
/// small defaults of --l, --hidden and --epochs they name).
pub fn covid_sweep(csv: &str, extra: &[&str]) -> Vec<String> {
    let mut a = s(&["--covid-csv", csv, "--cell", "rnn"]);
    for (flag, default) in [("--l", "12"), ("--hidden", "8"), ("--epochs", "2")] {
        if !extra.contains(&flag) {
            a.extend(s(&[flag, default]));
        }
    }
    a.extend(s(extra));
    a
}

/// A sweep accepted by the coordinator whose one trial must fail on the worker, once.
pub fn failing_trial(name: &'static str, args: Vec<String>, says: &[&str]) -> Case {
    Case {
        name,
        act: Act::Sweep(args),
        want: Want::Trial("failed"),
        says: s(says),
        logs: vec![],
        writes: Writes::FailedTrial,
    }
}

/// A raw gRPC call answered with `code`.
pub fn grpc(
    name: &'static str,
    code: Code,
    says: &[&str],
    call: impl Fn(&Ctx) -> Seen + 'static,
) -> Case {
    Case {
        name,
        act: Act::Custom(Box::new(call)),
        want: Want::Code(code),
        says: s(says),
        logs: vec![],
        writes: Writes::Nothing,
    }
}

/// The whole catalogue, in the order it runs (the failing-trial cases come before the
/// case that asks a failed trial for a forecast).
pub fn all(ctx: &Ctx) -> Vec<Case> {
    [
        data::data_cases(ctx),
        spec::spec_cases(ctx),
        trials::trial_cases(ctx),
        wire::connection_cases(ctx),
        wire::grpc_cases(ctx),
    ]
    .into_iter()
    .flatten()
    .collect()
}
