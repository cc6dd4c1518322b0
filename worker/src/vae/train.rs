//! Training of the VAE: mini-batch Adam on BCE + kl_weight·KL with a fresh seeded shuffle
//! and fresh seeded noise every epoch, per-epoch negative ELBO (the kl_weight = 1 sum) with
//! its two parts, a checkpoint after each epoch when asked, and resumption from the newest
//! checkpoint of the same configuration.

use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use wick_common::trial::{TrialConfig, VaeConfig};

use crate::adam::Adam;
use crate::ckpt::{CkptDir, MODEL_PREFIX};
use crate::params::Params;
use crate::rng::{Purpose, stream};
use crate::vae::fast::FastVae;
use crate::vae::images::ImageSet;
use crate::vae::model::Vae;

/// Metrics of one epoch, per image, averaged over the epoch's training batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Negative ELBO = recon + kl (the kl_weight = 1 objective, whatever the weight trained).
    pub neg_elbo: f64,
    /// Reconstruction term (BCE summed over pixels).
    pub recon: f64,
    /// KL term.
    pub kl: f64,
    /// Wall time of the epoch's training steps.
    pub seconds: f64,
}

/// A trained VAE and how it got there.
pub struct VaeRun {
    /// Every epoch's metrics, including those before a resume.
    pub history: Vec<EpochStats>,
    /// The trained model.
    pub model: Vae,
    /// Its parameters.
    pub params: Params,
    /// Epoch the run resumed from (0 = started fresh).
    pub resumed_from: usize,
}

/// Standard-normal noise of shape (rows, cols) from `rng`.
pub fn normal(
    rows: usize,
    cols: usize,
    rng: &mut rand_chacha::ChaCha8Rng,
    device: &Device,
) -> Result<Tensor> {
    let v = normal_values(rows * cols, rng);
    Ok(Tensor::from_vec(v, (rows, cols), device)?)
}

/// `n` standard-normal values from `rng` (the values [`normal`] draws, in its order).
pub fn normal_values(n: usize, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<f32> {
    (0..n).map(|_| StandardNormal.sample(rng)).collect()
}

/// Trains `cfg` on `images`, resuming from `ckpt` when it holds a checkpoint of this
/// configuration, and calls `on_epoch` after every epoch (its error stops the run).
pub fn train(
    cfg: &VaeConfig,
    images: &ImageSet,
    device: &Device,
    ckpt: Option<&CkptDir>,
    on_epoch: &mut dyn FnMut(&EpochStats) -> Result<()>,
) -> Result<VaeRun> {
    let trial = TrialConfig::Vae(cfg.clone());
    let (n, dim) = (images.len(), images.dim());
    let mut params = Params::new(device);
    let model = Vae::new(
        dim,
        cfg.hidden,
        cfg.latent,
        &mut params,
        &mut stream(cfg.seed, Purpose::Init, 0),
    )?;
    let mut adam = Adam::new(&params, cfg.lr)?;
    let mut history: Vec<EpochStats> = match ckpt {
        Some(dir) => dir.resume(&trial, &params, &mut adam, device)?.history,
        None => Vec::new(),
    };
    let resumed_from = history.len();
    // On the CPU the hand-written passes replace autograd (same loss, same gradients) and
    // read the pixels in place; elsewhere the images are copied to the device once.
    let mut fast = device
        .is_cpu()
        .then(|| FastVae::new(dim, cfg.hidden, cfg.latent));
    let x_all = match fast {
        Some(_) => None,
        None => Some(Tensor::from_slice(&images.pixels, (n, dim), device)?),
    };
    for epoch in resumed_from..cfg.epochs {
        let start = Instant::now();
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.shuffle(&mut stream(cfg.seed, Purpose::Shuffle, epoch as u64));
        let mut noise = stream(cfg.seed, Purpose::Noise, epoch as u64);
        let (mut recon, mut kl) = (0.0, 0.0);
        for idx in order.chunks(cfg.batch) {
            if let Some(fast) = fast.as_mut() {
                let eps = normal_values(idx.len() * cfg.latent, &mut noise);
                let (r, k) = fast.step(&params, &images.pixels, idx, &eps, cfg.kl_weight)?;
                adam.step_values(&params, fast.grads())?;
                recon += r;
                kl += k;
                continue;
            }
            let Some(x_all) = &x_all else {
                unreachable!("the images are on the device when the passes are not by hand")
            };
            let x = x_all.index_select(&Tensor::new(idx, device)?, 0)?;
            let eps = normal(idx.len(), cfg.latent, &mut noise, device)?;
            let t = model.loss_terms(&x, &eps)?;
            let loss = (&t.recon + (&t.kl * cfg.kl_weight)?)?.mean_all()?;
            adam.step(&params, &loss.backward()?)?;
            recon += f64::from(t.recon.sum_all()?.to_scalar::<f32>()?);
            kl += f64::from(t.kl.sum_all()?.to_scalar::<f32>()?);
        }
        let (recon, kl) = (recon / n as f64, kl / n as f64);
        let stats = EpochStats {
            epoch: epoch + 1,
            neg_elbo: recon + kl,
            recon,
            kl,
            seconds: start.elapsed().as_secs_f64(),
        };
        history.push(stats.clone());
        if let Some(dir) = ckpt {
            dir.save_state(&trial, epoch + 1, &params, &adam, &history, None)?;
        }
        // The callback may stop the run (cancelled trial, lost lease, shutdown).
        on_epoch(&stats)?;
    }
    Ok(VaeRun {
        history,
        model,
        params,
        resumed_from,
    })
}

/// Loads a model file (`model.safetensors` or a checkpoint) for inference; `what` names it
/// in errors.
pub fn load_model(bytes: &[u8], what: &str, device: &Device) -> Result<(VaeConfig, Vae, Params)> {
    let ck = crate::ckpt::from_bytes(bytes, what, device)?;
    let TrialConfig::Vae(c) = ck.config else {
        anyhow::bail!("{what} holds a {} model, not a VAE", ck.config.task())
    };
    let mut params = Params::new(device);
    let dim = 3 * (c.size as usize).pow(2);
    let model = Vae::new(
        dim,
        c.hidden,
        c.latent,
        &mut params,
        &mut stream(c.seed, Purpose::Init, 0),
    )?;
    params
        .load(&ck.tensors, MODEL_PREFIX)
        .with_context(|| format!("{what} does not fit its configuration"))?;
    Ok((c, model, params))
}
