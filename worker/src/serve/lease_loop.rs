//! The worker's conversation with the coordinator: register (again whenever the
//! coordinator has forgotten us), send a heartbeat every interval the coordinator asked
//! for with the leases held (stopping the trials of revoked ones), and in each slot ask for
//! a lease, run it, and ask again, pausing while there is no work. A slot leases its next
//! trial as soon as the last one is trained, while that one's upload and Complete go on.
//! Every call is retried through coordinator restarts; the loop ends when shutdown is
//! requested and every slot has handed back or finished its trial.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, anyhow};
use candle_core::Device;
use tokio::task::JoinHandle;
use tonic::Code;
use tracing::Instrument;
use wick_common::store::Store;
use wick_proto::v1::work_client::WorkClient;
use wick_proto::v1::{HeartbeatParams, LeaseParams, RegisterParams};
use wick_service::auth::AuthChannel;

use crate::device;
use crate::serve::attempt::{self, Outcome};
use crate::serve::data_cache::DataCache;
use crate::serve::metrics::WorkerMetrics;
use crate::serve::retry::{Limits, MAX_BACKOFF, RetryError, retry, transient_status};
use crate::serve::shutdown::Shutdown;

/// Heartbeat interval used until the coordinator names one.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);
/// Lease lifetime assumed until the coordinator names one.
const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);
/// How long an idle slot lets the coordinator hold its Lease call waiting for work: well
/// inside the 30 s RPC timeout, short enough that a lost connection is noticed.
const LEASE_WAIT: Duration = Duration::from_secs(10);

/// Everything the slots, the heartbeat task and the attempts share.
pub struct Worker {
    /// Name shown in status and logs.
    pub name: String,
    /// Device trials train on.
    pub device: Device,
    /// Trials run at once.
    pub slots: usize,
    /// Address of the inference server as the coordinator should dial it ("" = none).
    pub inference_addr: String,
    /// Pause of an idle slot between two requests for work.
    pub poll: Duration,
    /// The least time between two checkpoints of a running trial (zero: every epoch).
    pub checkpoint_every: Duration,
    /// The least time between two progress reports of a running trial (zero: every epoch).
    pub report_every: Duration,
    /// The coordinator's `Work` service.
    pub client: WorkClient<AuthChannel>,
    /// The shared object store.
    pub store: Store,
    /// Local copies of the datasets.
    pub cache: Arc<DataCache>,
    /// Folder of the running trials' local files (one sub-folder per lease).
    pub work_dir: PathBuf,
    /// Fired when the worker must stop.
    pub stop: Shutdown,
    /// Prometheus metrics.
    pub metrics: Arc<WorkerMetrics>,
    /// Registration and held leases.
    pub state: Mutex<State>,
}

/// What the worker learned from the coordinator and what it holds.
pub struct State {
    /// Id from the latest registration ("" before the first).
    pub worker_id: String,
    /// How often to send heartbeats.
    pub heartbeat: Duration,
    /// How long a lease lives without a heartbeat.
    pub lease_ttl: Duration,
    /// Held leases, each with the switch that stops its trial when it is revoked.
    pub leases: HashMap<String, Shutdown>,
    /// Held leases whose trial is trained and whose Complete is being sent: a heartbeat
    /// that crosses an accepted Complete finds them ended, which is no news.
    pub completing: HashSet<String>,
}

impl Default for State {
    fn default() -> Self {
        State {
            worker_id: String::new(),
            heartbeat: DEFAULT_HEARTBEAT,
            lease_ttl: DEFAULT_LEASE_TTL,
            leases: HashMap::new(),
            completing: HashSet::new(),
        }
    }
}

impl Worker {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current worker id.
    pub fn worker_id(&self) -> String {
        self.state().worker_id.clone()
    }

    /// The coordinator's lease lifetime.
    pub fn lease_ttl(&self) -> Duration {
        self.state().lease_ttl
    }

    /// Records a held lease; returns the switch that fires when it is revoked.
    pub fn hold(&self, lease_id: &str) -> Shutdown {
        self.state()
            .leases
            .entry(lease_id.to_string())
            .or_default()
            .clone()
    }

    /// Notes that a held lease's trial is trained and its Complete is on the way.
    pub fn completing(&self, lease_id: &str) {
        self.state().completing.insert(lease_id.to_string());
    }

