//! The worker-facing `Work` service: registration, leases, heartbeats, progress,
//! completion and failure. Each method is a thin layer over `Coordinator`.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use wick_proto::v1::work_server::Work;
use wick_proto::v1::{
    CompleteParams, CompleteResult, FailParams, FailResult, HeartbeatParams, HeartbeatResult,
    LeaseParams, LeaseResult, ProgressParams, ProgressResult, RegisterParams, RegisterResult,
};

use crate::coordinator::Coordinator;

/// The `Work` server.
pub struct WorkService {
    /// Shared coordinator.
    pub core: Arc<Coordinator>,
}

#[tonic::async_trait]
impl Work for WorkService {
    async fn register(
        &self,
        req: Request<RegisterParams>,
    ) -> Result<Response<RegisterResult>, Status> {
        Ok(Response::new(self.core.register(&req.into_inner()).await))
    }

    async fn lease(&self, req: Request<LeaseParams>) -> Result<Response<LeaseResult>, Status> {
        let p = req.into_inner();
        let wait = std::time::Duration::from_millis(p.wait_ms);
        Ok(Response::new(self.core.lease(&p.worker_id, wait).await?))
    }

    async fn heartbeat(
        &self,
        req: Request<HeartbeatParams>,
    ) -> Result<Response<HeartbeatResult>, Status> {
        let p = req.into_inner();
        let revoked = self.core.heartbeat(&p.worker_id, &p.lease_ids).await;
        Ok(Response::new(HeartbeatResult { revoked }))
    }

    async fn report_progress(
        &self,
        req: Request<ProgressParams>,
    ) -> Result<Response<ProgressResult>, Status> {
        let stopped = self.core.progress(&req.into_inner()).await?;
        Ok(Response::new(ProgressResult {
            stop: stopped.is_some(),
            reason: stopped.unwrap_or_default(),
        }))
    }

    async fn complete(
        &self,
        req: Request<CompleteParams>,
    ) -> Result<Response<CompleteResult>, Status> {
        self.core.complete(&req.into_inner()).await?;
        Ok(Response::new(CompleteResult {}))
    }

    async fn fail(&self, req: Request<FailParams>) -> Result<Response<FailResult>, Status> {
        self.core.fail(&req.into_inner()).await?;
        Ok(Response::new(FailResult {}))
    }
}
