//! A sweep's trials as `report` and `compare` read them: each trial's status with its
//! configuration and latest metrics parsed (the summary, once it succeeded), its
//! per-epoch history from `metrics.jsonl`, and its other artifacts. A file a trial does
//! not have comes back as `None` or an empty history rather than an error: failed,
//! cancelled and stopped trials have fewer files, and the callers say so instead.

use anyhow::Result;
use serde_json::Value;
use tonic::Code;
use wick_common::trial::{CovidConfig, TrialConfig, VaeConfig};
use wick_proto::v1::{GetArtifactParams, GetSweepParams, SweepStatus, TrialStatus};

use crate::connect::Session;

/// One trial of a sweep with its JSON fields parsed.
pub struct Trial {
    /// The coordinator's record of it.
    pub status: TrialStatus,
    /// Its configuration; `None` when `config_json` does not parse (a newer coordinator).
    pub config: Option<TrialConfig>,
    /// Its latest metrics: the last epoch's while it runs (or after it stopped), the
    /// worker's summary once it succeeded; `Null` when there are none.
    pub metrics: Value,
}

impl Trial {
    /// Parses the JSON fields of `status`.
    pub fn new(status: TrialStatus) -> Trial {
        let config = serde_json::from_str(&status.config_json).ok();
        let metrics = serde_json::from_str(&status.metrics_json).unwrap_or(Value::Null);
        Trial {
            status,
            config,
            metrics,
        }
    }

    /// The trial id.
    pub fn id(&self) -> &str {
        &self.status.trial_id
    }

    /// The task name ("covid", "vae").
    pub fn task(&self) -> &str {
        &self.status.task
    }

    /// The state name, as the coordinator says it.
    pub fn state(&self) -> &str {
        &self.status.state
    }

    /// Whether the trial finished and its summary and artifacts are in place.
    pub fn succeeded(&self) -> bool {
        self.status.state == "succeeded"
    }

    /// The covid configuration, for a covid trial.
    pub fn covid(&self) -> Option<&CovidConfig> {
        match &self.config {
            Some(TrialConfig::Covid(c)) => Some(c),
            _ => None,
        }
    }

    /// The VAE configuration, for a vae trial.
    pub fn vae(&self) -> Option<&VaeConfig> {
        match &self.config {
            Some(TrialConfig::Vae(c)) => Some(c),
            _ => None,
        }
    }

    /// A finite number among the latest metrics.
    pub fn num(&self, key: &str) -> Option<f64> {
        self.metrics
            .get(key)
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite())
    }

    /// A finite number of the summary: only a succeeded trial's metrics are its summary
    /// (a stopped trial's last epoch has no `best_test_acc`, but could share a name).
    pub fn summary(&self, key: &str) -> Option<f64> {
        self.succeeded().then(|| self.num(key)).flatten()
    }
}

/// One sweep (a unique id prefix is enough) and its trials, in the coordinator's order.
pub async fn sweep(s: &Session, id: &str) -> Result<(SweepStatus, Vec<Trial>)> {
    let st = s
        .sweeps
        .clone()
        .get_sweep(GetSweepParams {
            sweep_id: id.to_string(),
        })
        .await?
        .into_inner();
    let trials = st.trials.iter().cloned().map(Trial::new).collect();
    Ok((st, trials))
}

/// The bytes of a trial's artifact `name` (a path under `trials/<id>/`), or the gRPC
/// status, so a caller can tell a missing file (NOT_FOUND) from a coordinator that cannot
/// be reached.
pub async fn fetch(s: &Session, trial: &str, name: &str) -> Result<Vec<u8>, tonic::Status> {
    let params = GetArtifactParams {
        trial_id: trial.to_string(),
        name: name.to_string(),
    };
    let r = s.sweeps.clone().get_artifact(params).await?;
    Ok(r.into_inner().data.to_vec())
}

/// The bytes of a trial's artifact `name`, or `None` when the trial has no such file.
pub async fn artifact(s: &Session, trial: &str, name: &str) -> Result<Option<Vec<u8>>> {
    match fetch(s, trial, name).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(st) if st.code() == Code::NotFound => Ok(None),
        Err(st) => Err(st.into()),
    }
}

/// A trial's per-epoch metrics from `metrics.jsonl`, one object per epoch in epoch order;
/// empty when it has not finished an epoch. Lines that do not parse are skipped: one bad
/// line should not cost the whole curve.
pub async fn history(s: &Session, trial: &str) -> Result<History> {
    let bytes = artifact(s, trial, "metrics.jsonl")
        .await?
        .unwrap_or_default();
    Ok(History::parse(&String::from_utf8_lossy(&bytes)))
}

/// A trial's per-epoch metrics.
#[derive(Debug, Default, Clone)]
pub struct History(pub Vec<Value>);

impl History {
    /// Parses `metrics.jsonl` text.
    pub fn parse(text: &str) -> History {
        let mut epochs: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(Value::is_object)
            .collect();
        epochs.sort_by_key(|e| e.get("epoch").and_then(Value::as_u64).unwrap_or(0));
        History(epochs)
    }

    /// Epochs recorded.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no epoch is recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The field `key` of every epoch, NaN where an epoch lacks it (charts skip NaN).
    pub fn series(&self, key: &str) -> Vec<f64> {
        self.0
            .iter()
            .map(|e| e.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN))
            .collect()
    }

    /// The last epoch's `key`, if finite.
    pub fn last(&self, key: &str) -> Option<f64> {
        self.series(key).last().copied().filter(|v| v.is_finite())
    }

    /// The highest finite `key` and its 1-based epoch (the earliest on a tie).
    pub fn max(&self, key: &str) -> Option<(f64, u64)> {
        let mut best: Option<(f64, u64)> = None;
        for (i, e) in self.0.iter().enumerate() {
            let Some(v) = e.get(key).and_then(Value::as_f64).filter(|v| v.is_finite()) else {
                continue;
            };
            let epoch = e
                .get("epoch")
                .and_then(Value::as_u64)
                .unwrap_or(i as u64 + 1);
            if best.is_none_or(|(b, _)| v > b) {
                best = Some((v, epoch));
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_sorts_epochs_skips_bad_lines_and_finds_the_first_maximum() {
        let h = History::parse(
            "{\"epoch\":2,\"test_acc\":0.7}\nnot json\n{\"epoch\":1,\"test_acc\":0.6}\n{\"epoch\":3,\"test_acc\":0.7}\n",
        );
        assert_eq!(h.len(), 3);
        assert_eq!(h.series("test_acc"), [0.6, 0.7, 0.7]);
        assert_eq!(h.max("test_acc"), Some((0.7, 2)));
        assert_eq!(h.last("test_acc"), Some(0.7));
        assert!(h.series("train_acc").iter().all(|v| v.is_nan()));
        assert_eq!(h.max("train_acc"), None);
    }
}
