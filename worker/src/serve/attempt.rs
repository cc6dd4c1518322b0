//! One leased trial, from the assignment to its last RPC: fetch the data through the
//! cache and the resume checkpoint from the store, train in a blocking thread with the
//! code `worker train` uses, and after every epoch upload its checkpoint, if it wrote one,
//! under the lease's prefix and report progress (a refusal stops training: the lease is
//! no longer ours). Epochs shorter than the report interval are held back and go several
//! to a report; a checkpoint, and the last epoch, are reported at once. A report runs
//! while the next epochs train, one report in flight at a time, so training never waits
//! on the store or the coordinator unless they fall a whole report behind; a refusal is
//! seen at the next report, and the last report is awaited before Complete.
//! A finished trial's artifacts are staged under the lease's prefix and Complete is sent
//! (by then the slot may be training its next trial); a failed one is reported with Fail,
//! retryable unless the trial itself is at fault.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::runtime::Handle;
use tracing::Instrument;
use wick_common::trial::TrialConfig;
use wick_proto::v1::{Assignment, CompleteParams, EpochMetrics, FailParams, ProgressParams};

use crate::ckpt::CkptDir;
use crate::serve::data_cache::DataError;
use crate::serve::lease_loop::Worker;
use crate::serve::retry::{Limits, RetryError, retry, transient_status};
use crate::serve::shutdown::Shutdown;
use crate::serve::staging::{self, FetchError};
use crate::train::{EpochEvent, run_trial};

/// Local checkpoints kept per running trial: the newest is the one uploaded, the one
/// before is a spare while the next is written. (Reports read the file before training
/// goes on, so they never race its removal.)
const KEEP_LOCAL_CKPTS: usize = 2;

/// How an attempt ended, as far as the slot that ran it cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Complete was accepted.
    Completed,
    /// Fail(retryable = false) was sent: the trial is at fault.
    Failed,
    /// Fail(retryable = true) was sent, or the hand-back could not be delivered.
    HandedBack,
    /// The lease ended under us; nothing more was reported.
    Fenced,
}

/// Why an attempt stopped before Complete. Also the error the epoch callback returns to
/// stop training, recognised afterwards by downcasting.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The trial's own problem (bad data, bad hyperparameters): not worth another attempt.
    #[error("{0}")]
    Trial(String),
    /// A store, network or coordinator problem: another attempt may succeed.
    #[error("{0}")]
    Transient(String),
    /// The worker is shutting down.
    #[error("the worker is shutting down")]
    Shutdown,
    /// The lease ended (revoked, or a report was refused): the trial is not ours any more.
    #[error("the lease ended: {0}")]
    Fenced(String),
}

impl From<DataError> for Failure {
    fn from(e: DataError) -> Self {
        match e {
            DataError::Invalid(m) => Failure::Trial(m),
            DataError::Unavailable(m) => Failure::Transient(m),
        }
    }
}

/// The lease an attempt runs under.
struct Lease {
    /// The worker.
    w: Arc<Worker>,
    /// Trial id.
    trial: String,
    /// Lease id, the fencing token.
    lease: String,
    /// Fires when the coordinator revokes the lease.
    revoked: Shutdown,
}

impl Lease {
    /// How a retry loop that was stopped ended the attempt.
    fn stopped(&self) -> Failure {
        if self.revoked.is_triggered() {
            Failure::Fenced("the coordinator revoked the lease".into())
        } else {
            Failure::Shutdown
        }
    }

    /// Writes `bytes` under `key`, retrying store failures until the lease ends or the
    /// worker stops.
    async fn put(&self, what: &str, key: &str, bytes: bytes::Bytes) -> Result<(), Failure> {
        let limits = Limits {
            stop: &[&self.revoked, &self.w.stop],
            budget: None,
        };
        retry(
            what,
            limits,
            |_| true,
            || self.w.store.put(key, bytes.clone()),
        )
        .await
        .map_err(|e| match e {
            RetryError::Stopped(_) => self.stopped(),
            RetryError::Failed(e) => Failure::Transient(e.to_string()),
        })
    }

