//! The coordinator's durable documents, as stored in the object store: a trial's record
//! (`trials/<id>/state.json`), a sweep's record (`sweeps/<id>/state.json`) and spec
//! (`sweeps/<id>/spec.json`), and a trial's data references (`trials/<id>/data.json`).
//! Every field has a serde default so that a record written by an older coordinator
//! still loads.

use serde::{Deserialize, Serialize};
use wick_common::trial::TrialConfig;
use wick_proto::v1::{DataRef, Range, SweepSpec};

/// Where a trial is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrialState {
    /// Waiting for a worker.
    #[default]
    Queued,
    /// Leased to a worker.
    Running,
    /// Finished, with its artifacts promoted.
    Succeeded,
    /// Gave up: its own error, or its leases were lost too often.
    Failed,
    /// Cancelled by a user.
    Cancelled,
    /// Stopped by the sweep's early-stopping policy (its checkpoints are kept).
    #[serde(rename = "stopped_early")]
    StoppedEarly,
}

impl TrialState {
    /// Lower-case name, as in the protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            TrialState::Queued => "queued",
            TrialState::Running => "running",
            TrialState::Succeeded => "succeeded",
            TrialState::Failed => "failed",
            TrialState::Cancelled => "cancelled",
            TrialState::StoppedEarly => "stopped_early",
        }
    }

    /// Whether the trial will not change again unless resubmitted.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TrialState::Succeeded
                | TrialState::Failed
                | TrialState::Cancelled
                | TrialState::StoppedEarly
        )
    }
}

/// A trial's data references (`trials/<id>/data.json`); mirrors the protocol's `DataRef`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DataDoc {
    /// Store key or URL of the COVID-19 CSV.
    pub covid_csv: String,
    /// Store key of the faces archive.
    pub faces: String,
}

impl DataDoc {
    /// The reference `config`'s task reads: the CSV for covid, the faces for vae.
    pub fn for_task(&self, config: &TrialConfig) -> &str {
        match config {
            TrialConfig::Covid(_) => &self.covid_csv,
            TrialConfig::Vae(_) => &self.faces,
        }
    }

    /// The trial id of `config` trained on this data.
    pub fn trial_id(&self, config: &TrialConfig) -> String {
        wick_common::ids::trial_id(config, self.for_task(config))
    }
}

impl From<&DataRef> for DataDoc {
    fn from(d: &DataRef) -> Self {
        DataDoc {
            covid_csv: d.covid_csv.clone(),
            faces: d.faces.clone(),
        }
    }
}

impl From<&DataDoc> for DataRef {
    fn from(d: &DataDoc) -> Self {
        DataRef {
            covid_csv: d.covid_csv.clone(),
            faces: d.faces.clone(),
        }
    }
}

/// The durable record of one trial (`trials/<id>/state.json`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TrialRecord {
    /// Trial id, so the document describes itself.
    pub trial_id: String,
    /// Current state.
    pub state: TrialState,
    /// Leases granted so far (the current one included).
    pub attempts: u32,
    /// Leases that expired since the trial was last queued by a submission: the retry
    /// budget is spent on these only, so a worker handing a trial back costs nothing.
    pub lost_leases: u32,
    /// The lease it runs under, while running; kept across a restart so its worker's
    /// heartbeats and reports stay valid.
    pub lease_id: Option<String>,
    /// Name of the worker running it, or that ran it last.
    pub worker: String,
    /// Id of that worker.
    pub worker_id: String,
    /// Epochs completed, as last reported.
    pub epoch: u32,
    /// Epoch the current or last attempt resumed from (0 = from scratch).
    pub resumed_from_epoch: u32,
    /// Store key of the newest checkpoint reported under a valid lease.
    pub checkpoint: Option<String>,
    /// Epoch that checkpoint was written after.
    pub checkpoint_epoch: u32,
    /// Latest per-epoch metrics while running; the summary once succeeded.
    pub metrics: Option<serde_json::Value>,
    /// Why it failed or was retried.
    pub message: String,
    /// Where its data is.
    pub data: DataDoc,
}

/// The durable record of one sweep (`sweeps/<id>/state.json`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SweepRecord {
    /// Sweep id.
    pub sweep_id: String,
    /// Label given at submission.
    pub name: String,
    /// Unix milliseconds of the first submission.
    pub created_ms: i64,
    /// Its trials, in grid order.
    pub trial_ids: Vec<String>,
}

/// A sweep spec as JSON (`sweeps/<id>/spec.json`); mirrors the protocol's `SweepSpec`,
/// whose generated type has no serde support.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SpecDoc {
    /// Tasks named.
    pub tasks: Vec<String>,
    /// Window lengths.
    pub l: Vec<u32>,
    /// Cells.
    pub cell: Vec<String>,
    /// Hidden sizes.
    pub hidden: Vec<u32>,
    /// KL weights.
    pub kl: Vec<f64>,
    /// Image sizes.
    pub size: Vec<u32>,
    /// Epochs.
    pub epochs: Vec<u32>,
    /// Learning rates.
    pub lr: Vec<f64>,
    /// Seeds.
    pub seed: Vec<u64>,
    /// Data references.
    pub data: DataDoc,
    /// COVID split.
    pub split: String,
    /// VAE image limit.
    pub limit: u32,
    /// Label.
    pub name: String,
    /// Random-search draws per task (0 = grid).
    pub random: u32,
    /// Seed of the draws.
    pub search_seed: u64,
    /// Random-search ranges.
    pub ranges: Vec<RangeDoc>,
    /// Early-stopping policy.
    pub early_stop: String,
    /// First rung / grace epochs.
    pub min_epochs: u32,
    /// ASHA reduction factor.
    pub eta: u32,
    /// Concurrency limit.
    pub max_parallel: u32,
    /// Validation fraction (absent: the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val: Option<f64>,
    /// Covid hidden sizes (replace `hidden` for covid). The per-task lists below are left
    /// out when empty, so documents of specs that do not use them stay as they were.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub covid_hidden: Vec<u32>,
    /// VAE hidden sizes (replace `hidden` for the VAE).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vae_hidden: Vec<u32>,
    /// VAE latent dimensions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latent: Vec<u32>,
    /// Covid epochs (replace `epochs` for covid).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub covid_epochs: Vec<u32>,
    /// VAE epochs (replace `epochs` for the VAE).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vae_epochs: Vec<u32>,
    /// Covid correlation thresholds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub threshold: Vec<f64>,
    /// Covid start dates.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub start: Vec<String>,
}

