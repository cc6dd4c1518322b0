//! The coordinator's core: the state machine behind one lock, the store, the event bus
//! and the inference router. Each operation plans a transition under the lock, writes it
//! to the store, then applies and announces it, so an answer is only sent once its change
//! is durable. The gRPC services are thin layers over these methods.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{Mutex, broadcast, watch};
use wick_common::store::{Store, keys};
use wick_proto::v1::{
    Assignment, CompleteParams, DataRef, FailParams, LeaseResult, ProgressParams, RegisterParams,
    RegisterResult, SubmitSweepResult, SweepSpec, SweepStatus, SweepSummary, TrialStatus,
};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::events::{Events, Published};
use crate::inference::Router;
use crate::metrics::Metrics;
use crate::records::TrialState;
use crate::state::{Change, EventKind, State, status};
use crate::{grid, persist};

/// Everything the services share.
pub struct Coordinator {
    /// Runtime settings.
    pub config: Config,
    /// The object store.
    pub store: Store,
    /// The state machine; held across the store writes of a transition.
    state: Mutex<State>,
    /// Sweep event fan-out.
    pub events: Events,
    /// Routes inference calls to workers.
    pub router: Router,
    /// Turns true when the coordinator is stopping (ends watches and the reaper).
    pub shutdown: watch::Receiver<bool>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Wakes the Lease calls waiting for work whenever the state changes (a sweep queued,
    /// a lease expired, a trial handed back or finished under --max-parallel).
    work_changed: tokio::sync::Notify,
    /// The `metrics.jsonl` of running trials as last written, so that an epoch's report
    /// writes the file without reading it first. Only touched under the state lock; a
    /// missing entry (a restart, an evicted one) is read from the store.
    metrics_logs: std::sync::Mutex<HashMap<String, Vec<u8>>>,
}

/// Most `metrics.jsonl` files remembered; past it the memory is dropped and refilled.
const MAX_METRICS_LOGS: usize = 1024;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The epochs one report brings, oldest first: its `earlier` ones, each as a report of
/// its own without a checkpoint, then `epoch` itself. Refuses a batch out of order, so
/// that no epoch is recorded after a later one.
fn epochs_of(p: &ProgressParams) -> Result<Vec<ProgressParams>> {
    let last = ProgressParams {
        earlier: Vec::new(),
        ..p.clone()
    };
    let mut rows: Vec<ProgressParams> = p
        .earlier
        .iter()
        .map(|e| ProgressParams {
            epoch: e.epoch,
            metrics_json: e.metrics_json.clone(),
            checkpoint_key: String::new(),
            ..last.clone()
        })
        .collect();
    rows.push(last);
    if let Some(w) = rows.windows(2).find(|w| w[0].epoch >= w[1].epoch) {
        return Err(Error::InvalidArgument(format!(
            "the epochs of trial {}'s report are out of order ({} before {}); send the earlier ones oldest first, each before `epoch`",
            p.trial_id, w[0].epoch, w[1].epoch
        )));
    }
    Ok(rows)
}

/// A random hex token for lease and worker ids: unguessable, so a worker cannot forge
/// another's lease by accident.
fn token(prefix: &str) -> String {
    format!("{prefix}-{:032x}", rand::random::<u128>())
}

impl Coordinator {
    /// Opens the coordinator over `store`, loading what an earlier one persisted.
    pub async fn open(
        config: Config,
        store: Store,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Coordinator> {
        let mut state = State::new(config.lease_ttl, config.max_attempts);
        persist::load_all(&store, &mut state, Instant::now()).await?;
        let counted = store.clone();
        let metrics = Arc::new(Metrics::new(move || counted.error_counts()));
        Ok(Coordinator {
            router: Router::new(config.token.clone(), config.tls.clone(), metrics.clone()),
            config,
            store,
            state: Mutex::new(state),
            events: Events::default(),
            work_changed: tokio::sync::Notify::new(),
            metrics_logs: Default::default(),
            shutdown,
            metrics,
        })
    }

    /// The state, locked, with the lease clock caught up (see `State::catch_up`): while a
    /// store write held the lock through an outage, no heartbeat could be heard, and that
    /// time must not count against the workers' leases.
    async fn lock(&self) -> tokio::sync::MutexGuard<'_, State> {
        let mut st = self.state.lock().await;
        if let Some(gap) = st.catch_up(Instant::now()) {
            tracing::info!(
                "the state was busy for {gap:?} (a slow store write?); running leases extended by as much"
            );
        }
        st
    }

