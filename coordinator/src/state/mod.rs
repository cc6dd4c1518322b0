//! The coordinator's state machine: sweeps, trials, leases and workers, in memory, with
//! no I/O and the time passed in, so every transition is unit-tested.
//!
//! Durable transitions are planned, then applied: an operation reads the state (`&self`)
//! and returns the [`Change`]s it would make; the caller applies them with
//! [`State::apply`] and hands them to the log in the same critical section, so the log's
//! order is the order of application. What is not durable (worker registrations, lease
//! expiry times) changes in place.
//!
//! `leases` holds the worker-facing transitions (lease, heartbeat, progress, complete,
//! fail, expiry), `sweeps` submission, cancellation and the best trial, `durable`
//! snapshots, recovery and the per-epoch metrics lines; this file the types, loading,
//! applying and the queries.

mod durable;
mod early_stop;
pub use early_stop::Policy;
mod leases;
mod sweeps;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use wick_common::trial::TrialConfig;
use wick_proto::v1::{SweepSpec, SweepSummary, TrialStatus};

use crate::error::{Error, Result};
use crate::records::{SweepRecord, TrialRecord, TrialState};

/// A trial in memory: its durable record plus what only a running coordinator needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// Its configuration (`trials/<id>/config.json`).
    pub config: TrialConfig,
    /// Its durable record (`trials/<id>/state.json`).
    pub record: TrialRecord,
    /// When its lease ends unless renewed (running trials only).
    pub expiry: Option<Instant>,
    /// Queue position: queued trials are leased lowest first, which is submission and
    /// grid order (0 = not placed yet).
    pub seq: u64,
    /// Sweeps that hold it (the same configuration may be in several).
    pub sweeps: Vec<String>,
}

impl Trial {
    /// Trial id.
    pub fn id(&self) -> &str {
        &self.record.trial_id
    }
}

/// A sweep in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// Its durable record.
    pub record: SweepRecord,
    /// The spec it was submitted with.
    pub spec: SweepSpec,
}

/// A registered worker (not durable: workers register again after a restart).
#[derive(Debug, Clone, PartialEq)]
pub struct Worker {
    /// Id given at registration.
    pub id: String,
    /// Name shown in status and logs.
    pub name: String,
    /// Address of its Inference service ("" = none).
    pub inference_addr: String,
    /// Last Register, Lease or Heartbeat: a worker silent for a lease TTL is not live.
    pub last_seen: Instant,
    /// Registration order, so inference tries workers in a stable order.
    pub seq: u64,
}

/// What happened to a trial, as the `kind` of a `SweepEvent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The trial's current state, sent when a watch starts.
    Snapshot,
    /// Queued (submitted, resubmitted or handed back).
    Queued,
    /// Leased to a worker.
    Running,
    /// An epoch was reported.
    Epoch,
    /// Its lease expired and it was queued again.
    Retrying,
    /// Finished with its artifacts promoted.
    Succeeded,
    /// Gave up.
    Failed,
    /// Cancelled by a user.
    Cancelled,
    /// Stopped by the sweep's early-stopping policy.
    StoppedEarly,
}

impl EventKind {
    /// The protocol's name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Snapshot => "snapshot",
            EventKind::Queued => "queued",
            EventKind::Running => "running",
            EventKind::Epoch => "epoch",
            EventKind::Retrying => "retrying",
            EventKind::Succeeded => "succeeded",
            EventKind::Failed => "failed",
            EventKind::Cancelled => "cancelled",
            EventKind::StoppedEarly => "stopped_early",
        }
    }

    /// The kind named `name` (as [`EventKind::as_str`] gives it).
    pub fn from_name(name: &str) -> Option<EventKind> {
        use EventKind::*;
        [
            Snapshot,
            Queued,
            Running,
            Epoch,
            Retrying,
            Succeeded,
            Failed,
            Cancelled,
            StoppedEarly,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }

    /// Whether the trial ends with this event (until it is submitted again).
    pub fn ends_trial(self) -> bool {
        use EventKind::*;
        matches!(self, Succeeded | Failed | Cancelled | StoppedEarly)
    }
}

/// One planned transition of a trial: persist `trial.record`, then apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The trial after the transition.
    pub trial: Trial,
    /// The event it makes.
    pub kind: EventKind,
}

