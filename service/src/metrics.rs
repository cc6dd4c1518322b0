//! The Prometheus endpoint: `GET /metrics` over plain HTTP on its own port
//! (`--metrics-listen`), in the OpenMetrics text format. Each process builds its own
//! [`Registry`] of counters and histograms it updates as it works; values that are a
//! reading of current state (trials by state, store errors kept by the store) are
//! filled in at scrape time by the `render` function the process passes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use futures::future::BoxFuture;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use tokio::net::TcpListener;

pub use prometheus_client::encoding::EncodeLabelSet;
pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::family::Family;
pub use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::registry::Registry;

/// The content type of the OpenMetrics text format Prometheus scrapes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Produces the page for one scrape.
pub type Render = Arc<dyn Fn() -> BoxFuture<'static, String> + Send + Sync>;

/// The registry as OpenMetrics text.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    prometheus_client::encoding::text::encode(&mut out, registry).expect("encode metrics");
    out
}

/// A histogram of durations in seconds, from 0.5 ms to about 30 minutes: one family serves
/// a 1 ms inference call and a minute-long VAE epoch.
pub fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.5, 17))
}

/// A histogram family labelled by `L`, with [`seconds_histogram`] buckets.
pub type SecondsFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// An empty [`SecondsFamily`].
pub fn seconds_family<L: Clone + std::hash::Hash + Eq>() -> SecondsFamily<L> {
    Family::new_with_constructor(seconds_histogram)
}

/// A task.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabel {
    /// `covid` or `vae`.
    pub task: String,
}

/// An inference method and how the call ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabel {
    /// `predict`, `sample`, `reconstruct` or `interpolate`.
    pub method: String,
    /// The gRPC status code, e.g. `Ok`, `InvalidArgument`, `Unavailable`.
    pub code: String,
}

/// An inference method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    /// `predict`, `sample`, `reconstruct` or `interpolate`.
    pub method: String,
}

/// Inference calls by method and outcome, and their latency by method.
#[derive(Clone)]
pub struct InferenceMetrics {
    requests: Family<CallLabel, Counter>,
    seconds: SecondsFamily<MethodLabel>,
}

impl Default for InferenceMetrics {
    fn default() -> Self {
        InferenceMetrics {
            requests: Family::default(),
            seconds: seconds_family(),
        }
    }
}

impl InferenceMetrics {
    /// Adds both families to `registry` (`inference_requests_total`,
    /// `inference_latency_seconds`).
    pub fn register(&self, registry: &mut Registry, whose: &str) {
        registry.register(
            "inference_requests",
            format!("Inference calls {whose}, by method and gRPC code"),
            self.requests.clone(),
        );
        registry.register(
            "inference_latency_seconds",
            format!("Latency of inference calls {whose}"),
            self.seconds.clone(),
        );
    }

    /// Records one call of `method` that ended with `code` after `took`.
    pub fn record(&self, method: &str, code: tonic::Code, took: Duration) {
        let call = CallLabel {
            method: method.into(),
            code: format!("{code:?}"),
        };
        self.requests.get_or_create(&call).inc();
        let method = MethodLabel {
            method: method.into(),
        };
        self.seconds
            .get_or_create(&method)
            .observe(took.as_secs_f64());
    }
}

/// Training epochs completed, and how long they took, by task.
#[derive(Clone)]
pub struct EpochMetrics {
    epochs: Family<TaskLabel, Counter>,
    seconds: SecondsFamily<TaskLabel>,
}

impl Default for EpochMetrics {
    fn default() -> Self {
        EpochMetrics {
            epochs: Family::default(),
            seconds: seconds_family(),
        }
    }
}

