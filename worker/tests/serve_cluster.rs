//! Two `serve::run` workers and a real in-process coordinator over one `file://` store:
//! a small mixed sweep (two covid window lengths, two KL weights) completes, every trial's
//! final model and plots are promoted in the store with no staging left behind, and
//! predict / sample routed through the coordinator are answered by a worker.

use std::time::Duration;

use tokio::sync::oneshot;
use wick_common::store::{Store, keys};
use wick_proto::v1::sweeps_client::SweepsClient;
use wick_proto::v1::{
    DataRef, GetSweepParams, PredictParams, SampleParams, SubmitSweepParams, SweepSpec,
};
use wick_worker::serve::{self, ServeConfig};

mod serve_support;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mixed_sweep_completes_on_two_workers_and_answers_inference() {
    let (store_dir, cache_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = Store::file_url(store_dir.path()).unwrap();
    let store = Store::open(&url).unwrap();
    store
        .put("data/sha256-aa/covid.csv", serve_support::covid_csv())
        .await
        .unwrap();
    store
        .put("data/sha256-bb/faces.tar", serve_support::faces_tar())
        .await
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let coordinator = format!("http://{}", listener.local_addr().unwrap());
    let config = wick_coordinator::Config {
        store_url: url.clone(),
        lease_ttl: Duration::from_secs(3),
        heartbeat: Duration::from_millis(200),
        max_attempts: 3,
        ..Default::default()
    };
    let (stop_coordinator, rx) = oneshot::channel::<()>();
    let coordinator_task = tokio::spawn(wick_coordinator::serve(listener, config, async move {
        let _ = rx.await;
    }));

    let mut workers = Vec::new();
    for name in ["w1", "w2"] {
        let mut c = ServeConfig::new(&coordinator, &url);
        c.name = name.into();
        c.device = "cpu".into();
        c.cache = cache_dir.path().join(name);
        c.poll_interval = Duration::from_millis(50);
        let (tx, rx) = oneshot::channel::<()>();
        workers.push((
            tx,
            tokio::spawn(serve::run(c, async move {
                let _ = rx.await;
            })),
        ));
    }

    let mut client = SweepsClient::connect(coordinator.clone()).await.unwrap();
    let spec = SweepSpec {
        tasks: vec!["covid".into(), "vae".into()],
        l: vec![5, 8],
        kl: vec![1.0, 100.0],
        size: vec![8],
        epochs: vec![2],
        data: Some(DataRef {
            covid_csv: "data/sha256-aa/covid.csv".into(),
            faces: "data/sha256-bb/faces.tar".into(),
        }),
        ..Default::default()
    };
    let sweep = client
        .submit_sweep(SubmitSweepParams { spec: Some(spec) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sweep.trial_ids.len(), 4);

    let mut status = None;
    for _ in 0..600 {
        let s = client
            .get_sweep(GetSweepParams {
                sweep_id: sweep.sweep_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if s.trials
            .iter()
            .all(|t| ["succeeded", "failed", "cancelled"].contains(&t.state.as_str()))
        {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = status.expect("the sweep finishes within two minutes");
    for t in &status.trials {
        assert_eq!(t.state, "succeeded", "{t:?}");
        assert!(
            store.exists(&keys::trial_model(&t.trial_id)).await.unwrap(),
            "{}",
            t.trial_id
        );
        let plot = if t.task == "covid" {
            "forecast.json"
        } else {
            "samples.png"
        };
        assert!(
            store
                .exists(&keys::trial_artifact(&t.trial_id, plot))
                .await
                .unwrap(),
            "{} {plot}",
            t.trial_id
        );
        // Status shows a trial succeeded once it is recorded; the staging clean-up
        // settles right after (Complete answers once it has).
        let mut staging = Vec::new();
        for _ in 0..100 {
            staging = store
                .list(&format!("trials/{}/staging/", t.trial_id))
                .await
                .unwrap();
            if staging.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(staging.is_empty(), "staging cleared: {staging:?}");
    }

    let p = client
        .predict(PredictParams {
            trial_id: String::new(),
            country: "FR".into(),
            all: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.forecasts.len(), 1);
    assert_eq!(p.forecasts[0].iso2, "FR");
    let s = client
        .sample(SampleParams {
            trial_id: String::new(),
            n: 4,
            seed: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.images_png.len(), 4);

    for (tx, task) in workers {
        let _ = tx.send(());
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
    let _ = stop_coordinator.send(());
    coordinator_task.await.unwrap().unwrap();
}
