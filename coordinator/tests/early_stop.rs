//! Early stopping and the concurrency limit through the real services: a scripted worker
//! runs every trial of a sweep side by side, one epoch at a time, reporting accuracies
//! that rank the trials by their hidden size. ASHA and median stopping stop the weak
//! trials early (marked stopped_early with the reason), spend fewer epochs than the full
//! grid, and never stop the best one; `max_parallel` caps the leases a sweep holds.

mod common;

use std::collections::HashMap;

use common::*;
use tonic::transport::Channel;
use wick_common::store::keys;
use wick_common::trial::TrialConfig;
use wick_proto::v1::sweeps_client::SweepsClient;
use wick_proto::v1::work_client::WorkClient;
use wick_proto::v1::{Assignment, EpochMetrics, LeaseParams, SubmitSweepParams, SweepSpec};

const EPOCHS: u32 = 9;

fn covid_spec(hidden: &[u32], policy: &str) -> SweepSpec {
    SweepSpec {
        tasks: vec!["covid".into()],
        hidden: hidden.to_vec(),
        early_stop: policy.into(),
        min_epochs: if policy == "median" { 2 } else { 1 },
        eta: 3,
        ..spec(&[12], &[], EPOCHS)
    }
}

fn hidden_of(a: &Assignment) -> usize {
    match serde_json::from_str::<TrialConfig>(&a.config_json).unwrap() {
        TrialConfig::Covid(c) => c.hidden,
        TrialConfig::Vae(_) => panic!("covid only"),
    }
}

