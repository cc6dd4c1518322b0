//! Sending a data file through the coordinator (UploadData), for a client that knows
//! only the coordinator's address and token. The coordinator stores it under the same
//! content-addressed key a direct upload would use. The client first asks what is held
//! (DataStatus) and sends only the rest; a broken stream is retried a few times, each
//! try resuming after the bytes that arrived, and a later command resumes the same way.

use std::time::Duration;

use anyhow::{Result, bail};
use bytes::Bytes;
use tonic::{Code, Status};
use wick_common::ids::sha256_hex;
use wick_proto::v1::sweeps_client::SweepsClient;
use wick_proto::v1::upload_data_chunk::Part;
use wick_proto::v1::{DataStatusParams, UploadDataChunk, UploadDataHeader};
use wick_service::auth::AuthChannel;

use crate::progress::bytes_bar;

/// Bytes per message: well under the coordinator's message limit, and small enough that
/// the progress bar moves.
const CHUNK: usize = 1 << 20;
/// Tries of one upload before the client gives up (each resumes where the last stopped).
const TRIES: u32 = 5;
/// Pause before the first retry; doubled for each later one.
const FIRST_PAUSE: Duration = Duration::from_millis(500);

/// What sending one file did.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// Its key in the store.
    pub key: String,
    /// Its size.
    pub size: u64,
    /// Bytes the coordinator held before this command (0: a fresh upload).
    pub resumed_from: u64,
    /// True when the file was whole in the store already and nothing was sent.
    pub existed: bool,
}

/// Failures another try may get past: the connection, not the request.
fn transient(s: &Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable
            | Code::Unknown
            | Code::Cancelled
            | Code::Aborted
            | Code::DeadlineExceeded
    )
}

/// The messages of one try: the header, then `bytes` from `from` on, counted on `bar`.
fn messages(
    name: &str,
    sha: &str,
    bytes: &Bytes,
    from: u64,
    bar: indicatif::ProgressBar,
) -> impl futures::Stream<Item = UploadDataChunk> + Send + 'static {
    let header = UploadDataChunk {
        part: Some(Part::Header(UploadDataHeader {
            name: name.into(),
            sha256: sha.into(),
            size: bytes.len() as u64,
            offset: from,
        })),
    };
    let rest = bytes.slice(from as usize..);
    let chunks = (0..rest.len()).step_by(CHUNK).map(move |at| {
        let piece = rest.slice(at..(at + CHUNK).min(rest.len()));
        bar.inc(piece.len() as u64);
        UploadDataChunk {
            part: Some(Part::Data(piece.to_vec())),
        }
    });
    futures::stream::iter(std::iter::once(header).chain(chunks))
}

