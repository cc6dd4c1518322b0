//! `worker train`: one trial of either task, end to end, on this machine — load the data,
//! train (resuming from `--ckpt-dir` when it holds a checkpoint of the same configuration),
//! write the artifacts into `--out`, and print a summary (one JSON object with `--json`).
//! The distributed worker runs trials through the same functions.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use wick_common::covid::{CaseTable, PrepOptions, Split, prepare};
use wick_common::trial::{Cell, CovidConfig, DEFAULT_VAL, TrialConfig, VaeConfig};

use crate::ckpt::CkptDir;
use crate::{covid, data, device, progress, vae};

/// Which coursework task a trial runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Task {
    /// COVID-19 next-day-increase classifier (RNN / LSTM / GRU).
    Covid,
    /// Variational autoencoder on face images.
    Vae,
}

/// Flags of `worker train`.
#[derive(Debug, Args)]
#[command(after_long_help = "EXAMPLES:\n  \
worker train --task covid --cell lstm --hidden 64 --l 40 --epochs 500 --seed 0 --data ../shared/data --out out/lstm\n  \
worker train --task vae --kl 1 --size 28 --epochs 30 --seed 0 --data ../shared/data --out out/vae --json")]
pub struct TrainArgs {
    /// Task to train.
    #[arg(long, value_enum)]
    pub task: Task,

    /// [covid] Recurrent cell: rnn, lstm or gru.
    #[arg(long, default_value = "lstm")]
    pub cell: Cell,
    /// Hidden units [default: covid rnn 32, lstm 64, gru 64; vae 400].
    #[arg(long)]
    pub hidden: Option<usize>,
    /// [covid] Window length L: days of input before the day predicted.
    #[arg(long, default_value_t = 40)]
    pub l: usize,
    /// [covid] Set C keeps countries whose new cases correlate above this with another country's.
    #[arg(long, default_value_t = 0.7)]
    pub threshold: f64,
    /// [covid] First day of the windows (YYYY-MM-DD).
    #[arg(long, default_value = "2020-03-01")]
    pub start_date: String,
    /// [covid] How windows are split 70/30. `random` (the coursework's) shuffles all windows,
    /// so overlapping windows of one country land on both sides and flatter test accuracy;
    /// `time` holds out the last days of every country, an honest forecast test.
    #[arg(long, default_value = "random")]
    pub split: Split,

    /// [vae] Weight of the KL term in the loss (0, 1 and 100 in the coursework).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub kl: f64,
    /// [vae] Images are resized to SIZE × SIZE.
    #[arg(long, default_value_t = 28)]
    pub size: u32,
    /// [vae] Latent dimensions.
    #[arg(long, default_value_t = 50)]
    pub latent: usize,
    /// [vae] Use only the first N images (0 = all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,

    /// Fraction of the training data held out for validation: it picks the epoch whose
    /// weights are served and (covid) calibrates the probabilities; 0 = none, serve the
    /// last epoch.
    #[arg(long, default_value_t = DEFAULT_VAL)]
    pub val: f64,
    /// Training epochs in total (a resumed run stops at the same total) [default: covid 500, vae 30].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Mini-batch size [default: covid 64, vae 128].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Seed of the split, initial weights, shuffles and noise: same seed, same numbers.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Data folder laid out as covid/covid_19.csv and anime-faces/.
    #[arg(long, env = "WICK_DATA")]
    pub data: Option<PathBuf>,
    /// COVID-19 cumulative-cases CSV (coursework, JHU CSSE wide or Date,Country,Confirmed long layout).
    #[arg(long)]
    pub covid_csv: Option<PathBuf>,
    /// Folder of PNG / JPEG face images.
    #[arg(long)]
    pub faces: Option<PathBuf>,
    /// Folder for the artifacts (pictures, forecast.json, model.safetensors).
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Write a checkpoint here after every epoch, and resume from the newest one of the same configuration.
    #[arg(long)]
    pub ckpt_dir: Option<PathBuf>,
    /// How many of the newest checkpoints to keep.
    #[arg(long, default_value_t = 2)]
    pub keep_ckpts: usize,
    /// Device: cpu, cuda:N, or auto (a GPU if there is one).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// CPU threads for the tensor math [default: covid 1, vae all cores]. The COVID-19
    /// models' small matrices run slower when split across threads, so their CPU training
    /// pass is single-threaded whatever this says; the VAE's larger ones gain from more.
    #[arg(long, env = "WICK_THREADS")]
    pub threads: Option<usize>,
    /// Print one JSON object on stdout at the end (and no progress bar).
    #[arg(long)]
    pub json: bool,
    /// After training a covid model, also time its forecast for every country (median of
    /// 50 calls) and report it as `infer_all_countries_ms` (used by bench/train.sh).
    #[arg(long)]
    pub time_inference: bool,
}

