//! Checkpoints as safetensors files: model parameters, optimizer state, and in the
//! metadata the trial configuration, the epoch reached, the optimizer's step count and the
//! metric history so far (so the curves of a resumed run are whole).
//!
//! Files are written to a temporary name and renamed, so a crash never leaves a half-written
//! checkpoint under its real name. Only the newest few are kept.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use candle_core::{Device, Tensor};
use wick_common::trial::TrialConfig;

use crate::adam::Adam;
use crate::params::Params;

/// Prefix of the model parameters' names in checkpoint and model files.
pub const MODEL_PREFIX: &str = "model.";

/// Prefix, before [`MODEL_PREFIX`], of the kept best-validation weights in a checkpoint.
const BEST_PREFIX: &str = "best.";

/// Format tag stored in every file, checked on load.
const FORMAT: &str = "wick-checkpoint-1";

/// Everything a checkpoint holds, decoded.
pub struct Checkpoint {
    /// The trial configuration the checkpoint belongs to.
    pub config: TrialConfig,
    /// Epochs completed when it was written.
    pub epoch: usize,
    /// Adam steps taken.
    pub adam_step: u64,
    /// Per-epoch metrics so far, as JSON (task-specific shape).
    pub history: serde_json::Value,
    /// The weights validation ranked best so far, when the run keeps them.
    pub best: Option<Best>,
    /// The temperature a calibrated classifier's logits are divided by, when recorded.
    pub temperature: Option<f64>,
    /// All tensors: `model.*` parameters and `adam.*` optimizer state.
    pub tensors: HashMap<String, Tensor>,
}

/// The weights a run will serve: those of the epoch its validation set ranks best so far.
/// A checkpoint carries them, so a resumed run still serves the best epoch before the
/// interruption.
#[derive(Clone)]
pub struct Best {
    /// 1-based epoch the weights are from.
    pub epoch: usize,
    /// Parameters named as [`Params::tensors`] with [`MODEL_PREFIX`] gives them (copies).
    pub tensors: HashMap<String, Tensor>,
}

/// What [`CkptDir::resume`] restores besides the model and optimizer.
pub struct Resumed<H> {
    /// Per-epoch metrics up to the checkpoint.
    pub history: Vec<H>,
    /// The best-validation weights up to the checkpoint, when it kept them.
    pub best: Option<Best>,
}

/// Serialises tensors and metadata to safetensors bytes.
pub fn to_bytes(
    tensors: &HashMap<String, Tensor>,
    meta: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let mut host: Vec<(String, Tensor)> = Vec::with_capacity(tensors.len());
    for (k, t) in tensors {
        host.push((k.clone(), t.to_device(&Device::Cpu)?.contiguous()?));
    }
    host.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(safetensors::serialize(host, Some(meta))?)
}

/// Writes bytes to `path` atomically (temporary file in the same folder, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename to {}", path.display()))?;
    Ok(())
}

/// Metadata common to checkpoints and final models.
pub fn metadata(config: &TrialConfig, epoch: usize) -> HashMap<String, String> {
    HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        (
            "config".to_string(),
            serde_json::to_string(config).expect("config serialises"),
        ),
        (
            "fingerprint".to_string(),
            config.without_epochs().fingerprint(),
        ),
        ("epoch".to_string(), epoch.to_string()),
    ])
}

/// Decodes a checkpoint or final model; `what` names it in errors (a path or a key).
pub fn from_bytes(bytes: &[u8], what: &str, device: &Device) -> Result<Checkpoint> {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).with_context(|| {
        format!("{what} is not a readable safetensors file (truncated or corrupt?); delete it to start over")
    })?;
    let meta = header.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        bail!("{what} is not a wick checkpoint (no '{FORMAT}' tag in its metadata)");
    }
    let get = |k: &str| {
        meta.get(k)
            .with_context(|| format!("{what}: metadata '{k}' missing"))
    };
    let config: TrialConfig = serde_json::from_str(get("config")?)
        .with_context(|| format!("{what}: bad config metadata"))?;
    let epoch = get("epoch")?
        .parse()
        .with_context(|| format!("{what}: bad epoch"))?;
    let adam_step = meta
        .get("adam_step")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(0);
    let history = match meta.get("history") {
        Some(h) => serde_json::from_str(h).with_context(|| format!("{what}: bad history"))?,
        None => serde_json::Value::Null,
    };
    let mut tensors = candle_core::safetensors::load_buffer(bytes, device)
        .with_context(|| format!("{what}: cannot decode its tensors (truncated or corrupt?)"))?;
    let best = match meta.get("best_epoch") {
        Some(e) => {
            let epoch = e
                .parse()
                .with_context(|| format!("{what}: bad best_epoch"))?;
            let names: Vec<String> = tensors
                .keys()
                .filter(|k| k.starts_with(BEST_PREFIX))
                .cloned()
                .collect();
            let tensors = names
                .into_iter()
                .filter_map(|k| {
                    let t = tensors.remove(&k)?;
                    Some((k[BEST_PREFIX.len()..].to_string(), t))
                })
                .collect();
            Some(Best { epoch, tensors })
        }
        None => None,
    };
    let temperature = match meta.get("temperature") {
        Some(t) => {
            let t: f64 = t
                .parse()
                .with_context(|| format!("{what}: bad temperature '{t}'"))?;
            if !(t.is_finite() && t > 0.0) {
                bail!("{what}: temperature {t} is not a positive number");
            }
            Some(t)
        }
        None => None,
    };
    Ok(Checkpoint {
        config,
        epoch,
        adam_step,
        history,
        tensors,
        best,
        temperature,
    })
}