/// Sends `bytes` as the data file `name` (`covid.csv`, `faces.tar`) through the
/// coordinator; `quiet` hides the progress bar.
pub async fn send(
    sweeps: &SweepsClient<AuthChannel>,
    name: &str,
    bytes: Bytes,
    quiet: bool,
) -> Result<Sent> {
    let sha = sha256_hex(&bytes);
    let size = bytes.len() as u64;
    let ask = DataStatusParams {
        name: name.into(),
        sha256: sha.clone(),
        size,
    };
    let mut resumed_from = None;
    let mut pause = FIRST_PAUSE;
    let mut last = None;
    for _ in 0..TRIES {
        let held = match sweeps.clone().data_status(ask.clone()).await {
            Ok(r) => r.into_inner(),
            Err(s) if transient(&s) => {
                last = Some(s);
                tokio::time::sleep(pause).await;
                pause *= 2;
                continue;
            }
            Err(s) => return Err(s.into()),
        };
        let first = *resumed_from.get_or_insert(held.received);
        if held.complete {
            return Ok(Sent {
                key: held.key,
                size,
                resumed_from: first,
                existed: first == size,
            });
        }
        let bar = bytes_bar(name, Some(size), quiet);
        bar.set_position(held.received);
        let call = sweeps
            .clone()
            .upload_data(messages(name, &sha, &bytes, held.received, bar.clone()))
            .await;
        bar.finish_and_clear();
        match call {
            Ok(r) if r.get_ref().complete => {
                return Ok(Sent {
                    key: r.into_inner().key,
                    size,
                    resumed_from: first,
                    existed: false,
                });
            }
            // The coordinator kept fewer bytes than were sent: ask again and send the rest.
            Ok(_) => {}
            Err(s) if transient(&s) => last = Some(s),
            Err(s) => return Err(s.into()),
        }
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
    match last {
        Some(s) => bail!(
            "{name}: the upload through the coordinator failed {TRIES} times (last: {:?}, {}); run the command again to resume it",
            s.code(),
            s.message()
        ),
        None => bail!(
            "{name}: the coordinator did not keep the bytes sent ({TRIES} tries); see its log"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use tokio::net::TcpListener;
    use wick_common::store::{Store, keys};

    /// A real coordinator on loopback over a folder store, and a client of it.
    struct Served {
        sweeps: SweepsClient<AuthChannel>,
        url: String,
        store: Store,
        stop: tokio::sync::oneshot::Sender<()>,
        _dir: tempfile::TempDir,
    }

    async fn serve() -> Served {
        let dir = tempfile::tempdir().unwrap();
        let store_url = Store::file_url(dir.path()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = wick_coordinator::Config {
            store_url: store_url.clone(),
            ..Default::default()
        };
        tokio::spawn(wick_coordinator::serve(listener, config, async move {
            let _ = stopped.await;
        }));
        let channel = tonic::transport::Endpoint::from_shared(url.clone())
            .unwrap()
            .connect_lazy();
        Served {
            url,
            sweeps: SweepsClient::new(wick_service::auth::with_token(channel, None)),
            store: Store::open(&store_url).unwrap(),
            stop,
            _dir: dir,
        }
    }

    fn file(n: usize) -> Bytes {
        (0..n)
            .map(|i| (i * 31 + i / 97) as u8)
            .collect::<Vec<_>>()
            .into()
    }

    #[tokio::test]
    async fn a_file_sent_through_the_coordinator_is_stored_under_its_content_key() {
        let s = serve().await;
        let bytes = file(3 * CHUNK + 17);
        let sent = send(&s.sweeps, "faces.tar", bytes.clone(), true)
            .await
            .unwrap();
        assert_eq!(sent.key, keys::data(&sha256_hex(&bytes), "faces.tar"));
        assert_eq!(
            (sent.size, sent.resumed_from, sent.existed),
            (bytes.len() as u64, 0, false)
        );
        assert_eq!(s.store.get(&sent.key).await.unwrap().unwrap(), bytes);
        let again = send(&s.sweeps, "faces.tar", bytes.clone(), true)
            .await
            .unwrap();
        assert!(again.existed, "{again:?}");
        let _ = s.stop.send(());
    }

    #[tokio::test]
    async fn an_interrupted_upload_is_resumed_after_the_bytes_that_arrived() {
        let s = serve().await;
        let bytes = file(2 * CHUNK + 5);
        let sha = sha256_hex(&bytes);
        // An earlier try that stopped after its first 1.5 chunks.
        let half = (3 * CHUNK / 2) as u64;
        let partial = messages(
            "covid.csv",
            &sha,
            &bytes.slice(..),
            0,
            indicatif::ProgressBar::hidden(),
        )
        .take(2)
        .chain(futures::stream::iter([UploadDataChunk {
            part: Some(Part::Data(bytes.slice(CHUNK..half as usize).to_vec())),
        }]));
        let r = s
            .sweeps
            .clone()
            .upload_data(partial)
            .await
            .unwrap()
            .into_inner();
        assert_eq!((r.received, r.complete), (half, false));

        let sent = send(&s.sweeps, "covid.csv", bytes.clone(), true)
            .await
            .unwrap();
        assert_eq!(sent.resumed_from, half);
        assert!(!sent.existed);
        assert_eq!(s.store.get(&sent.key).await.unwrap().unwrap(), bytes);
        assert!(s.store.list("uploads/").await.unwrap().is_empty());
        let _ = s.stop.send(());
    }

    #[tokio::test]
    async fn a_client_that_vanishes_mid_stream_leaves_what_it_sent() {
        let s = serve().await;
        let bytes = file(CHUNK + 1000);
        let sha = sha256_hex(&bytes);
        // The header and one chunk, then a stream that never ends: the call is dropped.
        let stalled = messages(
            "covid.csv",
            &sha,
            &bytes,
            0,
            indicatif::ProgressBar::hidden(),
        )
        .take(2)
        .chain(futures::stream::pending());
        // On a connection of its own, closed with the call.
        let mut client = SweepsClient::new(wick_service::auth::with_token(
            tonic::transport::Endpoint::from_shared(s.url.clone())
                .unwrap()
                .connect()
                .await
                .unwrap(),
            None,
        ));
        let call = client.upload_data(stalled);
        assert!(
            tokio::time::timeout(Duration::from_millis(500), call)
                .await
                .is_err()
        );
        drop(client);
        let ask = DataStatusParams {
            name: "covid.csv".into(),
            sha256: sha,
            size: bytes.len() as u64,
        };
        let mut held = 0;
        for _ in 0..50 {
            held = s
                .sweeps
                .clone()
                .data_status(ask.clone())
                .await
                .unwrap()
                .into_inner()
                .received;
            if held > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(held, CHUNK as u64, "the chunk that arrived is kept");
        let sent = send(&s.sweeps, "covid.csv", bytes.clone(), true)
            .await
            .unwrap();
        assert_eq!(sent.resumed_from, CHUNK as u64);
        assert_eq!(s.store.get(&sent.key).await.unwrap().unwrap(), bytes);
        let _ = s.stop.send(());
    }

    #[tokio::test]
    async fn a_refused_upload_says_why() {
        let s = serve().await;
        let e = send(&s.sweeps, "weights.bin", file(10), true)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("covid.csv or faces.tar"), "{e:#}");
        let _ = s.stop.send(());
    }
}