    /// Maps the end of a retried coordinator call: a refusal means the lease has ended.
    fn rpc_failure(&self, e: RetryError<tonic::Status>) -> Failure {
        match e {
            RetryError::Stopped(_) => self.stopped(),
            RetryError::Failed(s) if transient_status(&s) => {
                Failure::Transient(s.message().to_string())
            }
            RetryError::Failed(s) => Failure::Fenced(s.message().to_string()),
        }
    }

    /// Uploads the checkpoint of one epoch if it wrote one, reports the epoch, then deletes
    /// the checkpoint it replaces (`previous`); returns the new checkpoint's key.
    async fn report(&self, r: Report, previous: Option<String>) -> Result<Option<String>, Failure> {
        let key = match r.checkpoint {
            Some(bytes) => {
                let key = staging::ckpt_key(&self.trial, &self.lease, r.epoch);
                self.put("uploading a checkpoint", &key, bytes.into())
                    .await?;
                Some(key)
            }
            None => None,
        };
        let params = ProgressParams {
            lease_id: self.lease.clone(),
            trial_id: self.trial.clone(),
            epoch: r.epoch as u32,
            metrics_json: r.metrics,
            resumed_from_epoch: r.resumed_from as u32,
            checkpoint_key: key.clone().unwrap_or_default(),
            earlier: r.earlier,
        };
        let limits = Limits {
            stop: &[&self.revoked, &self.w.stop],
            budget: None,
        };
        let answer = retry("reporting progress", limits, transient_status, || {
            let (mut c, p) = (self.w.client.clone(), params.clone());
            async move { c.report_progress(p).await }
        })
        .await
        .map_err(|e| self.rpc_failure(e))?
        .into_inner();
        if answer.stop {
            // The coordinator already marked the trial stopped_early and ended the lease:
            // stop quietly, like a revoked lease, with nothing left to report.
            tracing::info!("stopped early by the sweep's policy: {}", answer.reason);
            return Err(Failure::Fenced(format!("stopped early: {}", answer.reason)));
        }
        tracing::info!(epoch = r.epoch, epochs = r.epochs, "{}", r.headline);
        // The coordinator now resumes from the new key, so the previous one is garbage.
        if let Some(old) = previous
            && let Err(err) = self.w.store.delete(&old).await
        {
            tracing::warn!("cannot delete the old checkpoint {old}: {err}");
        }
        Ok(key)
    }
}

/// What one epoch's report carries, taken from training before it goes on.
struct Report {
    epoch: usize,
    epochs: usize,
    resumed_from: usize,
    metrics: String,
    headline: String,
    /// The epoch's checkpoint, when it wrote one (see `CkptDir::every`).
    checkpoint: Option<Vec<u8>>,
    /// The epochs before it that were held back (see [`Reporter::every`]), oldest first.
    earlier: Vec<EpochMetrics>,
}

/// The per-epoch callback's side of reporting: at most one report in flight, and at most
/// one report per [`Reporter::every`] unless an epoch brings a checkpoint or is the last.
struct Reporter {
    lease: Arc<Lease>,
    handle: Handle,
    /// The report of the previous epoch, still running.
    pending: Option<tokio::task::JoinHandle<Result<Option<String>, Failure>>>,
    /// The key of the last checkpoint the coordinator accepted.
    last: Option<String>,
    /// The least time between two reports. Epochs shorter than that are held back and go
    /// with the next report: with epochs of a few milliseconds, a report each would cost
    /// the coordinator more than the training. Held-back epochs come after the last
    /// checkpoint, so a worker that dies with them loses nothing a resumed attempt does
    /// not train again; a trial that fails loses at most this much of its metrics.
    every: Duration,
    /// When the last report was started.
    sent: Instant,
    /// Epochs trained but not reported yet, oldest first.
    held: Vec<Report>,
}

