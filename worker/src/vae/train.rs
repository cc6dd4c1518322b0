//! Training of the VAE: mini-batch Adam on BCE + kl_weight·KL with a fresh seeded shuffle
//! and fresh seeded noise every epoch, per-epoch negative ELBO (the kl_weight = 1 sum) with
//! its two parts, a checkpoint after each epoch when asked, and resumption from the newest
//! checkpoint of the same configuration.
//!
//! With a validation fraction, a seeded share of the images never trains: after every
//! epoch their negative ELBO is measured, and the weights of the epoch where it was lowest
//! are the ones the run ends with (and so the ones served). Checkpoints carry those
//! weights, so a resumed run ends with the same epoch's weights as an uninterrupted one.
//!
//! The validation −ELBO is a one-sample estimate with noise drawn once and reused every
//! epoch, rather than the loss at the latent mean: it estimates the same quantity as the
//! training −ELBO (decoding μ alone leaves out the encoder's variance and flatters the
//! reconstruction term), and with the noise fixed two epochs differ only by their weights,
//! so the comparison that picks the epoch is not swayed by a lucky draw.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use wick_common::trial::{TrialConfig, VaeConfig};

use crate::adam::Adam;
use crate::ckpt::{Best, CkptDir, MODEL_PREFIX, Resumed};
use crate::params::Params;
use crate::rng::{Purpose, stream};
use crate::vae::fast::FastVae;
use crate::vae::images::ImageSet;
use crate::vae::model::Vae;

/// Validation images evaluated at once: bounds the memory of the (rows, D) intermediates
/// whatever the size of the validation set.
const VAL_CHUNK: usize = 1024;

/// Metrics of one epoch, per image: the training terms averaged over the epoch's training
/// batches, the validation terms measured on the held-out images after the epoch.
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
    /// Validation negative ELBO (kl_weight = 1) with the epoch's final weights; `None`
    /// without a validation set (and in histories written before there was one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_neg_elbo: Option<f64>,
    /// Validation reconstruction term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_recon: Option<f64>,
    /// Validation KL term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_kl: Option<f64>,
    /// Wall time of the epoch's training steps.
    pub seconds: f64,
}

/// A trained VAE and how it got there.
pub struct VaeRun {
    /// Every epoch's metrics, including those before a resume.
    pub history: Vec<EpochStats>,
    /// The trained model, holding the weights of `selected_epoch`.
    pub model: Vae,
    /// Its parameters (the weights of `selected_epoch`).
    pub params: Params,
    /// Epoch the run resumed from (0 = started fresh).
    pub resumed_from: usize,
    /// 1-based epoch whose weights the run ends with: the lowest validation −ELBO, or the
    /// last epoch without a validation set.
    pub selected_epoch: usize,
    /// Images trained on.
    pub images_train: usize,
    /// Images held out for validation.
    pub images_val: usize,
}

/// Which images train and which validate, as indices into the image set (ascending).
#[derive(Debug, Clone, PartialEq)]
pub struct Holdout {
    /// Images the optimiser sees.
    pub train: Vec<u32>,
    /// Images only the validation −ELBO sees.
    pub val: Vec<u32>,
}

/// Holds out floor(`val`·n) of `n` images (at least one when `val` > 0), chosen by the
/// seeded holdout stream, so every run of a seed validates on the same images. `val` = 0
/// trains on every image, as before there was validation.
pub fn holdout(n: usize, val: f64, seed: u64) -> Result<Holdout> {
    if val <= 0.0 {
        return Ok(Holdout {
            train: (0..n as u32).collect(),
            val: Vec::new(),
        });
    }
    if n < 2 {
        bail!(
            "validation fraction {val} holds images out of training, but only {n} image(s) loaded; \
             the VAE needs at least 2 (one to train, one to validate): give it more images or use --val 0"
        );
    }
    // At most n/2 (val ≤ MAX_VAL = 0.5), so training always keeps at least one image.
    let k = ((val * n as f64).floor() as usize).clamp(1, n - 1);
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.shuffle(&mut stream(seed, Purpose::Holdout, 0));
    let (mut val, mut train) = (order[..k].to_vec(), order[k..].to_vec());
    val.sort_unstable();
    train.sort_unstable();
    Ok(Holdout { train, val })
}

