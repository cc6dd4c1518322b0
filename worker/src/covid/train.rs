//! Training and evaluation of a sequence classifier on prepared windows: mini-batch Adam on
//! cross-entropy, a fresh seeded shuffle every epoch, full evaluation of the train,
//! validation and test sets after each epoch, a checkpoint after each epoch when asked, and
//! resumption from the newest checkpoint of the same configuration.
//!
//! Model selection: with a validation set, the weights of the epoch with the best
//! validation accuracy (ties: lower validation loss, then the earlier epoch) are kept and
//! become the trained model, and a temperature is fitted on the validation set. The test
//! set is never looked at to choose anything.

use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use wick_common::covid::{CovidData, Windows};
use wick_common::trial::{CovidConfig, TrialConfig};

use crate::adam::Adam;
use crate::ckpt::{Best, CkptDir, MODEL_PREFIX};
use crate::covid::bptt::{Bptt, time_major};
use crate::covid::calibrate::{self, Calibration};
use crate::covid::model::{SeqModel, batch_time_major};
use crate::params::Params;
use crate::rng::{Purpose, stream};

/// Rows per evaluation forward pass: bounds memory on large datasets.
const EVAL_CHUNK: usize = 8192;

/// Rows per forward pass of the hand-written evaluation, whose buffers keep every step: the
/// default batch size, so that evaluating does not grow the buffers training uses (nor push
/// them out of the cache between epochs).
const FAST_EVAL_CHUNK: usize = 64;

/// Metrics of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training cross-entropy over the epoch's mini-batches.
    pub train_loss: f64,
    /// Accuracy on the whole training set after the epoch.
    pub train_acc: f64,
    /// Cross-entropy on the test set after the epoch.
    pub test_loss: f64,
    /// Accuracy on the test set after the epoch.
    pub test_acc: f64,
    /// Cross-entropy on the validation set after the epoch (none without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    /// Accuracy on the validation set after the epoch (none without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_acc: Option<f64>,
    /// Wall time of the epoch's training steps (evaluation excluded).
    pub seconds: f64,
}

/// A trained model and how it got there.
pub struct CovidRun {
    /// Every epoch's metrics, including those before a resume.
    pub history: Vec<EpochStats>,
    /// The trained model: the selected epoch's weights.
    pub model: SeqModel,
    /// Its parameters.
    pub params: Params,
    /// Epoch the run resumed from (0 = started fresh).
    pub resumed_from: usize,
    /// The epoch whose weights `params` hold: the best on validation, or the last epoch
    /// without a validation set.
    pub selected_epoch: usize,
    /// Temperature fitted on the validation set (none without one: T = 1).
    pub calibration: Option<Calibration>,
    /// Test-set confusion matrix of the selected model: rows actual, columns predicted.
    pub confusion: [[u64; 2]; 2],
}

impl CovidRun {
    /// The temperature the model's probabilities are divided by (1 when uncalibrated).
    pub fn temperature(&self) -> f64 {
        self.calibration.map_or(1.0, |c| c.temperature)
    }

    /// The metrics of the selected epoch.
    pub fn selected(&self) -> Option<&EpochStats> {
        self.history.iter().find(|e| e.epoch == self.selected_epoch)
    }
}

/// Whether epoch `a` beats epoch `b` on validation: higher accuracy, then lower loss (the
/// earlier epoch wins a full tie, as `b` is the earlier one).
fn better(a: &EpochStats, b: &EpochStats) -> bool {
    match (a.val_acc, a.val_loss, b.val_acc, b.val_loss) {
        (Some(aa), Some(al), Some(ba), Some(bl)) => aa > ba || (aa == ba && al < bl),
        _ => false,
    }
}

/// Loss, accuracy and predictions of `model` on `w`.
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction predicted right.
    pub acc: f64,
    /// Predicted class per row.
    pub pred: Vec<u8>,
    /// Logit margin z₁ − z₀ per row (what temperature scaling divides).
    pub margin: Vec<f32>,
}

