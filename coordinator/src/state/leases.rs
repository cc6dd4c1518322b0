//! The worker-facing transitions: registration, leases and their heartbeats, per-epoch
//! progress, completion, failure and lease expiry, with fencing: every write names its
//! lease, and a lease that has ended (expired, cancelled, finished, never granted) is
//! refused with FAILED_PRECONDITION so a worker presumed dead cannot touch the trial.

use std::time::{Duration, Instant};

use wick_proto::v1::{CompleteParams, FailParams, ProgressParams, RegisterParams};

use super::{Change, EventKind, State, Trial, Worker};
use crate::error::{Error, Result};
use crate::records::TrialState;

/// Where a trial's checkpoints under `lease` must be written.
pub fn ckpt_prefix(trial: &str, lease: &str) -> String {
    format!("trials/{trial}/ckpt/{lease}/")
}

/// Where a trial's final artifacts under `lease` must be staged.
pub fn staging_prefix(trial: &str, lease: &str) -> String {
    format!("trials/{trial}/staging/{lease}/")
}

impl State {
    /// Records a worker under `worker_id` (a fresh id: a re-registering worker gets a new
    /// one, and its old registration simply goes stale).
    pub fn register(&mut self, worker_id: &str, p: &RegisterParams, now: Instant) {
        self.next_worker_seq += 1;
        let seq = self.next_worker_seq;
        let name = if p.name.trim().is_empty() {
            worker_id.to_string()
        } else {
            p.name.trim().to_string()
        };
        self.workers.insert(
            worker_id.to_string(),
            Worker {
                id: worker_id.to_string(),
                name,
                inference_addr: p.inference_addr.trim().to_string(),
                last_seen: now,
                seq,
            },
        );
    }

    /// Notes that a worker is alive; NOT_FOUND (register again) when it is unknown, as
    /// after a coordinator restart.
    pub fn touch_worker(&mut self, worker_id: &str, now: Instant) -> Result<&Worker> {
        let w = self.workers.get_mut(worker_id).ok_or_else(|| {
            Error::NotFound(format!(
                "unknown worker id '{worker_id}' (the coordinator may have restarted); call Register again"
            ))
        })?;
        w.last_seen = now;
        Ok(w)
    }

    /// Forgets workers silent for ten lease TTLs, so the registry does not grow forever.
    pub fn prune_workers(&mut self, now: Instant) {
        let keep = self.lease_ttl * 10;
        self.workers
            .retain(|_, w| now.saturating_duration_since(w.last_seen) < keep);
    }

    /// Plans leasing the first queued trial to `worker_id` under `lease_id`; `None` when
    /// nothing is queued. The trial resumes from its recorded checkpoint, if any.
    pub fn lease(&self, worker_id: &str, lease_id: &str, now: Instant) -> Result<Option<Change>> {
        let worker = self.workers.get(worker_id).ok_or_else(|| {
            Error::NotFound(format!(
                "unknown worker id '{worker_id}'; call Register again"
            ))
        })?;
        let Some(next) = self
            .trials
            .values()
            .filter(|t| t.record.state == TrialState::Queued && self.may_start(t))
            .min_by(|a, b| (a.seq, a.id()).cmp(&(b.seq, b.id())))
        else {
            return Ok(None);
        };
        let mut trial = next.clone();
        let r = &mut trial.record;
        r.state = TrialState::Running;
        r.attempts += 1;
        r.lease_id = Some(lease_id.to_string());
        r.worker = worker.name.clone();
        r.worker_id = worker.id.clone();
        r.epoch = r.checkpoint_epoch;
        r.resumed_from_epoch = r.checkpoint_epoch;
        trial.expiry = Some(now + self.lease_ttl);
        Ok(Some(Change {
            trial,
            kind: EventKind::Running,
        }))
    }

    /// Holds the clock of a lease just granted: its worker hears of it only once the
    /// grant is durable, which may take a store outage, and it cannot heartbeat a lease
    /// it has not heard of.
    pub fn hold(&mut self, lease_id: &str) {
        self.unacked.insert(lease_id.to_string());
    }

    /// The grant of `lease_id` is durable and answered: its clock starts now.
    pub fn start_clock(&mut self, lease_id: &str, now: Instant) {
        if !self.unacked.remove(lease_id) {
            return;
        }
        let ttl = self.lease_ttl;
        if let Some(t) = self
            .leases
            .get(lease_id)
            .and_then(|id| self.trials.get_mut(id))
            .filter(|t| t.expiry.is_some())
        {
            t.expiry = Some(now + ttl);
        }
    }

