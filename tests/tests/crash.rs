//! The coordinator killed with SIGKILL while eight workers report epochs as fast as it
//! answers: every epoch it acknowledged survives the restart exactly once, and nothing
//! a worker never sent is claimed. The workers are simulated at the protocol level (no
//! training), so the reports come at the rate the coordinator can take them: each keeps,
//! per trial, which epochs the coordinator answered and every metrics object it sent, and
//! re-sends an epoch whose report failed, as a real worker does. Their leases must
//! outlive the restart (the coordinator gives recorded leases one TTL of grace and the
//! heartbeats go on), so every trial ends succeeded on its first attempt, with one
//! `metrics.jsonl` line per epoch holding what was sent last for it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Cluster, HEARTBEAT_MS};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use wick_proto::v1::sweeps_client::SweepsClient;
use wick_proto::v1::work_client::WorkClient;
use wick_proto::v1::{
    CompleteParams, GetArtifactParams, HeartbeatParams, LeaseParams, ProgressParams, RegisterParams,
};

/// Simulated workers, one trial each.
const WORKERS: usize = 8;
/// Epochs per trial: many, so that the kill (half-way at the latest) catches every
/// trial mid-run, yet few enough that the rest after the restart takes seconds.
const EPOCHS: u32 = 200;
/// How long the workers report before the kill, unless a trial gets half-way first (a
/// faster coordinator must still be killed in the middle).
const REPORTING_BEFORE_KILL: Duration = Duration::from_millis(1500);
/// Pause after a failed call: short, so the workers are back as soon as the coordinator.
const BACKOFF: Duration = Duration::from_millis(50);
/// Longest one call may take; a call to a killed process fails at once, this bounds one
/// that hangs.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest the workers may take, from their start to their last Complete.
const WORKERS_DEADLINE: Duration = Duration::from_secs(45);

/// What the test's main thread lets the workers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Report as fast as the coordinator answers (until the kill).
    Report,
    /// Send nothing (while the test reads what the restarted coordinator recorded).
    Hold,
    /// Report the remaining epochs and complete.
    Finish,
}

/// What one simulated worker knows of its trial, shared with the main thread.
#[derive(Debug, Default, Clone)]
struct Book {
    /// The trial leased.
    trial: String,
    /// Its lease, kept across the restart.
    lease: String,
    /// Highest epoch sent while the coordinator may still have been alive to receive it:
    /// the most it may have recorded.
    sent_at_kill: u32,
    /// Epochs the coordinator answered Ok.
    acked: BTreeSet<u32>,
    /// Every metrics object sent for each epoch, oldest first; the last one of an epoch
    /// is what its line must hold in the end.
    sends: BTreeMap<u32, Vec<Value>>,
    /// Reports that failed and were sent again.
    failed_reports: u32,
    /// Worker name.
    name: String,
    /// Id from the latest registration (heartbeats send it).
    worker_id: String,
    /// Registrations, the first one included.
    registrations: u32,
    /// Leases the heartbeats were told are revoked (must stay empty).
    revoked: Vec<String>,
    /// The worker is idle in [`Phase::Hold`].
    holding: bool,
}

/// A book shared between a worker's tasks and the main thread.
type Shared = Arc<Mutex<Book>>;

/// The book, locked (briefly: never across an await).
fn book(b: &Shared) -> std::sync::MutexGuard<'_, Book> {
    b.lock().unwrap_or_else(|e| e.into_inner())
}

/// A copy of a worker's book, for the main thread to read while the runtime goes on: a
/// lock held across a call on the runtime would stall the worker's tasks on that runtime.
fn copy(b: &Shared) -> Book {
    book(b).clone()
}

/// The metrics a worker sends for `epoch` on its `send`-th report: values that name the
/// epoch, and the send, so that a re-sent epoch's line can be told from the first try's.
/// Short decimals, which read back exactly: serde_json's default parser (the
/// coordinator's, and this test's) may put a float of 17 significant digits one unit in
/// the last place off.
fn metrics(epoch: u32, send: u32) -> Value {
    json!({
        "train_loss": f64::from(epoch) + 0.5,
        "test_acc": f64::from(epoch) / 1000.0,
        "send": send,
    })
}

/// Whether a failed call may succeed when tried again: the coordinator is down or
/// restarting, as opposed to an answer about the request (a refused lease above all).
fn transient(s: &Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Unknown
            | Code::Aborted
            | Code::Internal
            | Code::Cancelled
    )
}