impl TrainArgs {
    /// Threads to use (see `--threads`); 0 means all cores.
    pub fn threads(&self) -> usize {
        self.threads.unwrap_or(match self.task {
            Task::Covid => 1,
            Task::Vae => 0,
        })
    }

    /// The trial configuration these flags describe, validated.
    pub fn config(&self) -> Result<TrialConfig> {
        let cfg = match self.task {
            Task::Covid => TrialConfig::Covid(CovidConfig {
                cell: self.cell,
                hidden: self.hidden.unwrap_or(self.cell.default_hidden()),
                l: self.l,
                epochs: self.epochs.unwrap_or(500),
                lr: self.lr,
                batch: self.batch.unwrap_or(64),
                seed: self.seed,
                threshold: self.threshold,
                start: self.start_date.clone(),
                split: self.split.to_string(),
                val: self.val,
            }),
            Task::Vae => TrialConfig::Vae(VaeConfig {
                kl_weight: self.kl,
                size: self.size,
                epochs: self.epochs.unwrap_or(30),
                lr: self.lr,
                batch: self.batch.unwrap_or(128),
                seed: self.seed,
                hidden: self.hidden.unwrap_or(400),
                latent: self.latent,
                limit: self.limit,
                val: self.val,
            }),
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Median of a non-empty list (0 for an empty one).
fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Runs `worker train` and returns the JSON summary.
pub fn run(args: &TrainArgs) -> Result<Value> {
    let config = args.config()?;
    let dev = device::parse(&args.device)?;
    let ckpt = args
        .ckpt_dir
        .as_deref()
        .map(|d| CkptDir::open(d, args.keep_ckpts))
        .transpose()?;
    let data = match &config {
        TrialConfig::Covid(_) => data::covid_csv(args.data.as_deref(), args.covid_csv.as_deref())?,
        TrialConfig::Vae(_) => data::faces_dir(args.data.as_deref(), args.faces.as_deref())?,
    };
    let pb = progress::bar(config.epochs() as u64, args.json, &label(&config));
    let summary = run_trial(&config, &data, &args.out, ckpt.as_ref(), &dev, &mut |e| {
        pb.set_position(e.epoch as u64);
        pb.set_message(e.headline.clone());
        Ok(())
    });
    pb.finish_and_clear();
    let mut summary = summary?;
    if let (true, TrialConfig::Covid(c)) = (args.time_inference, &config) {
        summary["infer_all_countries_ms"] = json!(forecast_ms(&data, c, &args.out, &dev)?);
    }
    Ok(summary)
}

/// A short name of a trial for progress bars and logs.
pub fn label(config: &TrialConfig) -> String {
    match config {
        TrialConfig::Covid(c) => format!("{} {} L={}", c.cell, c.hidden, c.l),
        TrialConfig::Vae(c) => format!("vae {}x{} kl={}", c.size, c.size, c.kl_weight),
    }
}

/// One finished epoch of a trial, task-independent.
pub struct EpochEvent {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Total epochs of the trial.
    pub epochs: usize,
    /// Epoch the run resumed from (0 = from scratch).
    pub resumed_from: usize,
    /// The epoch's metrics as JSON (the task's `EpochStats`).
    pub metrics: Value,
    /// One line for a person, e.g. "test acc 0.690".
    pub headline: String,
}

/// Runs one trial from local data (`data` is the COVID-19 CSV or the image folder),
/// writing artifacts into `out` and checkpoints into `ckpt`, calling `on_epoch` after each
/// epoch (its error stops the run). Returns the JSON summary. `worker train` and the
/// distributed worker both run trials through here.
pub fn run_trial(
    config: &TrialConfig,
    data: &Path,
    out: &Path,
    ckpt: Option<&CkptDir>,
    dev: &candle_core::Device,
    on_epoch: &mut dyn FnMut(&EpochEvent) -> Result<()>,
) -> Result<Value> {
    config.validate()?;
    match config {
        TrialConfig::Covid(c) => run_covid(config, c, data, out, dev, ckpt, on_epoch),
        TrialConfig::Vae(c) => run_vae(config, c, data, out, dev, ckpt, on_epoch),
    }
}

/// Reads and prepares the COVID-19 data of `c`.
pub fn load_covid(
    path: &Path,
    c: &CovidConfig,
) -> Result<(CaseTable, wick_common::covid::CovidData)> {
    let table = CaseTable::from_path(path)?;
    let opts = PrepOptions {
        l: c.l,
        threshold: c.threshold,
        start: c
            .start
            .parse()
            .with_context(|| format!("--start-date '{}' is not a YYYY-MM-DD date", c.start))?,
        seed: c.seed,
        split: c.split.parse()?,
        val_fraction: c.val,
        ..PrepOptions::default()
    };
    let data = prepare(&table, &opts)?;
    Ok((table, data))
}

fn run_covid(
    config: &TrialConfig,
    c: &CovidConfig,
    csv: &Path,
    out: &Path,
    dev: &candle_core::Device,
    ckpt: Option<&CkptDir>,
    on_epoch: &mut dyn FnMut(&EpochEvent) -> Result<()>,
) -> Result<Value> {
    let (table, data) = load_covid(csv, c)?;
    eprintln!(
        "covid: {} countries, |C| = {}, L = {}: {} train / {} validation / {} test windows; test class balance {:.3} increase, majority baseline {:.3}",
        table.names.len(),
        data.members.len(),
        c.l,
        data.train.len(),
        data.val.len(),
        data.test.len(),
        data.test.positive_fraction(),
        data.test.majority_baseline()
    );
    let mut resumed_from = None;
    let run = covid::train::train(c, &data, dev, ckpt, &mut |e| {
        let from = *resumed_from.get_or_insert(e.epoch - 1);
        on_epoch(&EpochEvent {
            epoch: e.epoch,
            epochs: c.epochs,
            resumed_from: from,
            metrics: serde_json::to_value(e)?,
            headline: match e.val_acc {
                Some(v) => format!("val acc {v:.3}, test acc {:.3}", e.test_acc),
                None => format!("test acc {:.3}", e.test_acc),
            },
        })
    })?;
    let files = covid::artifacts::write_all(out, config, &table, &data, &run, dev)?;
    let h = &run.history;
    let last = h.last().context("no epoch was trained")?;
    let best = h
        .iter()
        .max_by(|a, b| {
            a.test_acc
                .total_cmp(&b.test_acc)
                .then(b.epoch.cmp(&a.epoch))
        })
        .unwrap_or(last);
    let med = median(h.iter().map(|e| e.seconds).collect());
    let sel = run.selected().unwrap_or(last);
    let cal = run.calibration;
    Ok(json!({
        "task": "covid", "cell": c.cell, "hidden": c.hidden, "l": c.l, "epochs": c.epochs, "seed": c.seed,
        "split": c.split, "val": c.val, "device": device::describe(dev),
        "countries": table.names.len(), "countries_in_c": data.members.len(),
        "windows_train": data.train.len(), "windows_val": data.val.len(), "windows_test": data.test.len(),
        "test_majority_baseline": data.test.majority_baseline(),
        "train_positive_fraction": data.train.positive_fraction(),
        "selected_epoch": run.selected_epoch,
        "selected_val_acc": sel.val_acc, "selected_val_loss": sel.val_loss,
        "selected_test_acc": sel.test_acc, "selected_test_loss": sel.test_loss,
        "temperature": run.temperature(),
        "val_nll_before": cal.map(|c| c.nll_before), "val_nll_after": cal.map(|c| c.nll_after),
        "val_ece_before": cal.map(|c| c.ece_before), "val_ece_after": cal.map(|c| c.ece_after),
        "final_train_acc": last.train_acc, "final_test_acc": last.test_acc,
        "final_train_loss": last.train_loss, "final_test_loss": last.test_loss,
        "best_test_acc": best.test_acc, "best_epoch": best.epoch,
        "confusion": run.confusion,
        "resumed_from_epoch": run.resumed_from,
        "epoch_seconds_median": med,
        "train_samples_per_second": if med > 0.0 { data.train.len() as f64 / med } else { 0.0 },
        "params": run.params.count(),
        "out": out, "artifacts": files,
    }))
}

/// Median wall time (ms) of one forecast for every country (packing, forward, softmax,
/// copy out), over 50 calls after 5 warm-ups: the figure the benchmarks compare with
/// PyTorch's end-to-end inference.
fn forecast_ms(csv: &Path, c: &CovidConfig, out: &Path, dev: &candle_core::Device) -> Result<f64> {
    let (table, data) = load_covid(csv, c)?;
    let model = out.join("model.safetensors");
    let bytes = std::fs::read(&model).with_context(|| format!("reading {}", model.display()))?;
    let m = covid::train::load_model(&bytes, &model.display().to_string(), dev)?;
    let mut times = Vec::with_capacity(50);
    for i in 0..55 {
        let start = std::time::Instant::now();
        covid::artifacts::forecast(&m.model, &m.params, m.temperature, &table, &data, dev)?;
        if i >= 5 {
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(median(times))
}

fn run_vae(
    config: &TrialConfig,
    c: &VaeConfig,
    dir: &Path,
    out: &Path,
    dev: &candle_core::Device,
    ckpt: Option<&CkptDir>,
    on_epoch: &mut dyn FnMut(&EpochEvent) -> Result<()>,
) -> Result<Value> {
    let images = vae::images::load_folder(dir, c.size, c.limit)?;
    // Split here too (train repeats it) so that too few images fail before anything else.
    let split = vae::train::holdout(images.len(), c.val, c.seed)?;
    eprintln!(
        "vae: {} images of {}×{} from {}: {} train / {} validation",
        images.len(),
        c.size,
        c.size,
        dir.display(),
        split.train.len(),
        split.val.len()
    );
    let mut resumed_from = None;
    let run = vae::train::train(c, &images, dev, ckpt, &mut |e| {
        let from = *resumed_from.get_or_insert(e.epoch - 1);
        on_epoch(&EpochEvent {
            epoch: e.epoch,
            epochs: c.epochs,
            resumed_from: from,
            metrics: serde_json::to_value(e)?,
            headline: match e.val_neg_elbo {
                Some(v) => format!("-ELBO {:.1}, val {v:.1}", e.neg_elbo),
                None => format!("-ELBO {:.1}", e.neg_elbo),
            },
        })
    })?;
    let files = vae::artifacts::write_all(out, config, &images, &run, dev)?;
    let h = &run.history;
    let last = h.last().context("no epoch was trained")?;
    let selected = h
        .iter()
        .find(|e| e.epoch == run.selected_epoch)
        .context("the selected epoch is not in the history")?;
    let med = median(h.iter().map(|e| e.seconds).collect());
    Ok(json!({
        "task": "vae", "kl_weight": c.kl_weight, "size": c.size, "epochs": c.epochs, "seed": c.seed,
        "val": c.val, "device": device::describe(dev),
        "images": images.len(), "skipped_files": images.skipped.len(),
        "images_train": run.images_train, "images_val": run.images_val,
        "skipped": images.skipped.iter().map(|(file, why)| json!({"file": file, "reason": why})).collect::<Vec<_>>(),
        "neg_elbo": h.iter().map(|e| e.neg_elbo).collect::<Vec<_>>(),
        "recon": h.iter().map(|e| e.recon).collect::<Vec<_>>(),
        "kl": h.iter().map(|e| e.kl).collect::<Vec<_>>(),
        "val_neg_elbo": h.iter().filter_map(|e| e.val_neg_elbo).collect::<Vec<_>>(),
        "final_neg_elbo": last.neg_elbo, "final_recon": last.recon, "final_kl": last.kl,
        "selected_epoch": run.selected_epoch,
        "selected_val_neg_elbo": selected.val_neg_elbo,
        "selected_neg_elbo": selected.neg_elbo,
        "resumed_from_epoch": run.resumed_from,
        "epoch_seconds_median": med,
        "images_per_second": if med > 0.0 { run.images_train as f64 / med } else { 0.0 },
        "params": run.params.count(),
        "out": out, "artifacts": files,
    }))
}

/// Prints the summary for a person (the JSON path prints the object itself).
pub fn print_human(v: &Value) {
    let f = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    if f("task") == "covid" {
        let num = |k: &str| f(k).as_f64().unwrap_or(f64::NAN);
        println!(
            "{} {} L={} seed={}: served epoch {} (val acc {:.3}): test acc {:.3}, majority baseline {:.3}; final epoch test acc {:.3}",
            f("cell").as_str().unwrap_or("?"),
            f("hidden"),
            f("l"),
            f("seed"),
            f("selected_epoch"),
            num("selected_val_acc"),
            num("selected_test_acc"),
            num("test_majority_baseline"),
            num("final_test_acc"),
        );
        if f("val_ece_before").is_number() {
            println!(
                "temperature {:.3}: validation ECE {:.3} -> {:.3}, NLL {:.3} -> {:.3}",
                num("temperature"),
                num("val_ece_before"),
                num("val_ece_after"),
                num("val_nll_before"),
                num("val_nll_after"),
            );
        }
        println!(
            "{:.1} ms/epoch, {:.0} windows/s",
            f("epoch_seconds_median").as_f64().unwrap_or(0.0) * 1e3,
            f("train_samples_per_second").as_f64().unwrap_or(0.0)
        );
    } else {
        println!(
            "vae {0}x{0} kl={1}: negative ELBO {2:.1} (recon {3:.1} + KL {4:.2}) after {5} epochs",
            f("size"),
            f("kl_weight"),
            f("final_neg_elbo").as_f64().unwrap_or(0.0),
            f("final_recon").as_f64().unwrap_or(0.0),
            f("final_kl").as_f64().unwrap_or(0.0),
            f("epochs"),
        );
        match f("selected_val_neg_elbo").as_f64() {
            Some(v) => println!(
                "serving epoch {}: lowest validation negative ELBO {v:.1} ({} train / {} validation images)",
                f("selected_epoch"),
                f("images_train"),
                f("images_val"),
            ),
            None => println!("serving the last epoch: no validation images (--val 0)"),
        }
        println!(
            "{:.2} s/epoch, {:.0} images/s",
            f("epoch_seconds_median").as_f64().unwrap_or(0.0),
            f("images_per_second").as_f64().unwrap_or(0.0)
        );
    }
    let files: Vec<String> = f("artifacts")
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    println!(
        "artifacts in {}: {}",
        f("out").as_str().unwrap_or("?"),
        files.join(", ")
    );
}