    /// Plans giving back a trial whose grant never reached its worker (the call was
    /// cancelled or failed before the grant was durable): queued again as it was, the
    /// attempt not counted. `None` when the lease has already ended.
    pub fn unanswered(&mut self, lease_id: &str) -> Option<Change> {
        self.unacked.remove(lease_id);
        let t = self.trials.get(self.leases.get(lease_id)?)?;
        if t.record.state != TrialState::Running {
            return None;
        }
        let mut trial = t.clone();
        let r = &mut trial.record;
        r.state = TrialState::Queued;
        r.lease_id = None;
        r.attempts = r.attempts.saturating_sub(1);
        r.epoch = r.checkpoint_epoch;
        r.message = format!(
            "the lease granted to worker {} never reached it (its call ended first); queued again",
            r.worker
        );
        trial.expiry = None;
        Some(Change {
            trial,
            kind: EventKind::Queued,
        })
    }

    /// Stops the lease clock while the coordinator was not listening. Every locked
    /// operation calls this first, and the reaper takes the lock every heartbeat interval,
    /// so a gap of more than a quarter TTL since the last call means that nothing was
    /// heard meanwhile (the process was starved or suspended; the lock is never held across
    /// store I/O): every lease still live when the gap began is extended by it, instead of
    /// being expired for heartbeats that were waiting in line. Returns that gap, if any.
    pub fn catch_up(&mut self, now: Instant) -> Option<Duration> {
        let last = self.attentive.replace(now)?;
        let gap = now.saturating_duration_since(last);
        if gap <= self.lease_ttl / 4 {
            return None;
        }
        for t in self.trials.values_mut() {
            if let Some(e) = t.expiry.as_mut()
                && *e > last
            {
                *e += gap;
            }
        }
        Some(gap)
    }

    /// Renews the valid leases among `lease_ids` and returns the others (ended or
    /// unknown): their trials must stop without writing. Leases are honoured whoever
    /// sends them, so a worker unknown after a restart keeps its trials.
    pub fn heartbeat(
        &mut self,
        worker_id: &str,
        lease_ids: &[String],
        now: Instant,
    ) -> Vec<String> {
        if let Some(w) = self.workers.get_mut(worker_id) {
            w.last_seen = now;
        }
        let ttl = self.lease_ttl;
        let mut revoked = Vec::new();
        for lease in lease_ids {
            let live = self
                .leases
                .get(lease)
                .and_then(|id| self.trials.get_mut(id))
                .filter(|t| t.expiry.is_some_and(|e| now < e));
            match live {
                Some(t) => t.expiry = Some(now + ttl),
                None => revoked.push(lease.clone()),
            }
        }
        revoked
    }

    /// The trial `lease_id` is valid for, if it is `trial_id` and has not ended.
    pub fn valid_lease(&self, lease_id: &str, trial_id: &str, now: Instant) -> Result<&Trial> {
        let ended = || {
            Error::FailedPrecondition(format!(
                "lease '{lease_id}' of trial {trial_id} has ended (expired, cancelled or finished); stop this trial without writing"
            ))
        };
        let id = self.leases.get(lease_id).ok_or_else(ended)?;
        if id != trial_id {
            return Err(Error::FailedPrecondition(format!(
                "lease '{lease_id}' is for trial {id}, not {trial_id}; report under the lease the trial was assigned with"
            )));
        }
        let t = self.trials.get(id).ok_or_else(ended)?;
        match t.expiry {
            Some(e) if now < e && t.record.state == TrialState::Running => Ok(t),
            _ => Err(ended()),
        }
    }

