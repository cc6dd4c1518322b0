//! `sweep`: get the data into the store, submit the grid, then (unless `--detach`) watch
//! it to the end and report the table and the best trials.

use anyhow::Result;
use serde_json::json;
use wick_proto::v1::SubmitSweepParams;

use super::{Outcome, watch};
use crate::cli::SweepArgs;
use crate::connect::Session;
use crate::upload;

/// `sweep`.
pub async fn run(s: &Session, a: &SweepArgs, json: bool) -> Result<Outcome> {
    let tasks = a.tasks()?;
    let (data, notes) = upload::resolve(&a.data, &tasks, s.store.as_ref()).await?;
    let spec = a.spec(data)?;
    let r = s
        .sweeps
        .clone()
        .submit_sweep(SubmitSweepParams { spec: Some(spec) })
        .await?
        .into_inner();
    let total = r.trial_ids.len();
    if !json {
        for n in notes {
            eprintln!("{n}");
        }
        eprintln!(
            "sweep {}: {total} trials, {} queued now, {} already finished or running",
            r.sweep_id,
            r.queued,
            total.saturating_sub(r.queued as usize)
        );
    }
    if a.detach {
        if !json {
            eprintln!(
                "follow it with: client --coordinator {} watch {}",
                s.target, r.sweep_id
            );
        }
        return Ok(Outcome {
            json: json!({"sweep": r.sweep_id, "trial_ids": r.trial_ids, "queued": r.queued}),
            text: format!("{}\n", r.sweep_id),
        });
    }
    let status = watch::follow(s, &r.sweep_id, json).await?;
    let mut out = watch::report(s, &status).await?;
    out.json["queued"] = json!(r.queued);
    Ok(out)
}
