//! Hyperparameters and grids the client or the coordinator must refuse before anything
//! is stored: impossible values, empty and oversized grids, bad ranges and policies. Each
//! is a usage error: exit status 2, as for the flags clap itself cannot parse.

use super::{cli, covid_sweep, s};
use crate::harness::{Case, Ctx};

/// Hyperparameters and grids the client or the coordinator must refuse.
pub fn spec_cases(ctx: &Ctx) -> Vec<Case> {
    let csv = ctx.data_csv();
    let faces = ctx.faces.clone();
    let covid = |extra: &[&str]| [s(&["sweep"]), covid_sweep(&csv, extra)].concat();
    let many = |n: u32| (1..=n).map(|v| v.to_string()).collect::<Vec<_>>().join(",");
    vec![
        cli(
            "negative KL",
            s(&[
                "sweep", "--faces", &faces, "--kl=-1", "--epochs", "1", "--detach",
            ]),
            2,
            &["KL weight must be a finite number >= 0, got -1"],
        ),
        cli(
            "NaN KL",
            s(&["sweep", "--faces", &faces, "--kl", "NaN", "--detach"]),
            2,
            &["'NaN' is not a number", "--kl"],
        ),
        cli(
            "zero epochs",
            covid(&["--epochs", "0", "--detach"]),
            2,
            &["epochs must be between 1 and 100000, got 0"],
        ),
        cli(
            "zero trials (--random 0)",
            covid(&["--random", "0", "--detach"]),
            2,
            &["--random 0", "at least 1", "leave --random out"],
        ),
        cli(
            "grid of 1,000,000 trials",
            [
                s(&[
                    "sweep",
                    "--covid-csv",
                    &csv,
                    "--cell",
                    "rnn",
                    "--epochs",
                    "2",
                ]),
                s(&["--l", &many(100), "--hidden", &many(10000), "--detach"]),
            ]
            .concat(),
            2,
            &[
                "1000000 trials",
                "limit of 100000",
                "split it into several sweeps",
            ],
        ),
        cli(
            "random draws above the cap",
            covid(&["--random", "200000", "--detach"]),
            2,
            &["--random 200000 draws 200000 trials", "limit of 100000"],
        ),
        cli(
            "random: reversed log range",
            covid(&["--random", "4", "--lr", "1e-2..1e-4:log", "--detach"]),
            2,
            &["--lr 0.01..0.0001 is not a range", "low end"],
        ),
        cli(
            "random: log range from 0",
            covid(&["--random", "4", "--lr", "0..1:log", "--detach"]),
            2,
            &["--lr 0..1:log needs both ends above 0"],
        ),
        cli(
            "range without --random",
            covid(&["--lr", "1e-4..1e-2", "--detach"]),
            2,
            &["need random search", "add --random N"],
        ),
        cli(
            "--early-stop bogus",
            covid(&["--early-stop", "bogus", "--detach"]),
            2,
            &["'bogus'", "--early-stop", "none, median, asha"],
        ),
        cli(
            "negative learning rate",
            covid(&["--lr=-1", "--detach"]),
            2,
            &["learning rate must be a positive number below 10, got -1"],
        ),
        cli(
            "--hidden 0",
            covid(&["--hidden", "0", "--detach"]),
            2,
            &["--hidden takes whole numbers of at least 1, not 0"],
        ),
        cli(
            "image size 1000",
            s(&[
                "sweep", "--faces", &faces, "--kl", "1", "--size", "1000", "--detach",
            ]),
            2,
            &["image size must be between 4 and 256, got 1000"],
        ),
        cli(
            "asha with --eta 1",
            covid(&["--early-stop", "asha", "--eta", "1", "--detach"]),
            2,
            &["--eta must be at least 2"],
        ),
        cli(
            "vae knob on a covid sweep",
            covid(&["--task", "covid", "--kl", "1", "--detach"]),
            2,
            &["--kl applies to vae trials only", "--task vae|both"],
        ),
    ]
}
