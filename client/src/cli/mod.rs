//! The command line: global flags (where the coordinator is, or where the embedded one
//! keeps its files; `--json`) and one subcommand per thing a user does. The flags of
//! `sweep` and the spec they describe are in `sweep`.

mod knob;
mod sweep;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use sweep::{DataArgs, SweepArgs};

/// wick client: starts hyperparameter sweeps, watches them, asks for forecasts and samples.
///
/// With --coordinator URL (or WICK_COORDINATOR) it talks to a running coordinator. Without
/// it the client runs EMBEDDED: a coordinator and --workers workers start inside this
/// process over a store in --home, serve this one command, and stop; the next command
/// finds everything the earlier ones did, so `client sweep ...` then `client predict ...`
/// works on a fresh clone with nothing else running.
#[derive(Debug, Parser)]
#[command(name = "client", version, propagate_version = true, after_long_help = EXAMPLES)]
pub struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Examples shown by `client --help`.
const EXAMPLES: &str = "EXAMPLES:
  # embedded: 2 covid trials (L = 12, 40) and 2 VAE trials (KL weight 1, 100)
  export WICK_DATA=../shared/data
  client sweep --l 12,40 --kl 1,100
  client predict --country TW        # P(increase) for Taiwan from the best covid trial
  client sample --n 16               # 16 faces from the best VAE, written as a PNG here
  client list
  client status s-1a2b3c
  client best --task vae --kl 1

  # cluster: a running coordinator (the data goes through it; WICK_TOKEN if it wants one)
  client --coordinator http://10.0.0.5:50051 sweep --data ./data --l 12,40";

/// Flags every command takes (before or after the command name).
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Coordinator to talk to, e.g. http://127.0.0.1:50051. Without it the client runs
    /// embedded: a coordinator and workers inside this process, over the store in --home.
    #[arg(long, env = "WICK_COORDINATOR", global = true, value_name = "URL")]
    pub coordinator: Option<String>,
    /// [embedded] Folder for the store (home/store) and the workers' data cache
    /// (home/cache); every embedded command with the same --home sees the same sweeps.
    #[arg(
        long,
        env = "WICK_HOME",
        default_value = "./.wick",
        global = true,
        value_name = "DIR"
    )]
    pub home: PathBuf,
    /// [embedded] Workers to start inside this process (each trains one trial at a time).
    #[arg(long, default_value_t = 1, global = true, value_name = "N")]
    pub workers: u32,
    /// [embedded] Device the embedded workers train on: cpu, cuda:N or auto.
    #[arg(long, default_value = "cpu", global = true)]
    pub device: String,
    /// [cluster] Store URL the coordinator and workers use (s3://bucket/prefix,
    /// file:///path), with its credentials in AWS_*: `sweep --data DIR` then writes the
    /// data there itself. Optional: without it the data goes through the coordinator.
    #[arg(long, env = "WICK_STORE", global = true, value_name = "URL")]
    pub store: Option<String>,
    /// [cluster] File holding the cluster's bearer token (WICK_TOKEN=TOKEN passes the
    /// token itself); needed when the coordinator was started with one.
    #[arg(long, env = "WICK_TOKEN_FILE", global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// [cluster] CA certificate (PEM) of a coordinator that serves TLS; use an https://
    /// --coordinator URL with it.
    #[arg(long, env = "WICK_TLS_CA", global = true, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Print one JSON document on stdout (and nothing else there) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Global {
    /// TLS for dialing the coordinator, from --tls-ca.
    pub fn tls(&self) -> anyhow::Result<wick_service::tls::Tls> {
        wick_service::tls::TlsArgs {
            tls_ca: self.tls_ca.clone(),
            ..Default::default()
        }
        .load()
    }

    /// The bearer token from --token-file or WICK_TOKEN, if any.
    pub fn token(&self) -> anyhow::Result<Option<wick_service::auth::Token>> {
        wick_service::auth::TokenArgs {
            token_file: self.token_file.clone(),
        }
        .load()
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a grid of trials: uploads the data, submits, and watches until every trial ends.
    Sweep(Box<SweepArgs>),
    /// Follow a running sweep with progress bars until every trial ends.
    Watch {
        /// Sweep id (a unique prefix is enough).
        sweep: String,
    },
    /// Every sweep, newest first, with its trial counts.
    List,
    /// One sweep's trials: state, epoch, worker, metrics.
    Status {
        /// Sweep id (a unique prefix is enough).
        sweep: String,
    },
    /// Cancel every unfinished trial of a sweep.
    Cancel {
        /// Sweep id (a unique prefix is enough).
        sweep: String,
    },
    /// The best finished trial(s), ranked on validation: highest validation accuracy of the
    /// served epoch (covid), lowest validation negative ELBO (vae).
    Best(BestArgs),
    /// P(next day's new cases increase) per country, from a covid trial.
    Predict(PredictArgs),
    /// Faces sampled from a VAE trial's prior, as one PNG grid.
    Sample(SampleArgs),
    /// Images passed through a VAE trial (originals over reconstructions), as one PNG.
    Reconstruct(ReconstructArgs),
    /// The decoded path between two images' latent codes, as one PNG strip.
    Interpolate(InterpolateArgs),
    /// A trial's files in the store: pictures, forecasts, the model.
    #[command(subcommand)]
    Artifacts(ArtifactsCommand),
    /// Write a sweep's whole report as a self-contained HTML page (index.html + images).
    Report(ReportArgs),
    /// Compare a sweep's trials grouped by one hyperparameter, as a table.
    Compare(CompareArgs),
    /// Check a covid trial's forecasts against what happened next, in a later dataset.
    Backtest(BacktestArgs),
    /// The datasets on this machine: `data fetch` downloads them from their public sources.
    #[command(subcommand)]
    Data(DataCommand),
}

