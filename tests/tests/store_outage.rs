//! The object store goes away for about ten seconds in the middle of a sweep (the S3
//! server is killed) and comes back on the same port with the same folder; a worker joins
//! while it is down. Workers and the coordinator wait it out, retrying with backoff: no lease is lost, no trial is
//! handed back or failed, every epoch is recorded once, every trial has one summary, and
//! the results equal an uninterrupted run's.

mod common;

use std::time::Duration;

use common::{Cluster, FINAL_METRICS, train_locally, wait_for};

/// Seeds of the sweep: one trial each.
const SEEDS: [&str; 4] = ["0", "1", "2", "3"];
/// Epochs per trial.
const EPOCHS: u64 = 16;
/// The trial's hyperparameters, but the seed.
const TRIAL: [&str; 8] = [
    "--cell", "rnn", "--hidden", "8", "--l", "12", "--epochs", "16",
];
/// How long the store stays down.
const OUTAGE: Duration = Duration::from_secs(10);

#[test]
fn a_sweep_waits_out_a_store_outage_and_loses_nothing() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let Some(mut c) = Cluster::start() else {
        return;
    };
    c.start_worker("w1");
    c.start_worker("w2");
    let data_s = data.to_string_lossy().to_string();
    let mut args = vec!["sweep", "--task", "covid", "--data", &data_s, "--detach"];
    args.extend(TRIAL);
    let seeds = SEEDS.join(",");
    args.extend(["--seed", &seeds]);
    let sweep = c.client(&args)["sweep"].as_str().unwrap().to_string();

    wait_for(
        Duration::from_secs(120),
        "two epochs of a trial on each worker",
        || {
            let t = c.trials(&sweep);
            let busy = t
                .iter()
                .filter(|t| t["state"] == "running" && t["epoch"].as_u64().unwrap_or(0) >= 2)
                .count();
            (busy == 2).then_some(())
        },
    );
    c.s3.stop();
    eprintln!("store down");
    // A worker joining now asks for a queued trial, so the coordinator meets the outage
    // too (it records the lease before granting it), while the others keep their leases.
    let joined = std::time::Instant::now();
    c.start_worker("w3");
    std::thread::sleep(OUTAGE.saturating_sub(joined.elapsed()));
    c.s3.restart();
    eprintln!("store back");

    let trials = c.wait_done(&sweep, Duration::from_secs(180));
    assert_eq!(trials.len(), SEEDS.len());
    for t in &trials {
        assert_eq!(t["state"], "succeeded", "{t}");
        // One lease per trial: the outage cost no lease and no hand-back.
        assert_eq!(t["attempts"], 1, "{t}");
    }

    // Nothing lost or duplicated in the store.
    let keys = c.s3.keys("cluster/trials/");
    for t in &trials {
        let id = t["id"].as_str().unwrap();
        let mine: Vec<&String> = keys
            .iter()
            .filter(|k| k.starts_with(&format!("cluster/trials/{id}/")))
            .collect();
        for want in ["summary.json", "model.safetensors", "state.json"] {
            assert_eq!(
                mine.iter()
                    .filter(|k| k.ends_with(&format!("/{want}")))
                    .count(),
                1,
                "{id}: {want}: {mine:?}"
            );
        }
        assert!(
            !mine.iter().any(|k| k.contains("/staging/")),
            "{id}: staging left behind: {mine:?}"
        );
        assert_eq!(
            c.s3.metric_epochs("cluster/", id),
            (1..=EPOCHS).collect::<Vec<_>>(),
            "{id}"
        );
    }

    // The same numbers as an uninterrupted run.
    for t in &trials {
        let seed = t["config"]["seed"].to_string();
        let mut args = TRIAL.to_vec();
        args.extend(["--seed", &seed]);
        let want = train_locally(&data, &args);
        for key in FINAL_METRICS {
            assert_eq!(
                t["metrics"][key], want[key],
                "seed {seed} {key}: after the outage {} vs uninterrupted {}",
                t["metrics"][key], want[key]
            );
        }
    }

    // The processes retried with backoff rather than giving up.
    let mut logs: Vec<(String, String)> = c
        .workers
        .iter()
        .map(|w| (w.name.clone(), w.log_text()))
        .collect();
    let coordinator = c.coordinator.as_ref().unwrap();
    logs.push(("coordinator".into(), coordinator.log_text()));
    let retried = |text: &str| text.contains("retrying in") || text.contains("backing off");
    assert!(
        logs.iter().any(|(_, text)| retried(text)),
        "no retry was logged during the outage"
    );
    for (name, text) in &logs {
        for bad in [
            "trial failed",
            "lease expired",
            "handing the trial back",
            "dropping the trial",
            "progress refused",
            "completion refused",
        ] {
            assert!(!text.contains(bad), "{name} logged '{bad}':\n{text}");
        }
    }
}
