//! The two background tasks behind durability. The committer takes every change
//! appended since its last write and writes them as one log segment (group commit: while
//! one write is in flight, the next batch gathers), marks them durable, announces them to
//! watchers, and now and then writes a snapshot and prunes the log. The settler then
//! writes the documents of ended trials and sweeps (the per-trial files people and tools
//! read) and marks those changes settled. A failed write is retried with backoff until
//! the store answers; meanwhile new changes are refused (see `Journal::check`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::coordinator::Coordinator;
use crate::journal::Settle;
use crate::persist;
use crate::wal::{self, Position};

/// Log bytes after which a snapshot is written, at least (or the last snapshot's size,
/// whichever is larger, so writing snapshots costs at most as much as the log).
const MIN_LOG_BYTES: u64 = 8 << 20;
/// Log segments after which a snapshot is written, at least (or one per 16 KiB of the
/// last snapshot): a restart reads every segment since the snapshot, and a busy
/// coordinator writes many small ones.
const MIN_SEGMENTS: u64 = 2000;
/// First pause after a failed write.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Tries of a failing write once the coordinator is stopping.
const TRIES_WHEN_STOPPING: u32 = 3;
/// Documents written at once by the settler.
const SETTLE_AT_ONCE: usize = 32;

/// Settle jobs, with the number of the last item they belong to.
pub type SettleQueue = mpsc::UnboundedSender<(u64, Vec<Settle>)>;

impl Coordinator {
    /// Writes `bytes` at `key` until it works; `false` when the coordinator stopped while
    /// the store kept failing.
    async fn write_durably(&self, key: &str, bytes: Bytes) -> bool {
        let mut backoff = FIRST_BACKOFF;
        let mut tries = 0;
        loop {
            match self.store.put(key, bytes.clone()).await {
                Ok(()) => {
                    self.journal.set_failing(None);
                    return true;
                }
                Err(e) => {
                    tries += 1;
                    self.journal.set_failing(Some(e.to_string()));
                    if *self.shutdown.borrow() && tries >= TRIES_WHEN_STOPPING {
                        tracing::warn!(
                            "stopping with '{key}' unwritten ({e}); its changes were never acknowledged"
                        );
                        return false;
                    }
                    tracing::warn!("cannot write '{key}' ({e}); retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// The committer loop, from log position `pos`, until shutdown with nothing pending.
    pub async fn run_committer(self: Arc<Self>, pos: Position, settle: SettleQueue) {
        let (mut seq, mut log_bytes, mut snap_bytes) =
            (pos.next_segment, pos.log_bytes, pos.snapshot_bytes);
        let mut segments = pos.next_segment - pos.snapshot - 1;
        let mut stopped = self.shutdown.clone();
        loop {
            let woken = self.journal.wake.notified();
            let snapshot_due = (log_bytes >= MIN_LOG_BYTES.max(snap_bytes)
                || segments >= MIN_SEGMENTS.max(snap_bytes >> 14))
                && self.journal.has_pending();
            // A snapshot is taken with the batch it follows, under the state lock, so it
            // is exactly the state after this segment.
            let (items, upto, snapshot) = if snapshot_due {
                let st = self.state.lock().await;
                let (items, upto) = self.journal.drain();
                (items, upto, Some(st.snapshot()))
            } else {
                let (items, upto) = self.journal.drain();
                (items, upto, None)
            };
            if items.is_empty() {
                if *stopped.borrow() {
                    break;
                }
                tokio::select! {
                    _ = woken => {}
                    _ = stopped.changed() => {}
                }
                continue;
            }
            let entries: Vec<&wal::Entry> = items.iter().map(|i| &i.entry).collect();
            let bytes = Bytes::from(wal::encode_segment(seq, &entries));
            let size = bytes.len() as u64;
            if !self.write_durably(&wal::segment_key(seq), bytes).await {
                break;
            }
            self.journal.mark_durable(upto);
            self.metrics.wal_segments.inc();
            self.metrics.wal_entries.inc_by(items.len() as u64);
            log_bytes += size;
            segments += 1;
            let mut jobs = Vec::new();
            for item in items {
                for c in &item.events {
                    self.events.publish(&c.trial, c.kind);
                }
                jobs.extend(item.settle);
            }
            let _ = settle.send((upto, jobs));
            if let Some(snapshot) = snapshot {
                snap_bytes = snapshot.len() as u64;
                if !self
                    .write_durably(&wal::snapshot_key(seq), Bytes::from(snapshot))
                    .await
                {
                    break;
                }
                (log_bytes, segments) = (0, 0);
                tracing::info!(segment = seq, bytes = snap_bytes, "snapshot written");
                let store = self.store.clone();
                tokio::spawn(async move {
                    match wal::prune(&store, seq).await {
                        Ok(n) => tracing::debug!(removed = n, "log pruned"),
                        Err(e) => tracing::warn!(
                            "cannot prune the log ({e}); the next snapshot tries again"
                        ),
                    }
                });
            }
            seq += 1;
        }
        self.journal.close();
    }

    /// The settler loop: runs settle jobs in the order their changes were made durable.
    pub async fn run_settler(
        self: Arc<Self>,
        mut jobs: mpsc::UnboundedReceiver<(u64, Vec<Settle>)>,
    ) {
        while let Some((mut upto, mut batch)) = jobs.recv().await {
            while let Ok((n, more)) = jobs.try_recv() {
                upto = n;
                batch.extend(more);
            }
            batch.sort();
            batch.dedup();
            futures::stream::iter(batch)
                .for_each_concurrent(SETTLE_AT_ONCE, |job| self.settle_retrying(job))
                .await;
            self.journal.mark_settled(upto);
        }
    }

    /// Runs one settle job until it works, or the coordinator stops (the log keeps what
    /// it needs, and the next start settles it again).
    async fn settle_retrying(&self, job: Settle) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let done = match &job {
                Settle::Trial(id) => self.settle_trial(id).await,
                Settle::Sweep(id) => self.settle_sweep(id).await,
            };
            match done {
                Ok(()) => return,
                Err(e) if *self.shutdown.borrow() => {
                    tracing::warn!(
                        "stopping with {job:?} unwritten ({e}); the next start writes it"
                    );
                    return;
                }
                Err(e) => {
                    tracing::warn!(
                        "cannot write the documents of {job:?} ({e}); retrying in {backoff:?}"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Writes an ended trial's documents and moves its metrics lines to its file.
    async fn settle_trial(&self, id: &str) -> crate::error::Result<()> {
        let (trial, rows) = {
            let st = self.state.lock().await;
            let Ok(t) = st.trial(id) else { return Ok(()) };
            if !t.record.state.is_finished() {
                return Ok(());
            }
            (t.clone(), st.rows(id).to_vec())
        };
        let staged = self
            .staged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned();
        persist::save_ended(&self.store, &trial, &rows, staged.as_deref()).await?;
        self.staged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        self.state.lock().await.drop_rows(id, &rows);
        Ok(())
    }

    /// Writes a sweep's documents.
    async fn settle_sweep(&self, id: &str) -> crate::error::Result<()> {
        let sweep = {
            let st = self.state.lock().await;
            match st.sweep(id) {
                Ok(s) => s.clone(),
                Err(_) => return Ok(()),
            }
        };
        persist::save_sweep(&self.store, &sweep).await
    }
}
