//! Routing of inference calls to workers: each live worker that registered an inference
//! address is tried in turn, over a channel opened lazily and kept for later calls; a
//! worker that cannot be reached (UNAVAILABLE) is skipped for the next, while any other
//! answer (a result, or an error about the request itself) is returned as is.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::transport::Endpoint;
use tonic::{Code, Response, Status};
use wick_proto::v1::inference_client::InferenceClient;
use wick_service::auth::{AuthChannel, Token, with_token};
use wick_service::tls::Tls;

use crate::metrics::Metrics;

/// A client of one worker's inference service, carrying the cluster's token.
pub type WorkerClient = InferenceClient<AuthChannel>;

/// Largest message to or from a worker: image batches and all-country forecasts fit.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// How long to wait for a worker to accept a connection before trying the next.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one inference call may take (a cold model load included).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Cached clients by worker address.
pub struct Router {
    /// One lazily connected client per address; tonic reconnects it when needed.
    clients: Mutex<HashMap<String, WorkerClient>>,
    /// The token workers require.
    token: Option<Token>,
    /// How workers are dialled (TLS with the cluster's CA, or plain).
    tls: Tls,
    /// Where calls are counted and timed.
    metrics: Arc<Metrics>,
}

impl Router {
    /// A router whose calls carry `token` and are recorded in `metrics`.
    pub fn new(token: Option<Token>, tls: Tls, metrics: Arc<Metrics>) -> Router {
        Router {
            clients: Mutex::default(),
            token,
            tls,
            metrics,
        }
    }

    fn client(&self, addr: &str) -> Result<WorkerClient, Status> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(addr) {
            return Ok(c.clone());
        }
        let url = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("{}://{addr}", self.tls.scheme())
        };
        let endpoint = Endpoint::from_shared(url).map_err(|e| {
            Status::unavailable(format!(
                "worker inference address '{addr}' is not a URL: {e}"
            ))
        })?;
        let channel = self
            .tls
            .endpoint(endpoint)
            .map_err(|e| Status::unavailable(format!("worker {addr}: {e:#}")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .connect_lazy();
        let c = InferenceClient::new(with_token(channel, self.token.as_ref()))
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        clients.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// Calls `f` on the workers at `addrs` in turn until one answers, and records the
    /// call as `method` in the metrics.
    pub async fn call<T, F, Fut>(
        &self,
        method: &str,
        addrs: Vec<String>,
        f: F,
    ) -> Result<Response<T>, Status>
    where
        F: Fn(WorkerClient) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let start = Instant::now();
        let result = self.try_each(addrs, f).await;
        let code = result.as_ref().map_or_else(|e| e.code(), |_| Code::Ok);
        self.metrics.inference.record(method, code, start.elapsed());
        result
    }

    async fn try_each<T, F, Fut>(&self, addrs: Vec<String>, f: F) -> Result<Response<T>, Status>
    where
        F: Fn(WorkerClient) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        if addrs.is_empty() {
            return Err(Status::unavailable(
                "no live worker serves inference; start a worker with --listen",
            ));
        }
        let mut last = String::new();
        for addr in &addrs {
            let result = match self.client(addr) {
                Ok(c) => f(c).await,
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.code() == Code::Unavailable => {
                    tracing::warn!(worker = %addr, "inference call failed, trying the next worker: {}", e.message());
                    last = format!("{addr}: {}", e.message());
                }
                other => return other,
            }
        }
        Err(Status::unavailable(format!(
            "no live worker could serve inference ({} tried; last: {last}); check the workers' --listen addresses",
            addrs.len()
        )))
    }
}
