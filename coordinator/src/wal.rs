//! The coordinator's write-ahead log and snapshots in the object store. Every durable
//! state change is an [`Entry`]; the committer writes the entries of one tick as one
//! segment object (`coordinator/wal/<seq>.jsonl`), and now and then the whole state as a
//! snapshot (`coordinator/snapshots/<seq>.json`, covering segments up to `seq`), after
//! which the segments it covers are deleted. [`recover`] loads the newest snapshot and
//! replays the segments after it.
//!
//! A segment is a header line, one JSON line per entry, and a footer with the SHA-256 of
//! everything before it. A store `put` is atomic, yet a segment cut short (a torn write
//! on a store that is not, a truncated copy) must never be half-applied: one whose footer
//! is missing or does not match is skipped whole with a warning when it is the last one,
//! and is an error anywhere else, since later segments were written after it was
//! acknowledged.

use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wick_common::store::Store;
use wick_common::trial::TrialConfig;

use crate::error::{Error, Result};
use crate::records::{SpecDoc, SweepRecord, TrialRecord};
use crate::state::{Change, State, SubmitPlan};

/// Where the log segments live.
pub const WAL_PREFIX: &str = "coordinator/wal/";
/// Where the snapshots live.
pub const SNAPSHOT_PREFIX: &str = "coordinator/snapshots/";
/// Segments read at once during recovery (each is one round trip to the store).
const READ_AHEAD: usize = 32;

/// Key of segment `seq`.
pub fn segment_key(seq: u64) -> String {
    format!("{WAL_PREFIX}{seq:020}.jsonl")
}

/// Key of the snapshot covering segments up to `seq`.
pub fn snapshot_key(seq: u64) -> String {
    format!("{SNAPSHOT_PREFIX}{seq:020}.json")
}

/// The number in a segment or snapshot key, if it is one.
fn seq_of(key: &str, prefix: &str) -> Option<u64> {
    let name = key.strip_prefix(prefix)?;
    let digits = name.split('.').next()?;
    (digits.len() == 20).then(|| digits.parse().ok()).flatten()
}

/// One durable state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Entry {
    /// A sweep submitted (or submitted again): its record and spec, and every trial the
    /// submission queued, with the configuration of those it created.
    Submit {
        /// The sweep's record after the submission.
        sweep: SweepRecord,
        /// Its spec (boxed: it is much bigger than a trial entry, which is most entries).
        spec: Box<SpecDoc>,
        /// The trials queued by it.
        queued: Vec<Queued>,
    },
    /// A trial's record after one transition; an epoch's transition carries that epoch's
    /// metrics in `record.metrics`, so the log also holds every `metrics.jsonl` line.
    Trial {
        /// The event the transition made (`epoch`, `running`, `succeeded`, …).
        kind: String,
        /// The record after it.
        record: TrialRecord,
    },
}

impl Entry {
    /// The entry of one trial's transition.
    pub fn of_change(c: &Change) -> Entry {
        Entry::Trial {
            kind: c.kind.as_str().into(),
            record: c.trial.record.clone(),
        }
    }

    /// The entry of a submission.
    pub fn of_submit(plan: &SubmitPlan) -> Entry {
        let new: std::collections::HashSet<&str> =
            plan.new_trials.iter().map(String::as_str).collect();
        Entry::Submit {
            sweep: plan.sweep.record.clone(),
            spec: Box::new(SpecDoc::from(&plan.sweep.spec)),
            queued: plan
                .changes
                .iter()
                .map(|c| Queued {
                    config: new.contains(c.trial.id()).then(|| c.trial.config.clone()),
                    record: c.trial.record.clone(),
                })
                .collect(),
        }
    }
}

/// A trial queued by a submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    /// Its configuration, when the submission created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<TrialConfig>,
    /// Its record, queued.
    pub record: TrialRecord,
}

/// A segment's first line.
#[derive(Serialize, Deserialize)]
struct Header {
    /// Its number.
    segment: u64,
    /// Entries that follow.
    entries: usize,
}

/// A segment's last line.
#[derive(Serialize, Deserialize)]
struct Footer {
    /// The segment's number again.
    end: u64,
    /// Hex SHA-256 of every byte before this line.
    sha256: String,
}

/// Encodes segment `seq` of `entries`.
pub fn encode_segment(seq: u64, entries: &[&Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + 512 * entries.len());
    let header = Header {
        segment: seq,
        entries: entries.len(),
    };
    line(&mut out, &header);
    for e in entries {
        line(&mut out, e);
    }
    let footer = Footer {
        end: seq,
        sha256: hex::encode(Sha256::digest(&out)),
    };
    line(&mut out, &footer);
    out
}

fn line<T: Serialize>(out: &mut Vec<u8>, v: &T) {
    serde_json::to_writer(&mut *out, v).expect("log entries always serialise");
    out.push(b'\n');
}

