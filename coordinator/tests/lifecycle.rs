//! The coordinator served over gRPC, driven by a fake worker and a client: a sweep's whole
//! life with its events and artifacts, and lease expiry with retry and fencing.

mod common;

use std::time::Duration;

use common::*;
use tonic::Code;
use tonic::transport::Channel;
use wick_common::store::keys;
use wick_proto::v1::sweeps_client::SweepsClient;
use wick_proto::v1::{
    BestTrialParams, EpochMetrics, FailParams, GetArtifactParams, HeartbeatParams, LeaseParams,
    SubmitSweepParams, SweepEvent, WatchSweepParams,
};

/// A trial's `metrics.jsonl` as GetArtifact serves it (a running trial's lines are still
/// in the coordinator's log, not in the file).
async fn live_metrics(sweeps: &mut SweepsClient<Channel>, trial: &str) -> Vec<u8> {
    sweeps
        .get_artifact(GetArtifactParams {
            trial_id: trial.into(),
            name: "metrics.jsonl".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .data
        .to_vec()
}

/// Collects a watch stream until it ends.
fn collect(mut stream: tonic::Streaming<SweepEvent>) -> tokio::task::JoinHandle<Vec<SweepEvent>> {
    tokio::spawn(async move {
        let mut out = Vec::new();
        while let Ok(Some(e)) = stream.message().await {
            out.push(e);
        }
        out
    })
}

fn kinds(events: &[SweepEvent], trial: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.trial.as_ref().is_some_and(|t| t.trial_id == trial))
        .map(|e| e.kind.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_runs_to_the_end_with_artifacts_promoted_and_events_streamed() {
    let (_dir, url, store) = temp_store();
    let server = Running::start(config(&url)).await;
    let (mut sweeps, mut work) = (server.sweeps().await, server.work().await);

    let submitted = sweeps
        .submit_sweep(SubmitSweepParams {
            spec: Some(spec(&[12], &[1.0], 3)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((submitted.trial_ids.len(), submitted.queued), (2, 2));
    let sid = submitted.sweep_id.clone();
    let stream = sweeps
        .watch_sweep(WatchSweepParams {
            sweep_id: sid.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let events = collect(stream);

    let w = register(&mut work, "gpu-a", "").await;
    let a = lease(&mut work, &w).await;
    assert_eq!((a.attempt, a.resume_checkpoint.as_str()), (1, ""));
    assert_eq!(
        a.trial_id, submitted.trial_ids[0],
        "grid order: covid first"
    );
    assert_eq!(
        a.data.as_ref().unwrap().covid_csv,
        "data/sha256-aa/covid.csv"
    );
    finish(&mut work, &store, &a, r#"{"best_test_acc":0.75}"#).await;

    // Artifacts promoted, staging gone, documents written.
    let id = &a.trial_id;
    assert_eq!(
        store
            .get(&keys::trial_model(id))
            .await
            .unwrap()
            .unwrap()
            .as_ref(),
        b"weights"
    );
    assert!(
        store
            .exists(&keys::trial_artifact(id, "learning_curves.png"))
            .await
            .unwrap()
    );
    assert!(
        store
            .list(&format!("trials/{id}/staging/"))
            .await
            .unwrap()
            .is_empty()
    );
    let summary = store.get(&keys::trial_summary(id)).await.unwrap().unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&summary).unwrap()["best_test_acc"],
        0.75
    );
    let metrics = store.get(&keys::trial_metrics(id)).await.unwrap().unwrap();
    assert_eq!(String::from_utf8_lossy(&metrics).lines().count(), 3);
    assert!(store.exists(&keys::sweep_spec(&sid)).await.unwrap());
    assert!(
        store
            .exists(&format!("trials/{id}/data.json"))
            .await
            .unwrap()
    );
    let t = trial_status(&mut sweeps, &sid, id).await;
    assert_eq!(
        (t.state.as_str(), t.epoch, t.epochs, t.worker.as_str()),
        ("succeeded", 3, 3, "gpu-a")
    );

    // The VAE trial fails on its own error: not retried.
    let b = lease(&mut work, &w).await;
    work.fail(FailParams {
        lease_id: b.lease_id.clone(),
        trial_id: b.trial_id.clone(),
        message: "bad size".into(),
        retryable: false,
    })
    .await
    .unwrap();
    let none = work
        .lease(LeaseParams {
            worker_id: w.clone(),
            wait_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        none.assignment.is_none(),
        "a failed trial is not leased again"
    );
    let t = trial_status(&mut sweeps, &sid, &b.trial_id).await;
    assert!(
        t.state == "failed" && t.message.contains("bad size"),
        "{t:?}"
    );

    // The watch saw every step and ended on its own once both trials were finished.
    let events = tokio::time::timeout(Duration::from_secs(5), events)
        .await
        .expect("the watch ends")
        .unwrap();
    assert_eq!(
        kinds(&events, id),
        [
            "snapshot",
            "running",
            "epoch",
            "epoch",
            "epoch",
            "succeeded"
        ]
    );
    assert_eq!(
        kinds(&events, &b.trial_id),
        ["snapshot", "running", "failed"]
    );
    let running = events
        .iter()
        .find(|e| e.kind == "running")
        .unwrap()
        .trial
        .clone()
        .unwrap();
    assert_eq!(running.worker, "gpu-a");

    // A finished sweep's watch sends its snapshot and ends.
    let again = sweeps
        .watch_sweep(WatchSweepParams {
            sweep_id: sid[..6].into(),
        })
        .await
        .unwrap()
        .into_inner();
    let snap = collect(again).await.unwrap();
    assert_eq!(
        snap.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["snapshot", "snapshot"]
    );

    let best = sweeps
        .best_trial(BestTrialParams {
            task: "covid".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(best.trial_id, *id);
    let e = sweeps
        .best_trial(BestTrialParams {
            task: "vae".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_retried_from_its_checkpoint_and_its_late_reports_are_refused() {
    let (_dir, url, store) = temp_store();
    let server = Running::start(short_leases(&url)).await;
    let (mut sweeps, mut work) = (server.sweeps().await, server.work().await);
    let sid = sweeps
        .submit_sweep(SubmitSweepParams {
            spec: Some(spec(&[12], &[], 5)),
        })
        .await
        .unwrap()
        .into_inner()
        .sweep_id;
    let events = collect(
        sweeps
            .watch_sweep(WatchSweepParams {
                sweep_id: sid.clone(),
            })
            .await
            .unwrap()
            .into_inner(),
    );

    let w1 = register(&mut work, "doomed", "").await;
    let first = lease(&mut work, &w1).await;
    for e in 1..=2 {
        work.report_progress(progress(&first, e)).await.unwrap();
    }
    // w1 goes silent: after a TTL the reaper queues the trial again.
    let t = wait_for(&mut sweeps, &sid, &first.trial_id, |t| t.state == "queued").await;
    assert!(
        t.message.contains("doomed") && t.message.contains("expired"),
        "{t:?}"
    );
    assert_eq!(t.epoch, 2, "back to its checkpoint");

    let w2 = register(&mut work, "rescuer", "").await;
    let second = lease(&mut work, &w2).await;
    assert_eq!(second.trial_id, first.trial_id);
    assert_eq!(second.attempt, 2);
    assert_eq!(
        second.resume_checkpoint,
        ckpt_key(&first, 2),
        "resumes from the last checkpoint"
    );

    // The presumed-dead worker wakes up: everything it sends is refused, nothing promoted.
    let late = work.report_progress(progress(&first, 3)).await.unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition, "{late:?}");
    let p = complete_params(&store, &first, r#"{"best_test_acc":0.1}"#, b"stale").await;
    let late = work.complete(p).await.unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition, "{late:?}");
    assert!(
        !store
            .exists(&keys::trial_model(&first.trial_id))
            .await
            .unwrap()
    );
    assert!(
        !store
            .exists(&keys::trial_summary(&first.trial_id))
            .await
            .unwrap()
    );
    let revoked = work
        .heartbeat(HeartbeatParams {
            worker_id: w1,
            lease_ids: vec![first.lease_id.clone(), second.lease_id.clone()],
        })
        .await
        .unwrap()
        .into_inner()
        .revoked;
    assert_eq!(revoked, [first.lease_id.as_str()]);

    // The rescuer resumes at epoch 3 and finishes; its model is the one promoted.
    for e in 3..=5 {
        let mut p = progress(&second, e);
        p.resumed_from_epoch = 2;
        work.report_progress(p).await.unwrap();
    }
    let p = complete_params(&store, &second, r#"{"best_test_acc":0.9}"#, b"fresh").await;
    work.complete(p).await.unwrap();
    assert_eq!(
        store
            .get(&keys::trial_model(&first.trial_id))
            .await
            .unwrap()
            .unwrap()
            .as_ref(),
        b"fresh"
    );
    let metrics = store
        .get(&keys::trial_metrics(&first.trial_id))
        .await
        .unwrap()
        .unwrap();
    let epochs: Vec<u64> = String::from_utf8_lossy(&metrics)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(epochs, [1, 2, 3, 4, 5]);
    let t = trial_status(&mut sweeps, &sid, &first.trial_id).await;
    assert_eq!(
        (
            t.state.as_str(),
            t.attempts,
            t.resumed_from_epoch,
            t.worker.as_str()
        ),
        ("succeeded", 2, 2, "rescuer")
    );

    let events = tokio::time::timeout(Duration::from_secs(5), events)
        .await
        .unwrap()
        .unwrap();
    let k = kinds(&events, &first.trial_id);
    assert_eq!(
        k,
        [
            "snapshot",
            "running",
            "epoch",
            "epoch",
            "retrying",
            "running",
            "epoch",
            "epoch",
            "epoch",
            "succeeded"
        ]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_lease_call_gets_the_trial_of_a_sweep_submitted_meanwhile() {
    let (_dir, url, _store) = temp_store();
    let server = Running::start(config(&url)).await;
    let (mut sweeps, mut work) = (server.sweeps().await, server.work().await);
    let w = register(&mut work, "w1", "").await;

    // With no wait, an empty queue answers "no work" at once.
    let now = work
        .lease(LeaseParams {
            worker_id: w.clone(),
            wait_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(now.assignment.is_none());

    // A call allowed to wait is still pending when the sweep arrives, and answers with it.
    let mut waiting = work.clone();
    let ask = tokio::spawn(async move {
        waiting
            .lease(LeaseParams {
                worker_id: w,
                wait_ms: 20_000,
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!ask.is_finished(), "the call did not wait for work");
    let submitted = sweeps
        .submit_sweep(SubmitSweepParams {
            spec: Some(spec(&[12], &[], 1)),
        })
        .await
        .unwrap()
        .into_inner();
    let got = ask.await.unwrap().unwrap().into_inner();
    let a = got.assignment.expect("the waiting call got the new trial");
    assert_eq!(submitted.trial_ids, vec![a.trial_id]);
    server.stop().await;
}

/// A report may bring several epochs (a worker batches short ones): each is recorded in
/// order, with one metrics line and one watch event each, and a batch out of order is
/// refused whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batched_report_records_every_epoch_in_order() {
    let (_dir, url, store) = temp_store();
    let server = Running::start(config(&url)).await;
    let (mut sweeps, mut work) = (server.sweeps().await, server.work().await);
    let submitted = sweeps
        .submit_sweep(SubmitSweepParams {
            spec: Some(spec(&[12], &[], 6)),
        })
        .await
        .unwrap()
        .into_inner();
    let events = collect(
        sweeps
            .watch_sweep(WatchSweepParams {
                sweep_id: submitted.sweep_id.clone(),
            })
            .await
            .unwrap()
            .into_inner(),
    );
    let w = register(&mut work, "w1", "").await;
    let a = lease(&mut work, &w).await;
    let row = |epoch: u32| EpochMetrics {
        epoch,
        metrics_json: format!(r#"{{"test_acc":0.{epoch}}}"#),
    };
    let mut p = progress(&a, 4);
    p.earlier = vec![row(1), row(3), row(2)];
    let e = work.report_progress(p.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("out of order"), "{e:?}");
    p.earlier = vec![row(1), row(2), row(3)];
    assert!(!work.report_progress(p).await.unwrap().into_inner().stop);

    let t = trial_status(&mut sweeps, &submitted.sweep_id, &a.trial_id).await;
    assert_eq!(t.epoch, 4);
    // A running trial's lines are in the log; GetArtifact shows them as its file.
    let metrics = live_metrics(&mut sweeps, &a.trial_id).await;
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&metrics)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let epochs: Vec<u64> = lines.iter().map(|l| l["epoch"].as_u64().unwrap()).collect();
    assert_eq!(epochs, [1, 2, 3, 4]);
    assert_eq!(lines[1]["test_acc"], 0.2, "{lines:?}");

    // The next report, one epoch alone, appends to the batch's lines.
    work.report_progress(progress(&a, 5)).await.unwrap();
    let metrics = live_metrics(&mut sweeps, &a.trial_id).await;
    assert_eq!(String::from_utf8_lossy(&metrics).lines().count(), 5);
    work.report_progress(progress(&a, 6)).await.unwrap();
    let done = complete_params(&store, &a, r#"{"best_test_acc":0.6}"#, b"w").await;
    work.complete(done).await.unwrap();
    let events = events.await.unwrap();
    let epochs = kinds(&events, &a.trial_id)
        .iter()
        .filter(|k| *k == "epoch")
        .count();
    assert_eq!(
        epochs,
        6,
        "one event per epoch: {:?}",
        kinds(&events, &a.trial_id)
    );
    server.stop().await;
}
