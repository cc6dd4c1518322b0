//! `sample`: faces drawn from a VAE trial's prior (the best VAE unless `--trial`), saved
//! as one PNG grid.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;
use wick_proto::v1::SampleParams;

use super::{Outcome, write_file};
use crate::cli::SampleArgs;
use crate::connect::Session;

/// `sample`.
pub async fn run(s: &Session, a: &SampleArgs) -> Result<Outcome> {
    let params = SampleParams {
        trial_id: a.trial.clone().unwrap_or_default(),
        n: a.n,
        seed: a.seed,
    };
    let r = s
        .inference(|mut c| {
            let p = params.clone();
            async move { c.sample(p).await }
        })
        .await?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("samples-{}.png", r.trial_id)));
    write_file(&out, &r.grid_png)?;
    Ok(Outcome {
        json: json!({
            "trial": r.trial_id, "n": a.n, "seed": a.seed,
            "images": r.images_png.len(), "out": out.display().to_string(),
        }),
        text: format!("{}\n", out.display()),
    })
}