    /// Applies persisted changes and announces them.
    fn commit(&self, st: &mut State, changes: Vec<Change>) {
        for c in &changes {
            self.events.publish(&c.trial, c.kind);
        }
        st.apply(changes);
        self.work_changed.notify_waiters();
    }

    /// Expands and queues a sweep.
    pub async fn submit(&self, spec: SweepSpec) -> Result<SubmitSweepResult> {
        let configs = grid::expand(&spec)?;
        let sweep_id = grid::sweep_id(&configs, &spec);
        let mut st = self.lock().await;
        let plan = st.submit(&spec, configs, &sweep_id, now_ms());
        persist::save_submit(&self.store, &plan).await?;
        let queued = plan.changes.len() as u32;
        let trial_ids = plan.sweep.record.trial_ids.clone();
        tracing::info!(sweep = %sweep_id, trials = trial_ids.len(), queued, "sweep submitted");
        for c in &plan.changes {
            self.events.publish(&c.trial, c.kind);
        }
        st.apply_submit(plan);
        self.work_changed.notify_waiters();
        Ok(SubmitSweepResult {
            sweep_id,
            trial_ids,
            queued,
        })
    }

    /// Every sweep, newest first.
    pub async fn list(&self) -> Vec<SweepSummary> {
        let st = self.lock().await;
        st.sweeps_newest_first()
            .into_iter()
            .map(|s| st.summary(s))
            .collect()
    }

    /// One sweep with its trials.
    pub async fn get(&self, sweep_id: &str) -> Result<SweepStatus> {
        let st = self.lock().await;
        let s = st.sweep(sweep_id)?;
        Ok(SweepStatus {
            sweep_id: s.record.sweep_id.clone(),
            spec: Some(s.spec.clone()),
            trials: st.trials_of(s).map(status).collect(),
            created_ms: s.record.created_ms,
        })
    }

    /// A sweep's full id, its trials' statuses and a subscription to later events, taken
    /// together under the lock.
    pub async fn snapshot(
        &self,
        sweep_id: &str,
    ) -> Result<(
        String,
        Vec<TrialStatus>,
        broadcast::Receiver<Arc<Published>>,
    )> {
        let st = self.lock().await;
        let s = st.sweep(sweep_id)?;
        let trials = st.trials_of(s).map(status).collect();
        Ok((s.record.sweep_id.clone(), trials, self.events.subscribe()))
    }

    /// Cancels a sweep's unfinished trials; returns how many.
    pub async fn cancel(&self, sweep_id: &str) -> Result<u32> {
        let mut st = self.lock().await;
        let changes = st.cancel(sweep_id)?;
        persist::save_changes(&self.store, &changes).await?;
        let n = changes.len() as u32;
        tracing::info!(sweep = %sweep_id, cancelled = n, "sweep cancelled");
        self.commit(&mut st, changes);
        Ok(n)
    }

    /// The best succeeded trial (see `State::best`).
    pub async fn best(&self, sweep_id: &str, task: &str, kl: Option<f64>) -> Result<TrialStatus> {
        let st = self.lock().await;
        st.best(sweep_id, task, kl).map(status)
    }

