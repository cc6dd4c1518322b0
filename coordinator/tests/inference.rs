//! Inference calls routed to workers (skipping a dead one), trial resolution, the gRPC
//! health service, and artifact listing and download.

mod common;

use common::*;
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use wick_proto::v1::inference_server::{Inference, InferenceServer};
use wick_proto::v1::{
    CountryForecast, GetArtifactParams, ImagesResult, InterpolateParams, ListArtifactsParams,
    PredictParams, PredictResult, ReconstructParams, SampleParams, SubmitSweepParams,
};

/// A worker's inference service that echoes which trial it was asked for.
struct FakeInference;

#[tonic::async_trait]
impl Inference for FakeInference {
    async fn predict(
        &self,
        req: Request<PredictParams>,
    ) -> Result<Response<PredictResult>, Status> {
        let p = req.into_inner();
        if p.country == "Atlantis" {
            return Err(Status::not_found("unknown country 'Atlantis'"));
        }
        let forecast = CountryForecast {
            country: p.country.clone(),
            iso2: "TW".into(),
            probability: 0.7,
            increase: true,
        };
        Ok(Response::new(PredictResult {
            trial_id: p.trial_id,
            forecasts: vec![forecast],
            last_date: "2020-12-31".into(),
        }))
    }
    async fn sample(&self, req: Request<SampleParams>) -> Result<Response<ImagesResult>, Status> {
        let p = req.into_inner();
        Ok(Response::new(ImagesResult {
            trial_id: p.trial_id,
            grid_png: vec![1, 2, 3],
            images_png: vec![vec![0]; p.n as usize],
        }))
    }
    async fn reconstruct(
        &self,
        req: Request<ReconstructParams>,
    ) -> Result<Response<ImagesResult>, Status> {
        Ok(Response::new(ImagesResult {
            trial_id: req.into_inner().trial_id,
            ..Default::default()
        }))
    }
    async fn interpolate(
        &self,
        req: Request<InterpolateParams>,
    ) -> Result<Response<ImagesResult>, Status> {
        Ok(Response::new(ImagesResult {
            trial_id: req.into_inner().trial_id,
            ..Default::default()
        }))
    }
}

/// Serves the fake inference on a free port; returns its address.
async fn start_inference() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(InferenceServer::new(FakeInference))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    addr
}

/// An address nothing listens on.
async fn dead_address() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inference_goes_to_a_live_worker_for_the_right_trial() {
    let (_dir, url, store) = temp_store();
    let server = Running::start(config(&url)).await;
    let (mut sweeps, mut work) = (server.sweeps().await, server.work().await);

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "wick.v1.Sweeps", "wick.v1.Work"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status(), ServingStatus::Serving, "{service}");
    }

    // Before any trial has succeeded: no best trial.
    let e = sweeps
        .predict(PredictParams {
            country: "TW".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    let sub = sweeps
        .submit_sweep(SubmitSweepParams {
            spec: Some(spec(&[12], &[1.0, 100.0], 1)),
        })
        .await
        .unwrap()
        .into_inner();
    let w = register(&mut work, "trainer", "").await;
    let covid = lease(&mut work, &w).await;
    finish(&mut work, &store, &covid, r#"{"best_test_acc":0.8}"#).await;
    let vae1 = lease(&mut work, &w).await;
    finish(&mut work, &store, &vae1, r#"{"final_neg_elbo":300.0}"#).await;
    let vae100 = lease(&mut work, &w).await;
    assert_eq!(
        sub.trial_ids,
        [
            covid.trial_id.clone(),
            vae1.trial_id.clone(),
            vae100.trial_id.clone()
        ]
    );

    // No worker serves inference yet.
    let e = sweeps
        .sample(SampleParams {
            n: 4,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert!(e.message().contains("--listen"), "{e:?}");

    // A dead worker first, then a live one: the call lands on the live one.
    register(&mut work, "dead", &dead_address().await).await;
    register(&mut work, "live", &start_inference().await).await;
    let r = sweeps
        .predict(PredictParams {
            country: "TW".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.trial_id.as_str(), r.forecasts.len()),
        (covid.trial_id.as_str(), 1)
    );
    let r = sweeps
        .sample(SampleParams {
            n: 4,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.trial_id.as_str(), r.images_png.len()),
        (vae1.trial_id.as_str(), 4)
    );
    let r = sweeps
        .interpolate(InterpolateParams {
            trial_id: vae1.trial_id[..10].into(),
            steps: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.trial_id, vae1.trial_id, "a trial id prefix is resolved");
    // The worker's own errors come back as they are.
    let e = sweeps
        .predict(PredictParams {
            country: "Atlantis".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Wrong task, unfinished trial.
    let e = sweeps
        .predict(PredictParams {
            trial_id: vae1.trial_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::FailedPrecondition && e.message().contains("vae trial"),
        "{e:?}"
    );
    let e = sweeps
        .reconstruct(ReconstructParams {
            trial_id: covid.trial_id.clone(),
            images: vec![],
        })
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::FailedPrecondition && e.message().contains("covid trial"),
        "{e:?}"
    );
    let e = sweeps
        .sample(SampleParams {
            trial_id: vae100.trial_id.clone(),
            n: 1,
            seed: 0,
        })
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::FailedPrecondition && e.message().contains("running"),
        "{e:?}"
    );

    // Artifacts of the covid trial, from the store.
    let list = sweeps
        .list_artifacts(ListArtifactsParams {
            trial_id: covid.trial_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = list.artifacts.iter().map(|a| a.name.as_str()).collect();
    for name in [
        "model.safetensors",
        "plots/learning_curves.png",
        "summary.json",
        "metrics.jsonl",
        "config.json",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let get = |name: &str| GetArtifactParams {
        trial_id: covid.trial_id.clone(),
        name: name.into(),
    };
    let bytes = sweeps
        .get_artifact(get("model.safetensors"))
        .await
        .unwrap()
        .into_inner()
        .data;
    assert_eq!(bytes, b"weights");
    assert_eq!(
        sweeps
            .get_artifact(get("plots/nope.png"))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        sweeps
            .get_artifact(get("../../etc/passwd"))
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    server.stop().await;
}