    /// Forgets a lease that ended.
    pub fn release(&self, lease_id: &str) {
        let mut st = self.state();
        st.leases.remove(lease_id);
        st.completing.remove(lease_id);
    }

    /// Registers, retrying until the coordinator answers; `Ok(false)` when the worker was
    /// stopped first. `seen` is the id the caller found stale: when another task already
    /// registered again, nothing is done.
    async fn register(&self, seen: &str) -> Result<bool> {
        if self.worker_id() != seen {
            return Ok(true);
        }
        let params = RegisterParams {
            name: self.name.clone(),
            device: device::describe(&self.device),
            slots: self.slots as u32,
            inference_addr: self.inference_addr.clone(),
        };
        let limits = Limits {
            stop: &[&self.stop],
            budget: None,
        };
        let r = retry(
            "registering with the coordinator",
            limits,
            transient_status,
            || {
                let (mut c, p) = (self.client.clone(), params.clone());
                async move { c.register(p).await }
            },
        )
        .await;
        let r = match r {
            Ok(r) => r.into_inner(),
            Err(RetryError::Stopped(_)) => return Ok(false),
            Err(RetryError::Failed(s)) => {
                return Err(anyhow!(
                    "the coordinator refused registration: {}",
                    s.message()
                ));
            }
        };
        let mut st = self.state();
        if st.worker_id == seen {
            st.worker_id = r.worker_id.clone();
            if r.heartbeat_ms > 0 {
                st.heartbeat = Duration::from_millis(r.heartbeat_ms);
            }
            if r.lease_ttl_ms > 0 {
                st.lease_ttl = Duration::from_millis(r.lease_ttl_ms);
            }
            tracing::info!(worker_id = %r.worker_id, heartbeat = ?st.heartbeat, "registered with the coordinator");
        }
        Ok(true)
    }

