//! The flags of `sweep`: the grid (every list takes commas, `--l 12,40`, or repeats,
//! `--l 12 --l 40`; a value given twice counts once, so a grid never holds the same trial
//! twice), which tasks it runs, and where its data is; and the protocol's `SweepSpec` they
//! describe.
//!
//! Every knob belongs to one task (`--hidden` to covid, `--vae-hidden` to the VAE), except
//! `--lr`, `--seed`, `--val` and a plain `--epochs N`, which apply to every task the sweep
//! runs: a mixed sweep never sizes one task with a number meant for the other, and a knob
//! of a task the sweep does not run is an error rather than silently ignored.

use anyhow::{Result, bail};
use chrono::NaiveDate;
use clap::Args;
use wick_common::trial::Cell;
use wick_proto::v1::{DataRef, SweepSpec};

use super::knob::{self, Epochs, Knob};
use super::{Task, TaskChoice};

/// Flags of `sweep`.
#[derive(Debug, Args)]
#[command(after_long_help = "EXAMPLES:
  # covid trials for L = 12 and 40, VAE trials for KL weight 1 and 100
  client sweep --data ../shared/data --l 12,40 --kl 1,100
  # every cell at two window lengths, covid only
  client sweep --data ../shared/data --cell rnn,lstm,gru --l 20,40 --epochs 200
  # the KL comparison of the coursework at two image sizes and two seeds
  client sweep --data ../shared/data --kl 0,1,100 --size 28,64 --seed 0,1 --name kl-study
  # both tasks, each sized and trained on its own: a 16-unit LSTM for 200 epochs, a
  # 128-unit VAE with 20 latent dimensions for 30
  client sweep --data ../shared/data --l 12 --hidden 16 --kl 1 --vae-hidden 128 --latent 20 \
    --epochs covid=200,vae=30
  # a table that starts later than the coursework's, at two thresholds of set C
  client sweep --covid-csv cases.csv --start-date 2020-04-01 --threshold 0.6,0.8 --l 12
  # workers download the CSV themselves
  client sweep --covid-csv https://example.org/time_series_covid19_confirmed_global.csv
  # a cluster: submit and return; follow later with `client watch ID`
  client --coordinator http://HOST:50051 sweep --data ./data --detach
  # the same, writing the data into the store directly instead of through the coordinator
  client --coordinator http://HOST:50051 --store s3://bucket/wick sweep --data ./data --detach

Every list takes commas or repeats. Submitting the same sweep again reuses finished
trials and runs only what is missing or failed.

Before anything is stored, the coordinator checks every trial as its worker would: the
values themselves, and L and --start-date against the days of the uploaded table; a sweep
that cannot run is refused with the worker's message and exit status 2.

