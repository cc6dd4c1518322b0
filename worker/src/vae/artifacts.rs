//! What a finished VAE trial leaves in its output folder: the negative-ELBO curve with its
//! two parts (and the validation curve when there is one), 8 originals over their
//! reconstructions, 16 samples from N(0, I), the coursework's interpolation strip between
//! two real faces, and `model.safetensors`. Every picture and the model file come from the
//! weights the run ends with: those of the selected epoch.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use wick_common::trial::TrialConfig;

use crate::ckpt::{self, MODEL_PREFIX};
use crate::rng::{Purpose, stream};
use crate::vae::images::ImageSet;
use crate::vae::model::Vae;
use crate::vae::train::{VaeRun, normal};

/// Nearest-neighbour magnification of the pictures: small faces are hard to see at 1×.
fn scale(size: u32) -> u32 {
    if size <= 32 { 3 } else { 2 }
}

/// Rows of decoded images (B, D) as owned CHW vectors.
fn rows(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(t.to_device(&Device::Cpu)?.to_vec2::<f32>()?)
}

/// Writes a grid of rows of CHW images.
fn grid(path: &Path, rows: &[Vec<Vec<f32>>], size: u32) -> Result<()> {
    let refs: Vec<Vec<&[f32]>> = rows
        .iter()
        .map(|r| r.iter().map(Vec::as_slice).collect())
        .collect();
    let img = wick_viz::image_grid(&refs, size, scale(size))?;
    wick_viz::save_png(&img, path)?;
    Ok(())
}

/// Decoded pixels of `z` (B, Z).
pub fn decode(model: &Vae, z: &Tensor) -> Result<Vec<Vec<f32>>> {
    rows(&model.decode(z)?.detach())
}

/// Reconstructions decode(μ(x)) of the images `x` (B, D).
pub fn reconstruct(model: &Vae, x: &Tensor) -> Result<Vec<Vec<f32>>> {
    let (mu, _) = model.encode(x)?;
    decode(model, &mu)
}

/// `n` samples decode(z), z ~ N(0, I), from the seeded picture stream.
pub fn sample(model: &Vae, n: usize, seed: u64, device: &Device) -> Result<Vec<Vec<f32>>> {
    let z = normal(
        n,
        model.latent,
        &mut stream(seed, Purpose::Pictures, 0),
        device,
    )?;
    decode(model, &z)
}

/// The interpolation steps an artifact strip shows (α = 0, 0.1, …, 1).
pub const STRIP_STEPS: usize = 11;

/// decode((1 − α)·μ(a) + α·μ(b)) for α = 0, 1/(steps−1), …, 1.
pub fn interpolate(model: &Vae, a: &Tensor, b: &Tensor, steps: usize) -> Result<Vec<Vec<f32>>> {
    let (ma, _) = model.encode(a)?;
    let (mb, _) = model.encode(b)?;
    let mut zs = Vec::with_capacity(steps);
    for k in 0..steps {
        let alpha = if steps > 1 {
            k as f64 / (steps - 1) as f64
        } else {
            0.0
        };
        zs.push(((&ma * (1.0 - alpha))? + (&mb * alpha)?)?);
    }
    decode(model, &Tensor::cat(&zs, 0)?)
}

/// The coursework's strip between the single images `a` and `b` (1, D): original a,
/// reconstruction of a, the `steps` points of [`interpolate`], reconstruction of b,
/// original b; `steps` + 4 images. Each reconstruction decodes the same latent mean as the
/// interpolation's end beside it, so the two tiles match; the coursework's layout keeps
/// both so that what encoding loses is seen next to the original.
pub fn strip(model: &Vae, a: &Tensor, b: &Tensor, steps: usize) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(steps + 4);
    out.extend(rows(a)?);
    out.extend(reconstruct(model, a)?);
    out.extend(interpolate(model, a, b, steps)?);
    out.extend(reconstruct(model, b)?);
    out.extend(rows(b)?);
    Ok(out)
}

/// Writes every artifact into `out` and returns the file names written.
pub fn write_all(
    out: &Path,
    config: &TrialConfig,
    images: &ImageSet,
    run: &VaeRun,
    device: &Device,
) -> Result<Vec<String>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let TrialConfig::Vae(cfg) = config else {
        anyhow::bail!("not a VAE trial")
    };
    let mut files = Vec::new();
    let mut add = |name: &str| {
        files.push(name.to_string());
        out.join(name)
    };
    let h = &run.history;
    let col = |f: fn(&crate::vae::train::EpochStats) -> f64| h.iter().map(f).collect::<Vec<_>>();
    let title = match run.images_val {
        0 => format!("VAE {0}×{0}, KL weight {1}", cfg.size, cfg.kl_weight),
        _ => format!(
            "VAE {0}×{0}, KL weight {1}, epoch {2} selected by validation",
            cfg.size, cfg.kl_weight, run.selected_epoch
        ),
    };
    let val: Vec<f64> = h.iter().filter_map(|e| e.val_neg_elbo).collect();
    wick_viz::vae_curves(
        &add("neg_elbo.png"),
        &wick_viz::VaeCurves {
            neg_elbo: &col(|e| e.neg_elbo),
            val_neg_elbo: &val,
            recon: &col(|e| e.recon),
            kl: &col(|e| e.kl),
        },
        &title,
    )?;

    let size = images.size;
    let k = images.len().min(8);
    let x = Tensor::from_slice(
        &images.pixels[..k * images.dim()],
        (k, images.dim()),
        device,
    )?;
    let originals: Vec<Vec<f32>> = (0..k).map(|i| images.image(i).to_vec()).collect();
    grid(
        &add("reconstructions.png"),
        &[originals, reconstruct(&run.model, &x)?],
        size,
    )?;

    let s = sample(&run.model, 16, cfg.seed, device)?;
    grid(
        &add("samples.png"),
        &[s[..8].to_vec(), s[8..].to_vec()],
        size,
    )?;

    let b = if images.len() > 1 { 1 } else { 0 };
    let interp = strip(
        &run.model,
        &x.narrow(0, 0, 1)?,
        &x.narrow(0, b, 1)?,
        STRIP_STEPS,
    )?;
    grid(&add("interpolation.png"), &[interp], size)?;

    let mut meta = ckpt::metadata(config, h.len());
    meta.insert("selected_epoch".into(), run.selected_epoch.to_string());
    let bytes = ckpt::to_bytes(&run.params.tensors(MODEL_PREFIX), meta)?;
    ckpt::write_atomic(&add("model.safetensors"), &bytes)?;
    Ok(files)
}