/// Flags of `report`.
#[derive(Debug, Args)]
#[command(after_long_help = "EXAMPLES:
  client report s-0123456789ab --out report/      # then open report/index.html")]
pub struct ReportArgs {
    /// Sweep id (a unique prefix is enough).
    pub sweep: String,
    /// Folder for index.html and its images (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// A hyperparameter to group trials by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupBy {
    /// [covid] Window length L.
    L,
    /// [covid] Cell type.
    Cell,
    /// Hidden units.
    Hidden,
    /// [vae] KL weight.
    Kl,
    /// Learning rate.
    Lr,
}

/// Flags of `compare`.
#[derive(Debug, Args)]
#[command(after_long_help = "EXAMPLES:
  client compare s-0123456789ab --by l       # does L=40 beat L=12?
  client compare s-0123456789ab --by cell    # LSTM vs GRU vs RNN
  client compare s-0123456789ab --by kl      # what the KL weight does")]
pub struct CompareArgs {
    /// Sweep id (a unique prefix is enough).
    pub sweep: String,
    /// Hyperparameter to group by.
    #[arg(long, value_enum)]
    pub by: GroupBy,
}

/// Flags of `backtest`.
#[derive(Debug, Args)]
#[command(after_long_help = "EXAMPLES:
  # the trial's own forecasts (plots/forecast.json) for the day after its data ends
  client backtest --trial t-0123456789abcdef --actual ../shared/data/covid/countries-aggregated.csv
  # rolling: the trial's model forecasts each of 30 days from the data up to the day before
  client backtest --from 2020-04-13 --days 30 --actual ../shared/data/covid/countries-aggregated.csv --plot backtest.png

