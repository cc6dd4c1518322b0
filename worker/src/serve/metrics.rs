//! The worker's Prometheus metrics (prefix `wick_worker_`): leases taken, trials running,
//! epochs trained and their durations, inference calls and their latency, whether the
//! coordinator and the store answer, and the store's failure counts (read at scrape time).

use wick_common::store::Store;
use wick_service::metrics::{
    Counter, CountersFn, EncodeLabelSet, EpochMetrics, Family, Gauge, InferenceMetrics, Registry,
    encode,
};

/// Something the worker depends on.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DependencyLabel {
    /// `coordinator` or `store`.
    pub dependency: String,
}

/// Every metric the worker exports; handles are cheap clones of shared counters.
pub struct WorkerMetrics {
    registry: Registry,
    /// Leases taken from the coordinator.
    pub leases: Counter,
    /// Trials running now.
    pub running: Gauge,
    /// Epochs trained and their durations.
    pub epochs: EpochMetrics,
    /// Inference calls served.
    pub inference: InferenceMetrics,
    /// 1 while the dependency answered the latest health probe, else 0.
    up: Family<DependencyLabel, Gauge>,
}

impl WorkerMetrics {
    /// Registers every metric; the store's failure counts are read from `store`.
    pub fn new(store: &Store) -> WorkerMetrics {
        let mut registry = Registry::with_prefix("wick_worker");
        let r = &mut registry;
        let leases = Counter::default();
        r.register(
            "leases",
            "Leases taken from the coordinator",
            leases.clone(),
        );
        let running = Gauge::default();
        r.register(
            "trials_running",
            "Trials this worker is running",
            running.clone(),
        );
        let epochs = EpochMetrics::default();
        epochs.register(r);
        let inference = InferenceMetrics::default();
        inference.register(r, "served by this worker");
        let up = Family::<DependencyLabel, Gauge>::default();
        r.register(
            "dependency_up",
            "1 while the coordinator or the store answered the latest health probe",
            up.clone(),
        );
        let counted = store.clone();
        CountersFn::register(
            r,
            "store_errors",
            "Failed object store operations",
            "op",
            move || counted.error_counts(),
        );
        WorkerMetrics {
            registry,
            leases,
            running,
            epochs,
            inference,
            up,
        }
    }

    /// Records whether `dependency` answered.
    pub fn set_up(&self, dependency: &str, up: bool) {
        self.up
            .get_or_create(&DependencyLabel {
                dependency: dependency.into(),
            })
            .set(up as i64);
    }

    /// The page for one scrape.
    pub fn render(&self) -> String {
        encode(&self.registry)
    }
}