/// A fresh connection to the coordinator, or `None` while it is down.
async fn connect(url: &str) -> Option<WorkClient<Channel>> {
    let channel = Endpoint::from_shared(url.to_string())
        .ok()?
        .connect_timeout(CALL_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .connect()
        .await
        .ok()?;
    Some(WorkClient::new(channel))
}

/// Registers as `name`; returns the worker id.
async fn register(work: &mut WorkClient<Channel>, name: &str) -> Result<String, Status> {
    let r = work
        .register(RegisterParams {
            name: name.into(),
            device: "cpu".into(),
            slots: 1,
            inference_addr: String::new(),
        })
        .await?;
    Ok(r.into_inner().worker_id)
}

/// Registers on `work` and makes the new id the worker's; `seen` is the id found stale,
/// so that of two tasks noticing the same restart only one registers.
async fn register_again(
    work: &mut WorkClient<Channel>,
    b: &Shared,
    seen: &str,
) -> Result<(), Status> {
    let name = book(b).name.clone();
    let id = register(work, &name).await?;
    let mut bk = book(b);
    if bk.worker_id == seen {
        bk.worker_id = id;
        bk.registrations += 1;
    }
    Ok(())
}

/// Heartbeats the lease every HEARTBEAT_MS on a connection of its own until aborted, and
/// registers again when the coordinator says it does not know the worker. The lease is
/// kept whatever the worker's id.
async fn heartbeats(url: String, b: Shared) {
    let lease = book(&b).lease.clone();
    let mut work: Option<WorkClient<Channel>> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(HEARTBEAT_MS));
    loop {
        tick.tick().await;
        if work.is_none() {
            work = connect(&url).await;
        }
        let Some(w) = work.as_mut() else {
            continue;
        };
        let worker_id = book(&b).worker_id.clone();
        let beat = HeartbeatParams {
            worker_id: worker_id.clone(),
            lease_ids: vec![lease.clone()],
        };
        match w.heartbeat(beat).await {
            Ok(r) => book(&b).revoked.extend(r.into_inner().revoked),
            Err(s) if s.code() == Code::NotFound => {
                if register_again(w, &b, &worker_id).await.is_err() {
                    work = None;
                }
            }
            // Down or restarting: the next tick tries a new connection.
            Err(_) => work = None,
        }
    }
}

/// Stages the model a Complete must find under the lease's prefix, as a worker uploads
/// it; written straight into `store_dir`, the folder the S3 server serves, since the
/// test has no S3 client of its own. Returns the prefix.
async fn stage_model(store_dir: &Path, trial: &str, lease: &str) -> String {
    let prefix = format!("trials/{trial}/staging/{lease}/");
    let dir = store_dir.join(&prefix);
    tokio::fs::create_dir_all(&dir).await.unwrap();
    tokio::fs::write(dir.join("model.safetensors"), [0u8; 64])
        .await
        .unwrap();
    prefix
}

