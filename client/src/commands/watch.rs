//! `watch ID`, and the part of `sweep` after submission: follow the sweep's event stream
//! with progress bars until every trial has ended, then report the trial table and the
//! best trial of each task, and end with exit status 1 if any trial failed.

use anyhow::Result;
use serde_json::{Map, Value};
use tonic::Code;
use wick_proto::v1::{BestTrialParams, GetSweepParams, SweepStatus, TrialStatus, WatchSweepParams};

use super::{Interrupted, Outcome, TrialsFailed};
use crate::connect::Session;
use crate::progress::Progress;
use crate::render::{headline, label, status_json, trial_json, trial_table};

/// `watch ID`.
pub async fn run(s: &Session, sweep: &str, json: bool) -> Result<Outcome> {
    // GetSweep accepts a unique prefix; the stream is then opened on the full id.
    let status = s
        .sweeps
        .clone()
        .get_sweep(GetSweepParams {
            sweep_id: sweep.to_string(),
        })
        .await?
        .into_inner();
    let status = follow(s, &status.sweep_id, json).await?;
    let out = report(s, &status).await?;
    verdict(out, &status)
}

/// The report of an ended sweep as the command's result, or, when a trial failed, as a
/// [`TrialsFailed`] error carrying it, so scripts see the failure in the exit status. A
/// trial stopped early or cancelled ended as someone chose: that is no failure.
pub fn verdict(out: Outcome, status: &SweepStatus) -> Result<Outcome> {
    let failed = status.trials.iter().filter(|t| t.state == "failed").count();
    if failed == 0 {
        return Ok(out);
    }
    Err(TrialsFailed {
        outcome: out,
        failed,
        total: status.trials.len(),
        sweep_id: status.sweep_id.clone(),
    }
    .into())
}

/// Shows the sweep's events until every trial has ended, and returns its final status.
/// Ctrl-C stops watching (and, embedded, stops the workers, which hand their trials back).
pub async fn follow(s: &Session, sweep_id: &str, json: bool) -> Result<SweepStatus> {
    let mut stream = s
        .sweeps
        .clone()
        .watch_sweep(WatchSweepParams {
            sweep_id: sweep_id.to_string(),
        })
        .await?
        .into_inner();
    let mut view = Progress::new(json);
    let failure = s.server_failure();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(failure, ctrl_c);
    let ended: Result<()> = loop {
        tokio::select! {
            msg = stream.message() => match msg {
                Ok(Some(ev)) => view.event(&ev),
                Ok(None) => break Ok(()),
                Err(status) => break Err(status.into()),
            },
            e = &mut failure => break Err(e),
            _ = &mut ctrl_c => break Err(interrupted(s, sweep_id)),
        }
    };
    view.finish();
    ended?;
    Ok(s.sweeps
        .clone()
        .get_sweep(GetSweepParams {
            sweep_id: sweep_id.to_string(),
        })
        .await?
        .into_inner())
}

/// What Ctrl-C means for the sweep.
fn interrupted(s: &Session, sweep_id: &str) -> anyhow::Error {
    let note = match s.is_embedded() {
        true => format!(
            "interrupted: the embedded workers hand their trials back; `client watch {sweep_id}` with the same --home resumes the sweep from its latest checkpoints"
        ),
        false => format!(
            "stopped watching; sweep {sweep_id} goes on at {}: `client watch {sweep_id}` to follow it again",
            s.target
        ),
    };
    Interrupted(note).into()
}

/// The best trial of `task` in the sweep, or `None` when it has no finished trial of it.
pub async fn best(
    s: &Session,
    sweep_id: &str,
    task: &str,
    kl: Option<f64>,
) -> Result<Option<TrialStatus>> {
    let params = BestTrialParams {
        sweep_id: sweep_id.to_string(),
        task: task.to_string(),
        kl_weight: kl,
    };
    match s.sweeps.clone().best_trial(params).await {
        Ok(r) => Ok(Some(r.into_inner())),
        Err(st) if st.code() == Code::NotFound => Ok(None),
        Err(st) => Err(st.into()),
    }
}

/// One line about a best trial.
pub fn best_line(task: &str, t: &TrialStatus) -> String {
    format!(
        "best {task}: {} {}: {}\n",
        t.trial_id,
        label(t),
        headline(t)
    )
}

/// The final report of a sweep: its trial table and the best trial of each of its tasks.
/// JSON: the `status --json` document plus `"best": {task: trial or null}`.
pub async fn report(s: &Session, status: &SweepStatus) -> Result<Outcome> {
    let mut tasks: Vec<&str> = status.trials.iter().map(|t| t.task.as_str()).collect();
    tasks.sort();
    tasks.dedup();
    let mut best_json = Map::new();
    let mut text = trial_table(&status.trials);
    let succeeded = status
        .trials
        .iter()
        .filter(|t| t.state == "succeeded")
        .count();
    text.push_str(&format!(
        "\nsweep {}: {succeeded} of {} trials succeeded\n",
        status.sweep_id,
        status.trials.len()
    ));
    for task in tasks {
        let b = best(s, &status.sweep_id, task, None).await?;
        if let Some(t) = &b {
            text.push_str(&best_line(task, t));
        }
        best_json.insert(
            task.to_string(),
            b.as_ref().map(trial_json).unwrap_or(Value::Null),
        );
    }
    let mut json = status_json(status);
    json["best"] = Value::Object(best_json);
    Ok(Outcome { json, text })
}
