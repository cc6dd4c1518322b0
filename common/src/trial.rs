//! A trial's configuration: which task it runs and every hyperparameter that changes its
//! result. The configuration (with the seed) is what identifies a trial: two trials with
//! the same configuration produce the same numbers, so its fingerprint names checkpoints
//! and, later, trial ids.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Largest hidden size accepted: beyond it a one-layer cell on this data only wastes time.
pub const MAX_HIDDEN: usize = 4096;
/// Largest number of epochs accepted for one trial.
pub const MAX_EPOCHS: usize = 100_000;
/// Largest VAE image side accepted (the MLP's first layer grows with its square).
pub const MAX_IMAGE_SIZE: u32 = 256;

/// The recurrent cell of a COVID-19 model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cell {
    /// One-layer Elman RNN with tanh.
    Rnn,
    /// Long short-term memory.
    Lstm,
    /// Gated recurrent unit.
    Gru,
}

impl Cell {
    /// The coursework's default hidden size for this cell.
    pub fn default_hidden(self) -> usize {
        match self {
            Cell::Rnn => 32,
            Cell::Lstm | Cell::Gru => 64,
        }
    }

    /// Lower-case name, as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Cell::Rnn => "rnn",
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
        }
    }
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Cell {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rnn" => Ok(Cell::Rnn),
            "lstm" => Ok(Cell::Lstm),
            "gru" => Ok(Cell::Gru),
            other => Err(Error::InvalidConfig(format!(
                "unknown cell '{other}'; use rnn, lstm or gru"
            ))),
        }
    }
}

/// Hyperparameters of a COVID-19 trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CovidConfig {
    /// Recurrent cell.
    pub cell: Cell,
    /// Hidden units of the cell.
    pub hidden: usize,
    /// Window length L (days of input).
    pub l: usize,
    /// Total training epochs.
    pub epochs: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Mini-batch size.
    pub batch: usize,
    /// Seed of the split, the initial weights and the per-epoch shuffles.
    pub seed: u64,
    /// Correlation threshold of set C.
    pub threshold: f64,
    /// First day (ISO date) of the windows.
    pub start: String,
    /// `random` (the coursework's) or `time` (last days of every country held out).
    pub split: String,
    /// Fraction of the training windows held out for validation: model selection and
    /// calibration use it, never the test set. 0 trains on every training window and
    /// serves the last epoch (left out of the JSON then, so older trials keep their ids).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub val: f64,
}

/// Hyperparameters of a VAE trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VaeConfig {
    /// Weight of the KL term in the training loss.
    pub kl_weight: f64,
    /// Images are resized to size × size.
    pub size: u32,
    /// Total training epochs.
    pub epochs: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Mini-batch size.
    pub batch: usize,
    /// Seed of the initial weights, shuffles and the reparameterisation noise.
    pub seed: u64,
    /// Hidden units of the encoder and decoder.
    pub hidden: usize,
    /// Latent dimensions.
    pub latent: usize,
    /// Use only the first N images (0 = all): for quick runs and tests.
    pub limit: usize,
    /// Fraction of the images held out for validation −ELBO, which picks the epoch whose
    /// weights are served. 0 trains on every image and serves the last epoch (left out of
    /// the JSON then, so older trials keep their ids).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub val: f64,
}

/// Largest validation fraction accepted: beyond it too little is left to train on.
pub const MAX_VAL: f64 = 0.5;

/// The default validation fraction of sweeps and `worker train`.
pub const DEFAULT_VAL: f64 = 0.15;

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

fn check_val(val: f64) -> Result<()> {
    check(val.is_finite() && (0.0..=MAX_VAL).contains(&val), || {
        format!("validation fraction must be between 0 and {MAX_VAL}, got {val}")
    })
}

/// One trial: a task and its hyperparameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "lowercase")]
pub enum TrialConfig {
    /// The COVID-19 next-day-increase classifier.
    Covid(CovidConfig),
    /// The variational autoencoder on faces.
    Vae(VaeConfig),
}

fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidConfig(msg()))
    }
}

fn check_common(epochs: usize, lr: f64, batch: usize) -> Result<()> {
    check((1..=MAX_EPOCHS).contains(&epochs), || {
        format!("epochs must be between 1 and {MAX_EPOCHS}, got {epochs}")
    })?;
    check(lr.is_finite() && lr > 0.0 && lr < 10.0, || {
        format!("learning rate must be a positive number below 10, got {lr}")
    })?;
    check(batch >= 1, || "batch size must be at least 1".into())
}