/// What a submission would do.
#[derive(Debug, Clone)]
pub struct SubmitPlan {
    /// The sweep (new, or the known one with its label updated).
    pub sweep: Sweep,
    /// Trials created now: their config and data documents must be written.
    pub new_trials: Vec<String>,
    /// New and requeued trials.
    pub changes: Vec<Change>,
}

/// All sweeps, trials, leases and workers.
#[derive(Debug)]
pub struct State {
    /// Lease lifetime without a heartbeat.
    lease_ttl: Duration,
    /// Leases a trial may lose before it fails.
    max_attempts: u32,
    /// Sweeps by id.
    sweeps: HashMap<String, Sweep>,
    /// Trials by id.
    trials: HashMap<String, Trial>,
    /// Live lease id → trial id, for heartbeats and fencing.
    leases: HashMap<String, String>,
    /// Registered workers by id.
    workers: HashMap<String, Worker>,
    /// Last queue position handed out (durable: a recovered queue keeps its order).
    next_seq: u64,
    /// Last registration number handed out (workers are not durable, so neither is this).
    next_worker_seq: u64,
    /// Each trial's early-stopping score per epoch (index epoch - 1; higher is better),
    /// from its progress reports.
    scores: HashMap<String, Vec<f64>>,
    /// Each trial's `metrics.jsonl` lines (epoch, line) not yet written to its file: they
    /// are durable in the log, and go to the file when the trial ends.
    rows: HashMap<String, Vec<(u32, String)>>,
    /// Leases granted whose grant is not yet durable, so not yet told to their worker:
    /// their clock has not started (see `hold`).
    unacked: HashSet<String>,
    /// When the state was last looked at (see `catch_up`).
    attentive: Option<Instant>,
}

/// `id` if it names one key exactly, else the only key it is a prefix of.
fn resolve<'a, T>(map: &'a HashMap<String, T>, id: &str, what: &str, hint: &str) -> Result<&'a T> {
    if id.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "no {what} id given; {hint}"
        )));
    }
    if let Some(v) = map.get(id) {
        return Ok(v);
    }
    let mut hits: Vec<(&String, &T)> = map.iter().filter(|(k, _)| k.starts_with(id)).collect();
    match hits.len() {
        1 => Ok(hits.remove(0).1),
        0 => Err(Error::NotFound(format!("no {what} '{id}'; {hint}"))),
        _ => {
            let mut names: Vec<&str> = hits.iter().map(|(k, _)| k.as_str()).collect();
            names.sort();
            Err(Error::InvalidArgument(format!(
                "'{id}' names {} {what}s ({}); give more characters",
                names.len(),
                names.join(", ")
            )))
        }
    }
}

/// The protocol's view of a trial.
pub fn status(t: &Trial) -> TrialStatus {
    let r = &t.record;
    TrialStatus {
        trial_id: r.trial_id.clone(),
        task: t.config.task().into(),
        config_json: serde_json::to_string(&t.config).unwrap_or_default(),
        state: r.state.as_str().into(),
        epoch: r.epoch,
        epochs: t.config.epochs() as u32,
        worker: r.worker.clone(),
        attempts: r.attempts,
        resumed_from_epoch: r.resumed_from_epoch,
        metrics_json: r
            .metrics
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
        message: r.message.clone(),
    }
}