    /// The full id of the trial an inference call uses: `trial_id` (or a prefix of it),
    /// which must be a succeeded trial of `task`, or the best one of `task`.
    pub async fn inference_trial(&self, trial_id: &str, task: &str, rpc: &str) -> Result<String> {
        let st = self.lock().await;
        if trial_id.is_empty() {
            return Ok(st.best("", task, None)?.id().to_string());
        }
        let t = st.trial(trial_id)?;
        if t.config.task() != task {
            return Err(Error::FailedPrecondition(format!(
                "trial {} is a {} trial; {rpc} needs a {task} trial (leave --trial out to use the best {task} trial)",
                t.id(),
                t.config.task()
            )));
        }
        if t.record.state != TrialState::Succeeded {
            // A trial that will not finish by itself needs its sweep submitted again.
            let way = match t.record.state {
                TrialState::Queued | TrialState::Running => "wait for it to succeed",
                _ => "submit its sweep again to rerun it",
            };
            return Err(Error::FailedPrecondition(format!(
                "trial {} is {} and has no final model; {way}, or pick another (`client best`)",
                t.id(),
                t.record.state.as_str()
            )));
        }
        Ok(t.id().to_string())
    }

    /// Inference addresses of the live workers.
    pub async fn inference_addrs(&self) -> Vec<String> {
        self.lock().await.inference_addrs(Instant::now())
    }

    /// The full id of a known trial.
    pub async fn trial_id(&self, trial_id: &str) -> Result<String> {
        Ok(self.lock().await.trial(trial_id)?.id().to_string())
    }

    /// Registers a worker.
    pub async fn register(&self, p: &RegisterParams) -> RegisterResult {
        let worker_id = token("w");
        self.lock().await.register(&worker_id, p, Instant::now());
        tracing::info!(worker = %p.name, worker_id = %worker_id, device = %p.device, slots = p.slots, inference = %p.inference_addr, "worker registered");
        RegisterResult {
            worker_id,
            heartbeat_ms: self.config.heartbeat.as_millis() as u64,
            lease_ttl_ms: self.config.lease_ttl.as_millis() as u64,
        }
    }

    /// Longest a Lease call may wait for work, whatever the worker asks.
    pub const MAX_LEASE_WAIT: Duration = Duration::from_secs(30);

    /// Leases the next queued trial to a worker, waiting up to `wait` (capped at
    /// [`Self::MAX_LEASE_WAIT`]) for one to be queued when there is none: an idle worker
    /// starts a new sweep's first trial at once instead of at its next poll.
    pub async fn lease(&self, worker_id: &str, wait: Duration) -> Result<LeaseResult> {
        let deadline = tokio::time::Instant::now() + wait.min(Self::MAX_LEASE_WAIT);
        loop {
            // Registered before looking, so a change between the look and the wait wakes it.
            let changed = self.work_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let r = self.lease_now(worker_id).await?;
            if r.assignment.is_some() || tokio::time::Instant::now() >= deadline {
                return Ok(r);
            }
            let mut shutdown = self.shutdown.clone();
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(deadline) => {}
                _ = shutdown.wait_for(|stop| *stop) => return Ok(r),
            }
        }
    }

    /// Leases the next queued trial to a worker, or answers that there is none.
    async fn lease_now(&self, worker_id: &str) -> Result<LeaseResult> {
        let mut st = self.lock().await;
        let now = Instant::now();
        st.touch_worker(worker_id, now)?;
        let lease_id = token("l");
        let Some(change) = st.lease(worker_id, &lease_id, now)? else {
            return Ok(LeaseResult { assignment: None });
        };
        persist::save_trial(&self.store, &change.trial.record).await?;
        let t = &change.trial;
        let r = &t.record;
        tracing::info!(trial = %r.trial_id, worker = %r.worker, attempt = r.attempts, from_epoch = r.checkpoint_epoch, "trial leased");
        self.metrics.leases_granted.inc();
        let assignment = Assignment {
            trial_id: r.trial_id.clone(),
            lease_id,
            config_json: serde_json::to_string(&t.config).unwrap_or_default(),
            data: Some(DataRef::from(&r.data)),
            attempt: r.attempts,
            resume_checkpoint: r.checkpoint.clone().unwrap_or_default(),
        };
        self.commit(&mut st, vec![change]);
        Ok(LeaseResult {
            assignment: Some(assignment),
        })
    }