    /// Plans recording one epoch; returns the change and the metrics to append to
    /// `metrics.jsonl`. The checkpoint key becomes the trial's resume point.
    pub fn progress(
        &self,
        p: &ProgressParams,
        now: Instant,
    ) -> Result<(Change, serde_json::Value)> {
        let t = self.valid_lease(&p.lease_id, &p.trial_id, now)?;
        let metrics: serde_json::Value = if p.metrics_json.trim().is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_str(&p.metrics_json).map_err(|e| {
                Error::InvalidArgument(format!(
                    "metrics_json of trial {} is not JSON: {e}",
                    p.trial_id
                ))
            })?
        };
        let epochs = t.config.epochs() as u32;
        if p.epoch == 0 || p.epoch > epochs {
            return Err(Error::InvalidArgument(format!(
                "epoch {} of trial {} is outside 1..={epochs}",
                p.epoch, p.trial_id
            )));
        }
        let prefix = ckpt_prefix(&p.trial_id, &p.lease_id);
        if !p.checkpoint_key.is_empty() && !p.checkpoint_key.starts_with(&prefix) {
            return Err(Error::InvalidArgument(format!(
                "checkpoint_key '{}' is not under this lease's prefix '{prefix}'",
                p.checkpoint_key
            )));
        }
        let mut trial = t.clone();
        let r = &mut trial.record;
        r.epoch = p.epoch;
        r.resumed_from_epoch = p.resumed_from_epoch;
        r.metrics = Some(metrics.clone());
        if !p.checkpoint_key.is_empty() {
            r.checkpoint = Some(p.checkpoint_key.clone());
            r.checkpoint_epoch = p.epoch;
        }
        // A report is as good as a heartbeat.
        trial.expiry = Some(now + self.lease_ttl);
        let mut kind = EventKind::Epoch;
        if let Some(reason) = self.early_stop(t, p.epoch as usize, &metrics) {
            let r = &mut trial.record;
            r.state = TrialState::StoppedEarly;
            r.lease_id = None;
            r.message = reason;
            trial.expiry = None;
            kind = EventKind::StoppedEarly;
        }
        Ok((Change { trial, kind }, metrics))
    }

    /// Plans marking a trial succeeded with `summary_json`; returns the change and the
    /// parsed summary. The staging prefix must be the lease's own.
    pub fn complete(
        &self,
        p: &CompleteParams,
        now: Instant,
    ) -> Result<(Change, serde_json::Value)> {
        let t = self.valid_lease(&p.lease_id, &p.trial_id, now)?;
        let expected = staging_prefix(&p.trial_id, &p.lease_id);
        if p.staging_prefix.trim_end_matches('/') != expected.trim_end_matches('/') {
            return Err(Error::InvalidArgument(format!(
                "staging_prefix '{}' is not this lease's '{expected}'",
                p.staging_prefix
            )));
        }
        let summary: serde_json::Value = serde_json::from_str(&p.summary_json)
            .ok()
            .filter(|v: &serde_json::Value| v.is_object())
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "summary_json of trial {} is not a JSON object",
                    p.trial_id
                ))
            })?;
        let mut trial = t.clone();
        let r = &mut trial.record;
        r.state = TrialState::Succeeded;
        r.lease_id = None;
        r.epoch = t.config.epochs() as u32;
        r.metrics = Some(summary.clone());
        r.message.clear();
        trial.expiry = None;
        Ok((
            Change {
                trial,
                kind: EventKind::Succeeded,
            },
            summary,
        ))
    }

    /// Plans a failure report: a retryable one (the worker hands the trial back) queues
    /// it again without spending its retry budget; any other fails it for good.
    pub fn fail(&self, p: &FailParams, now: Instant) -> Result<Change> {
        let t = self.valid_lease(&p.lease_id, &p.trial_id, now)?;
        let mut trial = t.clone();
        let r = &mut trial.record;
        r.lease_id = None;
        trial.expiry = None;
        let kind = if p.retryable {
            r.state = TrialState::Queued;
            r.epoch = r.checkpoint_epoch;
            r.message = format!("handed back by worker {}: {}", r.worker, p.message);
            EventKind::Queued
        } else {
            r.state = TrialState::Failed;
            r.message = format!("failed on worker {}: {}", r.worker, p.message);
            EventKind::Failed
        };
        Ok(Change { trial, kind })
    }

    /// Plans taking back every lease that has expired: its trial is queued again
    /// ("retrying") until it has lost `max_attempts` leases, then fails.
    pub fn expired(&self, now: Instant) -> Vec<Change> {
        let mut out: Vec<Change> = self
            .trials
            .values()
            .filter(|t| t.record.state == TrialState::Running && t.expiry.is_none_or(|e| now >= e))
            .filter(|t| {
                !t.record
                    .lease_id
                    .as_ref()
                    .is_some_and(|l| self.unacked.contains(l))
            })
            .map(|t| {
                let mut trial = t.clone();
                let r = &mut trial.record;
                r.lease_id = None;
                r.lost_leases += 1;
                trial.expiry = None;
                if r.lost_leases >= self.max_attempts {
                    r.state = TrialState::Failed;
                    r.message = format!(
                        "lost its lease {} times (last on worker {}); gave up after --max-attempts {}; resubmit the sweep to try again",
                        r.lost_leases, r.worker, self.max_attempts
                    );
                    Change { trial, kind: EventKind::Failed }
                } else {
                    r.state = TrialState::Queued;
                    r.epoch = r.checkpoint_epoch;
                    r.message = format!(
                        "lease on worker {} expired (no heartbeat); retrying from epoch {} ({} of {} lost leases allowed)",
                        r.worker, r.checkpoint_epoch, r.lost_leases, self.max_attempts
                    );
                    Change { trial, kind: EventKind::Retrying }
                }
            })
            .collect();
        out.sort_by(|a, b| {
            a.trial
                .seq
                .cmp(&b.trial.seq)
                .then_with(|| a.trial.id().cmp(b.trial.id()))
        });
        out
    }
}