/// A folder of `epoch-<n>.safetensors` files for one trial.
pub struct CkptDir {
    /// The folder.
    dir: PathBuf,
    /// How many of the newest checkpoints to keep.
    keep: usize,
    /// The least time between two checkpoints (zero: one after every epoch).
    every: Duration,
    /// When the last checkpoint was written (or the folder opened).
    last: Cell<Instant>,
}

impl CkptDir {
    /// Opens (creating) `dir`, keeping the newest `keep` checkpoints (at least 1).
    pub fn open(dir: &Path, keep: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(CkptDir {
            dir: dir.to_path_buf(),
            keep: keep.max(1),
            every: Duration::ZERO,
            last: Cell::new(Instant::now()),
        })
    }

    /// Writes a checkpoint only once `every` has passed since the last one (or since the
    /// folder was opened), and always after the trial's last epoch. Tiny epochs then do
    /// not each pay for a checkpoint and its upload; a failure costs at most `every` of
    /// training plus the epoch in progress.
    pub fn every(mut self, every: Duration) -> Self {
        self.every = every;
        self
    }

    /// Whether `epoch` gets a checkpoint (see [`CkptDir::every`]).
    fn due(&self, config: &TrialConfig, epoch: usize) -> bool {
        epoch >= config.epochs() || self.last.get().elapsed() >= self.every
    }

    /// The file of `epoch`'s checkpoint (present only when that epoch wrote one).
    pub fn path_of(&self, epoch: usize) -> PathBuf {
        self.dir.join(format!("epoch-{epoch}.safetensors"))
    }

    fn epochs(&self) -> Result<Vec<(usize, PathBuf)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)
            .with_context(|| format!("cannot list {}", self.dir.display()))?
        {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let epoch = name
                .strip_prefix("epoch-")
                .and_then(|r| r.strip_suffix(".safetensors"))
                .and_then(|n| n.parse().ok());
            if let Some(n) = epoch {
                out.push((n, path));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The newest checkpoint, if any. One of another configuration is an error: resuming
    /// from it would silently mix two trials.
    pub fn latest(&self, config: &TrialConfig, device: &Device) -> Result<Option<Checkpoint>> {
        let Some((_, path)) = self.epochs()?.pop() else {
            return Ok(None);
        };
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let ck = from_bytes(&bytes, &path.display().to_string(), device)?;
        if ck.config.without_epochs() != config.without_epochs() {
            bail!(
                "{} belongs to another configuration ({}); use another --ckpt-dir or delete it",
                path.display(),
                serde_json::to_string(&ck.config)?
            );
        }
        Ok(Some(ck))
    }

    /// Restores `params`, `adam`, the metric history and the best weights from the newest
    /// checkpoint of `config` (an empty history when there is none), so training
    /// continues where it stopped.
    pub fn resume<H: serde::de::DeserializeOwned>(
        &self,
        config: &TrialConfig,
        params: &Params,
        adam: &mut Adam,
        device: &Device,
    ) -> Result<Resumed<H>> {
        let Some(ck) = self.latest(config, device)? else {
            return Ok(Resumed {
                history: Vec::new(),
                best: None,
            });
        };
        params
            .load(&ck.tensors, MODEL_PREFIX)
            .context("checkpoint does not fit the model")?;
        adam.import(params, &ck.tensors, ck.adam_step)?;
        let mut history: Vec<H> =
            serde_json::from_value(ck.history).context("checkpoint history is unreadable")?;
        history.truncate(ck.epoch);
        Ok(Resumed {
            history,
            best: ck.best,
        })
    }

    /// Checkpoints the model and optimizer after `epoch`, with the history so far and the
    /// best-validation weights when the run keeps them.
    pub fn save_state<H: serde::Serialize>(
        &self,
        config: &TrialConfig,
        epoch: usize,
        params: &Params,
        adam: &Adam,
        history: &[H],
        best: Option<&Best>,
    ) -> Result<()> {
        // Skipped epochs skip the export too, not only the write.
        if !self.due(config, epoch) {
            return Ok(());
        }
        let (mut tensors, step) = adam.export(params);
        tensors.extend(params.tensors(MODEL_PREFIX));
        let mut meta = HashMap::new();
        if let Some(b) = best {
            tensors.extend(
                b.tensors
                    .iter()
                    .map(|(k, t)| (format!("{BEST_PREFIX}{k}"), t.clone())),
            );
            meta.insert("best_epoch".to_string(), b.epoch.to_string());
        }
        self.save(
            config,
            epoch,
            step,
            &serde_json::to_value(history)?,
            &tensors,
            meta,
        )
    }

    /// Writes the checkpoint of `epoch` (when one is due, see [`CkptDir::every`]) and
    /// removes the older ones beyond `keep`.
    pub fn save(
        &self,
        config: &TrialConfig,
        epoch: usize,
        adam_step: u64,
        history: &serde_json::Value,
        tensors: &HashMap<String, Tensor>,
        extra: HashMap<String, String>,
    ) -> Result<()> {
        if !self.due(config, epoch) {
            return Ok(());
        }
        self.last.set(Instant::now());
        let mut meta = metadata(config, epoch);
        meta.extend(extra);
        meta.insert("adam_step".into(), adam_step.to_string());
        meta.insert("history".into(), history.to_string());
        let bytes = to_bytes(tensors, meta)?;
        write_atomic(&self.path_of(epoch), &bytes)?;
        let all = self.epochs()?;
        for (_, old) in all.iter().take(all.len().saturating_sub(self.keep)) {
            std::fs::remove_file(old)
                .with_context(|| format!("cannot remove {}", old.display()))?;
        }
        Ok(())
    }
}
