//! Early stopping and the per-sweep concurrency limit. A sweep may name a policy:
//!
//! - `median`: after `min_epochs`, a trial whose score at epoch n is below the median of
//!   the other trials' scores at epoch n (at least two of them) is stopped;
//! - `asha` (asynchronous successive halving): rungs at epochs r, r·η, r·η², …; a trial
//!   reaching a rung goes on only if its score is in the top 1/η of the trials that
//!   reached that rung so far (decided once at least η have).
//!
//! Scores are "higher is better": a covid trial's best validation accuracy so far (test accuracy without a validation set), a VAE's
//! negative ELBO negated. Trials are compared with the other trials of the same task in
//! the same sweep. A stopped trial ends `stopped_early` with the reason, keeps its
//! checkpoints, and its scores still count for the trials after it, as ASHA intends.

use wick_common::trial::TrialConfig;
use wick_proto::v1::SweepSpec;

use super::{State, Trial};
use crate::error::{Error, Result};
use crate::records::TrialState;

/// A sweep's early-stopping policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Policy {
    /// Every trial runs all its epochs.
    None,
    /// Median stopping after `grace` epochs.
    Median {
        /// Epochs before a trial may be stopped.
        grace: usize,
    },
    /// Asynchronous successive halving.
    Asha {
        /// First rung, in epochs.
        r: usize,
        /// Reduction factor.
        eta: usize,
    },
}

impl Policy {
    /// The policy `spec` names, or an error naming the flag.
    pub fn of(spec: &SweepSpec) -> Result<Policy> {
        let r = spec.min_epochs.max(1) as usize;
        match spec.early_stop.trim() {
            "" | "none" => Ok(Policy::None),
            "median" => Ok(Policy::Median { grace: r }),
            "asha" => {
                let eta = if spec.eta == 0 { 3 } else { spec.eta as usize };
                if eta < 2 {
                    return Err(Error::InvalidArgument(
                        "invalid sweep: --eta must be at least 2 (3 keeps the top third at each rung)".into(),
                    ));
                }
                Ok(Policy::Asha { r, eta })
            }
            other => Err(Error::InvalidArgument(format!(
                "invalid sweep: unknown --early-stop '{other}'; use none, median or asha"
            ))),
        }
    }
}

