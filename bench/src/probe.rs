//! Simulated workers for the `overhead` benchmark: each registers on its own gRPC
//! connection and runs trials of an already submitted sweep without training (Lease, one
//! ReportProgress per made-up epoch with an optional pause between two, a one-object
//! staging write, Complete), while a task of its own heartbeats its lease the way a real
//! worker does. Every call is timed. A lease the coordinator ended is counted and its
//! trial dropped, as a real worker would, so a coordinator too slow to renew leases shows
//! up as a number rather than an aborted run; any other error aborts. The workers share
//! one trial budget and an optional time limit, so a run ends even when the coordinator
//! is too slow to finish a sweep.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use tokio::sync::{Barrier, watch};
use tonic::transport::Channel;
use tonic::{Code, Status};
use wick_common::store::Store;
use wick_common::trial::TrialConfig;
use wick_proto::v1::work_client::WorkClient;
use wick_proto::v1::{
    Assignment, CompleteParams, HeartbeatParams, LeaseParams, ProgressParams, RegisterParams,
};

/// A worker that got no trial for this long stops: the sweep is done, or what is left is
/// running elsewhere.
const IDLE_STOP: Duration = Duration::from_secs(2);
/// Pause after an empty Lease: short, so a freed trial is picked up soon, but long enough
/// that hundreds of idle workers do not flood the coordinator at a sweep's tail.
const IDLE_POLL: Duration = Duration::from_millis(20);

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The coordinator, http://HOST:PORT.
    pub coordinator: String,
    /// Simulated workers, each with its own registration and connection.
    pub concurrency: usize,
    /// Trials to complete in all; workers stop starting trials once they are claimed.
    pub trials: usize,
    /// Progress reports per trial, epochs 1..=reports.
    pub reports: u32,
    /// Pause between two reports of a trial (a training epoch's stand-in).
    pub report_every: Duration,
    /// Heartbeat interval; `None` sends none (fine while trials are shorter than the
    /// coordinator's lease time).
    pub heartbeat: Option<Duration>,
    /// Time after which no call is started and running trials are dropped.
    pub time_limit: Option<Duration>,
}

/// What the workers measured, merged. Latencies are in milliseconds, one per call.
#[derive(Debug, Default)]
pub struct Tally {
    /// Trials completed (Complete accepted).
    pub trials: usize,
    /// Progress reports accepted.
    pub reports: usize,
    /// Leases returned by Lease (trials started).
    pub leased: usize,
    /// Leases a heartbeat answered as revoked before the coordinator refused a write.
    pub revoked: usize,
    /// Progress or Complete refused with FailedPrecondition: the lease had ended.
    pub lease_ended: usize,
    /// Trials the sweep's early-stopping policy ended after a report.
    pub stopped_early: usize,
    /// Lease calls that returned a trial.
    pub lease_ms: Vec<f64>,
    /// ReportProgress calls, refused ones included.
    pub progress_ms: Vec<f64>,
    /// Staging writes of the model file.
    pub stage_ms: Vec<f64>,
    /// Complete calls, refused ones included.
    pub complete_ms: Vec<f64>,
    /// Heartbeat calls.
    pub heartbeat_ms: Vec<f64>,
    /// Lease + every ReportProgress + Complete of each completed trial.
    pub trial_rpcs_ms: Vec<f64>,
    /// When the last worker stopped working (its idle wait before stopping left out).
    pub end: Option<Instant>,
}

impl Tally {
    /// Leases the worker lost: revoked by a heartbeat or refused on a write.
    pub fn expired_leases(&self) -> usize {
        self.revoked + self.lease_ended
    }

    fn merge(&mut self, o: Tally) {
        self.trials += o.trials;
        self.reports += o.reports;
        self.leased += o.leased;
        self.revoked += o.revoked;
        self.lease_ended += o.lease_ended;
        self.stopped_early += o.stopped_early;
        self.lease_ms.extend(o.lease_ms);
        self.progress_ms.extend(o.progress_ms);
        self.stage_ms.extend(o.stage_ms);
        self.complete_ms.extend(o.complete_ms);
        self.heartbeat_ms.extend(o.heartbeat_ms);
        self.trial_rpcs_ms.extend(o.trial_rpcs_ms);
        self.end = self.end.max(o.end);
    }
}

/// Runs `plan` against the coordinator, writing staged files to `store`; returns the
/// merged tally and when the run started (once every worker had registered).
pub async fn run(plan: &Plan, store: Store) -> Result<(Tally, Instant)> {
    let shared = Arc::new(Shared {
        plan: plan.clone(),
        store,
        budget: AtomicUsize::new(plan.trials),
        registered: Barrier::new(plan.concurrency),
        started: OnceLock::new(),
    });
    let mut workers = tokio::task::JoinSet::new();
    for i in 0..plan.concurrency {
        workers.spawn(worker(shared.clone(), i));
    }
    let mut tally = Tally::default();
    while let Some(done) = workers.join_next().await {
        // An error drops the set, which aborts the other workers.
        tally.merge(done.context("a simulated worker panicked")??);
    }
    let started = *shared.started.get().expect("every worker registered");
    Ok((tally, started))
}