    /// Takes the remembered `metrics.jsonl` of `trial` out, and remembers `log` instead
    /// when given.
    fn metrics_log(&self, trial: &str, log: Option<Vec<u8>>) -> Option<Vec<u8>> {
        let mut logs = self.metrics_logs.lock().unwrap_or_else(|e| e.into_inner());
        let old = logs.remove(trial);
        if let Some(log) = log {
            if logs.len() >= MAX_METRICS_LOGS {
                logs.clear();
            }
            logs.insert(trial.to_string(), log);
        }
        old
    }

    /// Renews leases; returns the revoked ones.
    pub async fn heartbeat(&self, worker_id: &str, lease_ids: &[String]) -> Vec<String> {
        self.lock()
            .await
            .heartbeat(worker_id, lease_ids, Instant::now())
    }

    /// Records the epochs of one report under a valid lease (a worker may batch several,
    /// see [`epochs_of`]); returns the reason when the sweep's early-stopping policy
    /// stopped the trial at one of them (later ones are then dropped).
    pub async fn progress(&self, p: &ProgressParams) -> Result<Option<String>> {
        let rows = epochs_of(p)?;
        let mut st = self.lock().await;
        let now = Instant::now();
        let refused = |e: &Error| {
            tracing::warn!(trial = %p.trial_id, lease = %p.lease_id, "progress refused: {e}");
        };
        let mut lines = Vec::with_capacity(rows.len());
        let mut last = None;
        for (i, row) in rows.iter().enumerate() {
            let (change, metrics) = st.progress(row, now).inspect_err(refused)?;
            let seconds = metrics.get("seconds").and_then(|s| s.as_f64());
            self.metrics
                .epochs
                .record(change.trial.config.task(), seconds);
            lines.push((row.epoch, metrics));
            if i + 1 == rows.len() || change.kind != EventKind::Epoch {
                last = Some(change);
                break;
            }
            // An earlier epoch of a batch is applied at once, so that the next one's
            // early-stopping check sees its score; its metrics line is written with the
            // batch's. What a restart needs (the first report of a resumed attempt) is
            // saved before it is applied, as for a report of its own.
            self.save_if_restart_needs(&st, &change).await?;
            self.commit(&mut st, vec![change]);
        }
        let change = last.expect("a report has at least one epoch");
        let remembered = self.metrics_log(&p.trial_id, None);
        let log = persist::append_metrics(&self.store, &p.trial_id, &lines, remembered).await?;
        // The record is rewritten only when something a restart needs changes (a
        // checkpoint, a resume, a stop), not for each epoch's count and latest metrics,
        // which metrics.jsonl keeps: one store write per report instead of two. A
        // restarted coordinator shows the last saved epoch until the trial's next report.
        self.save_if_restart_needs(&st, &change).await?;
        if change.kind == EventKind::Epoch {
            self.metrics_log(&p.trial_id, Some(log));
        }
        let stopped = (change.kind == EventKind::StoppedEarly).then(|| {
            let r = &change.trial.record;
            tracing::info!(trial = %r.trial_id, worker = %r.worker, epoch = r.epoch, "trial stopped early: {}", r.message);
            r.message.clone()
        });
        self.commit(&mut st, vec![change]);
        Ok(stopped)
    }

    /// Saves the trial's record when `change` alters what a restart needs (a checkpoint, a
    /// resume, a stop) rather than only the epoch count and latest metrics.
    async fn save_if_restart_needs(&self, st: &State, change: &Change) -> Result<()> {
        let r = &change.trial.record;
        if r.differs_beyond_progress(&st.trial(&r.trial_id)?.record) {
            persist::save_trial(&self.store, r).await?;
        }
        Ok(())
    }

