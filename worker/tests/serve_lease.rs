//! `serve::run` against a scripted fake coordinator: a leased trial uploads a checkpoint
//! under its lease and reports every epoch, stages its artifacts and completes; a trial
//! re-leased with a checkpoint resumes from it with the numbers of an uninterrupted run;
//! a refused report or a revoked lease stops the trial silently; a forgotten worker
//! registers again; shutdown hands the running trial back; a trial's own error is not
//! retried; a slot trains its next trial while the last one's Complete is in flight. The
//! inference server answers over gRPC with health SERVING.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};
use wick_common::store::{Store, keys};
use wick_common::trial::{CovidConfig, TrialConfig};
use wick_proto::v1::inference_client::InferenceClient;
use wick_proto::v1::work_server::{Work, WorkServer};
use wick_proto::v1::*;
use wick_worker::serve::{self, ServeConfig};

mod serve_support;

const CSV_KEY: &str = "data/sha256-c0/covid.csv";

/// One call the worker made.
#[derive(Debug, Clone)]
enum Call {
    Register(RegisterParams),
    Lease,
    Heartbeat(Vec<String>),
    Progress(ProgressParams),
    Complete(CompleteParams),
    Fail(FailParams),
}

/// A coordinator that hands out queued assignments and records every call.
#[derive(Default)]
struct Fake {
    queue: Mutex<VecDeque<Assignment>>,
    log: Mutex<Vec<Call>>,
    /// Progress for this epoch or later is refused (the lease "ended").
    refuse_from_epoch: Mutex<Option<u32>>,
    /// Leases the next heartbeats report revoked.
    revoked: Mutex<HashSet<String>>,
    /// The next Lease answers NOT_FOUND (the coordinator forgot the worker).
    forget_worker: AtomicBool,
    /// Fired at the first progress report.
    on_progress: Mutex<Option<oneshot::Sender<()>>>,
    /// While set, each Complete is recorded and then answered only once this says `true`
    /// (a slow coordinator).
    hold_completes: Mutex<Option<watch::Receiver<bool>>>,
}

impl Fake {
    fn record(&self, c: Call) {
        self.log.lock().unwrap().push(c);
    }
    fn calls(&self) -> Vec<Call> {
        self.log.lock().unwrap().clone()
    }
    fn progress(&self, lease: &str) -> Vec<ProgressParams> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Progress(p) if p.lease_id == lease => Some(p),
                _ => None,
            })
            .collect()
    }
    fn ends(&self, lease: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| {
                matches!(c, Call::Complete(p) if p.lease_id == lease)
                    || matches!(c, Call::Fail(p) if p.lease_id == lease)
            })
            .collect()
    }
}

struct FakeWork(Arc<Fake>);

#[tonic::async_trait]
impl Work for FakeWork {
    async fn register(
        &self,
        r: Request<RegisterParams>,
    ) -> Result<Response<RegisterResult>, Status> {
        let n = self
            .0
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::Register(_)))
            .count();
        self.0.record(Call::Register(r.into_inner()));
        Ok(Response::new(RegisterResult {
            worker_id: format!("w-{n}"),
            heartbeat_ms: 100,
            lease_ttl_ms: 2000,
        }))
    }
    async fn lease(&self, _: Request<LeaseParams>) -> Result<Response<LeaseResult>, Status> {
        if self.0.forget_worker.swap(false, Ordering::SeqCst) {
            return Err(Status::not_found("unknown worker; register again"));
        }
        self.0.record(Call::Lease);
        Ok(Response::new(LeaseResult {
            assignment: self.0.queue.lock().unwrap().pop_front(),
        }))
    }
    async fn heartbeat(
        &self,
        r: Request<HeartbeatParams>,
    ) -> Result<Response<HeartbeatResult>, Status> {
        let ids = r.into_inner().lease_ids;
        let revoked = self.0.revoked.lock().unwrap();
        let hit = ids
            .iter()
            .filter(|i| revoked.contains(*i))
            .cloned()
            .collect();
        self.0.record(Call::Heartbeat(ids));
        Ok(Response::new(HeartbeatResult { revoked: hit }))
    }
    async fn report_progress(
        &self,
        r: Request<ProgressParams>,
    ) -> Result<Response<ProgressResult>, Status> {
        let p = r.into_inner();
        let refuse = self
            .0
            .refuse_from_epoch
            .lock()
            .unwrap()
            .is_some_and(|e| p.epoch >= e);
        self.0.record(Call::Progress(p));
        if let Some(tx) = self.0.on_progress.lock().unwrap().take() {
            let _ = tx.send(());
        }
        if refuse {
            return Err(Status::failed_precondition("lease ended"));
        }
        Ok(Response::new(ProgressResult::default()))
    }
    async fn complete(
        &self,
        r: Request<CompleteParams>,
    ) -> Result<Response<CompleteResult>, Status> {
        self.0.record(Call::Complete(r.into_inner()));
        let gate = self.0.hold_completes.lock().unwrap().clone();
        if let Some(mut open) = gate {
            let _ = open.wait_for(|open| *open).await;
        }
        Ok(Response::new(CompleteResult {}))
    }
    async fn fail(&self, r: Request<FailParams>) -> Result<Response<FailResult>, Status> {
        self.0.record(Call::Fail(r.into_inner()));
        Ok(Response::new(FailResult {}))
    }
}