/// What every worker reads.
struct Shared {
    /// The run's settings.
    plan: Plan,
    /// Where staged model files go.
    store: Store,
    /// Trials not yet claimed by a worker.
    budget: AtomicUsize,
    /// Workers wait here after registering, so that hundreds of registrations are not
    /// timed as part of the run.
    registered: Barrier,
    /// When the first worker left [`Shared::registered`]: the run's start.
    started: OnceLock<Instant>,
}

impl Shared {
    /// When the time limit is up.
    fn deadline(&self) -> Option<Instant> {
        let started = *self.started.get()?;
        self.plan.time_limit.map(|t| started + t)
    }

    fn past_deadline(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// Takes one trial from the budget; false when it is spent.
    fn claim(&self) -> bool {
        self.budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Gives back a claim whose trial did not complete, so another worker may run it.
    fn unclaim(&self) {
        self.budget.fetch_add(1, Ordering::SeqCst);
    }
}

/// A lease as the heartbeat task sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaseState {
    /// The trial is running.
    Running,
    /// Complete was sent: a revocation now most likely crossed an accepted Complete, so
    /// Complete's answer decides (as in the real worker).
    Completing,
    /// A heartbeat answered that the lease ended; the trial stops at its next step.
    Revoked,
}

/// The leases one worker holds, shared with its heartbeat task.
type Leases = Arc<Mutex<HashMap<String, LeaseState>>>;

/// How a leased trial ended.
enum Outcome {
    /// Complete was accepted.
    Completed,
    /// A heartbeat answered that the lease had ended.
    Revoked,
    /// A write was refused with FailedPrecondition.
    Ended,
    /// The early-stopping policy ended it.
    StoppedEarly,
    /// The time limit came first.
    Dropped,
}

/// One simulated worker: registers, heartbeats in a task of its own, and runs trials
/// until the budget or the time is spent or no work came for [`IDLE_STOP`].
async fn worker(shared: Arc<Shared>, index: usize) -> Result<Tally> {
    let plan = &shared.plan;
    let mut work = WorkClient::connect(plan.coordinator.clone())
        .await
        .with_context(|| format!("cannot reach the coordinator at {}", plan.coordinator))?;
    let me = work
        .register(RegisterParams {
            name: format!("overhead-probe-{index}"),
            device: "cpu".into(),
            slots: 1,
            inference_addr: String::new(),
        })
        .await
        .context("Register")?
        .into_inner();
    shared.registered.wait().await;
    shared.started.get_or_init(Instant::now);
    let leases = Leases::default();
    let (stop, stopped) = watch::channel(false);
    let heartbeats = plan.heartbeat.map(|every| {
        tokio::spawn(heartbeat(
            work.clone(),
            me.worker_id.clone(),
            leases.clone(),
            every,
            stopped,
        ))
    });
    let mut t = Tally::default();
    let mut idle_since = Instant::now();
    while !shared.past_deadline() && shared.claim() {
        let at = Instant::now();
        let lease = work
            .lease(LeaseParams {
                worker_id: me.worker_id.clone(),
                wait_ms: 0,
            })
            .await
            .context("Lease")?
            .into_inner();
        let lease_ms = ms(at);
        let Some(a) = lease.assignment else {
            shared.unclaim();
            if idle_since.elapsed() > IDLE_STOP {
                break;
            }
            tokio::time::sleep(IDLE_POLL).await;
            continue;
        };
        t.leased += 1;
        t.lease_ms.push(lease_ms);
        leases
            .lock()
            .unwrap()
            .insert(a.lease_id.clone(), LeaseState::Running);
        let mut rpcs = lease_ms;
        let outcome = run_trial(&shared, &mut work, &leases, &a, &mut t, &mut rpcs).await?;
        leases.lock().unwrap().remove(&a.lease_id);
        match outcome {
            Outcome::Completed => {
                t.trials += 1;
                t.trial_rpcs_ms.push(rpcs);
            }
            Outcome::StoppedEarly => t.stopped_early += 1,
            Outcome::Revoked => t.revoked += 1,
            Outcome::Ended => t.lease_ended += 1,
            Outcome::Dropped => {}
        }
        if !matches!(outcome, Outcome::Completed | Outcome::StoppedEarly) {
            shared.unclaim();
        }
        idle_since = Instant::now();
        t.end = Some(idle_since);
    }
    let _ = stop.send(true);
    if let Some(h) = heartbeats {
        t.merge(h.await.context("a heartbeat task panicked")??);
    }
    Ok(t)
}

/// Runs one leased trial: reports, staging write, Complete. `rpcs` adds up the trial's
/// call times.
async fn run_trial(
    shared: &Shared,
    work: &mut WorkClient<Channel>,
    leases: &Leases,
    a: &Assignment,
    t: &mut Tally,
    rpcs: &mut f64,
) -> Result<Outcome> {
    let plan = &shared.plan;
    let config: TrialConfig = serde_json::from_str(&a.config_json)
        .with_context(|| format!("trial {}: unreadable config", a.trial_id))?;
    if config.epochs() < plan.reports as usize {
        bail!(
            "trial {} has {} epochs, fewer than --reports {}: submit a sweep with --epochs {} or more",
            a.trial_id,
            config.epochs(),
            plan.reports,
            plan.reports
        );
    }
    let revoked = || leases.lock().unwrap().get(&a.lease_id) == Some(&LeaseState::Revoked);
    for epoch in 1..=plan.reports {
        if epoch > 1 && !plan.report_every.is_zero() {
            let due = tokio::time::Instant::now() + plan.report_every;
            match shared.deadline() {
                Some(d) => tokio::time::sleep_until(due.min(d.into())).await,
                None => tokio::time::sleep_until(due).await,
            }
        }
        if shared.past_deadline() {
            return Ok(Outcome::Dropped);
        }
        if revoked() {
            return Ok(Outcome::Revoked);
        }
        let metrics = json!({"epoch": epoch, "train_loss": 0.69, "train_acc": 0.5,
            "test_loss": 0.69, "test_acc": 0.5, "seconds": 0.0});
        let at = Instant::now();
        let answer = work
            .report_progress(ProgressParams {
                lease_id: a.lease_id.clone(),
                trial_id: a.trial_id.clone(),
                epoch,
                metrics_json: metrics.to_string(),
                resumed_from_epoch: 0,
                checkpoint_key: String::new(),
                earlier: Vec::new(),
            })
            .await;
        let took = ms(at);
        t.progress_ms.push(took);
        *rpcs += took;
        match answer {
            Ok(r) if r.get_ref().stop => return Ok(Outcome::StoppedEarly),
            Ok(_) => t.reports += 1,
            Err(s) if lease_ended(&s) => return Ok(Outcome::Ended),
            Err(s) => {
                return Err(s).with_context(|| {
                    format!("ReportProgress of trial {} epoch {epoch}", a.trial_id)
                });
            }
        }
    }
    if shared.past_deadline() {
        return Ok(Outcome::Dropped);
    }
    if revoked() {
        return Ok(Outcome::Revoked);
    }
    let staging = format!("trials/{}/staging/{}", a.trial_id, a.lease_id);
    let at = Instant::now();
    shared
        .store
        .put(&format!("{staging}/model.safetensors"), vec![0u8; 64])
        .await
        .with_context(|| format!("staging the model file of trial {}", a.trial_id))?;
    t.stage_ms.push(ms(at));
    if let Some(s) = leases.lock().unwrap().get_mut(&a.lease_id) {
        if *s == LeaseState::Revoked {
            return Ok(Outcome::Revoked);
        }
        *s = LeaseState::Completing;
    }
    let summary = json!({"task": config.task(), "final_test_acc": 0.5, "best_test_acc": 0.5,
        "final_train_acc": 0.5, "best_epoch": plan.reports, "epochs": plan.reports});
    let at = Instant::now();
    let answer = work
        .complete(CompleteParams {
            lease_id: a.lease_id.clone(),
            trial_id: a.trial_id.clone(),
            summary_json: summary.to_string(),
            staging_prefix: staging,
            staged: vec!["model.safetensors".into()],
        })
        .await;
    let took = ms(at);
    t.complete_ms.push(took);
    *rpcs += took;
    match answer {
        Ok(_) => Ok(Outcome::Completed),
        Err(s) if lease_ended(&s) => Ok(Outcome::Ended),
        Err(s) => Err(s).with_context(|| format!("Complete of trial {}", a.trial_id)),
    }
}

/// Sends a heartbeat for the worker's leases every `every` (the pause taken after each
/// answer, as the real worker does) until `stopped` turns true; marks revoked leases.
/// Returns the calls' times.
async fn heartbeat(
    mut work: WorkClient<Channel>,
    worker_id: String,
    leases: Leases,
    every: Duration,
    mut stopped: watch::Receiver<bool>,
) -> Result<Tally> {
    let mut t = Tally::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped.changed() => return Ok(t),
        }
        let lease_ids: Vec<String> = leases.lock().unwrap().keys().cloned().collect();
        let at = Instant::now();
        let answer = work
            .heartbeat(HeartbeatParams {
                worker_id: worker_id.clone(),
                lease_ids,
            })
            .await
            .context("Heartbeat")?
            .into_inner();
        t.heartbeat_ms.push(ms(at));
        let mut held = leases.lock().unwrap();
        for id in answer.revoked {
            if let Some(s) = held.get_mut(&id)
                && *s == LeaseState::Running
            {
                *s = LeaseState::Revoked;
            }
        }
    }
}

/// True for the refusal of a write under a lease that has ended.
fn lease_ended(s: &Status) -> bool {
    s.code() == Code::FailedPrecondition
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}
