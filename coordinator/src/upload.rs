//! Data uploaded through the coordinator, so that a client needs only the coordinator's
//! address and token, not the store's credentials, to run a sweep on its own files.
//!
//! A file lands under its content-addressed key `data/sha256-<hex>/<name>`, the key a
//! client writing to the store itself uses too, so both paths share what is there. While
//! it arrives, its bytes go to the store as parts (`uploads/sha256-<hex>/<name>/part-<offset>`)
//! of a few megabytes: a stream that breaks, or a coordinator that restarts, loses at most
//! the part being filled, and the next call resumes from the bytes held (`DataStatus`).
//! Once every byte is there the parts are joined into the final key while their SHA-256 is
//! checked, then removed. An upload that streams from byte 0 to the end without a break
//! (the usual case) also writes the final key as it goes, so it skips that second pass
//! over the store; the parts are its insurance. An upload holds a few parts in memory,
//! whatever the file's size.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tonic::Status;
use wick_common::store::{Store, Writer, keys};
use wick_proto::v1::upload_data_chunk::Part;
use wick_proto::v1::{DataStatusResult, UploadDataChunk, UploadDataHeader, UploadDataResult};
use wick_service::metrics::Counter;

use crate::error::{Error, Result};

/// The data files workers read: the case table and the face bundle.
pub const NAMES: [&str; 2] = ["covid.csv", "faces.tar"];
/// Bytes gathered before they are written as one part: what a broken stream can lose.
const PART: usize = 8 << 20;

/// One file being uploaded, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// `covid.csv` or `faces.tar`.
    pub name: String,
    /// SHA-256 of the whole file, lowercase hex.
    pub sha: String,
    /// Size of the whole file.
    pub size: u64,
}

impl Target {
    /// Checks what a client says about a file against what the coordinator accepts.
    pub fn new(name: &str, sha: &str, size: u64, max: u64) -> Result<Target> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if !NAMES.contains(&name) {
            return bad(format!(
                "'{name}' is not a data file workers read; upload {}",
                NAMES.join(" or ")
            ));
        }
        if sha.len() != 64 || !sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return bad(format!(
                "'{sha}' is not a SHA-256: send the file's digest as 64 lowercase hex digits"
            ));
        }
        if size == 0 {
            return bad(format!("{name} is empty; there is nothing to train on"));
        }
        if size > max {
            return bad(format!(
                "{name} is {size} bytes, above this coordinator's limit of {max} (--max-upload-mib); raise the limit, or put the file in the store yourself and pass store:KEY"
            ));
        }
        Ok(Target {
            name: name.into(),
            sha: sha.into(),
            size,
        })
    }

    /// Its final key in the store.
    pub fn key(&self) -> String {
        keys::data(&self.sha, &self.name)
    }
}

/// The parts an upload left, in order, with their offsets and sizes.
async fn parts(store: &Store, t: &Target) -> Result<Vec<(String, u64, u64)>> {
    let mut out: Vec<(String, u64, u64)> = store
        .list(&keys::upload_dir(&t.sha, &t.name))
        .await?
        .into_iter()
        .filter_map(|(key, size)| {
            let offset = key.rsplit_once("/part-")?.1.parse().ok()?;
            Some((key, offset, size))
        })
        .collect();
    out.sort_by_key(|p| p.1);
    Ok(out)
}

/// The bytes held from offset 0 on without a gap, and the parts that hold them.
fn contiguous(parts: &[(String, u64, u64)]) -> (u64, usize) {
    let mut held = 0;
    let mut n = 0;
    for (_, offset, size) in parts {
        if *offset != held {
            break;
        }
        held += size;
        n += 1;
    }
    (held, n)
}

/// How much of `t` the store holds.
pub async fn status(store: &Store, t: &Target) -> Result<DataStatusResult> {
    let key = t.key();
    if store.exists(&key).await? {
        return Ok(DataStatusResult {
            key,
            received: t.size,
            complete: true,
        });
    }
    let (received, _) = contiguous(&parts(store, t).await?);
    Ok(DataStatusResult {
        key,
        received: received.min(t.size),
        complete: false,
    })
}

