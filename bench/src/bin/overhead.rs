//! `overhead`: the coordinator's cost per trial, without training. It registers as a
//! worker and runs trials of an already submitted sweep as fast as the protocol allows:
//! Lease, one ReportProgress, a one-object staging write (the model file Complete insists
//! on), Complete. What remains per trial is the coordinator's bookkeeping and its durable
//! writes, which is what a real worker pays on top of training. See `overhead --help`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::json;
use wick_common::store::Store;
use wick_proto::v1::work_client::WorkClient;
use wick_proto::v1::{CompleteParams, LeaseParams, ProgressParams, RegisterParams};

/// Measures the coordinator's overhead per trial: registers as a worker and runs N trials
/// of a submitted sweep with no training (one progress report of a made-up epoch, one
/// staged model file, completion), timing each round trip.
#[derive(Debug, Parser)]
#[command(
    name = "overhead",
    version,
    after_long_help = "EXAMPLE (bench/scale.sh does all of this):\n  \
client sweep --task covid --data DIR --cell rnn --hidden 4 --l 12 --epochs 1 --seed 0..99 --detach\n  \
overhead --coordinator http://127.0.0.1:50051 --store file:///tmp/store --trials 100\n\n\
Run it with no other worker registered, or the trials are shared. The trials end\n\
`succeeded` with made-up metrics: use a scratch store."
)]
struct Args {
    /// The coordinator, http://HOST:PORT.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    coordinator: String,
    /// The store the coordinator uses (the staged model file goes there).
    #[arg(long)]
    store: String,
    /// Trials to run; stops earlier when the coordinator has no more work for 2 s.
    #[arg(long, default_value_t = 100)]
    trials: usize,
    /// One JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

/// Milliseconds of each phase of one trial.
#[derive(Default, Clone, Copy)]
struct Trial {
    lease: f64,
    progress: f64,
    stage: f64,
    complete: f64,
}

impl Trial {
    fn rpcs(&self) -> f64 {
        self.lease + self.progress + self.complete
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let store = Store::open(&args.store)?;
    let mut work = WorkClient::connect(args.coordinator.clone())
        .await
        .with_context(|| format!("cannot reach the coordinator at {}", args.coordinator))?;
    let me = work
        .register(RegisterParams {
            name: "overhead-probe".into(),
            device: "cpu".into(),
            slots: 1,
            inference_addr: String::new(),
        })
        .await?
        .into_inner();
    let started = Instant::now();
    let mut trials = Vec::with_capacity(args.trials);
    let mut idle_since = Instant::now();
    while trials.len() < args.trials {
        let mut t = Trial::default();
        let at = Instant::now();
        let lease = work
            .lease(LeaseParams {
                worker_id: me.worker_id.clone(),
                wait_ms: 0,
            })
            .await?
            .into_inner();
        t.lease = ms(at);
        let Some(a) = lease.assignment else {
            if idle_since.elapsed() > Duration::from_secs(2) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let at = Instant::now();
        let epoch = json!({"epoch": 1, "train_loss": 0.69, "train_acc": 0.5,
            "test_loss": 0.69, "test_acc": 0.5, "seconds": 0.0});
        work.report_progress(ProgressParams {
            lease_id: a.lease_id.clone(),
            trial_id: a.trial_id.clone(),
            epoch: 1,
            metrics_json: epoch.to_string(),
            resumed_from_epoch: 0,
            checkpoint_key: String::new(),
            earlier: Vec::new(),
        })
        .await?;
        t.progress = ms(at);
        let staging = format!("trials/{}/staging/{}", a.trial_id, a.lease_id);
        let at = Instant::now();
        store
            .put(&format!("{staging}/model.safetensors"), vec![0u8; 64])
            .await?;
        t.stage = ms(at);
        let at = Instant::now();
        let summary = json!({"task": "covid", "final_test_acc": 0.5, "best_test_acc": 0.5,
            "final_train_acc": 0.5, "best_epoch": 1, "epochs": 1});
        work.complete(CompleteParams {
            lease_id: a.lease_id,
            trial_id: a.trial_id,
            summary_json: summary.to_string(),
            staging_prefix: staging,
        })
        .await?;
        t.complete = ms(at);
        trials.push(t);
        idle_since = Instant::now();
    }
    if trials.is_empty() {
        bail!("the coordinator leased no trial; submit a sweep first (see --help)");
    }
    report(&args, &trials, started.elapsed().as_secs_f64());
    Ok(())
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// The `q` quantile (0..=1) of `v`, nearest rank.
fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn report(args: &Args, trials: &[Trial], wall_s: f64) {
    let col = |f: fn(&Trial) -> f64| trials.iter().map(f).collect::<Vec<_>>();
    let phases: [(&str, Vec<f64>); 5] = [
        ("lease", col(|t| t.lease)),
        ("progress", col(|t| t.progress)),
        ("complete", col(|t| t.complete)),
        ("rpcs_total", col(Trial::rpcs)),
        ("staging_write", col(|t| t.stage)),
    ];
    let per_trial_ms = wall_s * 1e3 / trials.len() as f64;
    if args.json {
        let mut v = json!({"trials": trials.len(), "wall_s": wall_s, "per_trial_ms": per_trial_ms});
        for (name, xs) in &phases {
            v[*name] = json!({"p50_ms": quantile(xs, 0.5), "p99_ms": quantile(xs, 0.99)});
        }
        println!("{v}");
        return;
    }
    println!(
        "{} trials in {wall_s:.2} s: {per_trial_ms:.2} ms per trial, all in",
        trials.len()
    );
    println!("{:<14} {:>9} {:>9}", "phase", "p50 ms", "p99 ms");
    for (name, xs) in &phases {
        println!(
            "{name:<14} {:>9.2} {:>9.2}",
            quantile(xs, 0.5),
            quantile(xs, 0.99)
        );
    }
}
