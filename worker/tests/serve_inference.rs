//! The worker's `Inference` service against models trained here and put in a memory
//! store the way the coordinator leaves a finished trial (model.safetensors, data.json and
//! the data): forecasts for one country or all, images from a VAE, and the errors a user
//! can act on (unknown country, wrong task, oversized requests, corrupt images).

use std::sync::Arc;

use candle_core::Device;
use tonic::{Code, Request};
use wick_common::store::{Store, keys};
use wick_proto::v1::inference_server::Inference;
use wick_proto::v1::{InterpolateParams, PredictParams, ReconstructParams, SampleParams};
use wick_worker::serve::data_cache::DataCache;
use wick_worker::serve::inference::InferenceService;

mod serve_support;

const COVID: &str = "t-covid";
const VAE: &str = "t-vae";

/// A service over a store holding one finished covid trial and one finished VAE trial.
async fn setup(tmp: &std::path::Path) -> InferenceService {
    let store = Store::open("memory://").unwrap();
    let csv_path = tmp.join("covid.csv");
    std::fs::write(&csv_path, serve_support::covid_csv()).unwrap();
    let csv_key = "data/sha256-c0/covid.csv";
    store
        .put(csv_key, serve_support::covid_csv())
        .await
        .unwrap();
    store
        .put(
            &keys::trial_model(COVID),
            serve_support::covid_model(&csv_path, &serve_support::covid_cfg(3)),
        )
        .await
        .unwrap();
    let data = serde_json::json!({"covid_csv": csv_key, "faces": ""}).to_string();
    store
        .put(&format!("trials/{COVID}/data.json"), data)
        .await
        .unwrap();

    let faces = tmp.join("faces");
    serve_support::write_faces(&faces);
    store
        .put(
            &keys::trial_model(VAE),
            serve_support::vae_model(&faces, &serve_support::vae_cfg(2)),
        )
        .await
        .unwrap();
    let cache = Arc::new(DataCache::new(tmp.join("cache"), store.clone()));
    InferenceService::new(store, cache, Device::Cpu)
}

fn predict(trial: &str, country: &str, all: bool) -> Request<PredictParams> {
    Request::new(PredictParams {
        trial_id: trial.into(),
        country: country.into(),
        all,
    })
}

#[tokio::test]
async fn predict_answers_by_code_name_or_all_and_names_unknown_countries() {
    let tmp = tempfile::tempdir().unwrap();
    let svc = setup(tmp.path()).await;

    let all = svc
        .predict(predict(COVID, "", true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.trial_id, COVID);
    assert_eq!(all.forecasts.len(), 6);
    assert_eq!(all.last_date, "2020-03-21");
    for f in &all.forecasts {
        assert!((0.0..=1.0).contains(&f.probability), "{f:?}");
        assert_eq!(f.increase, f.probability > 0.5);
    }

    let fr = svc
        .predict(predict(COVID, "FR", false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fr.forecasts.len(), 1);
    assert_eq!(
        (
            fr.forecasts[0].country.as_str(),
            fr.forecasts[0].iso2.as_str()
        ),
        ("France", "FR")
    );
    let by_name = svc
        .predict(predict(COVID, "france", false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        by_name.forecasts, fr.forecasts,
        "the cached model answers the same"
    );
    let same = all
        .forecasts
        .iter()
        .find(|f| f.country == "France")
        .unwrap();
    assert_eq!(same, &fr.forecasts[0]);

    let e = svc
        .predict(predict(COVID, "Frnace", false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(
        e.message().contains("did you mean") && e.message().contains("France (FR)"),
        "{}",
        e.message()
    );
    let e = svc.predict(predict(COVID, " ", false)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = svc.predict(predict("", "FR", false)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = svc
        .predict(predict("t-nope", "FR", false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(e.message().contains("t-nope"), "{}", e.message());
}

#[tokio::test]
async fn vae_calls_return_pngs_and_refuse_bad_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let svc = setup(tmp.path()).await;

    let s = svc
        .sample(Request::new(SampleParams {
            trial_id: VAE.into(),
            n: 10,
            seed: 1,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.images_png.len(), 10);
    let one = image::load_from_memory(&s.images_png[0]).unwrap();
    assert_eq!((one.width(), one.height()), (8, 8));
    let grid = image::load_from_memory(&s.grid_png).unwrap();
    assert!(
        grid.width() > 8 * 8 && grid.height() > 2 * 8,
        "8 per row, 2 rows: {}x{}",
        grid.width(),
        grid.height()
    );
    let again = svc
        .sample(Request::new(SampleParams {
            trial_id: VAE.into(),
            n: 10,
            seed: 1,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.images_png, s.images_png, "same seed, same samples");

    let e = svc
        .sample(Request::new(SampleParams {
            trial_id: VAE.into(),
            n: 257,
            seed: 0,
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("256"), "{}", e.message());

    let faces: Vec<Vec<u8>> = (0..3).map(|i| serve_support::png(i, 20, 16)).collect();
    let r = svc
        .reconstruct(Request::new(ReconstructParams {
            trial_id: VAE.into(),
            images: faces.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.images_png.len(), 3);
    let bad = vec![faces[0].clone(), b"GIF89a not really".to_vec()];
    let e = svc
        .reconstruct(Request::new(ReconstructParams {
            trial_id: VAE.into(),
            images: bad,
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("image 2 of 2"), "{}", e.message());

    let interp = |steps| {
        Request::new(InterpolateParams {
            trial_id: VAE.into(),
            a: faces[0].clone(),
            b: faces[1].clone(),
            steps,
        })
    };
    // The coursework's strip in one row: original | reconstruction | 5 steps |
    // reconstruction | original, each tile also sent on its own.
    let strip = svc.interpolate(interp(5)).await.unwrap().into_inner();
    assert_eq!(strip.images_png.len(), 5 + 4);
    let grid = image::load_from_memory(&strip.grid_png).unwrap();
    // 8 px tiles at scale 3 with 2 px gaps.
    assert_eq!(
        (grid.width(), grid.height()),
        (2 + 9 * (24 + 2), 2 + 24 + 2)
    );
    let tile = |i: usize| {
        image::load_from_memory(&strip.images_png[i])
            .unwrap()
            .to_rgb8()
    };
    let original = |i: usize| {
        let px = wick_worker::vae::images::decode(&faces[i], 8).unwrap();
        wick_viz::chw_to_rgb(&px, 8).unwrap()
    };
    assert_eq!(tile(0), original(0), "the strip starts with image a");
    assert_eq!(tile(8), original(1), "and ends with image b");
    assert_ne!(tile(1), original(0), "a's reconstruction follows it");
    for steps in [1, 65] {
        let e = svc.interpolate(interp(steps)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("between 2 and 64"), "{}", e.message());
    }
}

#[tokio::test]
async fn the_wrong_task_is_a_failed_precondition() {
    let tmp = tempfile::tempdir().unwrap();
    let svc = setup(tmp.path()).await;
    let e = svc.predict(predict(VAE, "FR", false)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("VAE trial") && e.message().contains("covid"),
        "{}",
        e.message()
    );
    let e = svc
        .sample(Request::new(SampleParams {
            trial_id: COVID.into(),
            n: 4,
            seed: 0,
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("covid trial"), "{}", e.message());
}
