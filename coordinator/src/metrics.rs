//! The coordinator's Prometheus metrics (prefix `wick_coordinator_`). Counters and
//! histograms are updated where the events happen (a lease granted or expired, an epoch
//! recorded, an inference call routed); trials by state, live workers and store errors
//! are read from the state and the store at scrape time, so they can never drift from
//! what `client status` shows.

use wick_service::metrics::{
    Counter, CountersFn, EncodeLabelSet, EpochMetrics, Family, Gauge, InferenceMetrics, Registry,
    encode,
};

/// A trial state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
}

/// Every metric the coordinator exports; handles are cheap clones of shared counters.
pub struct Metrics {
    registry: Registry,
    /// Leases handed to workers.
    pub leases_granted: Counter,
    /// Leases taken back because their worker stopped heartbeating.
    pub leases_expired: Counter,
    /// Log segments written (one per group commit).
    pub wal_segments: Counter,
    /// Log entries written (state changes made durable).
    pub wal_entries: Counter,
    /// Epochs recorded from progress reports, with the durations the workers measured.
    pub epochs: EpochMetrics,
    /// Trials by state (set at scrape time).
    trials: Family<StateLabel, Gauge>,
    /// Workers that heartbeat (set at scrape time).
    workers: Gauge,
    /// Inference calls routed to workers.
    pub inference: InferenceMetrics,
    /// Data bytes received through UploadData and written to the store.
    pub upload_bytes: Counter,
    /// Data files made whole in the store by UploadData.
    pub uploads_completed: Counter,
}

impl Metrics {
    /// Registers every metric; `store_errors` reads the store's failure counts.
    pub fn new(
        store_errors: impl Fn() -> Vec<(&'static str, u64)> + Send + Sync + 'static,
    ) -> Metrics {
        let mut registry = Registry::with_prefix("wick_coordinator");
        let r = &mut registry;
        let leases_granted = Counter::default();
        r.register(
            "leases_granted",
            "Leases handed to workers",
            leases_granted.clone(),
        );
        let leases_expired = Counter::default();
        r.register(
            "leases_expired",
            "Leases taken back after their worker stopped heartbeating",
            leases_expired.clone(),
        );
        let wal_segments = Counter::default();
        r.register(
            "wal_segments",
            "Log segments written, one per group commit",
            wal_segments.clone(),
        );
        let wal_entries = Counter::default();
        r.register(
            "wal_entries",
            "State changes made durable in the log",
            wal_entries.clone(),
        );
        let epochs = EpochMetrics::default();
        epochs.register(r);
        let trials = Family::<StateLabel, Gauge>::default();
        r.register("trials", "Trials by state", trials.clone());
        let workers = Gauge::default();
        r.register(
            "workers",
            "Workers heartbeating to this coordinator",
            workers.clone(),
        );
        let inference = InferenceMetrics::default();
        inference.register(r, "routed to workers");
        let upload_bytes = Counter::default();
        r.register(
            "upload_bytes",
            "Data bytes received through UploadData and written to the store",
            upload_bytes.clone(),
        );
        let uploads_completed = Counter::default();
        r.register(
            "uploads_completed",
            "Data files made whole in the store by UploadData",
            uploads_completed.clone(),
        );
        CountersFn::register(
            r,
            "store_errors",
            "Failed object store operations",
            "op",
            store_errors,
        );
        Metrics {
            registry,
            leases_granted,
            leases_expired,
            wal_segments,
            wal_entries,
            epochs,
            trials,
            workers,
            inference,
            upload_bytes,
            uploads_completed,
        }
    }

    /// The page for one scrape, after setting the state readings.
    pub fn render(&self, trials_by_state: &[(&'static str, usize)], workers: usize) -> String {
        for (state, n) in trials_by_state {
            self.trials
                .get_or_create(&StateLabel {
                    state: (*state).into(),
                })
                .set(*n as i64);
        }
        self.workers.set(workers as i64);
        encode(&self.registry)
    }
}
