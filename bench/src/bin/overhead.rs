//! `overhead`: the coordinator's cost per trial, without training. Simulated workers
//! ([`wick_bench::probe`]) run trials of an already submitted sweep as fast as the
//! protocol allows, or at a set report pace: Lease, ReportProgress per made-up epoch, a
//! one-object staging write (the model file Complete insists on), Complete, with
//! heartbeats alongside. What remains per trial is the coordinator's bookkeeping and its
//! durable writes, which is what a real worker pays on top of training; with many workers
//! it is the coordinator's throughput. See `overhead --help`.

use std::time::Duration;

use anyhow::{Result, bail};
use clap::Parser;
use serde_json::json;
use wick_bench::probe::{self, Plan, Tally};
use wick_common::store::Store;

/// Measures the coordinator's overhead per trial: registers as one or more workers and
/// runs N trials of a submitted sweep with no training (progress reports of made-up
/// epochs, one staged model file, completion), timing each round trip.
#[derive(Debug, Parser)]
#[command(
    name = "overhead",
    version,
    after_long_help = "EXAMPLES (bench/scale.sh and bench/coordinator.sh do all of this):\n  \
client sweep --task covid --data DIR --cell rnn --hidden 4 --l 12 --epochs 1 --seed 0,1,..,99 --detach\n  \
overhead --coordinator http://127.0.0.1:50051 --store file:///tmp/store --trials 100\n\n  \
client sweep ... --epochs 40 --seed 0,1,..,999 --detach\n  \
overhead --store ... --trials 1000 --concurrency 256 --reports 40 --report-every-ms 250 \\\n    \
--heartbeat-ms 1000 --seconds 25\n\n\
Run it with no other worker registered, or the trials are shared. The trials end\n\
`succeeded` with made-up metrics: use a scratch store. Leases the coordinator ended\n\
(revoked on a heartbeat, or a write refused with FAILED_PRECONDITION) are counted as\n\
expired_leases and their trials dropped; any other error aborts the run."
)]
struct Args {
    /// The coordinator, http://HOST:PORT.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    coordinator: String,
    /// The store the coordinator uses (the staged model file goes there).
    #[arg(long)]
    store: String,
    /// Trials to complete, shared by all workers; stops earlier when the coordinator has
    /// had no work for a worker for 2 s.
    #[arg(long, default_value_t = 100)]
    trials: usize,
    /// Simulated workers, each registered on its own connection.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,
    /// Progress reports per trial (epochs 1..=R, one report each); the sweep's trials need
    /// at least R epochs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    reports: u32,
    /// Pause between two reports of a trial, in milliseconds (a training epoch's stand-in).
    #[arg(long, default_value_t = 0)]
    report_every_ms: u64,
    /// Each worker heartbeats its lease every H milliseconds (0 = no heartbeats: trials
    /// must then end within the coordinator's lease time).
    #[arg(long, default_value_t = 0)]
    heartbeat_ms: u64,
    /// Stop after this many seconds (0 = no limit): no call is started after it and
    /// running trials are dropped, so a run ends however slow the coordinator is.
    #[arg(long, default_value_t = 0.0)]
    seconds: f64,
    /// One JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let store = Store::open(&args.store)?;
    let ms = |n| (n > 0).then(|| Duration::from_millis(n));
    let plan = Plan {
        coordinator: args.coordinator.clone(),
        concurrency: args.concurrency as usize,
        trials: args.trials,
        reports: args.reports,
        report_every: Duration::from_millis(args.report_every_ms),
        heartbeat: ms(args.heartbeat_ms),
        time_limit: (args.seconds > 0.0).then(|| Duration::from_secs_f64(args.seconds)),
    };
    let (tally, started) = probe::run(&plan, store).await?;
    if tally.leased == 0 {
        bail!("the coordinator leased no trial; submit a sweep first (see --help)");
    }
    let wall_s = tally
        .end
        .map_or(0.0, |end| end.duration_since(started).as_secs_f64());
    report(&args, &tally, wall_s);
    Ok(())
}

/// The `q` quantile (0..=1) of `v`, nearest rank; `None` for no samples.
fn quantile(v: &[f64], q: f64) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let last = v.len().checked_sub(1)?;
    Some(v[(last as f64 * q).round() as usize])
}

fn report(args: &Args, t: &Tally, wall_s: f64) {
    let phases: [(&str, &[f64]); 6] = [
        ("lease", &t.lease_ms),
        ("progress", &t.progress_ms),
        ("complete", &t.complete_ms),
        ("rpcs_total", &t.trial_rpcs_ms),
        ("staging_write", &t.stage_ms),
        ("heartbeat", &t.heartbeat_ms),
    ];
    let rate = |n: usize| if wall_s > 0.0 { n as f64 / wall_s } else { 0.0 };
    // Wall time per completed trial: with several workers, the inverse of throughput.
    let per_trial_ms = if t.trials > 0 {
        wall_s * 1e3 / t.trials as f64
    } else {
        0.0
    };
    if args.json {
        let mut v = json!({
            "trials": t.trials, "wall_s": wall_s, "per_trial_ms": per_trial_ms,
            "trials_per_s": rate(t.trials), "reports": t.reports,
            "reports_per_s": rate(t.reports), "concurrency": args.concurrency,
            "reports_per_trial": args.reports, "report_every_ms": args.report_every_ms,
            "heartbeat_every_ms": args.heartbeat_ms, "leased": t.leased,
            "heartbeats": t.heartbeat_ms.len(), "revoked": t.revoked,
            "lease_ended": t.lease_ended, "expired_leases": t.expired_leases(),
            "stopped_early": t.stopped_early,
        });
        for (name, xs) in phases {
            v[name] = json!({"p50_ms": quantile(xs, 0.5), "p99_ms": quantile(xs, 0.99)});
        }
        println!("{v}");
        return;
    }
    println!(
        "{} trials in {wall_s:.2} s: {per_trial_ms:.2} ms per trial, all in",
        t.trials
    );
    let plural = if args.concurrency == 1 { "" } else { "s" };
    println!(
        "{} worker{plural}: {:.1} trials/s, {:.1} progress reports/s, {} expired leases \
         ({} revoked on a heartbeat, {} writes refused)",
        args.concurrency,
        rate(t.trials),
        rate(t.reports),
        t.expired_leases(),
        t.revoked,
        t.lease_ended
    );
    println!("{:<14} {:>9} {:>9}", "phase", "p50 ms", "p99 ms");
    let cell = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.2}"));
    for (name, xs) in phases {
        println!(
            "{name:<14} {:>9} {:>9}",
            cell(quantile(xs, 0.5)),
            cell(quantile(xs, 0.99))
        );
    }
}