impl Reporter {
    /// On the training thread, after epoch `e`: holds it back when it is too soon for a
    /// report, or else waits for the previous report (its failure stops training) and
    /// starts this one, with the epochs held back before it.
    fn on_epoch(&mut self, e: &EpochEvent, ckpt: &CkptDir) -> anyhow::Result<()> {
        let l = self.lease.clone();
        if l.revoked.is_triggered() {
            return Err(l.stopped().into());
        }
        let local = ckpt.path_of(e.epoch);
        let checkpoint = match std::fs::read(&local) {
            Ok(bytes) => Some(bytes),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => {
                let m = format!("cannot read checkpoint {}: {err}", local.display());
                return Err(Failure::Transient(m).into());
            }
        };
        let r = Report {
            epoch: e.epoch,
            epochs: e.epochs,
            resumed_from: e.resumed_from,
            metrics: e.metrics.to_string(),
            headline: e.headline.clone(),
            checkpoint,
            earlier: Vec::new(),
        };
        if r.checkpoint.is_none() && r.epoch < r.epochs && self.sent.elapsed() < self.every {
            self.held.push(r);
        } else {
            self.send(r)?;
        }
        if self.lease.w.stop.is_triggered() {
            return Err(Failure::Shutdown.into());
        }
        Ok(())
    }

    /// Waits for the previous report, then starts `r`'s with the held-back epochs.
    fn send(&mut self, mut r: Report) -> Result<(), Failure> {
        self.settle()?;
        r.earlier = self
            .held
            .drain(..)
            .map(|h| EpochMetrics {
                epoch: h.epoch as u32,
                metrics_json: h.metrics,
            })
            .collect();
        // A report without a checkpoint leaves the previous one current.
        let previous = r.checkpoint.as_ref().and_then(|_| self.last.take());
        let l = self.lease.clone();
        let task = async move { l.report(r, previous).await };
        self.pending = Some(self.handle.spawn(task.in_current_span()));
        self.sent = Instant::now();
        Ok(())
    }

    /// Waits for the report in flight, if any.
    fn settle(&mut self) -> Result<(), Failure> {
        if let Some(task) = self.pending.take() {
            let key = self
                .handle
                .block_on(task)
                .map_err(|e| Failure::Transient(format!("a progress report crashed: {e}")))??;
            if key.is_some() {
                self.last = key;
            }
        }
        Ok(())
    }
}

/// A trial whose training is over, waiting to be finished: its artifacts staged and
/// Complete sent, or Fail. Finishing a trained trial is mostly waiting on the store and the
/// coordinator, so the slot may hand it to a task of its own and lease the next trial
/// meanwhile; the lease stays held (and heartbeated) until it is finished.
pub struct Trained {
    lease: Arc<Lease>,
    /// The lease's local folder.
    dir: PathBuf,
    /// The summary, or why there is none.
    result: Result<Value, Failure>,
    span: tracing::Span,
}

/// Fetches and trains one assignment; what is left to do is [`Trained::finish`].
pub async fn train(w: &Arc<Worker>, a: Assignment) -> Trained {
    // Inside the worker's span, so every line names both the trial and the worker.
    let span = tracing::info_span!("trial", trial = %a.trial_id);
    let lease = Arc::new(Lease {
        w: w.clone(),
        trial: a.trial_id.clone(),
        lease: a.lease_id.clone(),
        revoked: w.hold(&a.lease_id),
    });
    let dir = w.work_dir.join(&a.lease_id);
    let result = attempt(&lease, &a, &dir).instrument(span.clone()).await;
    Trained {
        lease,
        dir,
        result,
        span,
    }
}

impl Trained {
    /// Whether training produced a summary, so that only the upload and Complete are left.
    pub fn succeeded(&self) -> bool {
        self.result.is_ok()
    }

    /// Reports the result to the coordinator, then forgets the lease and its local files.
    pub async fn finish(self) -> Outcome {
        let Trained {
            lease,
            dir,
            result,
            span,
        } = self;
        if result.is_ok() {
            lease.w.completing(&lease.lease);
        }
        let outcome = finish(&lease, &dir.join("out"), result)
            .instrument(span)
            .await;
        lease.w.release(&lease.lease);
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(trial = %lease.trial, "cannot remove {}: {e}", dir.display());
        }
        outcome
    }
}