/// Runs every trial of the sweep in lockstep, in `order` of hidden sizes within each
/// epoch; accuracy grows with the hidden size. Returns the epochs run and, per hidden
/// size, the final state and message.
async fn run(policy: &str, order: &[u32]) -> (u32, HashMap<usize, (String, String)>) {
    let (_dir, url, store) = temp_store();
    let server = Running::start(config(&url)).await;
    let (mut sweeps, mut work) = (server.sweeps().await, server.work().await);
    let submitted = sweeps
        .submit_sweep(SubmitSweepParams {
            spec: Some(covid_spec(order, policy)),
        })
        .await
        .unwrap()
        .into_inner();
    let w = register(&mut work, "w", "").await;
    let mut running: Vec<Assignment> = Vec::new();
    for _ in 0..order.len() {
        running.push(lease(&mut work, &w).await);
    }
    running.sort_by_key(|a| order.iter().position(|&h| h as usize == hidden_of(a)));
    let mut epochs_run = 0;
    for epoch in 1..=EPOCHS {
        let mut going = Vec::new();
        for a in running {
            let mut p = progress(&a, epoch);
            let acc = 0.5 + 0.02 * hidden_of(&a) as f64 + 0.001 * epoch as f64;
            p.metrics_json = format!(r#"{{"epoch":{epoch},"test_acc":{acc}}}"#);
            let answer = work.report_progress(p).await.unwrap().into_inner();
            epochs_run += 1;
            if answer.stop {
                assert!(!answer.reason.is_empty());
            } else if epoch == EPOCHS {
                let done = complete_params(&store, &a, r#"{"best_test_acc":0.9}"#, b"w").await;
                work.complete(done).await.unwrap();
            } else {
                going.push(a);
            }
        }
        running = going;
    }
    let mut states = HashMap::new();
    for id in &submitted.trial_ids {
        let t = trial_status(&mut sweeps, &submitted.sweep_id, id).await;
        let TrialConfig::Covid(c) = serde_json::from_str(&t.config_json).unwrap() else {
            panic!("covid only")
        };
        states.insert(c.hidden, (t.state, t.message));
    }
    server.stop().await;
    (epochs_run, states)
}

#[tokio::test]
async fn asha_spends_fewer_epochs_than_the_grid_and_keeps_the_best_trial() {
    let order = [5, 9, 1, 7, 3, 8, 2, 6, 4];
    let (asha, states) = run("asha", &order).await;
    let (grid, all) = run("none", &order).await;
    assert_eq!(grid, 9 * EPOCHS, "without a policy every epoch runs");
    assert!(all.values().all(|(s, _)| s == "succeeded"), "{all:?}");
    assert!(
        asha < grid / 2,
        "ASHA ran {asha} of the grid's {grid} epochs"
    );
    assert_eq!(
        states[&9].0, "succeeded",
        "the best trial was stopped: {states:?}"
    );
    let stopped: Vec<_> = states
        .values()
        .filter(|(s, _)| s == "stopped_early")
        .collect();
    assert!(stopped.len() >= 6, "{states:?}");
    assert!(
        stopped.iter().all(|(_, m)| m.contains("ASHA rung")),
        "{stopped:?}"
    );
}

#[tokio::test]
async fn median_stopping_stops_trials_below_the_median_after_the_grace_epochs() {
    let (epochs, states) = run("median", &[5, 4, 3, 2, 1]).await;
    assert_eq!(states[&5].0, "succeeded");
    assert_eq!(
        states[&4].0, "succeeded",
        "two peers are needed before stopping anyone"
    );
    for h in [3, 2, 1] {
        let (state, message) = &states[&h];
        assert_eq!(state, "stopped_early", "hidden {h}: {states:?}");
        assert!(
            message.contains("epoch 2") && message.contains("median"),
            "{message}"
        );
    }
    assert_eq!(
        epochs,
        2 * EPOCHS + 3 * 2,
        "stopped at epoch 2, after the grace period"
    );
}

#[tokio::test]
async fn max_parallel_caps_the_running_trials_of_a_sweep() {
    let (_dir, url, store) = temp_store();
    let server = Running::start(config(&url)).await;
    let (mut sweeps, mut work) = (server.sweeps().await, server.work().await);
    let spec = SweepSpec {
        max_parallel: 2,
        ..spec(&[12, 20, 30], &[], 1)
    };
    sweeps
        .submit_sweep(SubmitSweepParams { spec: Some(spec) })
        .await
        .unwrap();
    let w = register(&mut work, "w", "").await;
    let a = lease(&mut work, &w).await;
    let _b = lease(&mut work, &w).await;
    let none = work
        .lease(LeaseParams {
            worker_id: w.clone(),
            wait_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(none.assignment.is_none(), "a third lease while two run");
    finish(&mut work, &store, &a, r#"{"best_test_acc":0.7}"#).await;
    lease(&mut work, &w).await;
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_policy_is_refused_naming_the_choices() {
    let (_dir, url, _store) = temp_store();
    let server = Running::start(config(&url)).await;
    let mut sweeps = server.sweeps().await;
    let e = sweeps
        .submit_sweep(SubmitSweepParams {
            spec: Some(covid_spec(&[8], "hyperband")),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message().contains("none, median or asha"),
        "{}",
        e.message()
    );
    server.stop().await;
}

/// Submits a median-stopping sweep of hidden sizes 5, 4 and 3 and leases all three
/// trials; returns the sweep id and the leases by hidden size.
async fn median_of_three(
    sweeps: &mut SweepsClient<Channel>,
    work: &mut WorkClient<Channel>,
) -> (String, HashMap<usize, Assignment>) {
    let submitted = sweeps
        .submit_sweep(SubmitSweepParams {
            spec: Some(covid_spec(&[5, 4, 3], "median")),
        })
        .await
        .unwrap()
        .into_inner();
    let w = register(work, "w", "").await;
    let mut leases = HashMap::new();
    for _ in 0..3 {
        let a = lease(work, &w).await;
        leases.insert(hidden_of(&a), a);
    }
    (submitted.sweep_id, leases)
}

#[tokio::test]
async fn a_restarted_coordinator_still_judges_against_the_earlier_epochs() {
    let (_dir, url, _store) = temp_store();
    let server = Running::start(config(&url)).await;
    let (mut sweeps, mut work) = (server.sweeps().await, server.work().await);
    let (sweep_id, leases) = median_of_three(&mut sweeps, &mut work).await;
    let report = |a: &Assignment, epoch: u32| {
        let mut p = progress(a, epoch);
        let acc = 0.5 + 0.02 * hidden_of(a) as f64;
        p.metrics_json = format!(r#"{{"epoch":{epoch},"test_acc":{acc}}}"#);
        p
    };
    for h in [5, 4] {
        for e in 1..=2 {
            let r = work.report_progress(report(&leases[&h], e)).await.unwrap();
            assert!(!r.into_inner().stop);
        }
    }
    // The scores of 5 and 4 at epoch 2 exist only in their metrics files after this.
    server.stop().await;
    let server = Running::start(config(&url)).await;
    let (mut sweeps, mut work) = (server.sweeps().await, server.work().await);
    let weak = &leases[&3];
    let first = work.report_progress(report(weak, 1)).await.unwrap();
    assert!(
        !first.into_inner().stop,
        "epoch 1 is inside the grace period"
    );
    let second = work
        .report_progress(report(weak, 2))
        .await
        .unwrap()
        .into_inner();
    assert!(
        second.stop,
        "below both earlier trials at epoch 2, yet not stopped"
    );
    let t = trial_status(&mut sweeps, &sweep_id, &weak.trial_id).await;
    assert_eq!(t.state, "stopped_early", "{t:?}");
    server.stop().await;
}

/// A batched report is judged epoch by epoch: a trial below the median at epoch 2 is
/// stopped there even when epochs 3 and 4 came in the same report, and only what it
/// trained up to the stop is recorded.
#[tokio::test]
async fn a_batched_report_is_stopped_at_the_epoch_that_fell_below() {
    let (_dir, url, store) = temp_store();
    let server = Running::start(config(&url)).await;
    let (mut sweeps, mut work) = (server.sweeps().await, server.work().await);
    let (sweep_id, leases) = median_of_three(&mut sweeps, &mut work).await;
    let metrics = |a: &Assignment| {
        let acc = 0.5 + 0.02 * hidden_of(a) as f64;
        format!(r#"{{"test_acc":{acc}}}"#)
    };
    for h in [5, 4] {
        for e in 1..=4 {
            let mut p = progress(&leases[&h], e);
            p.metrics_json = metrics(&leases[&h]);
            assert!(!work.report_progress(p).await.unwrap().into_inner().stop);
        }
    }
    let weak = &leases[&3];
    let mut p = progress(weak, 4);
    p.metrics_json = metrics(weak);
    p.earlier = (1..4)
        .map(|epoch| EpochMetrics {
            epoch,
            metrics_json: metrics(weak),
        })
        .collect();
    let answer = work.report_progress(p).await.unwrap().into_inner();
    assert!(
        answer.stop,
        "below both other trials from epoch 2, yet not stopped"
    );
    assert!(answer.reason.contains("epoch 2"), "{}", answer.reason);
    let t = trial_status(&mut sweeps, &sweep_id, &weak.trial_id).await;
    assert_eq!((t.state.as_str(), t.epoch), ("stopped_early", 2), "{t:?}");
    let lines = store
        .get(&keys::trial_metrics(&weak.trial_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&lines).lines().count(), 2);
    server.stop().await;
}
