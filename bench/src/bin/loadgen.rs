//! `loadgen`: drives a running coordinator's `Predict`, `Sample` and `WatchSweep` calls
//! from many concurrent clients for a bounded time and prints throughput and latency
//! percentiles (a table, or JSON with `--json`). See `loadgen --help`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use wick_bench::load::{Call, Plan, run};
use wick_service::auth::TokenArgs;
use wick_service::tls::Tls;

/// A method loadgen can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Method {
    /// P(increase) of --country from a covid trial.
    Predict,
    /// --n images from a VAE trial's prior.
    Sample,
    /// A watch of --sweep, read to its end (use a finished sweep: its watch sends one
    /// snapshot event per trial and ends).
    Watch,
}

/// Load generator for a wick coordinator: N concurrent gRPC clients per method, each on
/// its own connection, call back to back for --seconds (or until --max-requests calls
/// have started), and every answer is checked. Prints requests, errors by gRPC code,
/// requests per second and p50/p90/p99/max latency per method.
#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    version,
    after_long_help = "EXAMPLES:\n  \
loadgen --coordinator http://127.0.0.1:50051 --trial c-1a2b --method predict --country TW --clients 8 --seconds 10\n  \
loadgen --coordinator http://127.0.0.1:50051 --method predict,sample --vae-trial v-9f8e --clients 4 --json\n  \
loadgen --method watch --sweep s-42 --clients 16 --seconds 5\n\n\
Before the timed run each method makes one untimed call (the worker loads the model then);\n\
--no-warmup skips it. Latencies are per call, client to coordinator and back, including the\n\
coordinator's hop to a worker. Errors are counted by gRPC code; `Invalid` is an answer that\n\
failed the checks (a probability outside [0, 1], the wrong country, fewer images than asked).\n\
Exits 1 when any call failed."
)]
struct Args {
    /// The coordinator, http://HOST:PORT (https:// with --tls-ca).
    #[arg(
        long,
        env = "WICK_COORDINATOR",
        default_value = "http://127.0.0.1:50051"
    )]
    coordinator: String,
    /// Methods to drive at once, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "predict")]
    method: Vec<Method>,
    /// Trial of predict, and of sample unless --vae-trial is given (id or unique
    /// prefix); left out, the coordinator answers from its best trial of each task.
    #[arg(long, default_value = "")]
    trial: String,
    /// Trial of sample when it differs from --trial (predict and sample in one run).
    #[arg(long)]
    vae_trial: Option<String>,
    /// [predict] Country name as in the data, or ISO 3166 alpha-2 code.
    #[arg(long, default_value = "TW")]
    country: String,
    /// [sample] Images per call.
    #[arg(long, default_value_t = 16)]
    n: u32,
    /// [sample] Seed of the latent draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// [watch] Sweep to watch.
    #[arg(long)]
    sweep: Option<String>,
    /// Concurrent clients per method.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// How long clients keep starting calls.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Most calls started in all, whatever the time.
    #[arg(long, default_value_t = 1_000_000)]
    max_requests: u64,
    /// Longest one call may take before it counts as DeadlineExceeded.
    #[arg(long, default_value_t = 30.0)]
    call_timeout: f64,
    /// Skip the untimed warm-up call per method.
    #[arg(long)]
    no_warmup: bool,
    /// Threads of loadgen's own runtime: keep it small on a machine shared with the
    /// servers being measured.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// CA certificate (PEM) that signed the coordinator's certificate; dials over TLS.
    #[arg(long, env = "WICK_TLS_CA", value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    #[command(flatten)]
    token: TokenArgs,
    /// Print the report as one JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

fn seconds(s: f64, flag: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{flag} must be a positive number of seconds, got {s}"))
}

fn plan(a: &Args) -> Result<Plan> {
    let tls = match &a.tls_ca {
        Some(p) => {
            let ca = std::fs::read(p)
                .with_context(|| format!("cannot read --tls-ca {}", p.display()))?;
            Tls::from_pem(None, Some(ca))
        }
        None => Tls::default(),
    };
    let mut plan = Plan::new(&a.coordinator);
    plan.token = a.token.load()?;
    plan.tls = tls;
    plan.duration = seconds(a.seconds, "--seconds")?;
    plan.call_timeout = seconds(a.call_timeout, "--call-timeout")?;
    plan.max_requests = a.max_requests;
    plan.warmup = !a.no_warmup;
    if a.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let mut methods = a.method.clone();
    methods.dedup();
    for m in methods {
        let call = match m {
            Method::Predict => Call::Predict {
                trial: a.trial.clone(),
                country: a.country.clone(),
            },
            Method::Sample => Call::Sample {
                trial: a.vae_trial.clone().unwrap_or_else(|| a.trial.clone()),
                n: a.n,
                seed: a.seed,
            },
            Method::Watch => Call::Watch {
                sweep: a.sweep.clone().context(
                    "--method watch needs --sweep ID (a finished sweep; see `client list`)",
                )?,
            },
        };
        plan = plan.with(call, a.clients);
    }
    Ok(plan)
}

fn main() {
    let args = Args::parse();
    let outcome = plan(&args).and_then(|plan| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads.max(1))
            .enable_all()
            .build()
            .context("cannot start the runtime")?
            .block_on(run(plan))
    });
    match outcome {
        Ok(report) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("a report is JSON")
                );
            } else {
                print!("{}", report.table());
            }
            if report.errors > 0 {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            std::process::exit(2);
        }
    }
}
