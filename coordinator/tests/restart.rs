//! The coordinator served over gRPC: a restart on the same store, cancellation, and the
//! errors of bad requests.

mod common;

use std::time::Duration;

use common::*;
use tonic::Code;
use wick_common::store::keys;
use wick_proto::v1::{
    CancelSweepParams, GetSweepParams, HeartbeatParams, LeaseParams, ListSweepsParams,
    SubmitSweepParams, SweepEvent, WatchSweepParams,
};

/// Drains a watch stream until it ends.
fn drain(mut stream: tonic::Streaming<SweepEvent>) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok(Some(_)) = stream.message().await {
            n += 1;
        }
        n
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_coordinator_continues_and_reruns_nothing_finished() {
    let (_dir, url, store) = temp_store();
    let server = Running::start(config(&url)).await;
    let (mut sweeps, mut work) = (server.sweeps().await, server.work().await);
    let submitted = sweeps
        .submit_sweep(SubmitSweepParams {
            spec: Some(spec(&[12, 40, 60], &[], 2)),
        })
        .await
        .unwrap()
        .into_inner();
    let sid = submitted.sweep_id.clone();
    let w = register(&mut work, "steady", "").await;
    let done = lease(&mut work, &w).await;
    finish(&mut work, &store, &done, r#"{"best_test_acc":0.6}"#).await;
    let running = lease(&mut work, &w).await;
    work.report_progress(progress(&running, 1)).await.unwrap();
    // An open watch must not hold the shutdown up.
    let watch = drain(
        sweeps
            .watch_sweep(WatchSweepParams {
                sweep_id: sid.clone(),
            })
            .await
            .unwrap()
            .into_inner(),
    );
    server.stop().await;
    tokio::time::timeout(Duration::from_secs(5), watch)
        .await
        .expect("the watch ends at shutdown")
        .unwrap();

    let server = Running::start(config(&url)).await;
    let (mut sweeps, mut work) = (server.sweeps().await, server.work().await);
    let s = sweeps
        .get_sweep(GetSweepParams {
            sweep_id: sid.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let states: Vec<(&str, u32)> = s
        .trials
        .iter()
        .map(|t| (t.state.as_str(), t.epoch))
        .collect();
    assert_eq!(states, [("succeeded", 2), ("running", 1), ("queued", 0)]);
    assert_eq!(s.spec.unwrap().l, [12, 40, 60]);

    // The worker keeps heartbeating its lease across the restart; its old id is unknown.
    let revoked = work
        .heartbeat(HeartbeatParams {
            worker_id: w.clone(),
            lease_ids: vec![running.lease_id.clone()],
        })
        .await
        .unwrap()
        .into_inner()
        .revoked;
    assert!(revoked.is_empty(), "a recorded lease survives the restart");
    let e = work
        .lease(LeaseParams {
            worker_id: w,
            wait_ms: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("Register"), "{e:?}");
    let w = register(&mut work, "steady", "").await;
    let next = lease(&mut work, &w).await;
    assert_eq!(
        next.trial_id, submitted.trial_ids[2],
        "neither the finished nor the running trial is leased"
    );
    assert!(
        work.lease(LeaseParams {
            worker_id: w.clone(),
            wait_ms: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .assignment
        .is_none()
    );
    work.report_progress(progress(&running, 2)).await.unwrap();
    let p = complete_params(&store, &running, "{}", b"w").await;
    work.complete(p).await.unwrap();
    finish(&mut work, &store, &next, "{}").await;

    // Resubmitting the finished sweep names the same sweep and queues nothing.
    let again = sweeps
        .submit_sweep(SubmitSweepParams {
            spec: Some(spec(&[60, 40, 12], &[], 2)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.sweep_id.as_str(), again.queued), (sid.as_str(), 0));
    assert!(
        work.lease(LeaseParams {
            worker_id: w,
            wait_ms: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .assignment
        .is_none()
    );
    let list = sweeps
        .list_sweeps(ListSweepsParams {})
        .await
        .unwrap()
        .into_inner()
        .sweeps;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].states.get("succeeded"), Some(&3));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_epochs_live_in_the_log_and_survive_a_restart() {
    let (_dir, url, store) = temp_store();
    let server = Running::start(config(&url)).await;
    let (mut sweeps, mut work) = (server.sweeps().await, server.work().await);
    let sid = sweeps
        .submit_sweep(SubmitSweepParams {
            spec: Some(spec(&[12], &[], 4)),
        })
        .await
        .unwrap()
        .into_inner()
        .sweep_id;
    let w = register(&mut work, "w", "").await;
    let a = lease(&mut work, &w).await;
    let bare = |epoch| wick_proto::v1::ProgressParams {
        checkpoint_key: String::new(),
        ..progress(&a, epoch)
    };
    work.report_progress(progress(&a, 1)).await.unwrap();
    work.report_progress(bare(2)).await.unwrap();
    let resumed = wick_proto::v1::ProgressParams {
        resumed_from_epoch: 1,
        ..bare(3)
    };
    work.report_progress(resumed).await.unwrap();
    // No document is rewritten per report: the log holds the epochs until the trial ends.
    for key in [
        keys::trial_state(&a.trial_id),
        keys::trial_metrics(&a.trial_id),
    ] {
        assert!(
            !store.exists(&key).await.unwrap(),
            "{key} written mid-trial"
        );
    }
    assert!(
        !store.list("coordinator/wal/").await.unwrap().is_empty(),
        "the log has segments"
    );

    // After a restart the trial shows every acknowledged epoch and keeps its lease.
    server.stop().await;
    let server = Running::start(config(&url)).await;
    let (mut sweeps, mut work) = (server.sweeps().await, server.work().await);
    let t = trial_status(&mut sweeps, &sid, &a.trial_id).await;
    assert_eq!(
        (t.state.as_str(), t.epoch, t.resumed_from_epoch),
        ("running", 3, 1)
    );
    let lines = |bytes: &[u8]| String::from_utf8_lossy(bytes).lines().count();
    let live = sweeps
        .get_artifact(wick_proto::v1::GetArtifactParams {
            trial_id: a.trial_id.clone(),
            name: "metrics.jsonl".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .data;
    assert_eq!(lines(&live), 3, "every epoch's metrics are kept");
    work.report_progress(progress(&a, 4)).await.unwrap();
    let p = complete_params(&store, &a, "{}", b"w").await;
    work.complete(p).await.unwrap();
    // Once the trial ends, its documents are in the store when Complete answers.
    let file = store
        .get(&keys::trial_metrics(&a.trial_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lines(&file), 4);
    let record: serde_json::Value = serde_json::from_slice(
        &store
            .get(&keys::trial_state(&a.trial_id))
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record["state"], "succeeded");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_revokes_leases_and_bad_requests_say_what_is_wrong() {
    let (_dir, url, store) = temp_store();
    let server = Running::start(config(&url)).await;
    let (mut sweeps, mut work) = (server.sweeps().await, server.work().await);

    let bad = sweeps
        .submit_sweep(SubmitSweepParams {
            spec: Some(spec(&[0], &[], 2)),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("window length L"), "{bad:?}");
    let mut huge = spec(&(1..=200).collect::<Vec<_>>(), &[], 2);
    huge.seed = (0..1000).collect();
    let bad = sweeps
        .submit_sweep(SubmitSweepParams { spec: Some(huge) })
        .await
        .unwrap_err();
    assert!(
        bad.code() == Code::InvalidArgument && bad.message().contains("above the limit of 100000"),
        "{bad:?}"
    );
    let e = sweeps
        .get_sweep(GetSweepParams {
            sweep_id: "s-nope".into(),
        })
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::NotFound && e.message().contains("client list"),
        "{e:?}"
    );

    let sid = sweeps
        .submit_sweep(SubmitSweepParams {
            spec: Some(spec(&[12, 40], &[], 2)),
        })
        .await
        .unwrap()
        .into_inner()
        .sweep_id;
    let w = register(&mut work, "w", "").await;
    let a = lease(&mut work, &w).await;
    let n = sweeps
        .cancel_sweep(CancelSweepParams {
            sweep_id: sid.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .cancelled;
    assert_eq!(n, 2);
    let revoked = work
        .heartbeat(HeartbeatParams {
            worker_id: w.clone(),
            lease_ids: vec![a.lease_id.clone()],
        })
        .await
        .unwrap()
        .into_inner()
        .revoked;
    assert_eq!(revoked, [a.lease_id.as_str()]);
    let p = complete_params(&store, &a, "{}", b"w").await;
    assert_eq!(
        work.complete(p).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    assert!(
        work.lease(LeaseParams {
            worker_id: w,
            wait_ms: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .assignment
        .is_none()
    );

    // Resubmitting a cancelled sweep queues its trials again.
    let again = sweeps
        .submit_sweep(SubmitSweepParams {
            spec: Some(spec(&[12, 40], &[], 2)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.queued, 2);
    server.stop().await;
}
