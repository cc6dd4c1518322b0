//! The state as the log sees it: a snapshot of everything durable (sweeps, trials with
//! their queue positions, early-stopping scores, the `metrics.jsonl` lines not yet
//! written to their file), restoring one, and replaying a log entry. Replaying an entry
//! goes through the same `apply` as the live transition, so a recovered state is the one
//! that was acknowledged. Expiry times are not durable: a lease recorded as running gets
//! one TTL of grace from the moment it is recovered.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use wick_common::trial::TrialConfig;

use super::{Change, EventKind, State, SubmitPlan, Sweep, Trial};
use crate::records::{SpecDoc, SweepRecord, TrialRecord, TrialState, metrics_line};
use crate::wal::{Entry, Queued};

/// A snapshot as written, borrowing from the state (a big state is not copied first).
#[derive(Serialize)]
struct SnapshotRef<'a> {
    next_seq: u64,
    sweeps: Vec<SweepDoc>,
    trials: Vec<TrialRef<'a>>,
    scores: BTreeMap<&'a str, &'a Vec<f64>>,
    rows: BTreeMap<&'a str, &'a Vec<(u32, String)>>,
}

/// A trial in a snapshot, borrowed.
#[derive(Serialize)]
struct TrialRef<'a> {
    config: &'a TrialConfig,
    record: &'a TrialRecord,
    seq: u64,
    sweeps: &'a [String],
}

/// A snapshot as read.
#[derive(Deserialize)]
struct SnapshotDoc {
    next_seq: u64,
    sweeps: Vec<SweepDoc>,
    trials: Vec<TrialDoc>,
    scores: HashMap<String, Vec<f64>>,
    rows: HashMap<String, Vec<(u32, String)>>,
}

/// A sweep in a snapshot.
#[derive(Serialize, Deserialize)]
struct SweepDoc {
    record: SweepRecord,
    spec: SpecDoc,
}

/// A trial in a snapshot, as read.
#[derive(Deserialize)]
struct TrialDoc {
    config: TrialConfig,
    record: TrialRecord,
    seq: u64,
    sweeps: Vec<String>,
}

