//! The coordinator's core: the state machine behind one lock, the log, the store, the
//! event bus and the inference router. Each operation plans and applies a transition
//! under the lock and appends it to the log's queue in the same critical section, then
//! waits, without the lock, until the committer has made it durable: an answer is only
//! sent once its change is in the store, and no lock is held across store I/O, so reads
//! and heartbeats never wait for a write. The gRPC services are thin layers over these
//! methods.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::NaiveDate;
use tokio::sync::{Mutex, broadcast, watch};
use wick_common::covid::{CaseTable, check_window, daily_dates};
use wick_common::store::{Store, keys};
use wick_common::trial::TrialConfig;
use wick_proto::v1::{
    Assignment, CompleteParams, DataRef, FailParams, LeaseResult, ProgressParams, RegisterParams,
    RegisterResult, SubmitSweepResult, SweepSpec, SweepStatus, SweepSummary, TrialStatus,
};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::events::{Events, Published};
use crate::inference::Router;
use crate::journal::{Item, Journal, Settle};
use crate::metrics::Metrics;
use crate::records::TrialState;
use crate::state::{Change, EventKind, State, status};
use crate::{grid, persist, wal};

/// Everything the services share.
pub struct Coordinator {
    /// Runtime settings.
    pub config: Config,
    /// The object store.
    pub store: Store,
    /// The state machine; never held across store I/O.
    pub(crate) state: Mutex<State>,
    /// The queue of changes waiting to be written to the log.
    pub(crate) journal: Journal,
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
    /// Leases granted whose answer never went out (see [`Unanswered`]); the reaper gives
    /// their trials back.
    abandoned: std::sync::Mutex<Vec<String>>,
    /// The staged keys of trials completing on their first lease, named by their worker:
    /// the settler deletes exactly these instead of listing the staging area.
    pub(crate) staged: std::sync::Mutex<HashMap<String, Vec<String>>>,
    /// The dates of the daily counts of each COVID-19 table submitted, by store key, for
    /// the window check of [`Coordinator::submit`]. Keys are content-addressed, so an
    /// entry never goes stale; a few hundred dates per table keep it small.
    daily_dates: std::sync::Mutex<HashMap<String, Arc<Vec<NaiveDate>>>>,
}

/// A lease granted but not yet answered. Dropped unanswered (the worker's call was
/// cancelled, or the grant could not be made durable), it is queued for the reaper to
/// give back, so a grant nobody heard of does not sit until its lease expires.
struct Unanswered<'a> {
    abandoned: &'a std::sync::Mutex<Vec<String>>,
    lease: Option<String>,
}