/// Uploads under way, one lock per file, so two clients sending the same file do not
/// interleave their parts (the second waits, then finds the file whole).
#[derive(Default)]
pub struct Uploads {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Bytes written as parts (the metrics' `upload_bytes`).
    bytes: Counter,
    /// Files joined whole (the metrics' `uploads_completed`).
    completed: Counter,
}

impl Uploads {
    /// Uploads that count their bytes and completed files on these counters.
    pub fn counting(bytes: Counter, completed: Counter) -> Uploads {
        Uploads {
            locks: Default::default(),
            bytes,
            completed,
        }
    }

    fn lock_of(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        // Forget the locks nobody holds, so the map does not grow with every file ever sent.
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(key.to_string()).or_default().clone()
    }

    /// Receives one upload from `stream` (a header, then bytes) into the store; `max` is
    /// the largest file accepted.
    pub async fn receive(
        &self,
        store: &Store,
        max: u64,
        mut stream: impl Stream<Item = std::result::Result<UploadDataChunk, Status>> + Unpin,
    ) -> std::result::Result<UploadDataResult, Status> {
        let header = match stream.next().await {
            Some(Ok(UploadDataChunk {
                part: Some(Part::Header(h)),
            })) => h,
            Some(Err(s)) => return Err(s),
            _ => {
                return Err(Error::InvalidArgument(
                    "UploadData must start with a header naming the file, its SHA-256 and size"
                        .into(),
                )
                .into());
            }
        };
        let UploadDataHeader {
            name,
            sha256,
            size,
            offset,
        } = header;
        let t = Target::new(&name, &sha256, size, max)?;
        let lock = self.lock_of(&t.key());
        let _held = lock.lock().await;
        let now = status(store, &t).await?;
        if now.complete {
            return Ok(UploadDataResult {
                key: now.key,
                received: t.size,
                complete: true,
                existed: true,
            });
        }
        if offset > now.received {
            return Err(Error::FailedPrecondition(format!(
                "the coordinator holds the first {} bytes of {name}, not {offset}: send it from byte {} (ask DataStatus)",
                now.received, now.received
            ))
            .into());
        }
        let started = std::time::Instant::now();
        // Nothing held yet: write the final object alongside the parts. Where it cannot be
        // started the parts alone carry the upload, and the join makes the object.
        let direct = match now.received {
            0 => Direct::open(store, &t).await,
            _ => None,
        };
        let (received, direct) = write_parts(
            store,
            &t,
            (now.received, offset),
            &mut stream,
            &self.bytes,
            direct,
        )
        .await?;
        let stored = started.elapsed();
        if received < t.size {
            if let Some(d) = direct {
                d.abandon().await;
            }
            tracing::info!(file = %t.name, sha256 = %t.sha, from = now.received, held = received,
                secs = stored.as_secs_f64(), "upload broken off; the next call resumes");
            return Ok(UploadDataResult {
                key: now.key,
                received,
                complete: false,
                existed: false,
            });
        }
        let single_pass = direct.is_some();
        match direct {
            Some(d) => d.finish(store, &t).await?,
            None => join(store, &t).await?,
        }
        self.completed.inc();
        // Receiving and joining are timed apart: the join is a second pass over the store.
        tracing::info!(file = %t.name, key = %now.key, bytes = t.size, from = now.received,
            single_pass, receive_secs = stored.as_secs_f64(),
            join_secs = (started.elapsed() - stored).as_secs_f64(), "upload complete");
        Ok(UploadDataResult {
            key: now.key,
            received,
            complete: true,
            existed: false,
        })
    }
}

/// Writes the bytes of `stream` as parts from `held` on (the stream starts at `offset`,
/// so its first `held - offset` bytes are already there), counting them on `written`, and
/// into `direct` if given; returns the bytes held after, and `direct` if it took every
/// byte. A stream that fails still has what it delivered written, so a retry resumes
/// after it. One part is stored while the next arrives, so the client waits for neither
/// alone; parts are stored in order, so what is held stays contiguous whatever fails.
async fn write_parts(
    store: &Store,
    t: &Target,
    (held, offset): (u64, u64),
    stream: &mut (impl Stream<Item = std::result::Result<UploadDataChunk, Status>> + Unpin),
    written: &Counter,
    direct: Option<Direct>,
) -> std::result::Result<(u64, Option<Direct>), Status> {
    let mut parts = PartWriter::new(store, t, held, written, direct);
    let got = fill(&mut parts, t, held - offset, stream).await;
    let direct = parts.direct.take();
    match got {
        Ok(held) => Ok((held, direct)),
        Err(s) => {
            if let Some(d) = direct {
                d.abandon().await;
            }
            Err(s)
        }
    }
}

/// The loop of [`write_parts`]: skips the first `skip` bytes of `stream`, hands the rest
/// to `parts` a part at a time; returns the bytes held once the stream ends.
async fn fill(
    parts: &mut PartWriter,
    t: &Target,
    mut skip: u64,
    stream: &mut (impl Stream<Item = std::result::Result<UploadDataChunk, Status>> + Unpin),
) -> std::result::Result<u64, Status> {
    let mut buf: Vec<u8> = Vec::with_capacity(PART);
    let mut failed = None;
    while let Some(msg) = stream.next().await {
        let data = match msg {
            Ok(UploadDataChunk {
                part: Some(Part::Data(d)),
            }) => d,
            Ok(_) => {
                failed = Some(Status::invalid_argument(
                    "UploadData takes one header, first; the messages after it carry bytes",
                ));
                break;
            }
            Err(s) => {
                failed = Some(s);
                break;
            }
        };
        let cut = data.len().min(usize::try_from(skip).unwrap_or(usize::MAX));
        skip -= cut as u64;
        let data = &data[cut..];
        if parts.next_at + (buf.len() + data.len()) as u64 > t.size {
            // The file is not what the header said: nothing of this stream is kept.
            return Err(Error::InvalidArgument(format!(
                "more than the {} bytes the header declared for {}: send the size of the file as it is now",
                t.size, t.name
            ))
            .into());
        }
        buf.extend_from_slice(data);
        if buf.len() >= PART {
            parts
                .start(std::mem::replace(&mut buf, Vec::with_capacity(PART)))
                .await?;
        }
    }
    parts.start(buf).await?;
    let held = parts.finish().await?;
    match failed {
        Some(s) => Err(s),
        None => Ok(held),
    }
}

/// The final object of an upload written while its bytes arrive, with their hash.
struct Direct {
    out: Writer,
    hash: Sha256,
}

impl Direct {
    /// Starts writing `t`'s final key; `None` where the store refuses (the join then
    /// makes the object from the parts).
    async fn open(store: &Store, t: &Target) -> Option<Direct> {
        match store.writer(&t.key()).await {
            Ok(out) => Some(Direct {
                out,
                hash: Sha256::new(),
            }),
            Err(e) => {
                tracing::warn!(file = %t.name, error = %e, "cannot write the upload in one pass; its parts will be joined");
                None
            }
        }
    }