    /// Promotes a trial's staged artifacts and marks it succeeded, under a valid lease.
    pub async fn complete(&self, p: &CompleteParams) -> Result<()> {
        let mut st = self.lock().await;
        let (change, summary) = st.complete(p, Instant::now()).inspect_err(|e| {
            tracing::warn!(trial = %p.trial_id, lease = %p.lease_id, "completion refused: {e}");
        })?;
        self.metrics_log(&p.trial_id, None);
        let written = persist::promote(&self.store, &p.trial_id, &p.staging_prefix).await?;
        persist::save_summary(&self.store, &p.trial_id, &summary).await?;
        persist::save_trial(&self.store, &change.trial.record).await?;
        // Only now: until the record is durable, a retried Complete must find the staged
        // files again. Leftovers after a failure here are garbage, not a lost result.
        if let Err(e) = persist::clear_staging(&self.store, &p.trial_id).await {
            tracing::warn!(trial = %p.trial_id, "cannot clear the staging area: {e}");
        }
        tracing::info!(trial = %p.trial_id, worker = %change.trial.record.worker, artifacts = written.len(), "trial succeeded");
        self.commit(&mut st, vec![change]);
        Ok(())
    }

    /// Records a failure (or a hand-back) under a valid lease.
    pub async fn fail(&self, p: &FailParams) -> Result<()> {
        let mut st = self.lock().await;
        let change = st.fail(p, Instant::now())?;
        self.metrics_log(&p.trial_id, None);
        persist::save_trial(&self.store, &change.trial.record).await?;
        tracing::warn!(trial = %p.trial_id, worker = %change.trial.record.worker, retryable = p.retryable, "trial failed: {}", p.message);
        self.commit(&mut st, vec![change]);
        Ok(())
    }

    /// The metrics page for one scrape.
    pub async fn render_metrics(&self) -> String {
        let (trials, workers) = self.lock().await.census(Instant::now());
        self.metrics.render(&trials, workers)
    }

    /// Takes back expired leases (called by the reaper every heartbeat interval).
    pub async fn reap(&self) -> Result<()> {
        let mut st = self.lock().await;
        let now = Instant::now();
        st.prune_workers(now);
        let changes = st.expired(now);
        if changes.is_empty() {
            return Ok(());
        }
        persist::save_changes(&self.store, &changes).await?;
        for c in &changes {
            tracing::warn!(trial = %c.trial.id(), worker = %c.trial.record.worker, "lease expired: {}", c.trial.record.message);
        }
        self.metrics.leases_expired.inc_by(changes.len() as u64);
        self.commit(&mut st, changes);
        Ok(())
    }

    /// Names and sizes of a trial's artifacts (everything under `trials/<id>/` but the
    /// staging area of running attempts).
    pub async fn list_artifacts(&self, trial_id: &str) -> Result<Vec<(String, u64)>> {
        let id = self.trial_id(trial_id).await?;
        let dir = keys::trial_dir(&id);
        Ok(self
            .store
            .list(&dir)
            .await?
            .into_iter()
            .filter_map(|(k, size)| k.strip_prefix(&dir).map(|n| (n.to_string(), size)))
            .filter(|(n, _)| !n.starts_with("staging/"))
            .collect())
    }

    /// One artifact's bytes, up to `max` bytes.
    pub async fn get_artifact(&self, trial_id: &str, name: &str, max: u64) -> Result<bytes::Bytes> {
        if name.is_empty()
            || name.starts_with('/')
            || name.split('/').any(|p| p == ".." || p.is_empty())
        {
            return Err(Error::InvalidArgument(format!(
                "artifact name '{name}' is not a path under trials/<id>/ (e.g. plots/samples.png)"
            )));
        }
        let id = self.trial_id(trial_id).await?;
        let key = format!("{}{name}", keys::trial_dir(&id));
        let parent = key
            .rsplit_once('/')
            .map(|(p, _)| format!("{p}/"))
            .unwrap_or_default();
        let not_found = || {
            Error::NotFound(format!(
                "trial {id} has no artifact '{name}'; list them with `client artifacts ls {id}`"
            ))
        };
        let size = self
            .store
            .list(&parent)
            .await?
            .into_iter()
            .find(|(k, _)| *k == key)
            .ok_or_else(not_found)?
            .1;
        if size > max {
            return Err(Error::ResourceExhausted(format!(
                "artifact '{name}' is {size} bytes, above the {max}-byte limit of GetArtifact; read {key} from the store ({}) directly",
                self.store.url()
            )));
        }
        self.store.get(&key).await?.ok_or_else(not_found)
    }
}