/// A running fake coordinator, a store with the COVID-19 data, and a worker.
struct Rig {
    store: Store,
    stop: Option<oneshot::Sender<()>>,
    worker: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

/// A rig whose worker checkpoints, and so reports, after every epoch.
async fn rig(fake: Arc<Fake>, listen: bool) -> Rig {
    rig_with(fake, listen, Duration::ZERO, Duration::ZERO).await
}

async fn rig_with(
    fake: Arc<Fake>,
    listen: bool,
    checkpoint_every: Duration,
    report_every: Duration,
) -> Rig {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(WorkServer::new(FakeWork(fake.clone())))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let (store_dir, cache_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = Store::file_url(store_dir.path()).unwrap();
    let store = Store::open(&url).unwrap();
    store
        .put(CSV_KEY, serve_support::covid_csv())
        .await
        .unwrap();
    let mut config = ServeConfig::new(format!("http://{addr}"), url);
    config.device = "cpu".into();
    config.name = "test-worker".into();
    config.cache = cache_dir.path().to_path_buf();
    config.poll_interval = Duration::from_millis(50);
    config.checkpoint_every = checkpoint_every;
    config.report_every = report_every;
    if !listen {
        config.listen = None;
    }
    let (tx, rx) = oneshot::channel::<()>();
    let worker = tokio::spawn(serve::run(config, async move {
        let _ = rx.await;
    }));
    Rig {
        store,
        stop: Some(tx),
        worker: Some(worker),
        _dirs: (store_dir, cache_dir),
    }
}

impl Rig {
    /// The store's keys under `prefix`.
    async fn keys(&self, prefix: &str) -> Vec<String> {
        let listed = self.store.list(prefix).await.unwrap();
        listed.into_iter().map(|(k, _)| k).collect()
    }

    /// Stops the worker and waits for it to return.
    async fn shutdown(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        let worker = self.worker.take().unwrap();
        let r = tokio::time::timeout(Duration::from_secs(60), worker)
            .await
            .expect("the worker stops");
        r.unwrap().unwrap();
    }
}

fn assignment(trial: &str, lease: &str, cfg: &CovidConfig, resume: &str) -> Assignment {
    Assignment {
        trial_id: trial.into(),
        lease_id: lease.into(),
        config_json: serde_json::to_string(&TrialConfig::Covid(cfg.clone())).unwrap(),
        data: Some(DataRef {
            covid_csv: CSV_KEY.into(),
            faces: String::new(),
        }),
        attempt: 1,
        resume_checkpoint: resume.into(),
    }
}

/// Waits up to a minute for `cond` on the fake's calls.
async fn wait_for(fake: &Fake, what: &str, cond: impl Fn(&Fake) -> bool) {
    for _ in 0..1200 {
        if cond(fake) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}; calls: {:#?}", fake.calls());
}

/// Whether the worker stopped holding `lease`: a heartbeat without it follows the last
/// call that named it.
fn released(fake: &Fake, lease: &str) -> bool {
    let calls = fake.calls();
    let names = |c: &Call| match c {
        Call::Progress(p) => p.lease_id == lease,
        Call::Heartbeat(ids) => ids.iter().any(|i| i == lease),
        _ => false,
    };
    let Some(last) = calls.iter().rposition(names) else {
        return false;
    };
    calls[last..]
        .iter()
        .any(|c| matches!(c, Call::Heartbeat(ids) if ids.is_empty()))
}

fn completed(fake: &Fake, lease: &str) -> Option<CompleteParams> {
    fake.ends(lease).into_iter().find_map(|c| match c {
        Call::Complete(p) => Some(p),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trial_reports_every_epoch_completes_and_resumes_from_its_checkpoint() {
    let fake = Arc::new(Fake::default());
    fake.queue.lock().unwrap().push_back(assignment(
        "t-a",
        "l-1",
        &serve_support::covid_cfg(2),
        "",
    ));
    let mut rig = rig(fake.clone(), true).await;
    wait_for(&fake, "the first trial to complete", |f| {
        completed(f, "l-1").is_some()
    })
    .await;

    let progress = fake.progress("l-1");
    let epochs: Vec<u32> = progress.iter().map(|p| p.epoch).collect();
    assert_eq!(epochs, [1, 2]);
    for p in &progress {
        assert_eq!(
            p.checkpoint_key,
            format!("trials/t-a/ckpt/l-1/epoch-{}.safetensors", p.epoch)
        );
        assert_eq!(p.resumed_from_epoch, 0);
        let m: serde_json::Value = serde_json::from_str(&p.metrics_json).unwrap();
        assert!(m["test_acc"].is_number(), "{m}");
    }
    let ckpts = rig.keys("trials/t-a/ckpt/").await;
    assert_eq!(
        ckpts,
        ["trials/t-a/ckpt/l-1/epoch-2.safetensors"],
        "older checkpoints are removed"
    );

    let done = completed(&fake, "l-1").unwrap();
    assert_eq!(done.staging_prefix, "trials/t-a/staging/l-1/");
    let summary: serde_json::Value = serde_json::from_str(&done.summary_json).unwrap();
    assert!(
        summary["final_test_acc"].is_number() && summary.get("out").is_none(),
        "{summary}"
    );
    let staged = rig.keys(&done.staging_prefix).await;
    for name in [
        "model.safetensors",
        "forecast.json",
        "learning_curves.png",
        "world_map.svg",
    ] {
        assert!(
            staged.contains(&format!("{}{name}", done.staging_prefix)),
            "{name} staged: {staged:?}"
        );
    }

    // Re-leased with its checkpoint (and two more epochs), the trial resumes at epoch 3 and
    // ends where an uninterrupted four-epoch run ends.
    let cfg4 = serve_support::covid_cfg(4);
    let resume = "trials/t-a/ckpt/l-1/epoch-2.safetensors";
    fake.queue
        .lock()
        .unwrap()
        .push_back(assignment("t-a", "l-2", &cfg4, resume));
    wait_for(&fake, "the resumed trial to complete", |f| {
        completed(f, "l-2").is_some()
    })
    .await;
    let progress = fake.progress("l-2");
    assert_eq!(
        progress
            .iter()
            .map(|p| (p.epoch, p.resumed_from_epoch))
            .collect::<Vec<_>>(),
        [(3, 2), (4, 2)]
    );
    // The earlier lease's checkpoint went once this lease's first one was accepted.
    assert_eq!(
        rig.keys("trials/t-a/ckpt/").await,
        ["trials/t-a/ckpt/l-2/epoch-4.safetensors"]
    );
    let summary: serde_json::Value =
        serde_json::from_str(&completed(&fake, "l-2").unwrap().summary_json).unwrap();
    assert_eq!(summary["resumed_from_epoch"], 2);
    let csv = rig._dirs.0.path().join(CSV_KEY);
    let (_, data) = wick_worker::train::load_covid(&csv, &cfg4).unwrap();
    let whole = wick_worker::covid::train::train(
        &cfg4,
        &data,
        &candle_core::Device::Cpu,
        None,
        &mut |_| Ok(()),
    )
    .unwrap();
    assert_eq!(
        summary["final_test_acc"].as_f64().unwrap(),
        whole.history[3].test_acc
    );
    assert_eq!(
        summary["final_train_loss"].as_f64().unwrap(),
        whole.history[3].train_loss
    );

    // The inference server the worker registered answers, once the model is promoted.
    let addr = fake
        .calls()
        .into_iter()
        .find_map(|c| match c {
            Call::Register(r) => Some(r.inference_addr),
            _ => None,
        })
        .unwrap();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = |service: &str| {
        let request = tonic_health::pb::HealthCheckRequest {
            service: service.into(),
        };
        let mut health = health.clone();
        async move { health.check(request).await.unwrap().into_inner().status }
    };
    use tonic_health::pb::health_check_response::ServingStatus;
    assert_eq!(status("liveness").await, ServingStatus::Serving as i32);
    // The scripted coordinator serves no health service, so to the worker it is not
    // answering, and the worker says it is not ready.
    assert_eq!(status("").await, ServingStatus::NotServing as i32);
    assert_eq!(
        status("wick.v1.Inference").await,
        ServingStatus::NotServing as i32
    );
    let model = rig
        .store
        .get("trials/t-a/staging/l-1/model.safetensors")
        .await
        .unwrap()
        .unwrap();
    rig.store
        .put(&keys::trial_model("t-a"), model)
        .await
        .unwrap();
    rig.store
        .put(
            "trials/t-a/data.json",
            serde_json::json!({ "covid_csv": CSV_KEY }).to_string(),
        )
        .await
        .unwrap();
    let r = InferenceClient::new(channel)
        .predict(PredictParams {
            trial_id: "t-a".into(),
            country: "DE".into(),
            all: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.forecasts[0].country, "Germany");

    rig.shutdown().await;
}

/// A slot leases and trains its next trial while the last one's Complete waits on the
/// coordinator, and heartbeats both leases meanwhile; both complete once it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_trial_trains_while_the_last_one_completes() {
    let fake = Arc::new(Fake::default());
    let (open, gate) = watch::channel(false);
    *fake.hold_completes.lock().unwrap() = Some(gate);
    for (trial, lease) in [("t-a", "l-1"), ("t-b", "l-2")] {
        let a = assignment(trial, lease, &serve_support::covid_cfg(2), "");
        fake.queue.lock().unwrap().push_back(a);
    }
    let mut rig = rig(fake.clone(), false).await;
    wait_for(
        &fake,
        "the second trial to report while the first completes",
        |f| completed(f, "l-1").is_some() && !f.progress("l-2").is_empty(),
    )
    .await;
    let both = |f: &Fake| {
        f.calls().iter().any(|c| {
            matches!(c, Call::Heartbeat(ids)
                if ids.iter().any(|i| i == "l-1") && ids.iter().any(|i| i == "l-2"))
        })
    };
    wait_for(&fake, "a heartbeat that holds both leases", both).await;
    assert!(
        !released(&fake, "l-1"),
        "l-1 was let go before its Complete was answered"
    );

    open.send(true).unwrap();
    wait_for(&fake, "the second trial to complete", |f| {
        completed(f, "l-2").is_some()
    })
    .await;
    wait_for(&fake, "both leases to be let go", |f| {
        released(f, "l-1") && released(f, "l-2")
    })
    .await;
    assert_eq!(fake.ends("l-1").len(), 1, "{:#?}", fake.ends("l-1"));
    assert_eq!(fake.ends("l-2").len(), 1, "{:#?}", fake.ends("l-2"));
    rig.shutdown().await;
}

/// With checkpoints at most every hour, epochs report without one until the last, which
/// always has one; the trial still completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_spaced_in_time_and_the_last_epoch_always_has_one() {
    let fake = Arc::new(Fake::default());
    fake.queue.lock().unwrap().push_back(assignment(
        "t-a",
        "l-1",
        &serve_support::covid_cfg(3),
        "",
    ));
    let hour = Duration::from_secs(3600);
    let mut rig = rig_with(fake.clone(), false, hour, Duration::ZERO).await;
    wait_for(&fake, "the trial to complete", |f| {
        completed(f, "l-1").is_some()
    })
    .await;
    let keys: Vec<(u32, String)> = fake
        .progress("l-1")
        .into_iter()
        .map(|p| (p.epoch, p.checkpoint_key))
        .collect();
    let last = "trials/t-a/ckpt/l-1/epoch-3.safetensors".to_string();
    assert_eq!(
        keys,
        [(1, String::new()), (2, String::new()), (3, last.clone())]
    );
    let stored = rig.keys("trials/t-a/ckpt/").await;
    assert_eq!(stored, [last]);
    rig.shutdown().await;
}

/// Epochs shorter than the report interval are held back and go with the next report
/// that must go at once (here the last epoch's, with its checkpoint): every epoch reaches
/// the coordinator once, oldest first, in one call instead of one each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_epochs_go_several_to_a_report() {
    let fake = Arc::new(Fake::default());
    fake.queue.lock().unwrap().push_back(assignment(
        "t-a",
        "l-1",
        &serve_support::covid_cfg(4),
        "",
    ));
    let hour = Duration::from_secs(3600);
    let mut rig = rig_with(fake.clone(), false, hour, hour).await;
    wait_for(&fake, "the trial to complete", |f| {
        completed(f, "l-1").is_some()
    })
    .await;
    let progress = fake.progress("l-1");
    assert_eq!(progress.len(), 1, "one report: {progress:?}");
    let p = &progress[0];
    assert_eq!(p.epoch, 4);
    assert_eq!(p.checkpoint_key, "trials/t-a/ckpt/l-1/epoch-4.safetensors");
    let earlier: Vec<u32> = p.earlier.iter().map(|e| e.epoch).collect();
    assert_eq!(earlier, [1, 2, 3]);
    for e in &p.earlier {
        let m: serde_json::Value = serde_json::from_str(&e.metrics_json).unwrap();
        assert!(m["test_acc"].is_number(), "epoch {}: {m}", e.epoch);
    }
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_report_or_a_revoked_lease_stops_the_trial_silently() {
    let fake = Arc::new(Fake::default());
    *fake.refuse_from_epoch.lock().unwrap() = Some(2);
    fake.forget_worker.store(true, Ordering::SeqCst);
    fake.queue.lock().unwrap().push_back(assignment(
        "t-a",
        "l-1",
        &serve_support::covid_cfg(6),
        "",
    ));
    let mut rig = rig(fake.clone(), false).await;
    wait_for(&fake, "the refused trial to be dropped", |f| {
        f.progress("l-1").len() == 2 && released(f, "l-1")
    })
    .await;
    assert!(
        fake.ends("l-1").is_empty(),
        "no Complete or Fail after a refusal: {:?}",
        fake.ends("l-1")
    );
    let registrations = fake
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::Register(_)))
        .count();
    assert_eq!(registrations, 2, "a forgotten worker registers again");

    *fake.refuse_from_epoch.lock().unwrap() = None;
    let (tx, rx) = oneshot::channel();
    *fake.on_progress.lock().unwrap() = Some(tx);
    fake.queue.lock().unwrap().push_back(assignment(
        "t-b",
        "l-2",
        &serve_support::covid_cfg(5000),
        "",
    ));
    rx.await.unwrap();
    fake.revoked.lock().unwrap().insert("l-2".into());
    wait_for(&fake, "the revoked trial to stop", |f| released(f, "l-2")).await;
    assert!(fake.ends("l-2").is_empty(), "{:?}", fake.ends("l-2"));
    assert!(fake.progress("l-2").len() < 5000);
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_hands_the_trial_back_and_own_errors_are_final() {
    let fake = Arc::new(Fake::default());
    let mut bad = serve_support::covid_cfg(3);
    bad.l = 1000;
    let mut missing = assignment("t-m", "l-m", &serve_support::covid_cfg(3), "");
    missing.data = Some(DataRef {
        covid_csv: "data/sha256-ff/covid.csv".into(),
        faces: String::new(),
    });
    fake.queue
        .lock()
        .unwrap()
        .extend([assignment("t-bad", "l-bad", &bad, ""), missing]);
    let mut rig = rig(fake.clone(), false).await;
    wait_for(&fake, "two failures", |f| {
        !f.ends("l-bad").is_empty() && !f.ends("l-m").is_empty()
    })
    .await;
    let Call::Fail(f) = &fake.ends("l-bad")[0] else {
        panic!("{:?}", fake.ends("l-bad"))
    };
    assert!(!f.retryable && f.message.contains("L = 1000"), "{f:?}");
    let Call::Fail(f) = &fake.ends("l-m")[0] else {
        panic!("{:?}", fake.ends("l-m"))
    };
    assert!(
        !f.retryable
            && f.message
                .contains("no 'data/sha256-ff/covid.csv' in the store"),
        "{f:?}"
    );

    let (tx, rx) = oneshot::channel();
    *fake.on_progress.lock().unwrap() = Some(tx);
    fake.queue.lock().unwrap().push_back(assignment(
        "t-long",
        "l-long",
        &serve_support::covid_cfg(5000),
        "",
    ));
    rx.await.unwrap();
    rig.shutdown().await;
    let store = &rig.store;
    let ends = fake.ends("l-long");
    assert_eq!(ends.len(), 1, "{ends:?}");
    let Call::Fail(f) = &ends[0] else {
        panic!("{ends:?}")
    };
    assert!(f.retryable, "{f:?}");
    let last = fake
        .progress("l-long")
        .last()
        .unwrap()
        .checkpoint_key
        .clone();
    assert!(
        store.exists(&last).await.unwrap(),
        "the last reported checkpoint stays for the next worker"
    );
    assert!(fake.progress("l-long").len() < 5000);
}
