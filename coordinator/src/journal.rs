//! The commit queue between the operations and the committer. An operation applies its
//! changes in memory and appends their log entries here in the same critical section
//! (under the state lock), getting a sequence number; it then waits, without the lock,
//! until the committer marks that number durable (written in a log segment) or settled
//! (durable, and the ended trials' documents written too). Appending never waits for the
//! store, so reads and heartbeats never queue behind a write.

use std::sync::Mutex;

use tokio::sync::{Notify, watch};

use crate::error::{Error, Result};
use crate::state::{Change, SubmitPlan};
use crate::wal::Entry;

/// Documents written once their change is durable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Settle {
    /// An ended trial's `state.json`, `config.json`, `data.json` and `metrics.jsonl` (its
    /// lines leave the log), and, when it succeeded, its staging area cleared.
    Trial(String),
    /// A sweep's `spec.json` and `state.json`, for people and tools that read the store.
    Sweep(String),
}

/// One log entry with what follows its durability.
pub struct Item {
    /// The entry.
    pub entry: Entry,
    /// The changes to announce to watchers once it is durable.
    pub events: Vec<Change>,
    /// The documents to write then.
    pub settle: Vec<Settle>,
}

impl Item {
    /// The item of one trial's transition.
    pub fn change(c: Change) -> Item {
        let settle = if c.kind.ends_trial() {
            vec![Settle::Trial(c.trial.id().to_string())]
        } else {
            Vec::new()
        };
        Item {
            entry: Entry::of_change(&c),
            events: vec![c],
            settle,
        }
    }

    /// The item of a submission.
    pub fn submit(plan: &SubmitPlan) -> Item {
        Item {
            entry: Entry::of_submit(plan),
            events: plan.changes.clone(),
            settle: vec![Settle::Sweep(plan.sweep.record.sweep_id.clone())],
        }
    }
}

/// How far the committer got.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mark {
    /// Every item up to this number is durable (or settled).
    pub upto: u64,
    /// The committer stopped: later items will never be.
    pub closed: bool,
}

/// The queue and its two watermarks.
pub struct Journal {
    /// Items not yet taken by the committer, and the number of the last one appended.
    pending: Mutex<(Vec<Item>, u64)>,
    /// Wakes the committer when something is appended.
    pub wake: Notify,
    /// Durable watermark.
    durable: watch::Sender<Mark>,
    /// Settled watermark.
    settled: watch::Sender<Mark>,
    /// The last store error while writes are failing (new changes are then refused).
    failing: Mutex<Option<String>>,
}

impl Default for Journal {
    fn default() -> Self {
        Journal {
            pending: Mutex::new((Vec::new(), 0)),
            wake: Notify::new(),
            durable: watch::Sender::new(Mark::default()),
            settled: watch::Sender::new(Mark::default()),
            failing: Mutex::new(None),
        }
    }
}

impl Journal {
    /// Appends items (call under the state lock); returns the number of the last one.
    pub fn append(&self, items: Vec<Item>) -> u64 {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.1 += items.len() as u64;
        p.0.extend(items);
        let n = p.1;
        drop(p);
        self.wake.notify_one();
        n
    }

    /// Takes every pending item; returns them and the number of the last one.
    pub fn drain(&self) -> (Vec<Item>, u64) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        (std::mem::take(&mut p.0), p.1)
    }

    /// Whether items wait.
    pub fn has_pending(&self) -> bool {
        !self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .is_empty()
    }

    /// Marks items up to `n` durable.
    pub fn mark_durable(&self, n: u64) {
        self.durable.send_modify(|m| m.upto = m.upto.max(n));
    }

    /// Marks items up to `n` settled.
    pub fn mark_settled(&self, n: u64) {
        self.settled.send_modify(|m| m.upto = m.upto.max(n));
    }

    /// The committer stopped: waiters of items not yet durable get an error.
    pub fn close(&self) {
        self.durable.send_modify(|m| m.closed = true);
        self.settled.send_modify(|m| m.closed = true);
    }

    /// Waits until item `n` is durable.
    pub async fn durable(&self, n: u64) -> Result<()> {
        wait(&self.durable, n).await
    }

    /// Waits until item `n` is settled.
    pub async fn settled(&self, n: u64) -> Result<()> {
        wait(&self.settled, n).await
    }

    /// Records whether the store's last write failed.
    pub fn set_failing(&self, error: Option<String>) {
        *self.failing.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }

    /// Refuses new changes while the store's writes fail, so that a worker backs off and
    /// retries instead of waiting on a change that cannot be made durable yet.
    pub fn check(&self) -> Result<()> {
        match &*self.failing.lock().unwrap_or_else(|e| e.into_inner()) {
            None => Ok(()),
            Some(e) => Err(Error::Unavailable(format!(
                "the coordinator cannot write to its store ({e}); it keeps retrying: try again shortly"
            ))),
        }
    }
}

async fn wait(mark: &watch::Sender<Mark>, n: u64) -> Result<()> {
    let mut rx = mark.subscribe();
    let m = *rx
        .wait_for(|m| m.upto >= n || m.closed)
        .await
        .map_err(|_| Error::Unavailable("the coordinator is stopping; try again".into()))?;
    if m.upto >= n {
        Ok(())
    } else {
        Err(Error::Unavailable(
            "the coordinator stopped before this change was written; try again".into(),
        ))
    }
}