/// Decodes segment `seq`; `Err` names what makes it torn (cut short or damaged).
pub fn decode_segment(seq: u64, bytes: &[u8]) -> std::result::Result<Vec<Entry>, String> {
    let body = bytes
        .strip_suffix(b"\n")
        .ok_or("it does not end with a newline")?;
    let split = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let (before, last) = body.split_at(split);
    let footer: Footer =
        serde_json::from_slice(last).map_err(|_| "its last line is not the footer")?;
    if footer.end != seq || footer.sha256 != hex::encode(Sha256::digest(before)) {
        return Err("its footer does not match its content".into());
    }
    let mut lines = before.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    let header: Header = lines
        .next()
        .and_then(|l| serde_json::from_slice(l).ok())
        .ok_or("its first line is not the header")?;
    if header.segment != seq {
        return Err(format!("its header says segment {}", header.segment));
    }
    let entries = lines
        .map(serde_json::from_slice)
        .collect::<std::result::Result<Vec<Entry>, _>>()
        .map_err(|e| format!("an entry does not parse ({e})"))?;
    if entries.len() != header.entries {
        return Err(format!(
            "it holds {} entries, its header says {}",
            entries.len(),
            header.entries
        ));
    }
    Ok(entries)
}

/// Where the log stands after [`recover`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// Number of the next segment to write.
    pub next_segment: u64,
    /// Number of the snapshot loaded (0: none).
    pub snapshot: u64,
    /// Size of that snapshot.
    pub snapshot_bytes: u64,
    /// Bytes of the segments replayed after it.
    pub log_bytes: u64,
    /// Entries replayed.
    pub entries: usize,
}

/// The numbered objects under `prefix`, lowest first.
async fn numbered(store: &Store, prefix: &str) -> Result<Vec<(u64, String, u64)>> {
    let mut v: Vec<(u64, String, u64)> = store
        .list(prefix)
        .await?
        .into_iter()
        .filter_map(|(k, size)| seq_of(&k, prefix).map(|s| (s, k, size)))
        .collect();
    v.sort();
    Ok(v)
}

/// Whether the store holds a log or a snapshot.
pub async fn exists(store: &Store) -> Result<bool> {
    Ok(!numbered(store, SNAPSHOT_PREFIX).await?.is_empty()
        || !numbered(store, WAL_PREFIX).await?.is_empty())
}

/// Loads the newest snapshot into `state` (which must be empty) and replays the segments
/// after it. A torn last segment is skipped with a warning and deleted, so the next one
/// written takes its number; a torn or missing segment before the last is an error.
pub async fn recover(store: &Store, state: &mut State, now: Instant) -> Result<Position> {
    let mut pos = Position::default();
    if let Some((seq, key, size)) = numbered(store, SNAPSHOT_PREFIX).await?.pop() {
        let bytes = store.get(&key).await?.ok_or_else(|| {
            Error::Unavailable(format!("snapshot '{key}' vanished while it was read"))
        })?;
        state.restore(&bytes, now).map_err(|e| {
            Error::Unavailable(format!(
                "snapshot '{key}' is corrupt ({e}); restore it from a backup, or remove it to start from the one before (its log segments may be gone)"
            ))
        })?;
        (pos.snapshot, pos.snapshot_bytes) = (seq, size);
    }
    let segments: Vec<(u64, String, u64)> = numbered(store, WAL_PREFIX)
        .await?
        .into_iter()
        .filter(|(s, _, _)| *s > pos.snapshot)
        .collect();
    pos.next_segment = pos.snapshot + 1;
    let last = segments.len();
    let mut reads =
        futures::stream::iter(segments.into_iter().map(|(seq, key, size)| async move {
            let bytes = store.get(&key).await?;
            Ok::<_, Error>((seq, key, size, bytes))
        }))
        .buffered(READ_AHEAD)
        .enumerate();
    while let Some((i, read)) = reads.next().await {
        let (seq, key, size, bytes) = read?;
        if seq != pos.next_segment {
            return Err(Error::Unavailable(format!(
                "the coordinator's log has no segment {} (found '{key}' after it); restore the missing segment from a backup",
                pos.next_segment
            )));
        }
        let decoded = bytes
            .ok_or_else(|| "it vanished while it was read".to_string())
            .and_then(|b| decode_segment(seq, &b));
        let entries = match decoded {
            Ok(entries) => entries,
            Err(why) if i + 1 == last => {
                tracing::warn!(
                    "the last log segment '{key}' is torn ({why}): a write cut short by a crash, never acknowledged; skipped and removed"
                );
                store.delete(&key).await?;
                break;
            }
            Err(why) => {
                return Err(Error::Unavailable(format!(
                    "log segment '{key}' is torn ({why}) but later segments exist; the store is damaged: restore the segment from a backup"
                )));
            }
        };
        pos.entries += entries.len();
        for e in entries {
            state.replay(e, now);
        }
        pos.log_bytes += size;
        pos.next_segment = seq + 1;
    }
    Ok(pos)
}

/// Deletes the segments and snapshots that snapshot `seq` makes unnecessary, a few at a
/// time; failures only leave garbage that the next clean-up takes.
pub async fn prune(store: &Store, seq: u64) -> Result<usize> {
    let mut old: Vec<String> = numbered(store, WAL_PREFIX)
        .await?
        .into_iter()
        .filter(|(s, _, _)| *s <= seq)
        .map(|(_, k, _)| k)
        .collect();
    old.extend(
        numbered(store, SNAPSHOT_PREFIX)
            .await?
            .into_iter()
            .filter(|(s, _, _)| *s < seq)
            .map(|(_, k, _)| k),
    );
    let n = old.len();
    futures::stream::iter(old.into_iter().map(|k| {
        let store = store.clone();
        async move { store.delete(&k).await }
    }))
    .buffer_unordered(READ_AHEAD)
    .try_collect::<Vec<()>>()
    .await?;
    Ok(n)
}

#[cfg(test)]
mod tests;
