//! Chaos, bounded in time and count: during a 12-trial sweep on two workers, a seeded
//! random schedule kills a worker with SIGKILL every few seconds and starts a fresh one,
//! and kills and restarts the coordinator once (at a random one of the first three checks,
//! or sooner once half the trials are done). At the end every trial has succeeded, is
//! listed once, has one summary and one metrics line per epoch in the store, and its
//! final metrics equal those of an uninterrupted run. The seed is printed; set
//! `WICK_CHAOS_SEED` to replay a schedule.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Cluster, FINAL_METRICS, train_locally};
use serde_json::Value;

/// Worker kills at most; the coordinator restart comes on top.
const MAX_KILLS: usize = 6;
/// Seeds of the sweep: one trial each.
const SEEDS: usize = 12;
/// Epochs per trial: enough that a kill usually lands in the middle of one.
const EPOCHS: &str = "24";

/// The trial's hyperparameters, but the seed.
const TRIAL: [&str; 8] = [
    "--cell", "rnn", "--hidden", "32", "--l", "12", "--epochs", EPOCHS,
];

/// SplitMix64: a small, seedable generator, so a failing schedule can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// The sweep's trials, or `None` while the coordinator is down or restarting.
fn try_trials(c: &Cluster, sweep: &str) -> Option<Vec<Value>> {
    let out = c.client_raw(&["status", sweep]);
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v["trials"].as_array().cloned()
}

fn finished(t: &Value) -> bool {
    ["succeeded", "failed", "cancelled", "stopped_early"]
        .contains(&t["state"].as_str().unwrap_or(""))
}

fn all_finished(trials: &[Value]) -> bool {
    trials.iter().all(finished)
}

#[test]
fn a_sweep_survives_random_worker_kills_and_a_coordinator_restart() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let seed = std::env::var("WICK_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| common::unix_ms() as u64);
    eprintln!("chaos seed {seed} (WICK_CHAOS_SEED={seed} replays this schedule)");
    let mut rng = Rng(seed);

    // The uninterrupted runs, computed while the cluster works (they only read the data).
    let clean = {
        let data: PathBuf = data.clone();
        std::thread::spawn(move || {
            (0..SEEDS)
                .map(|s| {
                    let seed = s.to_string();
                    let mut args = TRIAL.to_vec();
                    args.extend(["--seed", &seed]);
                    train_locally(&data, &args)
                })
                .collect::<Vec<_>>()
        })
    };

    // Losing a lease to a kill is the point here, so the retry budget must not end a trial.
    let Some(mut c) = Cluster::start_with(|_| vec!["--max-attempts".into(), "50".into()]) else {
        return;
    };
    let mut live = vec![c.start_worker("w0"), c.start_worker("w1")];
    let data_s = data.to_string_lossy().to_string();
    let seeds = (0..SEEDS)
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut args = vec!["sweep", "--task", "covid", "--data", &data_s, "--detach"];
    args.extend(TRIAL);
    args.extend(["--seed", &seeds]);
    let submitted = c.client(&args);
    let sweep = submitted["sweep"].as_str().unwrap().to_string();
    let ids: BTreeSet<String> = submitted["trial_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), SEEDS, "{submitted}");

    let started = Instant::now();
    let (mut kills, mut restarted, mut next_name) = (0, false, 2);
    // The coordinator goes down at a random tick among the first three.
    let restart_at = rng.range(1, 4);
    let mut tick = 0;
    while kills < MAX_KILLS || !restarted {
        std::thread::sleep(Duration::from_millis(rng.range(1500, 3000)));
        tick += 1;
        let trials = try_trials(&c, &sweep);
        if trials.as_deref().is_some_and(all_finished) {
            break;
        }
        // At that tick, or once half the trials are done, whichever comes first: the
        // restart must land while trials still run, however fast they are.
        let half_done = trials
            .as_deref()
            .is_some_and(|t| 2 * t.iter().filter(|t| finished(t)).count() >= t.len());
        if !restarted && (tick >= restart_at || half_done) {
            eprintln!("chaos {:?}: restarting the coordinator", started.elapsed());
            c.coordinator.as_mut().unwrap().kill9();
            c.start_coordinator();
            restarted = true;
            continue;
        }
        if kills < MAX_KILLS {
            let victim = live.remove(rng.range(0, live.len() as u64) as usize);
            eprintln!(
                "chaos {:?}: kill -9 {}",
                started.elapsed(),
                c.workers[victim].name
            );
            c.workers[victim].kill9();
            kills += 1;
            live.push(c.start_worker(&format!("w{next_name}")));
            next_name += 1;
        }
    }
    assert!(
        restarted,
        "the sweep finished before the coordinator restart; the trials are too short"
    );
    let trials = c.wait_done(&sweep, Duration::from_secs(120));
    c.wait_settled(
        trials.iter().map(|t| t["id"].as_str().unwrap()),
        &["config.json", "metrics.jsonl"],
    );
    eprintln!(
        "chaos: {kills} worker kills and one coordinator restart; sweep done after {:?}",
        started.elapsed()
    );

    // Every trial once in the results, succeeded.
    let listed: Vec<String> = trials
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed.len(), SEEDS, "{listed:?}");
    assert_eq!(listed.iter().cloned().collect::<BTreeSet<_>>(), ids);
    for t in &trials {
        assert_eq!(t["state"], "succeeded", "{t}");
    }
    assert!(
        trials.iter().any(|t| t["attempts"].as_u64().unwrap() > 1),
        "no kill interrupted a trial, so nothing was tested: {trials:?}"
    );

    // Once in the store: one summary per trial, one metrics line per epoch, no leftovers.
    let keys = c.s3.keys("cluster/trials/");
    let summaries: Vec<&String> = keys
        .iter()
        .filter(|k| k.ends_with("/summary.json"))
        .collect();
    assert_eq!(summaries.len(), SEEDS, "{summaries:?}");
    let epochs: Vec<u64> = (1..=EPOCHS.parse().unwrap()).collect();
    for id in &ids {
        let mine: Vec<&String> = keys
            .iter()
            .filter(|k| k.starts_with(&format!("cluster/trials/{id}/")))
            .collect();
        assert_eq!(
            mine.iter().filter(|k| k.ends_with("/summary.json")).count(),
            1,
            "{mine:?}"
        );
        assert!(
            !mine.iter().any(|k| k.contains("/staging/")),
            "{id}: staging left behind: {mine:?}"
        );
        assert_eq!(c.s3.metric_epochs("cluster/", id), epochs, "{id}");
    }

    // Equal to the uninterrupted runs, in the status and in the stored summaries.
    let clean = clean.join().expect("the clean runs");
    for t in &trials {
        let seed = t["config"]["seed"].as_u64().unwrap() as usize;
        let want = &clean[seed];
        let id = t["id"].as_str().unwrap();
        let path =
            c.s3.root
                .join(&c.s3.bucket)
                .join(format!("cluster/trials/{id}/summary.json"));
        let stored: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        for key in FINAL_METRICS {
            assert_eq!(
                t["metrics"][key], want[key],
                "seed {seed} {key}: after chaos {} vs uninterrupted {}",
                t["metrics"][key], want[key]
            );
            assert_eq!(stored[key], want[key], "seed {seed} {key} in summary.json");
        }
    }
}