/// A random-search range; mirrors the protocol's `Range`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RangeDoc {
    /// Knob.
    pub name: String,
    /// Low end.
    pub lo: f64,
    /// High end.
    pub hi: f64,
    /// Log-uniform.
    pub log: bool,
}

impl From<&SweepSpec> for SpecDoc {
    fn from(s: &SweepSpec) -> Self {
        SpecDoc {
            tasks: s.tasks.clone(),
            l: s.l.clone(),
            cell: s.cell.clone(),
            hidden: s.hidden.clone(),
            kl: s.kl.clone(),
            size: s.size.clone(),
            epochs: s.epochs.clone(),
            lr: s.lr.clone(),
            seed: s.seed.clone(),
            data: s.data.as_ref().map(DataDoc::from).unwrap_or_default(),
            split: s.split.clone(),
            limit: s.limit,
            name: s.name.clone(),
            random: s.random,
            search_seed: s.search_seed,
            ranges: s
                .ranges
                .iter()
                .map(|r| RangeDoc {
                    name: r.name.clone(),
                    lo: r.lo,
                    hi: r.hi,
                    log: r.log,
                })
                .collect(),
            early_stop: s.early_stop.clone(),
            min_epochs: s.min_epochs,
            eta: s.eta,
            max_parallel: s.max_parallel,
            val: s.val,
            covid_hidden: s.covid_hidden.clone(),
            vae_hidden: s.vae_hidden.clone(),
            latent: s.latent.clone(),
            covid_epochs: s.covid_epochs.clone(),
            vae_epochs: s.vae_epochs.clone(),
            threshold: s.threshold.clone(),
            start: s.start.clone(),
        }
    }
}

impl From<SpecDoc> for SweepSpec {
    fn from(d: SpecDoc) -> Self {
        SweepSpec {
            tasks: d.tasks,
            l: d.l,
            cell: d.cell,
            hidden: d.hidden,
            kl: d.kl,
            size: d.size,
            epochs: d.epochs,
            lr: d.lr,
            seed: d.seed,
            data: Some(DataRef::from(&d.data)),
            split: d.split,
            limit: d.limit,
            name: d.name,
            random: d.random,
            search_seed: d.search_seed,
            ranges: d
                .ranges
                .into_iter()
                .map(|r| Range {
                    name: r.name,
                    lo: r.lo,
                    hi: r.hi,
                    log: r.log,
                })
                .collect(),
            early_stop: d.early_stop,
            min_epochs: d.min_epochs,
            eta: d.eta,
            max_parallel: d.max_parallel,
            val: d.val,
            covid_hidden: d.covid_hidden,
            vae_hidden: d.vae_hidden,
            latent: d.latent,
            covid_epochs: d.covid_epochs,
            vae_epochs: d.vae_epochs,
            threshold: d.threshold,
            start: d.start,
        }
    }
}

/// One `metrics.jsonl` line: an epoch's metrics object with its `epoch` added (metrics
/// that are not an object are kept under `metrics`).
pub fn metrics_line(epoch: u32, metrics: &serde_json::Value) -> String {
    let mut line = metrics.clone();
    if let Some(obj) = line.as_object_mut() {
        obj.insert("epoch".into(), epoch.into());
    } else {
        line = serde_json::json!({ "epoch": epoch, "metrics": line });
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips_through_json() {
        let spec = SweepSpec {
            tasks: vec!["both".into()],
            l: vec![12, 40],
            kl: vec![1.0, 100.0],
            data: Some(DataRef {
                covid_csv: "a".into(),
                faces: "b".into(),
            }),
            limit: 3,
            name: "x".into(),
            random: 4,
            search_seed: 9,
            ranges: vec![Range {
                name: "lr".into(),
                lo: 1e-4,
                hi: 1e-2,
                log: true,
            }],
            early_stop: "asha".into(),
            min_epochs: 2,
            eta: 3,
            max_parallel: 2,
            covid_hidden: vec![16],
            vae_hidden: vec![32],
            latent: vec![8],
            covid_epochs: vec![200, 500],
            vae_epochs: vec![30],
            threshold: vec![0.5],
            start: vec!["2020-04-01".into()],
            ..Default::default()
        };
        let json = serde_json::to_string(&SpecDoc::from(&spec)).unwrap();
        let back: SpecDoc = serde_json::from_str(&json).unwrap();
        assert_eq!(SweepSpec::from(back), spec);
        // A document written before the per-task lists existed reads with them empty.
        let before: SpecDoc = serde_json::from_str(r#"{"hidden":[64],"epochs":[2]}"#).unwrap();
        assert_eq!((before.hidden, before.covid_hidden), (vec![64], vec![]));
        let old: TrialRecord = serde_json::from_str(r#"{"state":"running","attempts":2}"#).unwrap();
        assert_eq!(
            (old.state, old.attempts, old.lease_id),
            (TrialState::Running, 2, None)
        );
    }
}