/// Evaluates `model` on every window of `w`.
pub fn evaluate(model: &SeqModel, w: &Windows, device: &Device) -> Result<Evaluation> {
    let (mut loss, mut pred, mut margin) = (0.0, Vec::with_capacity(w.len()), Vec::new());
    let all: Vec<usize> = (0..w.len()).collect();
    for chunk in all.chunks(EVAL_CHUNK) {
        let xt = batch_time_major(&w.x, w.l, chunk, device)?;
        let y: Vec<u32> = chunk.iter().map(|&i| u32::from(w.y[i])).collect();
        let y = Tensor::new(y.as_slice(), device)?;
        let logits = model.forward(&xt)?.detach();
        let l = candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()?;
        loss += f64::from(l) * chunk.len() as f64;
        for z in logits.to_vec2::<f32>()? {
            margin.push(z[1] - z[0]);
            pred.push(u8::from(z[1] > z[0]));
        }
    }
    Ok(Evaluation::of(loss, pred, margin, &w.y))
}

impl Evaluation {
    /// From the summed loss and the predictions of every window, with labels `y`.
    fn of(loss_sum: f64, pred: Vec<u8>, margin: Vec<f32>, y: &[u8]) -> Self {
        let right = pred.iter().zip(y).filter(|(p, y)| p == y).count();
        let n = y.len().max(1) as f64;
        Evaluation {
            loss: loss_sum / n,
            acc: right as f64 / n,
            pred,
            margin,
        }
    }
}

/// [`evaluate`] through the hand-written forward pass (CPU), with the current `params`.
fn evaluate_by_hand(bp: &mut Bptt, params: &Params, w: &Windows) -> Result<Evaluation> {
    bp.load(params)?;
    let (mut loss, mut pred, mut margin) = (0.0, Vec::with_capacity(w.len()), Vec::new());
    let all: Vec<usize> = (0..w.len()).collect();
    let mut xt = Vec::new();
    for chunk in all.chunks(FAST_EVAL_CHUNK) {
        time_major(&w.x, w.l, chunk, &mut xt);
        let logits = bp.forward(&xt, w.l, chunk.len());
        for (z, &i) in logits.chunks_exact(2).zip(chunk) {
            let (a, b) = (f64::from(z[0]), f64::from(z[1]));
            let m = a.max(b);
            let lse = m + ((a - m).exp() + (b - m).exp()).ln();
            loss += lse - if w.y[i] == 1 { b } else { a };
            pred.push(u8::from(z[1] > z[0]));
            margin.push(z[1] - z[0]);
        }
    }
    Ok(Evaluation::of(loss, pred, margin, &w.y))
}