impl Unanswered<'_> {
    /// The grant is about to be answered.
    fn answered(mut self) {
        self.lease = None;
    }
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.abandoned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(lease);
        }
    }
}

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
    /// Opens the coordinator over `store`: recovers the state from the log (or, for a
    /// store written before the log existed, from its documents, then snapshots it) and
    /// starts the committer and the settler. The handle ends once they have stopped
    /// after `shutdown`, with every change acknowledged in the store.
    pub async fn start(
        config: Config,
        store: Store,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(Arc<Coordinator>, tokio::task::JoinHandle<()>)> {
        let started = Instant::now();
        let mut state = State::new(config.lease_ttl, config.max_attempts);
        let pos = if wal::exists(&store).await? {
            wal::recover(&store, &mut state, Instant::now()).await?
        } else {
            persist::load_all(&store, &mut state, Instant::now()).await?;
            let snapshot = state.snapshot();
            let pos = wal::Position {
                next_segment: 1,
                snapshot_bytes: snapshot.len() as u64,
                ..Default::default()
            };
            store.put(&wal::snapshot_key(0), snapshot).await?;
            pos
        };
        tracing::info!(
            snapshot = pos.snapshot,
            segments = pos.next_segment - pos.snapshot - 1,
            entries = pos.entries,
            ms = started.elapsed().as_millis() as u64,
            "state recovered from the log"
        );
        let unsettled = state.unsettled();
        let counted = store.clone();
        let metrics = Arc::new(Metrics::new(move || counted.error_counts()));
        let core = Arc::new(Coordinator {
            router: Router::new(config.token.clone(), config.tls.clone(), metrics.clone()),
            config,
            store,
            state: Mutex::new(state),
            journal: Journal::default(),
            events: Events::default(),
            work_changed: tokio::sync::Notify::new(),
            abandoned: Default::default(),
            staged: Default::default(),
            daily_dates: Default::default(),
            shutdown,
            metrics,
        });
        let (settle, jobs) = tokio::sync::mpsc::unbounded_channel();
        // Trials that ended before a crash, their documents maybe unwritten.
        let _ = settle.send((0, unsettled.into_iter().map(Settle::Trial).collect()));
        let settler = tokio::spawn(core.clone().run_settler(jobs));
        let committer = tokio::spawn(core.clone().run_committer(pos, settle));
        let done = tokio::spawn(async move {
            let _ = committer.await;
            let _ = settler.await;
        });
        Ok((core, done))
    }

    /// Applies planned changes and queues them for the log; returns the number to wait
    /// for. Call with the state locked, so the log's order is the order of application.
    fn commit(&self, st: &mut State, changes: Vec<Change>) -> u64 {
        let items = changes.iter().cloned().map(Item::change).collect();
        st.apply(changes);
        let n = self.journal.append(items);
        self.work_changed.notify_waiters();
        n
    }

    /// Waits until change `n` is durable, or settled when it ended a trial (so the
    /// trial's documents are in the store when the call answers).
    async fn durable(&self, n: u64, ended: bool) -> Result<()> {
        if ended {
            self.journal.settled(n).await
        } else {
            self.journal.durable(n).await
        }
    }

    /// The state, locked, with the lease clock caught up (see `State::catch_up`): while
    /// the process was not running (starved or suspended), no heartbeat could be heard,
    /// and that time must not count against the workers' leases.
    async fn lock(&self) -> tokio::sync::MutexGuard<'_, State> {
        let mut st = self.state.lock().await;
        if let Some(gap) = st.catch_up(Instant::now()) {
            tracing::info!(
                "the state was not looked at for {gap:?} (the process starved or suspended?); running leases extended by as much"
            );
        }
        st
    }

    /// The dates of the daily counts of the COVID-19 table at store key `key`, or `None`
    /// when the key is not in the store (its trials then fail on the worker, which says
    /// so). A table that does not parse is refused as the worker would refuse it.
    async fn daily_dates(&self, key: &str) -> Result<Option<Arc<Vec<NaiveDate>>>> {
        if let Some(d) = self.lock_dates().get(key) {
            return Ok(Some(d.clone()));
        }
        let Some(bytes) = self.store.get(key).await? else {
            return Ok(None);
        };
        let refuse = |e: String| {
            Error::InvalidArgument(format!("invalid sweep: the COVID-19 data {key}: {e}"))
        };
        // Parsing a table of a few MB takes a while; keep it off the async threads.
        let parsed = tokio::task::spawn_blocking(move || {
            let text = String::from_utf8_lossy(&bytes);
            let table = CaseTable::parse(&text)?;
            daily_dates(&table).map(<[NaiveDate]>::to_vec)
        })
        .await
        .map_err(|e| Error::Unavailable(format!("reading the COVID-19 data stopped: {e}")))?
        .map_err(|e| refuse(e.to_string()))?;
        let dates = Arc::new(parsed);
        self.lock_dates().insert(key.to_string(), dates.clone());
        Ok(Some(dates))
    }

    fn lock_dates(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Vec<NaiveDate>>>> {
        self.daily_dates.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses covid trials whose start date or window length does not fit the uploaded
    /// table, with the worker's own message, so that nothing is stored for a sweep whose
    /// trials could only fail. Tables given by URL are read by the workers alone.
    async fn check_windows(&self, spec: &SweepSpec, configs: &[TrialConfig]) -> Result<()> {
        let key = spec.data.as_ref().map_or("", |d| d.covid_csv.as_str());
        let covid = || {
            configs.iter().filter_map(|c| match c {
                TrialConfig::Covid(c) => Some(c),
                TrialConfig::Vae(_) => None,
            })
        };
        if key.is_empty() || key.contains("://") || covid().next().is_none() {
            return Ok(());
        }
        let Some(dates) = self.daily_dates(key).await? else {
            return Ok(());
        };
        let mut seen = std::collections::HashSet::new();
        for c in covid().filter(|c| seen.insert((c.start.as_str(), c.l))) {
            // The grid has checked the format already.
            let start = c.start.parse::<NaiveDate>().map_err(|_| {
                Error::InvalidArgument(format!("invalid sweep: start date '{}'", c.start))
            })?;
            check_window(&dates, start, c.l)
                .map_err(|e| Error::InvalidArgument(format!("invalid sweep: covid trial: {e}")))?;
        }
        Ok(())
    }

    /// Expands, checks against the data and queues a sweep.
    pub async fn submit(&self, spec: SweepSpec) -> Result<SubmitSweepResult> {
        let configs = grid::expand(&spec)?;
        self.check_windows(&spec, &configs).await?;
        let sweep_id = grid::sweep_id(&configs, &spec);
        self.journal.check()?;
        let (n, queued, trial_ids) = {
            let mut st = self.lock().await;
            let plan = st.submit(&spec, configs, &sweep_id, now_ms());
            let queued = plan.changes.len() as u32;
            let trial_ids = plan.sweep.record.trial_ids.clone();
            let item = Item::submit(&plan);
            st.apply_submit(plan);
            (self.journal.append(vec![item]), queued, trial_ids)
        };
        self.work_changed.notify_waiters();
        self.journal.durable(n).await?;
        tracing::info!(sweep = %sweep_id, trials = trial_ids.len(), queued, "sweep submitted");
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
        self.journal.check()?;
        let (n, count) = {
            let mut st = self.lock().await;
            let changes = st.cancel(sweep_id)?;
            let count = changes.len() as u32;
            (self.commit(&mut st, changes), count)
        };
        self.durable(n, count > 0).await?;
        tracing::info!(sweep = %sweep_id, cancelled = count, "sweep cancelled");
        Ok(count)
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
        self.journal.check()?;
        let (n, assignment) = {
            let mut st = self.lock().await;
            let now = Instant::now();
            st.touch_worker(worker_id, now)?;
            let lease_id = token("l");
            let Some(change) = st.lease(worker_id, &lease_id, now)? else {
                return Ok(LeaseResult { assignment: None });
            };
            let t = &change.trial;
            let r = &t.record;
            tracing::info!(trial = %r.trial_id, worker = %r.worker, attempt = r.attempts, from_epoch = r.checkpoint_epoch, "trial leased");
            let assignment = Assignment {
                trial_id: r.trial_id.clone(),
                lease_id,
                config_json: serde_json::to_string(&t.config).unwrap_or_default(),
                data: Some(DataRef::from(&r.data)),
                attempt: r.attempts,
                resume_checkpoint: r.checkpoint.clone().unwrap_or_default(),
            };
            let n = self.commit(&mut st, vec![change]);
            st.hold(&assignment.lease_id);
            (n, assignment)
        };
        let pending = Unanswered {
            abandoned: &self.abandoned,
            lease: Some(assignment.lease_id.clone()),
        };
        self.journal.durable(n).await?;
        self.lock()
            .await
            .start_clock(&assignment.lease_id, Instant::now());
        pending.answered();
        self.metrics.leases_granted.inc();
        Ok(LeaseResult {
            assignment: Some(assignment),
        })
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
        self.journal.check()?;
        let mut st = self.lock().await;
        let now = Instant::now();
        let mut applied = Vec::with_capacity(rows.len());
        let mut refusal = None;
        for row in &rows {
            // Each epoch of a batch is applied before the next is planned, so that the
            // next one's early-stopping check sees its score.
            let change = match st.progress(row, now) {
                Ok((change, _)) => change,
                Err(e) => {
                    tracing::warn!(trial = %p.trial_id, lease = %p.lease_id, "progress refused: {e}");
                    refusal = Some(e);
                    break;
                }
            };
            let seconds = change
                .trial
                .record
                .metrics
                .as_ref()
                .and_then(|m| m.get("seconds"))
                .and_then(|s| s.as_f64());
            self.metrics
                .epochs
                .record(change.trial.config.task(), seconds);
            let kind = change.kind;
            st.apply(vec![change.clone()]);
            applied.push(change);
            if kind != EventKind::Epoch {
                break;
            }
        }
        let stopped = applied
            .last()
            .filter(|c| c.kind == EventKind::StoppedEarly)
            .map(|c| {
                let r = &c.trial.record;
                tracing::info!(trial = %r.trial_id, worker = %r.worker, epoch = r.epoch, "trial stopped early: {}", r.message);
                r.message.clone()
            });
        let n = (!applied.is_empty()).then(|| {
            self.journal
                .append(applied.into_iter().map(Item::change).collect())
        });
        drop(st);
        if let Some(e) = refusal {
            return Err(e);
        }
        if let Some(n) = n {
            self.work_changed.notify_waiters();
            self.durable(n, stopped.is_some()).await?;
        }
        Ok(stopped)
    }

    /// Promotes a trial's staged artifacts and marks it succeeded, under a valid lease.
    /// The copies are made without the lock (the lease is checked before and after);
    /// the answer waits until the trial's documents are written and staging cleared.
    pub async fn complete(&self, p: &CompleteParams) -> Result<()> {
        self.journal.check()?;
        let refused = |e: &Error| {
            tracing::warn!(trial = %p.trial_id, lease = %p.lease_id, "completion refused: {e}");
        };
        let (_, summary) = self
            .lock()
            .await
            .complete(p, Instant::now())
            .inspect_err(refused)?;
        let (written, ()) = futures::try_join!(
            persist::promote(&self.store, &p.trial_id, &p.staging_prefix, &p.staged),
            persist::save_summary(&self.store, &p.trial_id, &summary),
        )?;
        let (n, worker) = {
            let mut st = self.lock().await;
            let (change, _) = st.complete(p, Instant::now()).inspect_err(refused)?;
            let worker = change.trial.record.worker.clone();
            if change.trial.record.attempts == 1 && !p.staged.is_empty() {
                let prefix = format!("{}/", p.staging_prefix.trim_end_matches('/'));
                let keys = p.staged.iter().map(|n| format!("{prefix}{n}")).collect();
                self.staged
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(p.trial_id.clone(), keys);
            }
            (self.commit(&mut st, vec![change]), worker)
        };
        self.durable(n, true).await?;
        tracing::info!(trial = %p.trial_id, worker = %worker, artifacts = written.len(), "trial succeeded");
        Ok(())
    }

    /// Records a failure (or a hand-back) under a valid lease.
    pub async fn fail(&self, p: &FailParams) -> Result<()> {
        self.journal.check()?;
        let (n, ended, worker) = {
            let mut st = self.lock().await;
            let change = st.fail(p, Instant::now())?;
            let ended = change.kind.ends_trial();
            let worker = change.trial.record.worker.clone();
            (self.commit(&mut st, vec![change]), ended, worker)
        };
        self.durable(n, ended).await?;
        tracing::warn!(trial = %p.trial_id, worker = %worker, retryable = p.retryable, "trial failed: {}", p.message);
        Ok(())
    }

    /// The metrics page for one scrape.
    pub async fn render_metrics(&self) -> String {
        let (trials, workers) = self.lock().await.census(Instant::now());
        self.metrics.render(&trials, workers)
    }

    /// Takes back expired leases and grants never answered (called by the reaper every heartbeat interval).
    pub async fn reap(&self) -> Result<()> {
        let mut st = self.lock().await;
        let now = Instant::now();
        st.prune_workers(now);
        let abandoned =
            std::mem::take(&mut *self.abandoned.lock().unwrap_or_else(|e| e.into_inner()));
        let mut changes: Vec<Change> = abandoned
            .iter()
            .filter_map(|lease| st.unanswered(lease))
            .inspect(|c| tracing::info!(trial = %c.trial.id(), "{}", c.trial.record.message))
            .collect();
        let expired = st.expired(now);
        if changes.is_empty() && expired.is_empty() {
            return Ok(());
        }
        for c in &expired {
            tracing::warn!(trial = %c.trial.id(), worker = %c.trial.record.worker, "lease expired: {}", c.trial.record.message);
        }
        self.metrics.leases_expired.inc_by(expired.len() as u64);
        changes.extend(expired);
        self.commit(&mut st, changes);
        Ok(())
    }

    /// A trial's `metrics.jsonl` with the lines the log holds that its file does not yet
    /// (a running trial's), or `None` when the file is complete.
    async fn live_metrics(&self, trial: &str) -> Result<Option<Vec<u8>>> {
        let rows = self.lock().await.rows(trial).to_vec();
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            persist::metrics_file(&self.store, trial, &rows).await?,
        ))
    }

    /// Names and sizes of a trial's artifacts (everything under `trials/<id>/` but the
    /// staging area of running attempts).
    pub async fn list_artifacts(&self, trial_id: &str) -> Result<Vec<(String, u64)>> {
        let id = self.trial_id(trial_id).await?;
        let dir = keys::trial_dir(&id);
        let mut listed: Vec<(String, u64)> = self
            .store
            .list(&dir)
            .await?
            .into_iter()
            .filter_map(|(k, size)| k.strip_prefix(&dir).map(|n| (n.to_string(), size)))
            .filter(|(n, _)| !n.starts_with("staging/"))
            .collect();
        if let Some(live) = self.live_metrics(&id).await? {
            listed.retain(|(n, _)| n != "metrics.jsonl");
            listed.push(("metrics.jsonl".into(), live.len() as u64));
        }
        Ok(listed)
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
        if name == "metrics.jsonl"
            && let Some(live) = self.live_metrics(&id).await?
        {
            return Ok(live.into());
        }
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
