//! `artifacts ls TRIAL` and `artifacts get TRIAL NAME`: a trial's files in the store,
//! fetched through the coordinator so the client needs no store credentials.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::json;
use wick_proto::v1::ListArtifactsParams;

use super::{Outcome, write_file};
use crate::connect::Session;
use crate::render::{Table, bytes};

/// `artifacts ls TRIAL`.
pub async fn ls(s: &Session, trial: &str) -> Result<Outcome> {
    let r = s
        .sweeps
        .clone()
        .list_artifacts(ListArtifactsParams {
            trial_id: trial.to_string(),
        })
        .await?
        .into_inner();
    let mut table = Table::new(&["NAME", "SIZE"]);
    for a in &r.artifacts {
        table.row(vec![a.name.clone(), bytes(a.size)]);
    }
    let docs: Vec<_> = r
        .artifacts
        .iter()
        .map(|a| json!({"name": a.name, "size": a.size}))
        .collect();
    Ok(Outcome {
        json: json!({"trial": trial, "artifacts": docs}),
        text: table.render(),
    })
}

/// `artifacts get TRIAL NAME [--out FILE]`.
pub async fn get(s: &Session, trial: &str, name: &str, out: Option<&Path>) -> Result<Outcome> {
    let data = super::trials::fetch(s, trial, name).await?;
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(Path::new(name).file_name().unwrap_or(name.as_ref())));
    write_file(&out, &data)?;
    Ok(Outcome {
        json: json!({"trial": trial, "name": name, "out": out.display().to_string(), "size": data.len()}),
        text: format!("{}\n", out.display()),
    })
}