/// One simulated worker: registers, leases a trial, heartbeats it, reports its epochs as
/// fast as the coordinator answers (following `phase`), then completes it. An error says
/// what the coordinator refused.
async fn worker(
    i: usize,
    url: String,
    store_dir: PathBuf,
    b: Shared,
    mut phase: watch::Receiver<Phase>,
    deadline: Instant,
) -> Result<(), String> {
    let name = format!("sim-{i}");
    let mut work = connect(&url)
        .await
        .ok_or_else(|| format!("{name}: cannot reach the coordinator at {url}"))?;
    let worker_id = register(&mut work, &name)
        .await
        .map_err(|s| format!("{name}: Register: {s}"))?;
    {
        let mut bk = book(&b);
        bk.name.clone_from(&name);
        bk.worker_id.clone_from(&worker_id);
        bk.registrations = 1;
    }
    let a = work
        .lease(LeaseParams {
            worker_id,
            wait_ms: 5000,
        })
        .await
        .map_err(|s| format!("{name}: Lease: {s}"))?
        .into_inner()
        .assignment
        .ok_or_else(|| format!("{name}: no trial to lease"))?;
    {
        let mut bk = book(&b);
        bk.trial.clone_from(&a.trial_id);
        bk.lease.clone_from(&a.lease_id);
    }
    let beats = tokio::spawn(heartbeats(url.clone(), b.clone()));

    let mut work = Some(work);
    let (mut epoch, mut send) = (1, 0);
    // The worker id in use when a report failed: register again before the next one.
    let mut stale: Option<String> = None;
    while epoch <= EPOCHS {
        if Instant::now() > deadline {
            beats.abort();
            return Err(format!(
                "{name}: still at epoch {epoch} of trial {} after {WORKERS_DEADLINE:?}",
                a.trial_id
            ));
        }
        if *phase.borrow() == Phase::Hold {
            book(&b).holding = true;
            let _ = phase.wait_for(|p| *p != Phase::Hold).await;
            book(&b).holding = false;
        }
        let current = *phase.borrow();
        if work.is_none() {
            work = connect(&url).await;
        }
        let Some(w) = work.as_mut() else {
            tokio::time::sleep(BACKOFF).await;
            continue;
        };
        if let Some(seen) = stale.take()
            && register_again(w, &b, &seen).await.is_err()
        {
            stale = Some(seen);
            work = None;
            tokio::time::sleep(BACKOFF).await;
            continue;
        }
        send += 1;
        let m = metrics(epoch, send);
        {
            let mut bk = book(&b);
            bk.sends.entry(epoch).or_default().push(m.clone());
            if current == Phase::Report {
                bk.sent_at_kill = bk.sent_at_kill.max(epoch);
            }
        }
        let report = ProgressParams {
            lease_id: a.lease_id.clone(),
            trial_id: a.trial_id.clone(),
            epoch,
            metrics_json: m.to_string(),
            resumed_from_epoch: 0,
            checkpoint_key: String::new(),
            earlier: Vec::new(),
        };
        match w.report_progress(report).await {
            Ok(r) if r.get_ref().stop => {
                beats.abort();
                return Err(format!(
                    "{name}: trial {} stopped at epoch {epoch}: {}",
                    a.trial_id,
                    r.get_ref().reason
                ));
            }
            Ok(_) => {
                book(&b).acked.insert(epoch);
                epoch += 1;
            }
            Err(s) if transient(&s) => {
                // Unacknowledged: the same epoch goes again once the coordinator is back.
                let seen = {
                    let mut bk = book(&b);
                    bk.failed_reports += 1;
                    bk.worker_id.clone()
                };
                // The coordinator went away and may come back without knowing this worker.
                stale = Some(seen);
                work = None;
                tokio::time::sleep(BACKOFF).await;
            }
            Err(s) => {
                beats.abort();
                return Err(format!(
                    "{name}: report of epoch {epoch} of trial {} under lease {} refused: {s}",
                    a.trial_id, a.lease_id
                ));
            }
        }
    }
    // A heartbeat answered after the Complete would list the finished lease as revoked.
    beats.abort();
    let _ = beats.await;
    let staging_prefix = stage_model(&store_dir, &a.trial_id, &a.lease_id).await;
    let summary = json!({"task": "covid", "final_test_acc": 0.1, "best_test_acc": 0.1,
        "final_train_acc": 0.1, "best_epoch": EPOCHS, "epochs": EPOCHS});
    let mut w = match work {
        Some(w) => w,
        None => connect(&url)
            .await
            .ok_or_else(|| format!("{name}: cannot reach the coordinator to complete"))?,
    };
    w.complete(CompleteParams {
        lease_id: a.lease_id.clone(),
        trial_id: a.trial_id.clone(),
        summary_json: summary.to_string(),
        staging_prefix,
        staged: Vec::new(),
    })
    .await
    .map_err(|s| format!("{name}: Complete of trial {}: {s}", a.trial_id))?;
    Ok(())
}

/// The lines of a trial's `metrics.jsonl` as the coordinator serves it (none while it
/// has none).
async fn metric_lines(url: &str, trial: &str) -> Vec<Value> {
    let mut sweeps = SweepsClient::connect(url.to_string()).await.unwrap();
    let r = sweeps
        .get_artifact(GetArtifactParams {
            trial_id: trial.into(),
            name: "metrics.jsonl".into(),
        })
        .await;
    match r {
        Ok(r) => String::from_utf8_lossy(&r.into_inner().data)
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("{trial}: metrics line {l:?} is not JSON: {e}"))
            })
            .collect(),
        Err(s) if s.code() == Code::NotFound => Vec::new(),
        Err(s) => panic!("{trial}: GetArtifact metrics.jsonl: {s}"),
    }
}

