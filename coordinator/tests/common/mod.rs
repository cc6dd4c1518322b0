//! Shared setup of the service tests: a coordinator served on a loopback port over a
//! `file://` store in a temporary folder, with short timings, and a fake worker driven
//! through the generated gRPC clients.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use wick_common::store::Store;
use wick_common::trial::TrialConfig;
use wick_coordinator::{Config, serve};
use wick_proto::v1::sweeps_client::SweepsClient;
use wick_proto::v1::work_client::WorkClient;
use wick_proto::v1::{
    Assignment, CompleteParams, DataRef, LeaseParams, ProgressParams, RegisterParams, SweepSpec,
    TrialStatus,
};

/// Lease lifetime where a test waits for a lease to expire: short, so it is quick, yet
/// several reaper intervals long.
pub const SHORT_TTL: Duration = Duration::from_millis(1500);
/// Lease lifetime elsewhere: long enough that a slow machine never expires a lease the
/// test means to keep.
pub const TTL: Duration = Duration::from_secs(30);
/// Heartbeat and reaper interval in these tests.
pub const BEAT: Duration = Duration::from_millis(100);

/// A coordinator running in this process.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Fires its shutdown.
    stop: Option<oneshot::Sender<()>>,
    /// Its `serve` task.
    task: JoinHandle<anyhow::Result<()>>,
}

/// Settings over `store_url` with the test timings.
pub fn config(store_url: &str) -> Config {
    Config {
        store_url: store_url.into(),
        lease_ttl: TTL,
        heartbeat: BEAT,
        max_attempts: 3,
        ..Config::default()
    }
}

/// Settings over `store_url` whose leases expire quickly.
pub fn short_leases(store_url: &str) -> Config {
    Config {
        lease_ttl: SHORT_TTL,
        ..config(store_url)
    }
}

/// A `file://` store in a fresh temporary folder (kept alive by the returned guard).
pub fn temp_store() -> (tempfile::TempDir, String, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = Store::file_url(dir.path()).unwrap();
    let store = Store::open(&url).unwrap();
    (dir, url, store)
}

impl Running {
    /// Serves a coordinator with `config` on a free loopback port.
    pub async fn start(config: Config) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, config, async {
            let _ = rx.await;
        }));
        Running {
            addr,
            stop: Some(tx),
            task,
        }
    }

    /// Stops it and waits (bounded) for `serve` to return cleanly.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("serve returns soon after shutdown")
            .unwrap()
            .unwrap();
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client of the Sweeps service.
    pub async fn sweeps(&self) -> SweepsClient<Channel> {
        SweepsClient::connect(self.url()).await.unwrap()
    }

    /// A client of the Work service.
    pub async fn work(&self) -> WorkClient<Channel> {
        WorkClient::connect(self.url()).await.unwrap()
    }
}

/// A spec over fake data keys.
pub fn spec(l: &[u32], kl: &[f64], epochs: u32) -> SweepSpec {
    SweepSpec {
        l: l.to_vec(),
        kl: kl.to_vec(),
        epochs: vec![epochs],
        data: Some(DataRef {
            covid_csv: "data/sha256-aa/covid.csv".into(),
            faces: "data/sha256-bb/faces.tar".into(),
        }),
        ..Default::default()
    }
}

/// Registers a fake worker; returns its id.
pub async fn register(work: &mut WorkClient<Channel>, name: &str, inference_addr: &str) -> String {
    work.register(RegisterParams {
        name: name.into(),
        device: "cpu".into(),
        slots: 1,
        inference_addr: inference_addr.into(),
    })
    .await
    .unwrap()
    .into_inner()
    .worker_id
}

/// Leases one trial (panics when none is queued).
pub async fn lease(work: &mut WorkClient<Channel>, worker_id: &str) -> Assignment {
    work.lease(LeaseParams {
        worker_id: worker_id.into(),
        wait_ms: 0,
    })
    .await
    .unwrap()
    .into_inner()
    .assignment
    .expect("a queued trial")
}

/// Epochs of an assignment's trial.
pub fn epochs(a: &Assignment) -> u32 {
    serde_json::from_str::<TrialConfig>(&a.config_json)
        .unwrap()
        .epochs() as u32
}

/// The key a worker checkpoints epoch `epoch` of `a` under.
pub fn ckpt_key(a: &Assignment, epoch: u32) -> String {
    format!(
        "trials/{}/ckpt/{}/epoch-{epoch}.safetensors",
        a.trial_id, a.lease_id
    )
}

/// The progress report of one epoch of `a`, with its checkpoint.
pub fn progress(a: &Assignment, epoch: u32) -> ProgressParams {
    ProgressParams {
        lease_id: a.lease_id.clone(),
        trial_id: a.trial_id.clone(),
        epoch,
        metrics_json: format!(r#"{{"epoch":{epoch},"test_acc":0.5}}"#),
        resumed_from_epoch: 0,
        checkpoint_key: ckpt_key(a, epoch),
        earlier: Vec::new(),
    }
}

/// Stages final artifacts for `a` as a worker would: the model (with `weights` as its
/// bytes) and one picture.
pub async fn stage(store: &Store, a: &Assignment, weights: &[u8]) -> String {
    let prefix = format!("trials/{}/staging/{}/", a.trial_id, a.lease_id);
    store
        .put(&format!("{prefix}model.safetensors"), weights.to_vec())
        .await
        .unwrap();
    store
        .put(&format!("{prefix}learning_curves.png"), b"png".to_vec())
        .await
        .unwrap();
    prefix
}

/// The Complete call of `a` with `summary`, after staging.
pub async fn complete_params(
    store: &Store,
    a: &Assignment,
    summary: &str,
    weights: &[u8],
) -> CompleteParams {
    CompleteParams {
        lease_id: a.lease_id.clone(),
        trial_id: a.trial_id.clone(),
        summary_json: summary.into(),
        staging_prefix: stage(store, a, weights).await,
        staged: Vec::new(),
    }
}

/// Runs a leased trial to success: every epoch reported, artifacts staged, completed.
pub async fn finish(work: &mut WorkClient<Channel>, store: &Store, a: &Assignment, summary: &str) {
    for e in 1..=epochs(a) {
        work.report_progress(progress(a, e)).await.unwrap();
    }
    let p = complete_params(store, a, summary, b"weights").await;
    work.complete(p).await.unwrap();
}

/// The status of one trial of a sweep.
pub async fn trial_status(
    sweeps: &mut SweepsClient<Channel>,
    sweep: &str,
    trial: &str,
) -> TrialStatus {
    let s = sweeps
        .get_sweep(wick_proto::v1::GetSweepParams {
            sweep_id: sweep.into(),
        })
        .await
        .unwrap()
        .into_inner();
    s.trials
        .into_iter()
        .find(|t| t.trial_id == trial)
        .expect("the trial is in the sweep")
}

/// Polls until `check` holds for the trial's status (up to 10 s).
pub async fn wait_for(
    sweeps: &mut SweepsClient<Channel>,
    sweep: &str,
    trial: &str,
    check: impl Fn(&TrialStatus) -> bool,
) -> TrialStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let t = trial_status(sweeps, sweep, trial).await;
        if check(&t) {
            return t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out; last status {t:?}"
        );
        tokio::time::sleep(BEAT / 2).await;
    }
}
