//! Sweep-level transitions and queries: submitting (new trials queued, failed and
//! cancelled ones requeued, finished ones reused), cancelling, and the best trial of a
//! task.

use wick_common::trial::TrialConfig;
use wick_proto::v1::SweepSpec;

use super::{Change, EventKind, State, SubmitPlan, Sweep, Trial};
use crate::error::{Error, Result};
use crate::records::{DataDoc, SweepRecord, TrialRecord, TrialState};

impl State {
    /// Plans a submission of `configs` (the expanded grid of `spec`) as sweep `sweep_id`:
    /// new trials are created queued, failed and cancelled ones are queued again (with a
    /// fresh retry budget, resuming from their last checkpoint), the others are reused.
    pub fn submit(
        &self,
        spec: &SweepSpec,
        configs: Vec<TrialConfig>,
        sweep_id: &str,
        now_ms: i64,
    ) -> SubmitPlan {
        let data = spec.data.as_ref().map(DataDoc::from).unwrap_or_default();
        let mut plan = SubmitPlan {
            sweep: self.sweep_plan(spec, &configs, sweep_id, now_ms),
            new_trials: Vec::new(),
            changes: Vec::new(),
        };
        for config in configs {
            let id = data.trial_id(&config);
            match self.trials.get(&id) {
                None => {
                    let record = TrialRecord {
                        trial_id: id.clone(),
                        data: data.clone(),
                        ..Default::default()
                    };
                    let trial = Trial {
                        config,
                        record,
                        expiry: None,
                        seq: 0,
                        sweeps: vec![sweep_id.to_string()],
                    };
                    plan.new_trials.push(id);
                    plan.changes.push(Change {
                        trial,
                        kind: EventKind::Queued,
                    });
                }
                Some(t) if matches!(t.record.state, TrialState::Failed | TrialState::Cancelled) => {
                    let mut trial = t.clone();
                    let r = &mut trial.record;
                    r.state = TrialState::Queued;
                    r.lost_leases = 0;
                    r.message.clear();
                    r.data = data.clone();
                    r.epoch = r.checkpoint_epoch;
                    if !trial.sweeps.iter().any(|s| s == sweep_id) {
                        trial.sweeps.push(sweep_id.to_string());
                    }
                    plan.changes.push(Change {
                        trial,
                        kind: EventKind::Queued,
                    });
                }
                Some(_) => {}
            }
        }
        plan
    }

    fn sweep_plan(
        &self,
        spec: &SweepSpec,
        configs: &[TrialConfig],
        sweep_id: &str,
        now_ms: i64,
    ) -> Sweep {
        match self.sweeps.get(sweep_id) {
            Some(s) => {
                let mut s = s.clone();
                if !spec.name.is_empty() {
                    s.record.name = spec.name.clone();
                    s.spec.name = spec.name.clone();
                }
                s
            }
            None => Sweep {
                record: SweepRecord {
                    sweep_id: sweep_id.to_string(),
                    name: spec.name.clone(),
                    created_ms: now_ms,
                    trial_ids: {
                        let data = spec.data.as_ref().map(DataDoc::from).unwrap_or_default();
                        configs.iter().map(|c| data.trial_id(c)).collect()
                    },
                },
                spec: spec.clone(),
            },
        }
    }

    /// Installs a persisted submission.
    pub fn apply_submit(&mut self, plan: SubmitPlan) {
        let SubmitPlan { sweep, changes, .. } = plan;
        self.apply(changes);
        let sid = sweep.record.sweep_id.clone();
        for id in &sweep.record.trial_ids {
            if let Some(t) = self.trials.get_mut(id)
                && !t.sweeps.contains(&sid)
            {
                t.sweeps.push(sid.clone());
            }
        }
        self.sweeps.insert(sid, sweep);
    }

    /// Plans the cancellation of every unfinished trial of a sweep.
    pub fn cancel(&self, sweep_id: &str) -> Result<Vec<Change>> {
        let sweep = self.sweep(sweep_id)?;
        Ok(self
            .trials_of(sweep)
            .filter(|t| !t.record.state.is_finished())
            .map(|t| {
                let mut trial = t.clone();
                trial.record.state = TrialState::Cancelled;
                trial.record.lease_id = None;
                trial.record.message = format!("cancelled with sweep {}", sweep.record.sweep_id);
                trial.expiry = None;
                Change {
                    trial,
                    kind: EventKind::Cancelled,
                }
            })
            .collect())
    }

    /// The best succeeded trial of `task`, ranked on validation so that the test set never
    /// picks a model: highest `selected_val_acc` (covid) or lowest `selected_val_neg_elbo`
    /// (vae, only KL weight `kl` when given), in `sweep` or, when it is empty, in the
    /// newest sweep that has one. Trials trained without a validation set have neither
    /// and rank after those that do, by their old figure (`best_test_acc`,
    /// `final_neg_elbo`).
    pub fn best(&self, sweep: &str, task: &str, kl: Option<f64>) -> Result<&Trial> {
        let (key, fallback, higher) = match task {
            "covid" => ("selected_val_acc", "best_test_acc", true),
            "vae" => ("selected_val_neg_elbo", "final_neg_elbo", false),
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown task '{other}'; use covid or vae"
                )));
            }
        };
        let fits = |t: &Trial| {
            t.record.state == TrialState::Succeeded
                && t.config.task() == task
                && match (&t.config, kl) {
                    (TrialConfig::Vae(v), Some(k)) => v.kl_weight == k,
                    _ => true,
                }
        };
        let score = |t: &Trial| {
            let get = |k: &str| {
                t.record
                    .metrics
                    .as_ref()
                    .and_then(|m| m.get(k))
                    .and_then(|v| v.as_f64())
            };
            let signed = |v: f64| if higher { v } else { -v };
            // Validated trials first (scores shifted above every unvalidated one); a
            // summary without either figure ranks last.
            match (get(key), get(fallback)) {
                (Some(v), _) => (1.0, signed(v)),
                (None, Some(v)) => (0.0, signed(v)),
                (None, None) => (f64::NEG_INFINITY, 0.0),
            }
        };
        let pick = |s| self.best_in(s, &fits, &score);
        let kl_note = kl
            .map(|k| format!(" with KL weight {k}"))
            .unwrap_or_default();
        if !sweep.is_empty() {
            let s = self.sweep(sweep)?;
            return pick(s).ok_or_else(|| {
                Error::NotFound(format!(
                    "sweep {} has no succeeded {task} trial{kl_note} yet; watch it with `client watch {}`",
                    s.record.sweep_id, s.record.sweep_id
                ))
            });
        }
        self.sweeps_newest_first().into_iter().find_map(pick).ok_or_else(|| {
            Error::NotFound(format!(
                "no sweep has a succeeded {task} trial{kl_note}; run one with `client sweep --task {task}`"
            ))
        })
    }

    /// The trial of `sweep` that `fits` with the highest `score` (the first on a tie).
    fn best_in<'a>(
        &'a self,
        sweep: &'a Sweep,
        fits: &dyn Fn(&Trial) -> bool,
        score: &dyn Fn(&Trial) -> (f64, f64),
    ) -> Option<&'a Trial> {
        self.trials_of(sweep)
            .filter(|t| fits(t))
            .fold(None, |best: Option<&Trial>, t| match best {
                Some(b) if score(b) >= score(t) => Some(b),
                _ => Some(t),
            })
    }
}