/// Checks that `lines` hold epochs 1, 2, … in order, once each, and that each holds what
/// `b`'s worker sent for it: the last send of an acknowledged epoch (no later one was
/// made), any send of one that was not acknowledged. Returns the last epoch.
fn check_lines(when: &str, lines: &[Value], b: &Book) -> u32 {
    for (i, line) in lines.iter().enumerate() {
        let epoch = i as u32 + 1;
        assert_eq!(
            line["epoch"].as_u64(),
            Some(u64::from(epoch)),
            "{when}: trial {}: line {} should be epoch {epoch} (each epoch once, in order): {lines:?}",
            b.trial,
            i + 1
        );
        let sends = b.sends.get(&epoch).map(Vec::as_slice).unwrap_or_default();
        let holds = |sent: &Value| {
            sent.as_object()
                .unwrap()
                .iter()
                .all(|(k, v)| line.get(k) == Some(v))
        };
        let ok = if b.acked.contains(&epoch) {
            sends.last().is_some_and(holds)
        } else {
            sends.iter().any(holds)
        };
        assert!(
            ok,
            "{when}: trial {}: the line of epoch {epoch} is {line}, but the worker sent {sends:?} (acknowledged: {})",
            b.trial,
            b.acked.contains(&epoch)
        );
    }
    lines.len() as u32
}

/// Fails the test with the outcome of a worker that ended before its time, if one did.
fn no_worker_ended(rt: &Runtime, workers: &mut [JoinHandle<Result<(), String>>], when: &str) {
    if let Some(w) = workers.iter_mut().find(|w| w.is_finished()) {
        match rt.block_on(w) {
            Ok(Err(e)) => panic!("{when}: {e}"),
            r => panic!("{when}: a worker ended: {r:?}"),
        }
    }
}