EXIT STATUS: 0 every trial succeeded, stopped early or was cancelled; 1 a trial failed
(the report is printed first, --json too) or the command failed; 2 the flags or the
sweep are invalid and nothing was submitted; 130 interrupted.")]
pub struct SweepArgs {
    /// Tasks to run [default: the tasks whose own knobs are given (those marked [covid]
    /// or [vae] below, and --epochs TASK=N); both when none is].
    #[arg(long, value_enum)]
    pub task: Option<TaskChoice>,
    /// [covid] Window lengths L (days of input) [default: 40].
    #[arg(long, value_delimiter = ',', value_name = "L,...", value_parser = knob::parse)]
    pub l: Vec<Knob>,
    /// [covid] Recurrent cells: rnn, lstm, gru [default: lstm].
    #[arg(long, value_delimiter = ',', value_name = "CELL,...")]
    pub cell: Vec<Cell>,
    /// [covid] Hidden units of the recurrent cell [default: rnn 32, lstm/gru 64]. The
    /// VAE's are --vae-hidden.
    #[arg(long, value_delimiter = ',', value_name = "N,...", value_parser = knob::parse)]
    pub hidden: Vec<Knob>,
    /// [covid] Correlation thresholds of set C: a country trains the model only if its
    /// daily cases correlate above this with another country's [default: 0.7].
    #[arg(long, value_delimiter = ',', value_name = "X,...")]
    pub threshold: Vec<f64>,
    /// [covid] First days of the windows, YYYY-MM-DD; the table needs L + 1 days of counts
    /// from each [default: 2020-03-01].
    #[arg(long, value_delimiter = ',', value_name = "DATE,...", value_parser = knob::parse_date)]
    pub start_date: Vec<NaiveDate>,
    /// [vae] KL weights (0, 1 and 100 in the coursework) [default: 1].
    #[arg(long, value_delimiter = ',', value_name = "X,...", value_parser = knob::parse)]
    pub kl: Vec<Knob>,
    /// [vae] Image sizes S (images are resized to S x S) [default: 28].
    #[arg(long, value_delimiter = ',', value_name = "S,...")]
    pub size: Vec<u32>,
    /// [vae] Hidden units of the encoder and decoder [default: 400]. The covid cell's are
    /// --hidden.
    #[arg(long, value_delimiter = ',', value_name = "N,...", value_parser = knob::parse)]
    pub vae_hidden: Vec<Knob>,
    /// [vae] Latent dimensions [default: 50].
    #[arg(long, value_delimiter = ',', value_name = "N,...")]
    pub latent: Vec<u32>,
    /// Training epochs: N for every task the sweep runs, covid=N or vae=N for one task
    /// (which then ignores the plain N), e.g. --epochs 2 or --epochs covid=200,covid=500,vae=30
    /// [default: covid 500, vae 30].
    #[arg(long, value_delimiter = ',', value_name = "[TASK=]N,...", value_parser = knob::parse_epochs)]
    pub epochs: Vec<Epochs>,
    /// Adam learning rates [default: 0.001].
    #[arg(long, value_delimiter = ',', value_name = "X,...", value_parser = knob::parse)]
    pub lr: Vec<Knob>,
    /// Seeds of split, weights, shuffles and noise [default: 0].
    #[arg(long, value_delimiter = ',', value_name = "N,...")]
    pub seed: Vec<u64>,
    /// [covid] 70/30 split of the windows: random (the coursework's) or time (the last
    /// days of every country held out) [default: random].
    #[arg(long, value_parser = ["random", "time"])]
    pub split: Option<String>,
    /// [vae] Train on the first N images only (0 = all) [default: 0].
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Fraction of each trial's training data held out for validation: it picks the epoch
    /// whose weights are served (best validation accuracy, or lowest validation -ELBO) and
    /// calibrates the covid forecasts; the test set stays untouched for the final score.
    /// 0 trains on all of it and serves the last epoch [default: 0.15].
    #[arg(long, value_name = "FRACTION")]
    pub val: Option<f64>,
    /// Label shown by `client list`.
    #[arg(long)]
    pub name: Option<String>,
    /// Random search: draw N configurations per task instead of the grid. Lists become
    /// choices, and --hidden, --vae-hidden, --l, --lr and --kl also take a range LO..HI
    /// (uniform) or LO..HI:log (log-uniform), e.g. --hidden 16..128 --lr 1e-4..1e-2:log.
    #[arg(long, value_name = "N", help_heading = "Search")]
    pub random: Option<u32>,
    /// Seed of the random draws: the same seed draws the same trials.
    #[arg(long, default_value_t = 0, value_name = "N", help_heading = "Search")]
    pub search_seed: u64,
    /// Early stopping: none; median (stop a trial below the median of the others at the
    /// same epoch); asha (successive halving: at epochs r, r*eta, r*eta^2 keep the top
    /// 1/eta). Stopped trials end stopped_early, keeping their checkpoints.
    #[arg(long, value_parser = ["none", "median", "asha"], help_heading = "Search")]
    pub early_stop: Option<String>,
    /// [asha] First rung r, in epochs; [median] epochs before any stop [default: 1].
    #[arg(long, value_name = "EPOCHS", help_heading = "Search")]
    pub min_epochs: Option<u32>,
    /// [asha] Reduction factor eta [default: 3].
    #[arg(long, help_heading = "Search")]
    pub eta: Option<u32>,
    /// Most trials of this sweep running at once [default: no limit].
    #[arg(long, value_name = "N", help_heading = "Search")]
    pub max_parallel: Option<u32>,
    /// Where the data is.
    #[command(flatten)]
    pub data: DataArgs,
    /// Print the sweep id and return at once instead of watching (needs --coordinator:
    /// embedded servers stop when this process exits).
    #[arg(long)]
    pub detach: bool,
}

/// Where a sweep's data is, and how it gets into the store.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Data folder holding covid/covid_19.csv and anime-faces/; what the sweep needs is
    /// uploaded once (content-addressed, skipped when already there; through the
    /// coordinator, resumable, or into --store directly). Or a
    /// location in the store holding covid.csv and faces.tar: store:PREFIX, or a URL
    /// under --store.
    #[arg(long, env = "WICK_DATA", value_name = "DIR|store:PREFIX")]
    pub data: Option<String>,
    /// COVID-19 cumulative-cases CSV instead of DIR/covid/covid_19.csv: a local file
    /// (uploaded), an http(s) URL (each worker downloads it once), or store:KEY.
    #[arg(long, value_name = "FILE|URL|store:KEY")]
    pub covid_csv: Option<String>,
    /// Folder of PNG/JPEG faces instead of DIR/anime-faces (uploaded as one tar), or
    /// store:KEY of such a tar.
    #[arg(long, value_name = "DIR|store:KEY")]
    pub faces: Option<String>,
}