    /// Gives the object up: nothing appears under its key. Failing to is only logged:
    /// the parts, not this object, hold the upload.
    async fn abandon(self) {
        if let Err(e) = self.out.abort().await {
            tracing::warn!(error = %e, "abandoning a one-pass upload failed");
        }
    }

    /// Completes the object if every byte hashes to the name, and removes the parts.
    async fn finish(self, store: &Store, t: &Target) -> Result<()> {
        let all = parts(store, t).await?;
        settle(store, t, self.out, self.hash, &all).await
    }
}

/// Stores the parts of one upload in order, with at most one in flight.
struct PartWriter {
    store: Store,
    sha: String,
    name: String,
    /// Bytes stored so far (the parts before the one in flight).
    held: u64,
    /// Where the next part starts: `held` plus the part in flight.
    next_at: u64,
    /// The part being stored; it yields the bytes held once it is.
    in_flight: Option<tokio::task::JoinHandle<Result<u64>>>,
    written: Counter,
    /// The final object, while it has taken every byte so far.
    direct: Option<Direct>,
}

impl PartWriter {
    fn new(
        store: &Store,
        t: &Target,
        held: u64,
        written: &Counter,
        direct: Option<Direct>,
    ) -> Self {
        PartWriter {
            store: store.clone(),
            sha: t.sha.clone(),
            name: t.name.clone(),
            held,
            next_at: held,
            in_flight: None,
            written: written.clone(),
            direct,
        }
    }