#[test]
fn acknowledged_epochs_survive_a_kill_9_of_the_coordinator() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let data = data.to_string_lossy().to_string();
    let Some(mut c) = Cluster::start() else {
        return;
    };
    let epochs = EPOCHS.to_string();
    // One trial per worker, told apart by its seed.
    let seeds: Vec<String> = (0..WORKERS).map(|s| s.to_string()).collect();
    let seeds = seeds.join(",");
    let args = [
        "sweep", "--task", "covid", "--data", &data, "--cell", "rnn", "--hidden", "4", "--l", "12",
        "--epochs", &epochs, "--seed", &seeds, "--detach",
    ];
    let sweep = c.client(&args)["sweep"].as_str().unwrap().to_string();
    assert_eq!(c.trials(&sweep).len(), WORKERS, "one trial per seed");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = c.url();
    let store_dir = c.s3.root.join(&c.s3.bucket).join("cluster");
    let (phase, watch_phase) = watch::channel(Phase::Report);
    let started = Instant::now();
    let deadline = started + WORKERS_DEADLINE;
    let books: Vec<Shared> = (0..WORKERS).map(|_| Shared::default()).collect();
    let mut workers: Vec<_> = books
        .iter()
        .enumerate()
        .map(|(i, b)| {
            rt.spawn(worker(
                i,
                url.clone(),
                store_dir.clone(),
                b.clone(),
                watch_phase.clone(),
                deadline,
            ))
        })
        .collect();

    // Kill once every worker is reporting, after REPORTING_BEFORE_KILL or as soon as a
    // trial is half-way, whichever comes first.
    let leased = common::wait_for(Duration::from_secs(20), "every worker to lease", || {
        books
            .iter()
            .all(|b| !book(b).lease.is_empty())
            .then(Instant::now)
    });
    while leased.elapsed() < REPORTING_BEFORE_KILL
        && books
            .iter()
            .all(|b| book(b).acked.last().copied().unwrap_or(0) < EPOCHS / 2)
    {
        no_worker_ended(&rt, &mut workers, "before the kill");
        std::thread::sleep(Duration::from_millis(10));
    }
    c.coordinator.as_mut().unwrap().kill9();
    let killed = Instant::now();
    // The process is gone: whatever a worker sends from here on reaches nobody.
    phase.send(Phase::Hold).unwrap();
    common::wait_for(Duration::from_secs(10), "every worker to hold", || {
        no_worker_ended(&rt, &mut workers, "after the kill");
        books.iter().all(|b| book(b).holding).then_some(())
    });
    let acked: usize = books.iter().map(|b| book(b).acked.len()).sum();
    eprintln!(
        "killed the coordinator after {:?} of reporting; {acked} epochs acknowledged before the kill (per trial: {:?})",
        killed - leased,
        books
            .iter()
            .map(|b| book(b).acked.len())
            .collect::<Vec<_>>()
    );
    let failed: u32 = books.iter().map(|b| book(b).failed_reports).sum();
    assert!(
        acked > 0 && failed > 0,
        "{acked} epochs acknowledged and {failed} reports failed around the kill: it did not land mid-reporting"
    );
    for b in &books {
        let b = copy(b);
        assert!(
            b.sent_at_kill < EPOCHS,
            "trial {} was sent its last epoch before the kill; the kill must land mid-trial",
            b.trial
        );
    }

    c.start_coordinator();
    eprintln!("the coordinator was down {:?}", killed.elapsed());
    // Right after the restart, before any new report: what the coordinator recorded.
    let trials = c.trials(&sweep);
    for b in &books {
        let b = copy(b);
        let t = trials
            .iter()
            .find(|t| t["id"] == b.trial.as_str())
            .unwrap_or_else(|| panic!("trial {} is not in the sweep: {trials:?}", b.trial));
        assert_eq!(
            (t["state"].as_str(), t["attempts"].as_u64()),
            (Some("running"), Some(1)),
            "after the restart, trial {} should still run under its first lease: {t}",
            b.trial
        );
        let shown = t["epoch"].as_u64().unwrap() as u32;
        let lines = rt.block_on(metric_lines(&url, &b.trial));
        let logged = check_lines("after the restart", &lines, &b);
        let acked_max = b.acked.last().copied().unwrap_or(0);
        eprintln!(
            "trial {}: acknowledged up to epoch {acked_max}, sent up to {}; after the restart the status shows {shown}, metrics.jsonl ends at {logged}",
            b.trial, b.sent_at_kill
        );
        // Status and metrics.jsonl are both the coordinator's word on the trial's
        // progress; one of them may lag (a coordinator that rewrites the trial's record
        // only when a restart needs more than the epoch), but together they hold every
        // acknowledged epoch, and neither claims one that was never sent.
        assert!(
            acked_max <= shown.max(logged),
            "trial {}: epoch {acked_max} was acknowledged before the kill, but after the restart the status shows epoch {shown} and metrics.jsonl ends at {logged}",
            b.trial
        );
        assert!(
            shown <= b.sent_at_kill && logged <= b.sent_at_kill,
            "trial {}: after the restart the status shows epoch {shown} and metrics.jsonl ends at {logged}, but the worker had sent no epoch past {}",
            b.trial,
            b.sent_at_kill
        );
    }

    phase.send(Phase::Finish).unwrap();
    // Each worker gives up at the deadline by itself; one call may still hang that long.
    let results = rt.block_on(async {
        let all = async {
            let mut out = Vec::new();
            for w in workers {
                out.push(w.await);
            }
            out
        };
        tokio::time::timeout_at((deadline + CALL_TIMEOUT).into(), all).await
    });
    let results =
        results.unwrap_or_else(|_| panic!("the workers did not finish in {WORKERS_DEADLINE:?}"));
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{e}"),
            Err(e) => panic!("worker {i} panicked: {e}"),
        }
    }

    let trials = c.trials(&sweep);
    for b in &books {
        let b = copy(b);
        assert!(
            b.revoked.is_empty(),
            "trial {}: the heartbeats were told {:?} was revoked",
            b.trial,
            b.revoked
        );
        assert!(
            b.failed_reports == 0 || b.registrations >= 2,
            "{} had {} reports fail yet did not register again",
            b.name,
            b.failed_reports
        );
        let t = trials.iter().find(|t| t["id"] == b.trial.as_str()).unwrap();
        assert_eq!(
            (t["state"].as_str(), t["attempts"].as_u64()),
            (Some("succeeded"), Some(1)),
            "trial {} should succeed on its first lease: {t}",
            b.trial
        );
        // Bounded patience: a coordinator may write the file just after answering Complete.
        let lines = common::wait_for(
            Duration::from_secs(10),
            &format!("metrics.jsonl of trial {} to reach epoch {EPOCHS}", b.trial),
            || {
                let lines = rt.block_on(metric_lines(&url, &b.trial));
                (lines.len() >= EPOCHS as usize).then_some(lines)
            },
        );
        let logged = check_lines("at the end", &lines, &b);
        assert_eq!(
            logged, EPOCHS,
            "trial {}: metrics.jsonl should hold every epoch 1..={EPOCHS}",
            b.trial
        );
    }
    let resent: u32 = books.iter().map(|b| book(b).failed_reports).sum();
    eprintln!(
        "{resent} reports failed and were sent again; the test took {:?}",
        started.elapsed()
    );
}
