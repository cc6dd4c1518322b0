//! A worker killed with SIGKILL in the middle of a trial: the trial's lease expires, the
//! other worker takes it, resumes from the last checkpoint in the store (not epoch 0), and
//! ends with exactly the metrics of an uninterrupted run.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Cluster, binary, wait_for};

const TRIAL: [&str; 10] = [
    "--cell", "gru", "--hidden", "16", "--l", "12", "--epochs", "8", "--seed", "4",
];

#[test]
fn killed_worker_trial_resumes_elsewhere_with_identical_metrics() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let data_s = data.to_string_lossy().to_string();

    // The uninterrupted run, through the same training code, for comparison.
    let out = tempfile::tempdir().unwrap();
    let local = Command::new(binary("worker"))
        .args(["train", "--task", "covid", "--json", "--data", &data_s])
        .args(TRIAL)
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        local.status.success(),
        "{}",
        String::from_utf8_lossy(&local.stderr)
    );
    let local: serde_json::Value = serde_json::from_slice(&local.stdout).unwrap();

    let Some(mut c) = Cluster::start() else {
        return;
    };
    let a = c.start_worker("doomed");
    let mut args = vec!["sweep", "--task", "covid", "--data", &data_s, "--detach"];
    args.extend(TRIAL);
    let sweep = c.client(&args)["sweep"].as_str().unwrap().to_string();

    wait_for(
        Duration::from_secs(120),
        "two epochs on the first worker",
        || {
            let t = c.trials(&sweep).remove(0);
            (t["epoch"].as_u64().unwrap_or(0) >= 2).then_some(())
        },
    );
    c.start_worker("survivor");
    c.workers[a].kill9();

    let t = c.wait_done(&sweep, Duration::from_secs(180)).remove(0);
    assert_eq!(t["state"], "succeeded", "{t}");
    assert_eq!(t["worker"], "survivor");
    assert_eq!(t["attempts"], 2, "{t}");
    let from = t["resumed_from_epoch"].as_u64().unwrap();
    assert!(
        from >= 2,
        "resumed from epoch {from}, not from a checkpoint: {t}"
    );
    let m = &t["metrics"];
    for key in common::FINAL_METRICS {
        assert_eq!(
            m[key], local[key],
            "{key}: cluster {} vs uninterrupted {}",
            m[key], local[key]
        );
    }
}