Without --from, the forecasts checked are those the trial made when it finished. With
--from, the trial's model (model.safetensors, with its calibration) is run here on every
country's counts up to each day before a forecast day, reading nothing later, and all
N x countries forecasts are scored together and day by day.")]
pub struct BacktestArgs {
    /// Covid trial whose forecasts to check [default: the best one].
    #[arg(long)]
    pub trial: Option<String>,
    /// A later case-count file (any layout `worker train` reads) that continues past the
    /// training data's last day.
    #[arg(long, value_name = "FILE")]
    pub actual: PathBuf,
    /// Calibration bins over [0, 1].
    #[arg(long, default_value_t = 10)]
    pub bins: u32,
    /// Rolling backtest: the first day forecast (YYYY-MM-DD); each forecast uses the
    /// --actual counts up to the day before it only.
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Rolling backtest: how many consecutive days to forecast [default: 1 with --from].
    #[arg(long, value_name = "N", requires = "from")]
    pub days: Option<u32>,
    /// Rolling backtest: write its picture (reliability diagram and accuracy per day) here.
    #[arg(long, value_name = "PNG", requires = "from")]
    pub plot: Option<PathBuf>,
}

/// Which tasks a sweep runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TaskChoice {
    /// COVID-19 next-day-increase classifiers only.
    Covid,
    /// Face VAEs only.
    Vae,
    /// Both.
    Both,
}

/// One coursework task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Task {
    /// COVID-19 next-day-increase classifier.
    Covid,
    /// Face VAE.
    Vae,
}

impl Task {
    /// The protocol's name of the task.
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Covid => "covid",
            Task::Vae => "vae",
        }
    }
}
/// Flags of `best`.
#[derive(Debug, Args)]
pub struct BestArgs {
    /// Only this task [default: the best of each].
    #[arg(long, value_enum)]
    pub task: Option<Task>,
    /// [vae] Only trials with this KL weight.
    #[arg(long)]
    pub kl: Option<f64>,
    /// Look in this sweep [default: the newest sweep with a finished trial of the task].
    #[arg(long)]
    pub sweep: Option<String>,
}

/// Flags of `predict`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).multiple(true).args(["country", "all", "map"]))]
#[command(after_long_help = "EXAMPLES:
  client predict --country TW            # Taiwan, from the best covid trial
  client predict --country 'Korea, South' --trial t-0123456789abcdef
  client predict --all                   # every country, most likely increase first
  client predict --map world.svg         # the world map (world.png for a PNG)")]
pub struct PredictArgs {
    /// Country: ISO 3166 alpha-2 code (TW) or name as in the data (Taiwan*).
    #[arg(long)]
    pub country: Option<String>,
    /// Every country.
    #[arg(long)]
    pub all: bool,
    /// Also draw every country's probability on a world map: SVG, or PNG when FILE ends
    /// in .png.
    #[arg(long, value_name = "FILE")]
    pub map: Option<PathBuf>,
    /// Covid trial to use [default: the best one].
    #[arg(long)]
    pub trial: Option<String>,
}

/// Flags of `sample`.
#[derive(Debug, Args)]
#[command(after_long_help = "EXAMPLES:
  client sample --n 16                   # writes samples-<trial>.png here, prints its path
  client sample --n 64 --seed 7 --out faces.png --trial t-0123456789abcdef")]
pub struct SampleArgs {
    /// Number of faces.
    #[arg(long, default_value_t = 16)]
    pub n: u32,
    /// PNG file for the grid [default: samples-<trial>.png in the current folder].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Seed of z ~ N(0, I): the same seed draws the same faces.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// VAE trial to use [default: the best one].
    #[arg(long)]
    pub trial: Option<String>,
}

/// Flags of `reconstruct`.
#[derive(Debug, Args)]
pub struct ReconstructArgs {
    /// PNG or JPEG images to pass through the VAE.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
    /// PNG file for the grid [default: reconstructions-<trial>.png in the current folder].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// VAE trial to use [default: the best one].
    #[arg(long)]
    pub trial: Option<String>,
}