impl TrialConfig {
    /// `covid` or `vae`.
    pub fn task(&self) -> &'static str {
        match self {
            TrialConfig::Covid(_) => "covid",
            TrialConfig::Vae(_) => "vae",
        }
    }

    /// Total epochs of the trial.
    pub fn epochs(&self) -> usize {
        match self {
            TrialConfig::Covid(c) => c.epochs,
            TrialConfig::Vae(c) => c.epochs,
        }
    }

    /// Rejects hyperparameters that cannot be trained, with what to use instead.
    /// (Limits that depend on the data, such as L against the series length, are checked
    /// when the data is prepared.)
    pub fn validate(&self) -> Result<()> {
        match self {
            TrialConfig::Covid(c) => {
                check_common(c.epochs, c.lr, c.batch)?;
                check((1..=MAX_HIDDEN).contains(&c.hidden), || {
                    format!(
                        "hidden units must be between 1 and {MAX_HIDDEN}, got {}",
                        c.hidden
                    )
                })?;
                check(c.l >= 1, || "window length L must be at least 1".into())?;
                check(c.threshold.is_finite() && c.threshold.abs() <= 1.0, || {
                    format!(
                        "correlation threshold must be in [-1, 1], got {}",
                        c.threshold
                    )
                })?;
                check(
                    chrono::NaiveDate::parse_from_str(&c.start, "%Y-%m-%d").is_ok(),
                    || {
                        format!(
                            "start date must be a date written YYYY-MM-DD (such as 2020-03-01), got '{}'",
                            c.start
                        )
                    },
                )?;
                check(c.split == "random" || c.split == "time", || {
                    format!("split must be 'random' or 'time', got '{}'", c.split)
                })?;
                check_val(c.val)
            }
            TrialConfig::Vae(c) => {
                check_common(c.epochs, c.lr, c.batch)?;
                check(c.kl_weight.is_finite() && c.kl_weight >= 0.0, || {
                    format!(
                        "KL weight must be a finite number >= 0, got {}",
                        c.kl_weight
                    )
                })?;
                check((4..=MAX_IMAGE_SIZE).contains(&c.size), || {
                    format!(
                        "image size must be between 4 and {MAX_IMAGE_SIZE}, got {}",
                        c.size
                    )
                })?;
                check((1..=MAX_HIDDEN).contains(&c.hidden), || {
                    format!(
                        "hidden units must be between 1 and {MAX_HIDDEN}, got {}",
                        c.hidden
                    )
                })?;
                check((1..=1024).contains(&c.latent), || {
                    format!(
                        "latent dimensions must be between 1 and 1024, got {}",
                        c.latent
                    )
                })?;
                check_val(c.val)
            }
        }
    }

    /// The configuration without its epoch count: a checkpoint of a 30-epoch run can
    /// continue a 50-epoch run of the same configuration, so epochs are left out.
    pub fn without_epochs(&self) -> TrialConfig {
        let mut c = self.clone();
        match &mut c {
            TrialConfig::Covid(c) => c.epochs = 0,
            TrialConfig::Vae(c) => c.epochs = 0,
        }
        c
    }

    /// Stable 64-bit FNV-1a fingerprint of the canonical JSON, as 16 hex digits.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_string(self).expect("a config always serialises");
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in json.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covid() -> TrialConfig {
        TrialConfig::Covid(CovidConfig {
            cell: Cell::Lstm,
            hidden: 64,
            l: 40,
            epochs: 10,
            lr: 1e-3,
            batch: 64,
            seed: 0,
            threshold: 0.7,
            start: "2020-03-01".into(),
            split: "random".into(),
            val: 0.0,
        })
    }

    #[test]
    fn json_round_trip_keeps_task_tag() {
        let c = covid();
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"task\":\"covid\""), "{json}");
        assert_eq!(serde_json::from_str::<TrialConfig>(&json).unwrap(), c);
    }

    #[test]
    fn fingerprint_changes_with_seed_not_epochs() {
        let a = covid();
        let TrialConfig::Covid(mut b) = a.clone() else {
            unreachable!()
        };
        b.seed = 1;
        assert_ne!(a.fingerprint(), TrialConfig::Covid(b.clone()).fingerprint());
        b.seed = 0;
        b.epochs = 99;
        let b = TrialConfig::Covid(b);
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(
            a.without_epochs().fingerprint(),
            b.without_epochs().fingerprint()
        );
    }

    #[test]
    fn validation_names_the_bad_knob() {
        let TrialConfig::Covid(mut c) = covid() else {
            unreachable!()
        };
        c.start = "1 March 2020".into();
        let e = TrialConfig::Covid(c.clone())
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("YYYY-MM-DD") && e.contains("'1 March 2020'"),
            "{e}"
        );
        c.start = "2020-03-01".into();
        c.epochs = 0;
        let e = TrialConfig::Covid(c).validate().unwrap_err().to_string();
        assert!(e.contains("epochs"), "{e}");
        let v = TrialConfig::Vae(VaeConfig {
            kl_weight: f64::NAN,
            size: 28,
            epochs: 1,
            lr: 1e-3,
            batch: 128,
            seed: 0,
            hidden: 400,
            latent: 50,
            limit: 0,
            val: 0.0,
        });
        let e = v.validate().unwrap_err().to_string();
        assert!(e.contains("KL weight"), "{e}");
        assert!(
            "lstmx"
                .parse::<Cell>()
                .unwrap_err()
                .to_string()
                .contains("rnn, lstm or gru")
        );
    }
}
