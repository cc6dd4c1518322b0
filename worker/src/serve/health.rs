//! The worker's gRPC health, for Kubernetes probes. Service `liveness` answers SERVING
//! while the process runs; the overall status (service "") and the `Inference` service
//! are SERVING only while both the coordinator (its own health check) and the store
//! (a metadata lookup) answered the latest probe, so a worker cut off from either is
//! shown not ready instead of silently idle.

use std::time::Duration;

use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::server::HealthReporter;
use wick_common::store::Store;
use wick_proto::v1::inference_server::InferenceServer;
use wick_service::auth::AuthChannel;

use crate::serve::inference::InferenceService;
use crate::serve::metrics::WorkerMetrics;
use crate::serve::shutdown::Shutdown;

/// Time between two probes.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// How long one probe may take before the dependency counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The service name of the liveness check.
pub const LIVENESS: &str = "liveness";
/// The `Inference` service's name in health checks.
const INFERENCE: &str = <InferenceServer<InferenceService> as NamedService>::NAME;

/// Whether the coordinator's health service answers SERVING.
async fn coordinator_up(channel: &AuthChannel) -> bool {
    let mut client = HealthClient::new(channel.clone());
    let check = client.check(HealthCheckRequest {
        service: String::new(),
    });
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, check).await,
        Ok(Ok(r)) if r.get_ref().status == ServingStatus::Serving as i32
    )
}

/// Whether the store answers a lookup (a missing key is an answer).
async fn store_up(store: &Store) -> bool {
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, store.exists("health-probe")).await,
        Ok(Ok(_))
    )
}

/// Probes both dependencies every [`PROBE_INTERVAL`] until `stop`, publishing the result
/// to `reporter` and `metrics`; status changes are logged once.
pub async fn watch(
    reporter: HealthReporter,
    coordinator: AuthChannel,
    store: Store,
    metrics: std::sync::Arc<WorkerMetrics>,
    stop: Shutdown,
) {
    reporter
        .set_service_status(LIVENESS, ServingStatus::Serving)
        .await;
    let mut last = None;
    loop {
        let (coord, st) = tokio::join!(coordinator_up(&coordinator), store_up(&store));
        metrics.set_up("coordinator", coord);
        metrics.set_up("store", st);
        let ready = coord && st;
        if last != Some(ready) {
            if ready {
                tracing::info!("ready: the coordinator and the store answer");
            } else {
                let down: Vec<&str> = [("the coordinator", coord), ("the store", st)]
                    .into_iter()
                    .filter(|(_, up)| !up)
                    .map(|(name, _)| name)
                    .collect();
                tracing::warn!("not ready: {} not answering", down.join(" and "));
            }
            last = Some(ready);
        }
        let status = if ready {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        reporter.set_service_status("", status).await;
        reporter.set_service_status(INFERENCE, status).await;
        tokio::select! {
            _ = tokio::time::sleep(PROBE_INTERVAL) => {}
            _ = stop.wait() => return,
        }
    }
}