    /// Sends heartbeats until `done` fires, stopping the trials of revoked leases.
    async fn heartbeats(self: Arc<Self>, done: Shutdown) {
        loop {
            let every = self.state().heartbeat;
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = done.wait() => return,
            }
            let (worker_id, lease_ids) = {
                let st = self.state();
                (
                    st.worker_id.clone(),
                    st.leases.keys().cloned().collect::<Vec<_>>(),
                )
            };
            let mut c = self.client.clone();
            match c
                .heartbeat(HeartbeatParams {
                    worker_id: worker_id.clone(),
                    lease_ids,
                })
                .await
            {
                Ok(r) => {
                    for id in r.into_inner().revoked {
                        let st = self.state();
                        let Some(s) = st.leases.get(&id) else {
                            continue;
                        };
                        if st.completing.contains(&id) {
                            // Most likely its Complete was accepted while this heartbeat
                            // was on the way; if not, the Complete is refused and says so.
                            tracing::debug!(lease = %id, "the coordinator ended a lease whose trial is completing");
                        } else {
                            tracing::warn!(lease = %id, "the coordinator revoked a lease; stopping its trial");
                        }
                        s.trigger();
                    }
                }
                Err(s) if s.code() == Code::NotFound => {
                    tracing::warn!("the coordinator does not know this worker; registering again");
                    if let Err(e) = self.register(&worker_id).await {
                        tracing::error!("{e:#}");
                    }
                }
                Err(s) => tracing::warn!("heartbeat failed: {}", s.message()),
            }
        }
    }

    /// Sleeps `d` unless the worker stops first.
    async fn pause(&self, d: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.stop.wait() => {}
        }
    }

    /// One slot: ask for work (the coordinator answers as soon as there is some, or after
    /// [`LEASE_WAIT`]), run it, repeat until the worker stops.
    async fn slot(self: Arc<Self>, slot: usize) {
        let mut backoff = self.poll;
        // The previous trial's completion, still in flight.
        let mut finishing: Option<JoinHandle<Outcome>> = None;
        while !self.stop.is_triggered() {
            let worker_id = self.worker_id();
            let limits = Limits {
                stop: &[&self.stop],
                budget: None,
            };
            let asked = std::time::Instant::now();
            let ask = retry(
                "asking the coordinator for work",
                limits,
                transient_status,
                || {
                    let (mut c, p) = (
                        self.client.clone(),
                        LeaseParams {
                            worker_id: worker_id.clone(),
                            wait_ms: LEASE_WAIT.as_millis() as u64,
                        },
                    );
                    async move { c.lease(p).await }
                },
            );
            let r = tokio::select! {
                r = ask => r,
                // A stopping worker does not sit out the coordinator's wait for work.
                _ = self.stop.wait() => break,
            };
            match r.map(|r| r.into_inner().assignment) {
                // The coordinator holds an empty answer back for LEASE_WAIT; one that came
                // early is from a coordinator that does not wait (or is stopping): poll.
                Ok(None) if asked.elapsed() < LEASE_WAIT / 2 => self.pause(self.poll).await,
                Ok(None) => {}
                Ok(Some(a)) => {
                    tracing::info!(slot, trial = %a.trial_id, attempt = a.attempt, "leased a trial");
                    self.metrics.leases.inc();
                    self.metrics.running.inc();
                    let trained = attempt::train(&self, a).await;
                    // One trial finishing per slot: a store or coordinator that cannot keep
                    // up holds the slot back instead of piling up trained trials.
                    if let Some(f) = finishing.take() {
                        self.settle(finished(f).await, &mut backoff).await;
                    }
                    if trained.succeeded() {
                        // Upload and Complete are waits, not work: run them while the slot
                        // leases and trains its next trial.
                        let w = self.clone();
                        let finish = async move {
                            let outcome = trained.finish().await;
                            w.metrics.running.dec();
                            outcome
                        };
                        finishing = Some(tokio::spawn(finish.in_current_span()));
                    } else {
                        let outcome = trained.finish().await;
                        self.metrics.running.dec();
                        self.settle(outcome, &mut backoff).await;
                    }
                }
                Err(RetryError::Stopped(_)) => break,
                Err(RetryError::Failed(s)) if s.code() == Code::NotFound => {
                    tracing::warn!("the coordinator does not know this worker; registering again");
                    if let Err(e) = self.register(&worker_id).await {
                        tracing::error!("{e:#}");
                        self.pause(self.poll).await;
                    }
                }
                Err(RetryError::Failed(s)) => {
                    tracing::error!(
                        "the coordinator refused a request for work: {}",
                        s.message()
                    );
                    self.pause(self.poll).await;
                }
            }
        }
        // A stopping worker still finishes what it trained (or hands it back).
        if let Some(f) = finishing {
            finished(f).await;
        }
    }

    /// After an attempt's outcome: a hand-back means the store or the coordinator is
    /// struggling, so give it time before taking more work that would likely fail the same
    /// way (doubling the pause each time); anything else resets the pause.
    async fn settle(&self, outcome: Outcome, backoff: &mut Duration) {
        if outcome == Outcome::HandedBack && !self.stop.is_triggered() {
            self.pause(*backoff).await;
            *backoff = (*backoff * 2).min(MAX_BACKOFF);
        } else {
            *backoff = self.poll;
        }
    }
}

/// The outcome of a completion task; one that panicked counts as handed back (its lease
/// runs out and the coordinator queues the trial again).
async fn finished(f: JoinHandle<Outcome>) -> Outcome {
    f.await.unwrap_or_else(|e| {
        tracing::error!("finishing a trial crashed: {e}");
        Outcome::HandedBack
    })
}

/// Registers, then runs the slots and the heartbeats until the worker stops.
pub async fn run(worker: Arc<Worker>) -> Result<()> {
    if !worker.register("").await? {
        return Ok(());
    }
    // Heartbeats outlive the stop signal: they keep the leases of trials being handed
    // back valid until their Fail is sent.
    let done = Shutdown::new();
    let heartbeats = tokio::spawn(worker.clone().heartbeats(done.clone()).in_current_span());
    let slots: Vec<_> = (0..worker.slots)
        .map(|i| tokio::spawn(worker.clone().slot(i).in_current_span()))
        .collect();
    let mut panicked = None;
    for s in slots {
        if let Err(e) = s.await {
            panicked = Some(e);
        }
    }
    done.trigger();
    let _ = heartbeats.await;
    match panicked {
        Some(e) => Err(anyhow!("a worker slot panicked: {e}")),
        None => Ok(()),
    }
}