impl EpochMetrics {
    /// Adds both families to `registry` (`epochs_completed_total`,
    /// `epoch_duration_seconds`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "epochs_completed",
            "Training epochs completed, by task",
            self.epochs.clone(),
        );
        registry.register(
            "epoch_duration_seconds",
            "Duration of training epochs, by task",
            self.seconds.clone(),
        );
    }

    /// Records an epoch of `task` that took `seconds` (when known).
    pub fn record(&self, task: &str, seconds: Option<f64>) {
        let label = TaskLabel { task: task.into() };
        self.epochs.get_or_create(&label).inc();
        if let Some(s) = seconds.filter(|s| s.is_finite() && *s >= 0.0) {
            self.seconds.get_or_create(&label).observe(s);
        }
    }
}

/// Parses `--metrics-listen`: `IP:PORT`, or `none` (or empty) for no endpoint.
pub fn parse_listen(text: &str) -> Result<Option<SocketAddr>> {
    match text.trim() {
        "" | "none" => Ok(None),
        addr => addr.parse().map(Some).with_context(|| {
            format!("--metrics-listen '{addr}' is not IP:PORT (e.g. 0.0.0.0:9090) or `none`")
        }),
    }
}

/// Binds the metrics listener, naming the flag when the address is taken.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} for metrics; pick another --metrics-listen address")
    })
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    render: Render,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let page = render();
            async move { ([(CONTENT_TYPE, OPENMETRICS)], page.await) }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("the metrics server failed")
}

/// A counter family whose values are read at scrape time from counts kept elsewhere
/// (e.g. by the object store), one label.
pub struct CountersFn {
    name: &'static str,
    help: &'static str,
    label: &'static str,
    read: Box<dyn Fn() -> Vec<(&'static str, u64)> + Send + Sync>,
}

impl CountersFn {
    /// Registers `read`'s counts as the counter family `name{label=...}` in `registry`.
    pub fn register(
        registry: &mut Registry,
        name: &'static str,
        help: &'static str,
        label: &'static str,
        read: impl Fn() -> Vec<(&'static str, u64)> + Send + Sync + 'static,
    ) {
        registry.register_collector(Box::new(CountersFn {
            name,
            help,
            label,
            read: Box::new(read),
        }));
    }
}

impl std::fmt::Debug for CountersFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CountersFn({})", self.name)
    }
}

impl Collector for CountersFn {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let mut family =
            encoder.encode_descriptor(self.name, self.help, None, MetricType::Counter)?;
        for (value, count) in (self.read)() {
            let labels = [(self.label, value)];
            ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct Method {
        method: String,
    }

    #[tokio::test]
    async fn the_endpoint_serves_the_registry_as_openmetrics() {
        let mut registry = Registry::with_prefix("wick");
        let calls = Counter::<u64>::default();
        registry.register("calls", "Calls served", calls.clone());
        let latency = seconds_family::<Method>();
        registry.register("latency_seconds", "Call latency", latency.clone());
        CountersFn::register(&mut registry, "store_errors", "Store errors", "op", || {
            vec![("put", 2), ("get", 0)]
        });
        calls.inc_by(3);
        latency
            .get_or_create(&Method {
                method: "predict".into(),
            })
            .observe(0.002);
        let registry = Arc::new(registry);
        let render: Render = Arc::new(move || {
            let r = registry.clone();
            Box::pin(async move { encode(&r) })
        });
        let listener = bind(parse_listen("127.0.0.1:0").unwrap().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, render, async {
            let _ = stopped.await;
        }));
        let page = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap();
        assert!(
            page.headers()[CONTENT_TYPE.as_str()]
                .to_str()
                .unwrap()
                .contains("openmetrics")
        );
        let text = page.text().await.unwrap();
        assert!(text.contains("wick_calls_total 3"), "{text}");
        assert!(
            text.contains("wick_latency_seconds_count{method=\"predict\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("wick_store_errors_total{op=\"put\"} 2"),
            "{text}"
        );
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[test]
    fn listen_flag_takes_an_address_or_none() {
        assert_eq!(parse_listen("none").unwrap(), None);
        assert!(parse_listen("0.0.0.0:9090").unwrap().is_some());
        let e = parse_listen("localhost").unwrap_err().to_string();
        assert!(e.contains("--metrics-listen"), "{e}");
    }
}