    /// Waits for the part in flight, then starts storing `bytes` as the next one.
    async fn start(&mut self, bytes: Vec<u8>) -> Result<()> {
        self.held = self.finish().await?;
        if bytes.is_empty() {
            return Ok(());
        }
        if let Some(d) = self.direct.as_mut() {
            d.hash.update(&bytes);
            if let Err(e) = d.out.write(&bytes).await {
                tracing::warn!(file = %self.name, error = %e, "the one-pass write failed; the parts will be joined");
                if let Some(d) = self.direct.take() {
                    d.abandon().await;
                }
            }
        }
        let (store, written) = (self.store.clone(), self.written.clone());
        let key = keys::upload_part(&self.sha, &self.name, self.next_at);
        let n = bytes.len() as u64;
        let after = self.next_at + n;
        self.next_at = after;
        self.in_flight = Some(tokio::spawn(async move {
            store.put(&key, bytes).await?;
            written.inc_by(n);
            Ok(after)
        }));
        Ok(())
    }

    /// Waits for the part in flight; returns the bytes held.
    async fn finish(&mut self) -> Result<u64> {
        if let Some(part) = self.in_flight.take() {
            self.held = part.await.map_err(|e| {
                Error::Unavailable(format!(
                    "storing an upload part failed ({e}); send the file again"
                ))
            })??;
        }
        Ok(self.held)
    }
}

/// Joins the parts of a complete upload into its final key, checking its SHA-256, and
/// removes them. Bytes that do not hash to the name are dropped, so the next try starts over.
async fn join(store: &Store, t: &Target) -> Result<()> {
    let all = parts(store, t).await?;
    let (_, n) = contiguous(&all);
    let key = t.key();
    let mut out = store.writer(&key).await?;
    let mut hash = Sha256::new();
    // The next part is read while this one is hashed and written.
    let fetch = |i: usize| {
        let (store, part) = (store.clone(), all[i].0.clone());
        tokio::spawn(async move { store.get(&part).await })
    };
    let mut next = (n > 0).then(|| fetch(0));
    for (i, (part, _, _)) in all[..n].iter().enumerate() {
        let got = next
            .take()
            .expect("a read is started for every part")
            .await
            .map_err(|e| {
                Error::Unavailable(format!(
                    "reading an upload part failed ({e}); send the file again"
                ))
            })?;
        next = (i + 1 < n).then(|| fetch(i + 1));
        let Some(bytes) = got? else {
            out.abort().await?;
            return Err(Error::Unavailable(format!(
                "part '{part}' of {} vanished from the store while it was joined; send the file again",
                t.name
            )));
        };
        hash.update(&bytes);
        out.write(&bytes).await?;
    }
    settle(store, t, out, hash, &all).await
}

/// Completes `out`, holding all of `t` with digest `hash`, if that is `t`'s SHA-256 (else
/// gives it up), and removes `t`'s parts `all` either way: bytes that do not hash to the
/// name are dropped, so the next try starts over.
async fn settle(
    store: &Store,
    t: &Target,
    out: Writer,
    hash: Sha256,
    all: &[(String, u64, u64)],
) -> Result<()> {
    let got = hex::encode(hash.finalize());
    let matches = got == t.sha;
    match matches {
        true => out.finish().await?,
        false => out.abort().await?,
    }
    for (part, _, _) in all {
        store.delete(part).await?;
    }
    if !matches {
        return Err(Error::InvalidArgument(format!(
            "the {} bytes received for {} hash to {got}, not {}: the file changed while it was sent; upload it again",
            t.size, t.name, t.sha
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wick_common::ids::sha256_hex;

    const MAX: u64 = 1 << 30;

    fn header(name: &str, bytes: &[u8], offset: u64) -> UploadDataChunk {
        UploadDataChunk {
            part: Some(Part::Header(UploadDataHeader {
                name: name.into(),
                sha256: sha256_hex(bytes),
                size: bytes.len() as u64,
                offset,
            })),
        }
    }

    fn data(bytes: &[u8]) -> UploadDataChunk {
        UploadDataChunk {
            part: Some(Part::Data(bytes.to_vec())),
        }
    }

    /// A stream of `msgs`, optionally ending in a failure as a dropped client's does.
    fn stream(
        msgs: Vec<UploadDataChunk>,
        broken: bool,
    ) -> impl Stream<Item = std::result::Result<UploadDataChunk, Status>> + Unpin {
        let mut items: Vec<_> = msgs.into_iter().map(Ok).collect();
        if broken {
            items.push(Err(Status::cancelled("client went away")));
        }
        futures::stream::iter(items)
    }

    /// Bytes that do not repeat, so a part in the wrong place changes the hash.
    fn file(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[tokio::test]
    async fn a_file_sent_in_chunks_lands_whole_under_its_content_key() {
        let store = Store::open("memory://").unwrap();
        let bytes = file(PART * 2 + 1234);
        let mut msgs = vec![header("faces.tar", &bytes, 0)];
        msgs.extend(bytes.chunks(1 << 20).map(data));
        let (written, completed) = (Counter::default(), Counter::default());
        let r = Uploads::counting(written.clone(), completed.clone())
            .receive(&store, MAX, stream(msgs, false))
            .await
            .unwrap();
        assert!(r.complete && !r.existed, "{r:?}");
        assert_eq!((written.get(), completed.get()), (bytes.len() as u64, 1));
        assert_eq!(r.key, keys::data(&sha256_hex(&bytes), "faces.tar"));
        assert_eq!(
            store.get(&r.key).await.unwrap().unwrap().as_ref(),
            &bytes[..]
        );
        assert!(
            store.list("uploads/").await.unwrap().is_empty(),
            "parts are removed once joined"
        );
        let again = Uploads::default()
            .receive(
                &store,
                MAX,
                stream(vec![header("faces.tar", &bytes, 0)], false),
            )
            .await
            .unwrap();
        assert!(again.complete && again.existed, "{again:?}");
    }

    #[tokio::test]
    async fn a_broken_stream_keeps_what_it_delivered_and_the_next_call_resumes() {
        let store = Store::open("memory://").unwrap();
        let bytes = file(PART + 300_000);
        let cut = PART + 100_000;
        let first = vec![
            header("covid.csv", &bytes, 0),
            data(&bytes[..PART / 2]),
            data(&bytes[PART / 2..cut]),
        ];
        let written = Counter::default();
        let e = Uploads::counting(written.clone(), Counter::default())
            .receive(&store, MAX, stream(first, true))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Cancelled);
        assert_eq!(
            written.get(),
            cut as u64,
            "what arrived is written and counted"
        );
        let t = Target::new("covid.csv", &sha256_hex(&bytes), bytes.len() as u64, MAX).unwrap();
        let s = status(&store, &t).await.unwrap();
        assert_eq!((s.received, s.complete), (cut as u64, false));

        // A client resuming a little early: the overlap is skipped, not written twice.
        let from = cut - 10;
        let rest = vec![
            header("covid.csv", &bytes, from as u64),
            data(&bytes[from..]),
        ];
        let r = Uploads::default()
            .receive(&store, MAX, stream(rest, false))
            .await
            .unwrap();
        assert!(r.complete, "{r:?}");
        assert_eq!(
            store.get(&r.key).await.unwrap().unwrap().as_ref(),
            &bytes[..]
        );
        assert!(status(&store, &t).await.unwrap().complete);
    }

    #[tokio::test]
    async fn an_early_end_reports_the_bytes_held() {
        let store = Store::open("memory://").unwrap();
        let bytes = file(1000);
        let r = Uploads::default()
            .receive(
                &store,
                MAX,
                stream(
                    vec![header("covid.csv", &bytes, 0), data(&bytes[..400])],
                    false,
                ),
            )
            .await
            .unwrap();
        assert_eq!((r.received, r.complete), (400, false));
        assert!(!store.exists(&r.key).await.unwrap());
    }

    #[tokio::test]
    async fn bytes_that_do_not_match_the_digest_are_dropped() {
        let store = Store::open("memory://").unwrap();
        let bytes = file(5000);
        let mut other = bytes.clone();
        other[4000] ^= 1;
        let e = Uploads::default()
            .receive(
                &store,
                MAX,
                stream(vec![header("covid.csv", &bytes, 0), data(&other)], false),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("changed while it was sent"), "{e}");
        assert!(store.list("").await.unwrap().is_empty(), "nothing is kept");
    }

    #[tokio::test]
    async fn a_resumed_upload_whose_bytes_changed_is_dropped_at_the_join() {
        let store = Store::open("memory://").unwrap();
        let bytes = file(PART + 5000);
        let first = vec![header("faces.tar", &bytes, 0), data(&bytes[..PART])];
        Uploads::default()
            .receive(&store, MAX, stream(first, true))
            .await
            .unwrap_err();
        assert!(
            store.list("data/").await.unwrap().is_empty(),
            "a broken one-pass write leaves no final object"
        );
        let mut rest = bytes[PART..].to_vec();
        rest[10] ^= 1;
        let e = Uploads::default()
            .receive(
                &store,
                MAX,
                stream(
                    vec![header("faces.tar", &bytes, PART as u64), data(&rest)],
                    false,
                ),
            )
            .await
            .unwrap_err();
        assert!(e.message().contains("changed while it was sent"), "{e}");
        assert!(store.list("").await.unwrap().is_empty(), "nothing is kept");
    }

    #[tokio::test]
    async fn bad_headers_and_streams_are_refused_with_what_to_do() {
        let store = Store::open("memory://").unwrap();
        let bytes = file(100);
        let ups = Uploads::default();
        let refuse = |msgs: Vec<UploadDataChunk>, max: u64| {
            let (ups, store) = (&ups, &store);
            async move {
                ups.receive(store, max, stream(msgs, false))
                    .await
                    .unwrap_err()
            }
        };
        let e = refuse(vec![data(&bytes)], MAX).await;
        assert!(e.message().contains("start with a header"), "{e}");
        let e = refuse(vec![header("model.safetensors", &bytes, 0)], MAX).await;
        assert!(e.message().contains("covid.csv or faces.tar"), "{e}");
        let e = refuse(vec![header("covid.csv", &bytes, 0)], 50).await;
        assert!(e.message().contains("--max-upload-mib"), "{e}");
        let e = refuse(vec![header("covid.csv", &bytes, 40)], MAX).await;
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
        assert!(e.message().contains("from byte 0"), "{e}");
        let e = refuse(vec![header("covid.csv", &bytes, 0), data(&file(101))], MAX).await;
        assert!(e.message().contains("more than the 100 bytes"), "{e}");
        let mut bad = header("covid.csv", &bytes, 0);
        if let Some(Part::Header(h)) = &mut bad.part {
            h.sha256 = "ABC".into();
        }
        let e = refuse(vec![bad], MAX).await;
        assert!(e.message().contains("64 lowercase hex"), "{e}");
        assert!(store.list("").await.unwrap().is_empty());
    }
}
