//! `reconstruct` and `interpolate`: the user's own images through a VAE trial (the best
//! VAE unless `--trial`), saved as one PNG.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::json;
use wick_proto::v1::{ImagesResult, InterpolateParams, ReconstructParams};

use super::{Outcome, read_file, write_file};
use crate::cli::{InterpolateArgs, ReconstructArgs};
use crate::connect::Session;

/// Writes the grid of `r` to `out` (or `<stem>-<trial>.png` here) and reports it.
fn save(r: &ImagesResult, out: Option<&Path>, stem: &str) -> Result<Outcome> {
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(format!("{stem}-{}.png", r.trial_id)));
    write_file(&out, &r.grid_png)?;
    Ok(Outcome {
        json: json!({"trial": r.trial_id, "images": r.images_png.len(), "out": out.display().to_string()}),
        text: format!("{}\n", out.display()),
    })
}

/// `reconstruct IMAGE... [--out FILE]`.
pub async fn reconstruct(s: &Session, a: &ReconstructArgs) -> Result<Outcome> {
    let images = a
        .images
        .iter()
        .map(|p| read_file(p))
        .collect::<Result<Vec<_>>>()?;
    let params = ReconstructParams {
        trial_id: a.trial.clone().unwrap_or_default(),
        images,
    };
    let r = s
        .inference(|mut c| {
            let p = params.clone();
            async move { c.reconstruct(p).await }
        })
        .await?;
    save(&r, a.out.as_deref(), "reconstructions")
}

/// `interpolate --a IMG --b IMG [--steps N] [--out FILE]`.
pub async fn interpolate(s: &Session, a: &InterpolateArgs) -> Result<Outcome> {
    let params = InterpolateParams {
        trial_id: a.trial.clone().unwrap_or_default(),
        a: read_file(&a.a)?,
        b: read_file(&a.b)?,
        steps: a.steps,
    };
    let r = s
        .inference(|mut c| {
            let p = params.clone();
            async move { c.interpolate(p).await }
        })
        .await?;
    save(&r, a.out.as_deref(), "interpolation")
}