impl State {
    /// An empty state.
    pub fn new(lease_ttl: Duration, max_attempts: u32) -> State {
        State {
            lease_ttl,
            max_attempts,
            sweeps: HashMap::new(),
            trials: HashMap::new(),
            leases: HashMap::new(),
            workers: HashMap::new(),
            next_seq: 0,
            next_worker_seq: 0,
            scores: HashMap::new(),
            rows: HashMap::new(),
            unacked: HashSet::new(),
            attentive: None,
        }
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Restores what a previous coordinator persisted. Leases still recorded stay valid
    /// for a fresh TTL, so workers that keep heartbeating carry on.
    pub fn load(
        &mut self,
        mut sweeps: Vec<Sweep>,
        trials: Vec<(TrialConfig, TrialRecord)>,
        now: Instant,
    ) {
        for (config, mut record) in trials {
            if record.state != TrialState::Running {
                record.lease_id = None;
            }
            let expiry = record.lease_id.as_ref().map(|_| now + self.lease_ttl);
            if let Some(lease) = &record.lease_id {
                self.leases.insert(lease.clone(), record.trial_id.clone());
            }
            let t = Trial {
                config,
                record,
                expiry,
                seq: 0,
                sweeps: Vec::new(),
            };
            self.trials.insert(t.id().to_string(), t);
        }
        // Oldest sweep first, so queue order after a restart is submission order.
        sweeps.sort_by(|a, b| {
            (a.record.created_ms, &a.record.sweep_id)
                .cmp(&(b.record.created_ms, &b.record.sweep_id))
        });
        for s in sweeps {
            for id in &s.record.trial_ids {
                let seq = self.seq();
                if let Some(t) = self.trials.get_mut(id) {
                    if !t.sweeps.contains(&s.record.sweep_id) {
                        t.sweeps.push(s.record.sweep_id.clone());
                    }
                    if t.seq == 0 {
                        t.seq = seq;
                    }
                }
            }
            self.sweeps.insert(s.record.sweep_id.clone(), s);
        }
    }

    /// Installs planned transitions.
    pub fn apply(&mut self, changes: Vec<Change>) {
        for Change { mut trial, kind } in changes {
            let id = trial.id().to_string();
            let old = self.trials.get(&id);
            if let Some(lease) = old.and_then(|o| o.record.lease_id.clone()) {
                self.leases.remove(&lease);
            }
            // A trial keeps its place once it has one: one handed back or retried goes
            // before trials submitted after it.
            if trial.seq == 0 {
                trial.seq = self.seq();
            }
            if let Some(lease) = &trial.record.lease_id {
                self.leases.insert(lease.clone(), id.clone());
            }
            if matches!(kind, EventKind::Epoch | EventKind::StoppedEarly) {
                self.record_score(&trial);
                self.record_row(&trial);
            }
            self.trials.insert(id, trial);
        }
    }

    /// A sweep by id or unique prefix.
    pub fn sweep(&self, id: &str) -> Result<&Sweep> {
        resolve(
            &self.sweeps,
            id,
            "sweep",
            "list the sweeps with `client list`",
        )
    }

    /// A trial by id or unique prefix.
    pub fn trial(&self, id: &str) -> Result<&Trial> {
        resolve(
            &self.trials,
            id,
            "trial",
            "see a sweep's trials with `client status SWEEP`",
        )
    }

    /// The trials of a sweep, in grid order.
    pub fn trials_of<'a>(&'a self, sweep: &'a Sweep) -> impl Iterator<Item = &'a Trial> + 'a {
        sweep
            .record
            .trial_ids
            .iter()
            .filter_map(|id| self.trials.get(id))
    }

    /// Every sweep, newest first.
    pub fn sweeps_newest_first(&self) -> Vec<&Sweep> {
        let mut v: Vec<&Sweep> = self.sweeps.values().collect();
        v.sort_by(|a, b| {
            (b.record.created_ms, &b.record.sweep_id)
                .cmp(&(a.record.created_ms, &a.record.sweep_id))
        });
        v
    }

    /// A sweep's line in a listing.
    pub fn summary(&self, s: &Sweep) -> SweepSummary {
        let mut states = HashMap::new();
        for t in self.trials_of(s) {
            *states
                .entry(t.record.state.as_str().to_string())
                .or_insert(0) += 1;
        }
        SweepSummary {
            sweep_id: s.record.sweep_id.clone(),
            name: s.record.name.clone(),
            created_ms: s.record.created_ms,
            trials: s.record.trial_ids.len() as u32,
            states,
        }
    }

    /// How many trials are in each state (every state listed, zeros included), and how
    /// many workers heartbeat, for the metrics.
    pub fn census(&self, now: Instant) -> (Vec<(&'static str, usize)>, usize) {
        use TrialState::*;
        let states = [Queued, Running, Succeeded, Failed, Cancelled, StoppedEarly].map(|state| {
            let n = self
                .trials
                .values()
                .filter(|t| t.record.state == state)
                .count();
            (state.as_str(), n)
        });
        let live = self
            .workers
            .values()
            .filter(|w| now.saturating_duration_since(w.last_seen) < self.lease_ttl)
            .count();
        (states.to_vec(), live)
    }

    /// Inference addresses of the live workers, in registration order.
    pub fn inference_addrs(&self, now: Instant) -> Vec<String> {
        let mut live: Vec<&Worker> = self
            .workers
            .values()
            .filter(|w| {
                !w.inference_addr.is_empty()
                    && now.saturating_duration_since(w.last_seen) < self.lease_ttl
            })
            .collect();
        live.sort_by_key(|w| w.seq);
        live.into_iter().map(|w| w.inference_addr.clone()).collect()
    }
}