/// Fetches what the trial needs and trains it; returns the summary.
async fn attempt(lease: &Arc<Lease>, a: &Assignment, dir: &Path) -> Result<Value, Failure> {
    let w = &lease.w;
    if w.stop.is_triggered() {
        return Err(Failure::Shutdown);
    }
    let config: TrialConfig = serde_json::from_str(&a.config_json)
        .map_err(|e| Failure::Trial(format!("the trial configuration is unreadable: {e}")))?;
    config
        .validate()
        .map_err(|e| Failure::Trial(e.to_string()))?;
    let data = a.data.clone().unwrap_or_default();
    let (path, reference) = match &config {
        TrialConfig::Covid(_) => (w.cache.covid_csv(&data.covid_csv).await?, &data.covid_csv),
        TrialConfig::Vae(_) => (w.cache.faces(&data.faces).await?, &data.faces),
    };
    let path_for_messages = path.clone();
    let (ckpt_dir, out) = (dir.join("ckpt"), dir.join("out"));
    let local =
        |e: std::io::Error| Failure::Transient(format!("cannot prepare {}: {e}", dir.display()));
    tokio::fs::create_dir_all(&ckpt_dir).await.map_err(local)?;
    tokio::fs::create_dir_all(&out).await.map_err(local)?;
    if !a.resume_checkpoint.is_empty() {
        match staging::fetch_checkpoint(&w.store, &a.resume_checkpoint, &ckpt_dir).await {
            Ok(Some(_)) => {
                tracing::info!("resuming from {}", a.resume_checkpoint)
            }
            Ok(None) => {
                tracing::warn!(
                    "checkpoint {} is gone from the store; starting at epoch 0",
                    a.resume_checkpoint
                )
            }
            Err(FetchError::Invalid(m)) => return Err(Failure::Trial(m)),
            Err(FetchError::Store(m)) => return Err(Failure::Transient(m)),
        }
    }
    let ckpt = CkptDir::open(&ckpt_dir, KEEP_LOCAL_CKPTS)
        .map_err(|e| Failure::Transient(format!("{e:#}")))?
        .every(w.checkpoint_every);
    // The checkpoint this attempt resumes from was an earlier lease's: it is deleted like
    // this lease's own older ones once a newer one is accepted (a dead worker's garbage).
    let resumed = staging::earlier_ckpt(&lease.trial, &lease.lease, &a.resume_checkpoint)
        .then(|| a.resume_checkpoint.clone());
    let mut reporter = Reporter {
        lease: lease.clone(),
        handle: Handle::current(),
        pending: None,
        last: resumed,
        every: w.report_every,
        sent: Instant::now(),
        held: Vec::new(),
    };
    let device = w.device.clone();
    let span = tracing::Span::current();
    let trained = tokio::task::spawn_blocking(move || {
        let _span = span.enter();
        let task = config.task();
        let trained = run_trial(&config, &path, &out, Some(&ckpt), &device, &mut |e| {
            let seconds = e.metrics.get("seconds").and_then(Value::as_f64);
            reporter.lease.w.metrics.epochs.record(task, seconds);
            reporter.on_epoch(e, &ckpt)
        });
        // The last epoch's report must be in before Complete (its failure is the
        // attempt's when training itself went well).
        let reported = reporter.settle();
        match (trained, reported) {
            (Ok(_), Err(f)) => Err(f.into()),
            (trained, _) => trained,
        }
    })
    .await
    .map_err(|e| Failure::Trial(format!("training crashed: {e}")))?;
    // The user knows the data by the reference the sweep was given (a URL, a store key),
    // never by this worker's cached copy, so errors name the reference.
    let cached = path_for_messages.display().to_string();
    trained.map_err(|e| match e.downcast::<Failure>() {
        Ok(f) => f,
        Err(e) => Failure::Trial(format!("{e:#}").replace(&cached, reference)),
    })
}

