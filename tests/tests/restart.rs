//! The coordinator killed with SIGKILL and restarted in the middle of a sweep: the sweep
//! completes, nothing finished runs again, and resubmitting it queues nothing.

mod common;

use std::time::Duration;

use common::{Cluster, wait_for};

#[test]
fn coordinator_restart_loses_nothing_and_reruns_nothing() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let data = data.to_string_lossy().to_string();
    let Some(mut c) = Cluster::start() else {
        return;
    };
    c.start_worker("w1");
    let args = [
        "sweep", "--task", "covid", "--data", &data, "--cell", "rnn", "--hidden", "8", "--l", "12",
        "--epochs", "12", "--seed", "0,1,2", "--detach",
    ];
    let sweep = c.client(&args)["sweep"].as_str().unwrap().to_string();
    let first_done = wait_for(Duration::from_secs(120), "a first trial to succeed", || {
        let t = c.trials(&sweep);
        t.iter()
            .find(|t| t["state"] == "succeeded")
            .map(|t| t["id"].as_str().unwrap().to_string())
    });
    let unfinished = c
        .trials(&sweep)
        .iter()
        .filter(|t| t["state"] != "succeeded")
        .count();
    assert!(
        unfinished > 0,
        "the restart must hit the sweep in the middle"
    );
    c.coordinator.as_mut().unwrap().kill9();
    c.start_coordinator();

    let trials = c.wait_done(&sweep, Duration::from_secs(180));
    assert_eq!(trials.len(), 3);
    for t in &trials {
        assert_eq!(t["state"], "succeeded", "{t}");
    }
    let first = trials
        .iter()
        .find(|t| t["id"] == first_done.as_str())
        .unwrap();
    assert_eq!(
        first["attempts"], 1,
        "a trial finished before the restart ran again: {first}"
    );
    let again = c.client(&args);
    assert_eq!(again["queued"], 0, "{again}");
}
