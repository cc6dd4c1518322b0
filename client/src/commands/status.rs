//! `list`, `status`, `cancel` and `best`: reading and changing the coordinator's record of
//! sweeps without running anything.

use anyhow::{Result, bail};
use serde_json::{Map, Value, json};
use wick_proto::v1::{CancelSweepParams, GetSweepParams, ListSweepsParams};

use super::{Outcome, watch};
use crate::cli::{BestArgs, Task};
use crate::connect::Session;
use crate::render::{Table, status_json, time_ms, trial_json, trial_table};

/// `list`.
pub async fn list(s: &Session) -> Result<Outcome> {
    let r = s
        .sweeps
        .clone()
        .list_sweeps(ListSweepsParams {})
        .await?
        .into_inner();
    let mut table = Table::new(&["SWEEP", "NAME", "CREATED", "TRIALS", "STATES"]);
    let mut docs = Vec::new();
    for sw in &r.sweeps {
        let mut states: Vec<(&String, &u32)> = sw.states.iter().filter(|(_, n)| **n > 0).collect();
        states.sort();
        let states_text: Vec<String> = states.iter().map(|(k, n)| format!("{n} {k}")).collect();
        table.row(vec![
            sw.sweep_id.clone(),
            sw.name.clone(),
            time_ms(sw.created_ms),
            sw.trials.to_string(),
            states_text.join(", "),
        ]);
        docs.push(json!({
            "id": sw.sweep_id, "name": sw.name, "created_ms": sw.created_ms,
            "trials": sw.trials, "states": sw.states,
        }));
    }
    let text = match r.sweeps.is_empty() {
        true => {
            "no sweeps yet; start one with `client sweep --data DIR --l 12,40 --kl 1,100`\n".into()
        }
        false => table.render(),
    };
    Ok(Outcome {
        json: json!({ "sweeps": docs }),
        text,
    })
}

/// `status ID`.
pub async fn status(s: &Session, sweep: &str) -> Result<Outcome> {
    let st = s
        .sweeps
        .clone()
        .get_sweep(GetSweepParams {
            sweep_id: sweep.to_string(),
        })
        .await?
        .into_inner();
    let name = st.spec.as_ref().map(|sp| sp.name.as_str()).unwrap_or("");
    let mut text = format!(
        "sweep {}{} created {}: {} trials\n\n",
        st.sweep_id,
        if name.is_empty() {
            String::new()
        } else {
            format!(" ({name})")
        },
        time_ms(st.created_ms),
        st.trials.len()
    );
    text.push_str(&trial_table(&st.trials));
    Ok(Outcome {
        json: status_json(&st),
        text,
    })
}

/// `cancel ID`.
pub async fn cancel(s: &Session, sweep: &str) -> Result<Outcome> {
    let r = s
        .sweeps
        .clone()
        .cancel_sweep(CancelSweepParams {
            sweep_id: sweep.to_string(),
        })
        .await?
        .into_inner();
    Ok(Outcome {
        json: json!({"sweep": sweep, "cancelled": r.cancelled}),
        text: format!("cancelled {} unfinished trials of {sweep}\n", r.cancelled),
    })
}

/// `best`.
pub async fn best(s: &Session, a: &BestArgs) -> Result<Outcome> {
    if a.kl.is_some() && a.task == Some(Task::Covid) {
        bail!("--kl selects VAE trials; drop it or use --task vae");
    }
    let tasks = match (a.task, a.kl) {
        (Some(t), _) => vec![t],
        (None, Some(_)) => vec![Task::Vae],
        (None, None) => vec![Task::Covid, Task::Vae],
    };
    let sweep = a.sweep.clone().unwrap_or_default();
    let mut doc = Map::new();
    let mut text = String::new();
    for task in tasks {
        let kl = if task == Task::Vae { a.kl } else { None };
        let b = watch::best(s, &sweep, task.as_str(), kl).await?;
        if let Some(t) = &b {
            text.push_str(&watch::best_line(task.as_str(), t));
        }
        doc.insert(
            task.as_str().into(),
            b.as_ref().map(trial_json).unwrap_or(Value::Null),
        );
    }
    if text.is_empty() {
        bail!(
            "no finished trial to choose from{}; run one with `client sweep`",
            match a.kl {
                Some(k) => format!(" with KL weight {k}"),
                None => String::new(),
            }
        );
    }
    Ok(Outcome {
        json: Value::Object(doc),
        text,
    })
}
