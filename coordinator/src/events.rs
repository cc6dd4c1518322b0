//! Fan-out of sweep events to every client watching: one broadcast channel carries each
//! trial change with the sweeps that hold the trial, and each watch keeps its sweep's.
//! A watch starts with a "snapshot" event per trial, then streams live events, and ends
//! when every trial of the sweep is finished (or the coordinator shuts down).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use wick_proto::v1::{SweepEvent, TrialStatus};

use crate::coordinator::Coordinator;
use crate::error::Result;
use crate::records::TrialState;
use crate::state::{EventKind, Trial, status};

/// Events a slow watcher may fall behind by before it is sent a fresh snapshot instead.
const BACKLOG: usize = 4096;
/// Events buffered towards one client.
const PER_CLIENT: usize = 256;

/// One trial change on the bus.
#[derive(Debug)]
pub struct Published {
    /// Sweeps holding the trial.
    pub sweeps: Vec<String>,
    /// The event.
    pub event: SweepEvent,
}

/// The event bus.
#[derive(Debug)]
pub struct Events {
    /// Sender side; watchers subscribe to it.
    tx: broadcast::Sender<Arc<Published>>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Events {
    /// Announces a change of `trial` to the watchers of its sweeps.
    pub fn publish(&self, trial: &Trial, kind: EventKind) {
        let event = SweepEvent {
            trial: Some(status(trial)),
            kind: kind.as_str().into(),
        };
        // No receiver means nobody is watching, which is fine.
        let _ = self.tx.send(Arc::new(Published {
            sweeps: trial.sweeps.clone(),
            event,
        }));
    }

    /// A new receiver of every later event.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }
}

/// Whether a trial state (as a protocol string) is final.
fn finished(state: &str) -> bool {
    use TrialState::*;
    [Queued, Running, Succeeded, Failed, Cancelled, StoppedEarly]
        .iter()
        .any(|s| s.is_finished() && s.as_str() == state)
}

/// The stream of a WatchSweep call. The snapshot and the subscription are taken under the
/// state lock, and events are published under it too, so no change falls between them.
pub async fn watch_sweep(
    core: Arc<Coordinator>,
    sweep_id: &str,
) -> Result<ReceiverStream<std::result::Result<SweepEvent, Status>>> {
    let (sweep_id, snapshot, rx) = core.snapshot(sweep_id).await?;
    let (tx, out) = mpsc::channel(PER_CLIENT);
    tokio::spawn(forward(core, sweep_id, snapshot, rx, tx));
    Ok(ReceiverStream::new(out))
}

/// Sends the snapshot, then the sweep's live events, until every trial is finished, the
/// client goes away or the coordinator stops.
async fn forward(
    core: Arc<Coordinator>,
    sweep_id: String,
    mut snapshot: Vec<TrialStatus>,
    mut rx: broadcast::Receiver<Arc<Published>>,
    tx: mpsc::Sender<std::result::Result<SweepEvent, Status>>,
) {
    let mut shutdown: watch::Receiver<bool> = core.shutdown.clone();
    let mut states: HashMap<String, String> = HashMap::new();
    loop {
        for t in snapshot.drain(..) {
            states.insert(t.trial_id.clone(), t.state.clone());
            if tx
                .send(Ok(SweepEvent {
                    trial: Some(t),
                    kind: EventKind::Snapshot.as_str().into(),
                }))
                .await
                .is_err()
            {
                return;
            }
        }
        loop {
            if states.values().all(|s| finished(s)) {
                return;
            }
            let got = tokio::select! {
                got = rx.recv() => Some(got),
                _ = tx.closed() => return,
                _ = shutdown.wait_for(|stop| *stop) => None,
            };
            let Some(got) = got else {
                let _ = tx
                    .send(Err(Status::unavailable(
                        "the coordinator is shutting down; watch again once it is back",
                    )))
                    .await;
                return;
            };
            match got {
                Ok(p) if p.sweeps.contains(&sweep_id) => {
                    if let Some(t) = &p.event.trial {
                        states.insert(t.trial_id.clone(), t.state.clone());
                    }
                    if tx.send(Ok(p.event.clone())).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(sweep = %sweep_id, missed = n, "a watcher fell behind; sending a fresh snapshot");
                    break;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
        // Fell behind: start over from a fresh snapshot on a fresh subscription.
        match core.snapshot(&sweep_id).await {
            Ok((_, s, r)) => (snapshot, rx) = (s, r),
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        }
    }
}