impl State {
    /// The snapshot of everything durable, as JSON, in a stable order (two equal states
    /// give equal bytes).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut sweeps: Vec<SweepDoc> = self
            .sweeps
            .values()
            .map(|s| SweepDoc {
                record: s.record.clone(),
                spec: SpecDoc::from(&s.spec),
            })
            .collect();
        sweeps.sort_by(|a, b| a.record.sweep_id.cmp(&b.record.sweep_id));
        let mut trials: Vec<TrialRef> = self
            .trials
            .values()
            .map(|t| TrialRef {
                config: &t.config,
                record: &t.record,
                seq: t.seq,
                sweeps: &t.sweeps,
            })
            .collect();
        trials.sort_by(|a, b| a.record.trial_id.cmp(&b.record.trial_id));
        let doc = SnapshotRef {
            next_seq: self.next_seq,
            sweeps,
            trials,
            scores: self.scores.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            rows: self.rows.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        };
        serde_json::to_vec(&doc).expect("snapshots always serialise")
    }

    /// Loads a snapshot into this (empty) state; running leases get a fresh TTL.
    pub fn restore(&mut self, bytes: &[u8], now: Instant) -> serde_json::Result<()> {
        let doc: SnapshotDoc = serde_json::from_slice(bytes)?;
        self.next_seq = doc.next_seq;
        for s in doc.sweeps {
            let sweep = Sweep {
                record: s.record,
                spec: s.spec.into(),
            };
            self.sweeps.insert(sweep.record.sweep_id.clone(), sweep);
        }
        for t in doc.trials {
            let trial = Trial {
                expiry: None,
                config: t.config,
                record: t.record,
                seq: t.seq,
                sweeps: t.sweeps,
            };
            self.install(trial, now);
        }
        self.scores = doc.scores;
        self.rows = doc.rows;
        Ok(())
    }

    /// Puts a recovered trial in place, with its lease (if running) valid for one TTL.
    fn install(&mut self, mut trial: Trial, now: Instant) {
        if trial.record.state != TrialState::Running {
            trial.record.lease_id = None;
        }
        trial.expiry = trial.record.lease_id.as_ref().map(|_| now + self.lease_ttl);
        if let Some(lease) = &trial.record.lease_id {
            self.leases.insert(lease.clone(), trial.id().to_string());
        }
        self.trials.insert(trial.id().to_string(), trial);
    }

    /// Applies one entry of the log, as its transition was applied when it was made.
    /// An entry about a trial this state does not know (a log cut at a damaged segment
    /// before it) is skipped with a warning.
    pub fn replay(&mut self, entry: Entry, now: Instant) {
        match entry {
            Entry::Submit {
                sweep,
                spec,
                queued,
            } => {
                let sid = sweep.sweep_id.clone();
                let mut changes = Vec::with_capacity(queued.len());
                for Queued { config, record } in queued {
                    let trial = match (config, self.trials.get(&record.trial_id)) {
                        (Some(config), _) => Trial {
                            config,
                            record,
                            expiry: None,
                            seq: 0,
                            sweeps: vec![sid.clone()],
                        },
                        (None, Some(t)) => {
                            let mut t = t.clone();
                            t.record = record;
                            t.expiry = None;
                            if !t.sweeps.contains(&sid) {
                                t.sweeps.push(sid.clone());
                            }
                            t
                        }
                        (None, None) => {
                            tracing::warn!(trial = %record.trial_id, sweep = %sid, "the log requeues a trial it never created; skipped");
                            continue;
                        }
                    };
                    changes.push(Change {
                        trial,
                        kind: EventKind::Queued,
                    });
                }
                self.apply_submit(SubmitPlan {
                    sweep: Sweep {
                        record: sweep,
                        spec: (*spec).into(),
                    },
                    new_trials: Vec::new(),
                    changes,
                });
            }
            Entry::Trial { kind, record } => {
                let Some(t) = self.trials.get(&record.trial_id) else {
                    tracing::warn!(trial = %record.trial_id, "the log changes a trial it never created; skipped");
                    return;
                };
                let Some(kind) = EventKind::from_name(&kind) else {
                    tracing::warn!(trial = %record.trial_id, "the log names an unknown event '{kind}'; skipped");
                    return;
                };
                let mut trial = t.clone();
                trial.record = record;
                trial.expiry = (trial.record.state == TrialState::Running
                    && trial.record.lease_id.is_some())
                .then(|| now + self.lease_ttl);
                self.apply(vec![Change { trial, kind }]);
            }
        }
    }

    /// Keeps the `metrics.jsonl` line of the epoch `trial.record` just reported. A
    /// resumed attempt repeats the epochs after its checkpoint: its lines replace theirs.
    pub(super) fn record_row(&mut self, trial: &Trial) {
        let (epoch, Some(metrics)) = (trial.record.epoch, &trial.record.metrics) else {
            return;
        };
        let rows = self.rows.entry(trial.id().to_string()).or_default();
        rows.retain(|(e, _)| *e < epoch);
        rows.push((epoch, metrics_line(epoch, metrics)));
    }

    /// The `metrics.jsonl` lines of `trial` not yet written to its file, oldest first.
    pub fn rows(&self, trial: &str) -> &[(u32, String)] {
        self.rows.get(trial).map_or(&[], Vec::as_slice)
    }

    /// Forgets the lines of `trial` once they are in its file, unless they changed since
    /// `written` was taken (the trial ran again meanwhile).
    pub fn drop_rows(&mut self, trial: &str, written: &[(u32, String)]) {
        if self.rows(trial) == written {
            self.rows.remove(trial);
        }
    }

    /// Finished trials whose lines are not yet in their file (after a recovery).
    pub fn unsettled(&self) -> Vec<String> {
        self.rows
            .keys()
            .filter(|id| {
                self.trials
                    .get(*id)
                    .is_some_and(|t| t.record.state.is_finished())
            })
            .cloned()
            .collect()
    }
}
