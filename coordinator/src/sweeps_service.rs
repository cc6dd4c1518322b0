//! The client-facing `Sweeps` service: sweeps, the best trial, artifacts, and inference
//! routed to workers. Each method is a thin layer over `Coordinator`.

use std::sync::Arc;

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use wick_proto::v1::sweeps_server::Sweeps;
use wick_proto::v1::{
    ArtifactInfo, BestTrialParams, CancelSweepParams, CancelSweepResult, DataStatusParams,
    DataStatusResult, GetArtifactParams, GetArtifactResult, GetSweepParams, ImagesResult,
    InterpolateParams, ListArtifactsParams, ListArtifactsResult, ListSweepsParams,
    ListSweepsResult, PredictParams, PredictResult, ReconstructParams, SampleParams,
    SubmitSweepParams, SubmitSweepResult, SweepEvent, SweepStatus, TrialStatus, UploadDataChunk,
    UploadDataResult, WatchSweepParams,
};

use crate::coordinator::Coordinator;
use crate::events;
use crate::upload::{self, Target, Uploads};

/// Largest artifact GetArtifact returns (clients raise their decoding limit to match).
pub const MAX_ARTIFACT: u64 = 64 * 1024 * 1024;

/// The `Sweeps` server.
pub struct SweepsService {
    /// Shared coordinator.
    pub core: Arc<Coordinator>,
    /// Data uploads under way.
    uploads: Arc<Uploads>,
}

impl SweepsService {
    /// The server of `core`.
    pub fn new(core: Arc<Coordinator>) -> SweepsService {
        let m = &core.metrics;
        let uploads = Uploads::counting(m.upload_bytes.clone(), m.uploads_completed.clone());
        SweepsService {
            uploads: Arc::new(uploads),
            core,
        }
    }

    /// Resolves the trial of an inference call (given, or the best of `task`).
    async fn trial(&self, trial_id: &str, task: &str, rpc: &str) -> Result<String, Status> {
        Ok(self.core.inference_trial(trial_id, task, rpc).await?)
    }
}

#[tonic::async_trait]
impl Sweeps for SweepsService {
    async fn submit_sweep(
        &self,
        req: Request<SubmitSweepParams>,
    ) -> Result<Response<SubmitSweepResult>, Status> {
        let spec = req
            .into_inner()
            .spec
            .ok_or_else(|| Status::invalid_argument("SubmitSweep needs a spec"))?;
        Ok(Response::new(self.core.submit(spec).await?))
    }

    async fn list_sweeps(
        &self,
        _req: Request<ListSweepsParams>,
    ) -> Result<Response<ListSweepsResult>, Status> {
        Ok(Response::new(ListSweepsResult {
            sweeps: self.core.list().await,
        }))
    }

    async fn get_sweep(
        &self,
        req: Request<GetSweepParams>,
    ) -> Result<Response<SweepStatus>, Status> {
        Ok(Response::new(
            self.core.get(&req.into_inner().sweep_id).await?,
        ))
    }

    type WatchSweepStream = ReceiverStream<Result<SweepEvent, Status>>;

    async fn watch_sweep(
        &self,
        req: Request<WatchSweepParams>,
    ) -> Result<Response<Self::WatchSweepStream>, Status> {
        let stream = events::watch_sweep(self.core.clone(), &req.into_inner().sweep_id).await?;
        Ok(Response::new(stream))
    }

    async fn cancel_sweep(
        &self,
        req: Request<CancelSweepParams>,
    ) -> Result<Response<CancelSweepResult>, Status> {
        let cancelled = self.core.cancel(&req.into_inner().sweep_id).await?;
        Ok(Response::new(CancelSweepResult { cancelled }))
    }

    async fn best_trial(
        &self,
        req: Request<BestTrialParams>,
    ) -> Result<Response<TrialStatus>, Status> {
        let p = req.into_inner();
        Ok(Response::new(
            self.core.best(&p.sweep_id, &p.task, p.kl_weight).await?,
        ))
    }

    async fn predict(
        &self,
        req: Request<PredictParams>,
    ) -> Result<Response<PredictResult>, Status> {
        let mut p = req.into_inner();
        p.trial_id = self.trial(&p.trial_id, "covid", "Predict").await?;
        let addrs = self.core.inference_addrs().await;
        self.core
            .router
            .call("predict", addrs, |mut c| {
                let p = p.clone();
                async move { c.predict(p).await }
            })
            .await
    }

    async fn sample(&self, req: Request<SampleParams>) -> Result<Response<ImagesResult>, Status> {
        let mut p = req.into_inner();
        p.trial_id = self.trial(&p.trial_id, "vae", "Sample").await?;
        let addrs = self.core.inference_addrs().await;
        self.core
            .router
            .call("sample", addrs, |mut c| {
                let p = p.clone();
                async move { c.sample(p).await }
            })
            .await
    }

    async fn reconstruct(
        &self,
        req: Request<ReconstructParams>,
    ) -> Result<Response<ImagesResult>, Status> {
        let mut p = req.into_inner();
        p.trial_id = self.trial(&p.trial_id, "vae", "Reconstruct").await?;
        let addrs = self.core.inference_addrs().await;
        self.core
            .router
            .call("reconstruct", addrs, |mut c| {
                let p = p.clone();
                async move { c.reconstruct(p).await }
            })
            .await
    }

    async fn interpolate(
        &self,
        req: Request<InterpolateParams>,
    ) -> Result<Response<ImagesResult>, Status> {
        let mut p = req.into_inner();
        p.trial_id = self.trial(&p.trial_id, "vae", "Interpolate").await?;
        let addrs = self.core.inference_addrs().await;
        self.core
            .router
            .call("interpolate", addrs, |mut c| {
                let p = p.clone();
                async move { c.interpolate(p).await }
            })
            .await
    }

    async fn list_artifacts(
        &self,
        req: Request<ListArtifactsParams>,
    ) -> Result<Response<ListArtifactsResult>, Status> {
        let artifacts = self
            .core
            .list_artifacts(&req.into_inner().trial_id)
            .await?
            .into_iter()
            .map(|(name, size)| ArtifactInfo { name, size })
            .collect();
        Ok(Response::new(ListArtifactsResult { artifacts }))
    }

    async fn get_artifact(
        &self,
        req: Request<GetArtifactParams>,
    ) -> Result<Response<GetArtifactResult>, Status> {
        let p = req.into_inner();
        let data = self
            .core
            .get_artifact(&p.trial_id, &p.name, MAX_ARTIFACT)
            .await?;
        Ok(Response::new(GetArtifactResult {
            data: data.to_vec(),
        }))
    }

    async fn upload_data(
        &self,
        req: Request<Streaming<UploadDataChunk>>,
    ) -> Result<Response<UploadDataResult>, Status> {
        let (uploads, store, max) = (
            self.uploads.clone(),
            self.core.store.clone(),
            self.core.config.max_upload,
        );
        let stream = req.into_inner();
        // Its own task, so that what a client sent reaches the store even if the server
        // drops this handler (the next call resumes after those bytes).
        tokio::spawn(async move { uploads.receive(&store, max, stream).await })
            .await
            .map_err(|e| Status::internal(format!("the upload stopped: {e}")))?
            .map(Response::new)
    }

    async fn data_status(
        &self,
        req: Request<DataStatusParams>,
    ) -> Result<Response<DataStatusResult>, Status> {
        let p = req.into_inner();
        let t = Target::new(&p.name, &p.sha256, p.size, self.core.config.max_upload)?;
        Ok(Response::new(upload::status(&self.core.store, &t).await?))
    }
}