/// An epoch's score from its metrics (higher is better), given the previous epoch's.
pub fn score(
    config: &TrialConfig,
    metrics: &serde_json::Value,
    previous: Option<f64>,
) -> Option<f64> {
    let get = |k: &str| metrics.get(k).and_then(serde_json::Value::as_f64);
    match config {
        // The best accuracy so far: one noisy epoch must not stop a trial that is ahead.
        // Validation decides when the trial has it; the test set only without.
        TrialConfig::Covid(_) => {
            let acc = get("val_acc").or_else(|| get("test_acc"))?;
            Some(previous.map_or(acc, |p| p.max(acc)))
        }
        TrialConfig::Vae(_) => get("val_neg_elbo").or_else(|| get("neg_elbo")).map(|v| -v),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Shown in reasons: accuracy as is, a VAE's score as the −ELBO it came from.
fn shown(config: &TrialConfig, score: f64) -> String {
    match config {
        TrialConfig::Covid(_) => format!("best accuracy {score:.3}"),
        TrialConfig::Vae(_) => format!("negative ELBO {:.1}", -score),
    }
}

impl State {
    /// Records the score of the epoch `trial.record` just reported.
    pub(super) fn record_score(&mut self, trial: &Trial) {
        let (epoch, Some(metrics)) = (trial.record.epoch as usize, &trial.record.metrics) else {
            return;
        };
        if epoch == 0 {
            return;
        }
        let history = self.scores.entry(trial.id().to_string()).or_default();
        // A resumed attempt repeats epochs after its checkpoint: its scores replace them.
        history.truncate(epoch - 1);
        let previous = history.last().copied();
        if history.len() == epoch - 1
            && let Some(s) = score(&trial.config, metrics, previous)
        {
            history.push(s);
        }
    }

    /// Rebuilds a trial's scores from its stored per-epoch metrics (a restarted
    /// coordinator), so early stopping judges later trials against it as before.
    pub fn restore_scores(&mut self, trial_id: &str, epochs: &[serde_json::Value]) {
        let Some(trial) = self.trials.get(trial_id) else {
            return;
        };
        let mut history: Vec<f64> = Vec::new();
        for m in epochs {
            let epoch = m.get("epoch").and_then(serde_json::Value::as_u64);
            if epoch != Some(history.len() as u64 + 1) {
                break;
            }
            match score(&trial.config, m, history.last().copied()) {
                Some(s) => history.push(s),
                None => break,
            }
        }
        self.scores.insert(trial_id.to_string(), history);
    }

    /// The first policy among the sweeps holding `trial`, with that sweep's other trials
    /// of the same task.
    fn policy_and_peers(&self, trial: &Trial) -> Option<(Policy, Vec<&str>)> {
        trial.sweeps.iter().find_map(|id| {
            let sweep = self.sweeps.get(id)?;
            let policy = Policy::of(&sweep.spec).ok()?;
            if policy == Policy::None {
                return None;
            }
            let peers = sweep
                .record
                .trial_ids
                .iter()
                .filter(|p| *p != trial.id())
                .filter(|p| {
                    self.trials
                        .get(*p)
                        .is_some_and(|t| t.config.task() == trial.config.task())
                })
                .map(String::as_str)
                .collect();
            Some((policy, peers))
        })
    }

    /// Why `trial` should stop after reporting `metrics` for `epoch`, or `None` to go on.
    pub(super) fn early_stop(
        &self,
        trial: &Trial,
        epoch: usize,
        metrics: &serde_json::Value,
    ) -> Option<String> {
        if epoch == 0 || epoch >= trial.config.epochs() {
            return None;
        }
        let (policy, peers) = self.policy_and_peers(trial)?;
        let history = self.scores.get(trial.id());
        let previous = history.and_then(|h| h.get(epoch.checked_sub(2)?)).copied();
        let mine = score(&trial.config, metrics, previous)?;
        let at = |id: &str| self.scores.get(id).and_then(|h| h.get(epoch - 1)).copied();
        let others: Vec<f64> = peers.iter().filter_map(|p| at(p)).collect();
        match policy {
            Policy::None => None,
            Policy::Median { grace } => {
                if epoch < grace || others.len() < 2 {
                    return None;
                }
                let m = median(others.clone());
                (mine < m).then(|| {
                    format!(
                        "median stopping at epoch {epoch}: {} is below the median {} of {} other trials",
                        shown(&trial.config, mine),
                        shown(&trial.config, m),
                        others.len()
                    )
                })
            }
            Policy::Asha { r, eta } => {
                let rung = (0..)
                    .map(|k| r.saturating_mul(eta.saturating_pow(k)))
                    .take_while(|&e| e <= epoch)
                    .any(|e| e == epoch);
                let reached = others.len() + 1;
                if !rung || reached < eta {
                    return None;
                }
                let keep = (reached / eta).max(1);
                let mut all = others;
                all.push(mine);
                all.sort_by(|a, b| b.total_cmp(a));
                let cutoff = all[keep - 1];
                (mine < cutoff).then(|| {
                    format!(
                        "ASHA rung at epoch {epoch}: {} is not in the top {keep} of {reached} trials (cutoff {})",
                        shown(&trial.config, mine),
                        shown(&trial.config, cutoff)
                    )
                })
            }
        }
    }

    /// Whether a queued `trial` may start now: every sweep holding it with a concurrency
    /// limit has fewer running trials than the limit.
    pub(super) fn may_start(&self, trial: &Trial) -> bool {
        trial.sweeps.iter().all(|id| {
            let Some(sweep) = self.sweeps.get(id) else {
                return true;
            };
            let limit = sweep.spec.max_parallel as usize;
            limit == 0
                || sweep
                    .record
                    .trial_ids
                    .iter()
                    .filter(|t| {
                        self.trials
                            .get(*t)
                            .is_some_and(|t| t.record.state == TrialState::Running)
                    })
                    .count()
                    < limit
        })
    }
}