/// The held-out images with their fixed noise, on the device.
struct Validation {
    /// Pixels (n_val, D).
    x: Tensor,
    /// Reparameterisation noise (n_val, Z), the same every epoch.
    eps: Tensor,
}

impl Validation {
    fn new(
        images: &ImageSet,
        idx: &[u32],
        latent: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let mut px = Vec::with_capacity(idx.len() * images.dim());
        for &i in idx {
            px.extend_from_slice(images.image(i as usize));
        }
        Ok(Validation {
            x: Tensor::from_vec(px, (idx.len(), images.dim()), device)?,
            eps: normal(
                idx.len(),
                latent,
                &mut stream(seed, Purpose::ValNoise, 0),
                device,
            )?,
        })
    }

    /// (recon, KL) per image of the held-out images under `model`'s current weights.
    fn measure(&self, model: &Vae) -> Result<(f64, f64)> {
        let n = self.x.dim(0)?;
        let (mut recon, mut kl) = (0.0, 0.0);
        for start in (0..n).step_by(VAL_CHUNK) {
            let len = VAL_CHUNK.min(n - start);
            let t = model.loss_terms(
                &self.x.narrow(0, start, len)?,
                &self.eps.narrow(0, start, len)?,
            )?;
            recon += f64::from(t.recon.sum_all()?.to_scalar::<f32>()?);
            kl += f64::from(t.kl.sum_all()?.to_scalar::<f32>()?);
        }
        Ok((recon / n as f64, kl / n as f64))
    }
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

/// Trains `cfg` on `images` (less the held-out share `cfg.val`), resuming from `ckpt` when
/// it holds a checkpoint of this configuration, and calls `on_epoch` after every epoch (its
/// error stops the run). The run ends holding the weights of the selected epoch.
pub fn train(
    cfg: &VaeConfig,
    images: &ImageSet,
    device: &Device,
    ckpt: Option<&CkptDir>,
    on_epoch: &mut dyn FnMut(&EpochStats) -> Result<()>,
) -> Result<VaeRun> {
    let trial = TrialConfig::Vae(cfg.clone());
    let dim = images.dim();
    let split = holdout(images.len(), cfg.val, cfg.seed)?;
    let n = split.train.len();
    let mut params = Params::new(device);
    let model = Vae::new(
        dim,
        cfg.hidden,
        cfg.latent,
        &mut params,
        &mut stream(cfg.seed, Purpose::Init, 0),
    )?;
    let mut adam = Adam::new(&params, cfg.lr)?;
    let Resumed {
        mut history,
        mut best,
    } = match ckpt {
        Some(dir) => dir.resume(&trial, &params, &mut adam, device)?,
        None => Resumed {
            history: Vec::new(),
            best: None,
        },
    };
    let resumed_from = history.len();
    let mut best_val = best
        .as_ref()
        .and_then(|b| history.iter().find(|e: &&EpochStats| e.epoch == b.epoch))
        .and_then(|e| e.val_neg_elbo);
    let validation = match split.val.is_empty() {
        true => None,
        false => Some(Validation::new(
            images, &split.val, cfg.latent, cfg.seed, device,
        )?),
    };
    // On the CPU the hand-written passes replace autograd (same loss, same gradients) and
    // read the pixels in place; elsewhere the images are copied to the device once.
    let mut fast = device
        .is_cpu()
        .then(|| FastVae::new(dim, cfg.hidden, cfg.latent));
    let x_all = match fast {
        Some(_) => None,
        None => Some(Tensor::from_slice(
            &images.pixels,
            (images.len(), dim),
            device,
        )?),
    };
    for epoch in resumed_from..cfg.epochs {
        let start = Instant::now();
        let mut order = split.train.clone();
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
        let seconds = start.elapsed().as_secs_f64();
        let (recon, kl) = (recon / n as f64, kl / n as f64);
        let val = validation.as_ref().map(|v| v.measure(&model)).transpose()?;
        let stats = EpochStats {
            epoch: epoch + 1,
            neg_elbo: recon + kl,
            recon,
            kl,
            val_neg_elbo: val.map(|(r, k)| r + k),
            val_recon: val.map(|(r, _)| r),
            val_kl: val.map(|(_, k)| k),
            seconds,
        };
        // Strictly lower: on a tie the earlier epoch stays. A NaN is never selected.
        if let Some(v) = stats.val_neg_elbo
            && v.is_finite()
            && best_val.is_none_or(|b| v < b)
        {
            best_val = Some(v);
            best = Some(Best {
                epoch: epoch + 1,
                tensors: params.snapshot(MODEL_PREFIX)?,
            });
        }
        history.push(stats.clone());
        if let Some(dir) = ckpt {
            dir.save_state(&trial, epoch + 1, &params, &adam, &history, best.as_ref())?;
        }
        // The callback may stop the run (cancelled trial, lost lease, shutdown).
        on_epoch(&stats)?;
    }
    let selected_epoch = match &best {
        Some(b) => {
            params
                .load(&b.tensors, MODEL_PREFIX)
                .context("the kept best-validation weights do not fit the model")?;
            b.epoch
        }
        None => history.len(),
    };
    Ok(VaeRun {
        history,
        model,
        params,
        resumed_from,
        selected_epoch,
        images_train: n,
        images_val: split.val.len(),
    })
}

/// Loads a model file (`model.safetensors` or a checkpoint) for inference; `what` names it
/// in errors.
pub fn load_model(bytes: &[u8], what: &str, device: &Device) -> Result<(VaeConfig, Vae, Params)> {
    let ck = crate::ckpt::from_bytes(bytes, what, device)?;
    let TrialConfig::Vae(c) = ck.config else {
        bail!("{what} holds a {} model, not a VAE", ck.config.task())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_is_seeded_disjoint_and_at_least_one_image() {
        let none = holdout(5, 0.0, 0).unwrap();
        assert_eq!((none.train, none.val), (vec![0, 1, 2, 3, 4], vec![]));

        let h = holdout(200, 0.15, 7).unwrap();
        assert_eq!((h.train.len(), h.val.len()), (170, 30));
        let mut all: Vec<u32> = h.train.iter().chain(&h.val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..200).collect::<Vec<_>>(), "every image on one side");
        assert_eq!(holdout(200, 0.15, 7).unwrap(), h, "same seed, same split");
        assert_ne!(holdout(200, 0.15, 8).unwrap().val, h.val);
        assert_ne!(
            h.val,
            (0..30).collect::<Vec<_>>(),
            "not simply the first files"
        );

        // floor(0.15 · 2) = 0, but a validation set needs an image.
        let two = holdout(2, 0.15, 0).unwrap();
        assert_eq!((two.train.len(), two.val.len()), (1, 1));
        let e = holdout(1, 0.15, 0).unwrap_err().to_string();
        assert!(e.contains("only 1 image") && e.contains("--val 0"), "{e}");
    }

    #[test]
    fn older_histories_without_validation_still_parse() {
        let old = r#"{"epoch":1,"neg_elbo":3.0,"recon":2.0,"kl":1.0,"seconds":0.5}"#;
        let e: EpochStats = serde_json::from_str(old).unwrap();
        assert_eq!((e.val_neg_elbo, e.val_recon, e.val_kl), (None, None, None));
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            old,
            "and write as before"
        );
    }
}