/// Trains `cfg` on `data`, resuming from `ckpt` when it holds a checkpoint of this
/// configuration, and calls `on_epoch` after every epoch (its error stops the run).
pub fn train(
    cfg: &CovidConfig,
    data: &CovidData,
    device: &Device,
    ckpt: Option<&CkptDir>,
    on_epoch: &mut dyn FnMut(&EpochStats) -> Result<()>,
) -> Result<CovidRun> {
    let trial = TrialConfig::Covid(cfg.clone());
    let mut params = Params::new(device);
    let model = SeqModel::new(
        cfg.cell,
        cfg.hidden,
        &mut params,
        &mut stream(cfg.seed, Purpose::Init, 0),
    )?;
    let mut adam = Adam::new(&params, cfg.lr)?;
    let (mut history, mut best): (Vec<EpochStats>, Option<Best>) = match ckpt {
        Some(dir) => {
            let r = dir.resume(&trial, &params, &mut adam, device)?;
            (r.history, r.best)
        }
        None => (Vec::new(), None),
    };
    let has_val = !data.val.is_empty();
    let resumed_from = history.len();
    let train = &data.train;
    let n = train.len();
    // On the CPU the hand-written passes replace autograd (same numbers, much faster);
    // other devices keep the tensor path.
    let mut fast = device.is_cpu().then(|| Bptt::new(cfg.cell, cfg.hidden));
    let (mut xt, mut yb) = (Vec::new(), Vec::new());
    let eval = |fast: &mut Option<Bptt>, w: &Windows| match fast {
        Some(bp) => evaluate_by_hand(bp, &params, w),
        None => evaluate(&model, w, device),
    };
    for epoch in resumed_from..cfg.epochs {
        let start = Instant::now();
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut stream(cfg.seed, Purpose::Shuffle, epoch as u64));
        let mut total = 0.0;
        for idx in order.chunks(cfg.batch) {
            let loss = match fast.as_mut() {
                Some(bp) => {
                    time_major(&train.x, train.l, idx, &mut xt);
                    yb.clear();
                    yb.extend(idx.iter().map(|&i| train.y[i]));
                    bp.load(&params)?;
                    let loss = bp.loss_and_grads(&xt, &yb, train.l);
                    adam.step_values(&params, bp.grads())?;
                    loss
                }
                None => {
                    let xt = batch_time_major(&train.x, train.l, idx, device)?;
                    let y: Vec<u32> = idx.iter().map(|&i| u32::from(train.y[i])).collect();
                    let y = Tensor::new(y.as_slice(), device)?;
                    let loss = candle_nn::loss::cross_entropy(&model.forward(&xt)?, &y)?;
                    adam.step(&params, &loss.backward()?)?;
                    loss.to_scalar::<f32>()?
                }
            };
            total += f64::from(loss) * idx.len() as f64;
        }
        let seconds = start.elapsed().as_secs_f64();
        let tr = eval(&mut fast, train)?;
        let te = eval(&mut fast, &data.test)?;
        let va = if has_val {
            Some(eval(&mut fast, &data.val)?)
        } else {
            None
        };
        let stats = EpochStats {
            epoch: epoch + 1,
            train_loss: total / n.max(1) as f64,
            train_acc: tr.acc,
            test_loss: te.loss,
            test_acc: te.acc,
            val_loss: va.as_ref().map(|v| v.loss),
            val_acc: va.as_ref().map(|v| v.acc),
            seconds,
        };
        let leader = best
            .as_ref()
            .and_then(|b| history.iter().find(|e| e.epoch == b.epoch));
        if has_val && leader.is_none_or(|l| better(&stats, l)) {
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
    // The served model is the selected epoch's; the optimizer state is not needed past here.
    let selected_epoch = match &best {
        Some(b) => {
            params.load(&b.tensors, MODEL_PREFIX)?;
            b.epoch
        }
        None => history.len(),
    };
    let calibration = if has_val {
        let va = eval(&mut fast, &data.val)?;
        calibrate::fit(&va.margin, &data.val.y)
    } else {
        None
    };
    let te = eval(&mut fast, &data.test)?;
    let mut confusion = [[0u64; 2]; 2];
    for (&p, &y) in te.pred.iter().zip(&data.test.y) {
        confusion[usize::from(y)][usize::from(p)] += 1;
    }
    Ok(CovidRun {
        history,
        model,
        params,
        resumed_from,
        selected_epoch,
        calibration,
        confusion,
    })
}

/// A covid model loaded for inference.
pub struct Loaded {
    /// Its trial's configuration.
    pub config: CovidConfig,
    /// The model.
    pub model: SeqModel,
    /// Its parameters.
    pub params: Params,
    /// The temperature its probabilities are divided by (1 for files that record none).
    pub temperature: f64,
}

/// Loads a model file (`model.safetensors` or a checkpoint) for inference; `what` names it
/// in errors.
pub fn load_model(bytes: &[u8], what: &str, device: &Device) -> Result<Loaded> {
    let ck = crate::ckpt::from_bytes(bytes, what, device)?;
    let TrialConfig::Covid(c) = ck.config else {
        anyhow::bail!("{what} holds a {} model, not a covid one", ck.config.task())
    };
    let mut params = Params::new(device);
    let model = SeqModel::new(
        c.cell,
        c.hidden,
        &mut params,
        &mut stream(c.seed, Purpose::Init, 0),
    )?;
    params
        .load(&ck.tensors, MODEL_PREFIX)
        .with_context(|| format!("{what} does not fit its configuration"))?;
    let temperature = ck.temperature.unwrap_or(1.0);
    Ok(Loaded {
        config: c,
        model,
        params,
        temperature,
    })
}