/// Stages the artifacts and sends Complete, or sends Fail, as `result` calls for.
async fn finish(lease: &Lease, out: &Path, result: Result<Value, Failure>) -> Outcome {
    let w = &lease.w;
    let failure = match result {
        Ok(summary) => match complete(lease, out, summary).await {
            Ok(()) => return Outcome::Completed,
            Err(f) => f,
        },
        Err(f) => f,
    };
    let (message, retryable) = match failure {
        Failure::Fenced(m) => {
            tracing::warn!("lease {} ended ({m}); dropping the trial", lease.lease);
            return Outcome::Fenced;
        }
        Failure::Shutdown => (
            format!("worker {} stopped; the trial is handed back", w.name),
            true,
        ),
        Failure::Transient(m) => (format!("worker {}: {m}", w.name), true),
        Failure::Trial(m) => (m, false),
    };
    if retryable {
        tracing::warn!("handing the trial back: {message}");
    } else {
        tracing::error!("trial failed: {message}");
    }
    let params = FailParams {
        lease_id: lease.lease.clone(),
        trial_id: lease.trial.clone(),
        message,
        retryable,
    };
    // Past the lease's lifetime the coordinator takes the trial back by itself.
    let limits = Limits {
        stop: &[&lease.revoked],
        budget: Some(w.lease_ttl()),
    };
    let sent = retry("reporting the failure", limits, transient_status, || {
        let (mut c, p) = (w.client.clone(), params.clone());
        async move { c.fail(p).await }
    })
    .await;
    if let Err(e) = sent {
        tracing::warn!(
            "the coordinator did not take the report: {}",
            e.into_inner().message()
        );
    }
    if retryable {
        Outcome::HandedBack
    } else {
        Outcome::Failed
    }
}

/// Uploads every file of `out` under the lease's staging prefix, then sends Complete.
async fn complete(lease: &Lease, out: &Path, mut summary: Value) -> Result<(), Failure> {
    if lease.revoked.is_triggered() {
        return Err(lease.stopped());
    }
    let prefix = staging::staging_prefix(&lease.trial, &lease.lease);
    let files: Vec<(String, PathBuf)> = staging::files_in(out).map_err(|e| {
        Failure::Transient(format!(
            "cannot list the artifacts in {}: {e}",
            out.display()
        ))
    })?;
    // All at once: against S3 each upload is mostly waiting on the network.
    let uploads = files.iter().map(|(name, path)| {
        let key = format!("{prefix}{name}");
        async move {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|e| Failure::Transient(format!("cannot read {}: {e}", path.display())))?;
            lease.put("staging an artifact", &key, bytes.into()).await
        }
    });
    futures::future::try_join_all(uploads).await?;
    // The local folder means nothing to anyone else once this attempt is over.
    if let Some(o) = summary.as_object_mut() {
        o.remove("out");
    }
    let params = CompleteParams {
        lease_id: lease.lease.clone(),
        trial_id: lease.trial.clone(),
        summary_json: summary.to_string(),
        staging_prefix: prefix.clone(),
        staged: files.iter().map(|(name, _)| name.clone()).collect(),
    };
    let limits = Limits {
        stop: &[&lease.revoked, &lease.w.stop],
        budget: None,
    };
    let r = retry("reporting completion", limits, transient_status, || {
        let (mut c, p) = (lease.w.client.clone(), params.clone());
        async move { c.complete(p).await }
    })
    .await;
    match r {
        Ok(_) => {
            tracing::info!(files = files.len(), "trial completed");
            Ok(())
        }
        Err(e) => {
            let f = lease.rpc_failure(e);
            if matches!(f, Failure::Fenced(_)) {
                // Nobody will promote these files: remove them.
                for (name, _) in &files {
                    let _ = lease.w.store.delete(&format!("{prefix}{name}")).await;
                }
            }
            Err(f)
        }
    }
}