/// `values` without repeats, first occurrence kept (`eq` decides what a repeat is).
fn dedup<T: Clone>(values: &[T], eq: impl Fn(&T, &T) -> bool) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(values.len());
    for v in values {
        if !out.iter().any(|o| eq(o, v)) {
            out.push(v.clone());
        }
    }
    out
}

/// `"--a"`, `"--a and --b"` or `"--a, --b and --c"`, with the verb that agrees.
fn names(flags: &[&str]) -> (String, &'static str, &'static str) {
    let text = match flags {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    };
    match flags.len() {
        1 => (text, "applies", "it"),
        _ => (text, "apply", "them"),
    }
}

impl SweepArgs {
    /// The covid knobs given, by flag.
    fn covid_knobs(&self) -> Vec<&'static str> {
        let epochs = self.epochs.iter().any(|e| matches!(e, Epochs::Covid(_)));
        [
            ("--l", !self.l.is_empty()),
            ("--cell", !self.cell.is_empty()),
            ("--split", self.split.is_some()),
            ("--hidden", !self.hidden.is_empty()),
            ("--threshold", !self.threshold.is_empty()),
            ("--start-date", !self.start_date.is_empty()),
            ("--epochs covid=N", epochs),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }

    /// The vae knobs given, by flag.
    fn vae_knobs(&self) -> Vec<&'static str> {
        let epochs = self.epochs.iter().any(|e| matches!(e, Epochs::Vae(_)));
        [
            ("--kl", !self.kl.is_empty()),
            ("--size", !self.size.is_empty()),
            ("--limit", self.limit.is_some()),
            ("--vae-hidden", !self.vae_hidden.is_empty()),
            ("--latent", !self.latent.is_empty()),
            ("--epochs vae=N", epochs),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }

    /// The tasks this sweep runs (see `--task`); a task-specific knob given for a task
    /// that is not run is an error naming it rather than silently ignored.
    pub fn tasks(&self) -> Result<Vec<Task>> {
        let (covid_knobs, vae_knobs) = (self.covid_knobs(), self.vae_knobs());
        let (covid, vae) = (!covid_knobs.is_empty(), !vae_knobs.is_empty());
        let tasks = match self.task {
            Some(TaskChoice::Covid) => vec![Task::Covid],
            Some(TaskChoice::Vae) => vec![Task::Vae],
            Some(TaskChoice::Both) => vec![Task::Covid, Task::Vae],
            None if covid && !vae => vec![Task::Covid],
            None if vae && !covid => vec![Task::Vae],
            None => vec![Task::Covid, Task::Vae],
        };
        if !tasks.contains(&Task::Covid) && covid {
            let (flags, verb, pronoun) = names(&covid_knobs);
            let hint = match covid_knobs.contains(&"--hidden") {
                true => " (the VAE's hidden units are --vae-hidden)",
                false => "",
            };
            bail!(
                "{flags} {verb} to covid trials only; drop {pronoun} or use --task covid|both{hint}"
            );
        }
        if !tasks.contains(&Task::Vae) && vae {
            let (flags, verb, pronoun) = names(&vae_knobs);
            let hint = match vae_knobs.contains(&"--vae-hidden") {
                true => " (the covid cell's hidden units are --hidden)",
                false => "",
            };
            bail!("{flags} {verb} to vae trials only; drop {pronoun} or use --task vae|both{hint}");
        }
        Ok(tasks)
    }