/// Flags of `interpolate`.
#[derive(Debug, Args)]
pub struct InterpolateArgs {
    /// First image (PNG or JPEG).
    #[arg(long, value_name = "IMG")]
    pub a: PathBuf,
    /// Second image (PNG or JPEG).
    #[arg(long, value_name = "IMG")]
    pub b: PathBuf,
    /// Decoded points from a to b, both ends included; the strip adds the two originals and
    /// their reconstructions around them (original | reconstruction | steps |
    /// reconstruction | original: 15 tiles with the default 11).
    #[arg(long, default_value_t = 11)]
    pub steps: u32,
    /// PNG file for the strip [default: interpolation-<trial>.png in the current folder].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// VAE trial to use [default: the best one].
    #[arg(long)]
    pub trial: Option<String>,
}

/// `artifacts ls` and `artifacts get`.
#[derive(Debug, Subcommand)]
pub enum ArtifactsCommand {
    /// List a trial's files with their sizes.
    Ls {
        /// Trial id.
        trial: String,
    },
    /// Download one file of a trial.
    Get {
        /// Trial id.
        trial: String,
        /// File name as listed by `artifacts ls` (e.g. plots/world_map.svg).
        name: String,
        /// Where to write it [default: its file name in the current folder].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// `data fetch`.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Download the COVID-19 case table and the anime faces into DIR, laid out as
    /// `--data DIR` expects (DIR/covid/covid_19.csv, DIR/anime-faces/).
    Fetch(FetchArgs),
}

/// Flags of `data fetch`.
#[derive(Debug, Args)]
#[command(after_long_help = "EXAMPLES:
  client data fetch --dir data              # on a fresh machine, then:
  client sweep --data data --l 12,40 --kl 1,100

Files already in DIR are not fetched again (reported as cached); an interrupted download
is resumed from DIR/.partial/ on the next run. Every file's size and SHA-256 is checked
where its content is fixed; the JHU CSV changes upstream, so it is checked by parsing it.

OFFLINE: on a machine without internet, copy a data folder from one that has it (or the
project's ../shared/data) and pass --data DIR to the commands, or set WICK_DATA=DIR; to
fetch from a mirror, pass --covid-url and --faces-url (with --faces-sha256).")]
pub struct FetchArgs {
    /// Folder to fill (created if missing).
    #[arg(long, default_value = "data", value_name = "DIR")]
    pub dir: PathBuf,
    /// Where to get the COVID-19 cumulative-cases CSV [default: the JHU CSSE time series
    /// on GitHub]; any layout `worker train` reads.
    #[arg(long, value_name = "URL")]
    pub covid_url: Option<String>,
    /// Where to get the zip of face images [default: the huggan/anime-faces archive on
    /// Hugging Face, pinned to one revision and checked against its SHA-256].
    #[arg(long, value_name = "URL")]
    pub faces_url: Option<String>,
    /// SHA-256 (hex) the --faces-url archive must have; without it a --faces-url archive
    /// is not checked (its hash is reported).
    #[arg(long, value_name = "HEX")]
    pub faces_sha256: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("client").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn bad_values_are_refused_by_the_parser() {
        let bad = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("client").chain(args.iter().copied()))
                .unwrap_err()
                .to_string()
        };
        assert!(bad(&["sweep", "--l", "12,x"]).contains("--l"));
        assert!(bad(&["sweep", "--cell", "lstm,tcn"]).contains("rnn, lstm or gru"));
        assert!(bad(&["sweep", "--split", "later"]).contains("random"));
        assert!(bad(&["predict"]).contains("--country"));
    }

    #[test]
    fn global_flags_go_before_or_after_the_command() {
        let a = parse(&["--home", "/h", "--json", "sample", "--n", "16"]);
        let b = parse(&["sample", "--n", "16", "--home", "/h", "--json"]);
        for cli in [a, b] {
            assert!(cli.global.json);
            assert_eq!(cli.global.home, PathBuf::from("/h"));
            let Command::Sample(s) = cli.command else {
                panic!()
            };
            assert_eq!((s.n, s.seed, s.out), (16, 0, None));
        }
    }
}