    /// The protocol's spec of this grid, with `data` saying where the data is.
    pub fn spec(&self, data: DataRef) -> Result<SweepSpec> {
        let tasks = self.tasks()?;
        // The protocol reads random = 0 as "run the grid", so an explicit 0 would quietly
        // run something other than what was asked for.
        if self.random == Some(0) {
            bail!(
                "--random 0 draws no trial; give --random N with N of at least 1 (configurations per task), or leave --random out to run the grid"
            );
        }
        let (l, l_range) = knob::split("l", &self.l, true)?;
        let (hidden, hidden_range) = knob::split("hidden", &self.hidden, true)?;
        let (vae_hidden, vae_hidden_range) = knob::split("vae-hidden", &self.vae_hidden, true)?;
        let (kl, kl_range) = knob::split("kl", &self.kl, false)?;
        let (lr, lr_range) = knob::split("lr", &self.lr, false)?;
        let mut ranges: Vec<_> = [l_range, hidden_range, vae_hidden_range, kl_range, lr_range]
            .into_iter()
            .flatten()
            .collect();
        if !ranges.is_empty() && self.random.is_none() {
            bail!(
                "ranges such as --{} {}..{} need random search: add --random N",
                ranges[0].name,
                ranges[0].lo,
                ranges[0].hi
            );
        }
        // The protocol names each task's hidden range apart; its "hidden" sizes both.
        for r in &mut ranges {
            match r.name.as_str() {
                "hidden" => r.name = "covid_hidden".into(),
                "vae-hidden" => r.name = "vae_hidden".into(),
                _ => {}
            }
        }
        let whole = |v: Vec<f64>| v.into_iter().map(|x| x as u32).collect::<Vec<_>>();
        let epochs = |pick: fn(&Epochs) -> Option<u32>| {
            let picked: Vec<u32> = self.epochs.iter().filter_map(pick).collect();
            dedup(&picked, PartialEq::eq)
        };
        Ok(SweepSpec {
            tasks: tasks.iter().map(|t| t.as_str().to_string()).collect(),
            l: whole(l),
            cell: dedup(&self.cell, PartialEq::eq)
                .iter()
                .map(|c| c.as_str().to_string())
                .collect(),
            covid_hidden: whole(hidden),
            vae_hidden: whole(vae_hidden),
            latent: dedup(&self.latent, PartialEq::eq),
            kl,
            size: dedup(&self.size, PartialEq::eq),
            epochs: epochs(|e| match e {
                Epochs::All(n) => Some(*n),
                _ => None,
            }),
            covid_epochs: epochs(|e| match e {
                Epochs::Covid(n) => Some(*n),
                _ => None,
            }),
            vae_epochs: epochs(|e| match e {
                Epochs::Vae(n) => Some(*n),
                _ => None,
            }),
            threshold: dedup(&self.threshold, |a, b| a.to_bits() == b.to_bits()),
            start: dedup(&self.start_date, PartialEq::eq)
                .iter()
                .map(|d| d.format("%Y-%m-%d").to_string())
                .collect(),
            lr,
            seed: dedup(&self.seed, PartialEq::eq),
            data: Some(data),
            split: self.split.clone().unwrap_or_default(),
            limit: self.limit.unwrap_or(0),
            name: self.name.clone().unwrap_or_default(),
            random: self.random.unwrap_or(0),
            search_seed: self.search_seed,
            ranges,
            early_stop: self.early_stop.clone().unwrap_or_default(),
            min_epochs: self.min_epochs.unwrap_or(0),
            eta: self.eta.unwrap_or(0),
            max_parallel: self.max_parallel.unwrap_or(0),
            val: self.val,
            // The list of both tasks is what older clients sent; this one never does.
            hidden: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn sweep(args: &[&str]) -> SweepArgs {
        let cli =
            Cli::try_parse_from(std::iter::once("client").chain(args.iter().copied())).unwrap();
        match cli.command {
            Command::Sweep(s) => *s,
            other => panic!("not a sweep: {other:?}"),
        }
    }

    #[test]
    fn the_card_example_parses_into_both_tasks() {
        let s = sweep(&["sweep", "--l", "12,40", "--kl", "1,100"]);
        let spec = s.spec(DataRef::default()).unwrap();
        assert_eq!(spec.tasks, vec!["covid", "vae"]);
        assert_eq!(spec.l, vec![12, 40]);
        assert_eq!(spec.kl, vec![1.0, 100.0]);
        assert!(spec.epochs.is_empty() && spec.cell.is_empty() && spec.split.is_empty());
    }

    #[test]
    fn lists_take_commas_and_repeats_without_duplicates() {
        let s = sweep(&[
            "sweep",
            "--cell",
            "rnn,lstm",
            "--cell",
            "gru,rnn",
            "--epochs",
            "2",
            "--kl",
            "1",
            "--epochs",
            "2",
            "--lr",
            "0.01,1e-3",
            "--seed",
            "0,1,0",
        ]);
        let spec = s.spec(DataRef::default()).unwrap();
        assert_eq!(spec.cell, vec!["rnn", "lstm", "gru"]);
        assert_eq!(spec.epochs, vec![2]);
        assert_eq!(spec.lr, vec![0.01, 0.001]);
        assert_eq!(spec.seed, vec![0, 1]);
        assert_eq!(spec.tasks, vec!["covid", "vae"]);
    }

    #[test]
    fn random_zero_is_refused_rather_than_run_as_a_grid() {
        let e = sweep(&["sweep", "--l", "12", "--random", "0"])
            .spec(DataRef::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--random 0") && e.contains("leave --random out"),
            "{e}"
        );
        let spec = sweep(&["sweep", "--l", "12", "--random", "1"])
            .spec(DataRef::default())
            .unwrap();
        assert_eq!(spec.random, 1);
    }

    #[test]
    fn tasks_follow_the_knobs_given() {
        assert_eq!(
            sweep(&["sweep", "--l", "12"]).tasks().unwrap(),
            vec![Task::Covid]
        );
        assert_eq!(
            sweep(&["sweep", "--size", "64"]).tasks().unwrap(),
            vec![Task::Vae]
        );
        assert_eq!(sweep(&["sweep"]).tasks().unwrap().len(), 2);
        let e = sweep(&["sweep", "--task", "covid", "--kl", "1"])
            .tasks()
            .unwrap_err();
        assert!(e.to_string().contains("--task vae|both"), "{e}");
        assert_eq!(
            sweep(&["sweep", "--vae-hidden", "8"]).tasks().unwrap(),
            vec![Task::Vae]
        );
        assert_eq!(
            sweep(&["sweep", "--start-date", "2020-04-01"])
                .tasks()
                .unwrap(),
            vec![Task::Covid]
        );
        assert_eq!(
            sweep(&["sweep", "--epochs", "covid=3,vae=2"])
                .tasks()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn a_mixed_sweep_sizes_each_task_with_its_own_knobs() {
        let spec = sweep(&["sweep", "--l", "12", "--kl", "1", "--hidden", "16"])
            .spec(DataRef::default())
            .unwrap();
        assert_eq!(spec.tasks, vec!["covid", "vae"]);
        assert_eq!(spec.covid_hidden, vec![16]);
        assert!(
            spec.hidden.is_empty() && spec.vae_hidden.is_empty(),
            "{spec:?}"
        );
        let spec = sweep(&[
            "sweep",
            "--l",
            "12",
            "--kl",
            "1",
            "--vae-hidden",
            "64,64",
            "--latent",
            "8",
            "--epochs",
            "2,covid=200,covid=500",
            "--epochs",
            "vae=30",
        ])
        .spec(DataRef::default())
        .unwrap();
        assert_eq!(
            (spec.vae_hidden, spec.latent),
            (vec![64], vec![8]),
            "repeats count once"
        );
        assert_eq!(
            (spec.epochs, spec.covid_epochs, spec.vae_epochs),
            (vec![2], vec![200, 500], vec![30])
        );
        // Ranges go to their own task's knob.
        let spec = sweep(&[
            "sweep",
            "--task",
            "both",
            "--hidden",
            "16..128",
            "--vae-hidden",
            "100..400",
            "--random",
            "4",
        ])
        .spec(DataRef::default())
        .unwrap();
        let names: Vec<&str> = spec.ranges.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["covid_hidden", "vae_hidden"]);
    }

    #[test]
    fn a_knob_of_a_task_not_run_is_named() {
        let e = sweep(&["sweep", "--task", "vae", "--hidden", "16"])
            .tasks()
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "--hidden applies to covid trials only; drop it or use --task covid|both \
             (the VAE's hidden units are --vae-hidden)"
        );
        let e = sweep(&[
            "sweep", "--task", "covid", "--latent", "8", "--epochs", "vae=3",
        ])
        .tasks()
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("--latent and --epochs vae=N apply to vae trials only; drop them"),
            "{e}"
        );
        let e = sweep(&["sweep", "--task", "vae", "--start-date", "2020-04-01"])
            .tasks()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--start-date applies to covid trials only"),
            "{e}"
        );
    }

    #[test]
    fn thresholds_and_start_dates_are_lists() {
        let spec = sweep(&[
            "sweep",
            "--threshold",
            "0.6,0.8,0.6",
            "--start-date",
            "2020-04-01,2020-03-15",
        ])
        .spec(DataRef::default())
        .unwrap();
        assert_eq!(spec.tasks, vec!["covid"]);
        assert_eq!(spec.threshold, vec![0.6, 0.8]);
        assert_eq!(spec.start, vec!["2020-04-01", "2020-03-15"]);
        let e = Cli::try_parse_from(["client", "sweep", "--start-date", "1/4/20"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'1/4/20' is not a date") && e.contains("YYYY-MM-DD"),
            "{e}"
        );
    }
}
