//! Checkpoints: a model file reloads to identical outputs, a run resumed from a checkpoint
//! ends with exactly the numbers of an uninterrupted run, and bad checkpoints are refused
//! with a clear error. Runs on small generated data.

mod serve_support;

use candle_core::{Device, Tensor};
use wick_common::covid::{CaseTable, CovidData, PrepOptions, prepare};
use wick_common::trial::{Cell, CovidConfig, VaeConfig};
use wick_worker::ckpt::CkptDir;
use wick_worker::covid::model::batch_time_major;
use wick_worker::vae::images::ImageSet;
use wick_worker::{covid, vae};

/// The shared generated table (six countries, 50 days from 2020-02-01), prepared with L.
fn covid_data(l: usize) -> (CaseTable, CovidData) {
    let csv = serve_support::covid_csv();
    let start = chrono::NaiveDate::from_ymd_opt(2020, 2, 1).unwrap();
    let table = CaseTable::parse(&csv).unwrap();
    let opts = PrepOptions {
        l,
        start: start + chrono::Days::new(1),
        ..PrepOptions::default()
    };
    let data = prepare(&table, &opts).unwrap();
    (table, data)
}

fn covid_cfg(epochs: usize) -> CovidConfig {
    CovidConfig {
        cell: Cell::Gru,
        hidden: 6,
        l: 5,
        epochs,
        lr: 1e-2,
        batch: 16,
        seed: 3,
        threshold: 0.7,
        start: "2020-02-02".into(),
        split: "random".into(),
        val: 0.0,
    }
}

fn strip_times(h: &[covid::train::EpochStats]) -> Vec<(usize, f64, f64, f64, f64)> {
    h.iter()
        .map(|e| (e.epoch, e.train_loss, e.train_acc, e.test_loss, e.test_acc))
        .collect()
}

#[test]
fn covid_resume_equals_uninterrupted_and_model_reloads() {
    let (_, data) = covid_data(5);
    let dev = Device::Cpu;
    let whole = covid::train::train(&covid_cfg(6), &data, &dev, None, &mut |_| Ok(())).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ck = CkptDir::open(dir.path(), 2).unwrap();
    let first =
        covid::train::train(&covid_cfg(3), &data, &dev, Some(&ck), &mut |_| Ok(())).unwrap();
    assert_eq!(first.resumed_from, 0);
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        files.len(),
        2,
        "only the newest two checkpoints are kept: {files:?}"
    );
    let resumed =
        covid::train::train(&covid_cfg(6), &data, &dev, Some(&ck), &mut |_| Ok(())).unwrap();
    assert_eq!(
        resumed.resumed_from, 3,
        "resumed from the epoch-3 checkpoint, not epoch 0"
    );
    assert_eq!(strip_times(&resumed.history), strip_times(&whole.history));
    let a = whole.params.tensors("");
    for (name, t) in resumed.params.tensors("") {
        let (x, y) = (
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            a[&name].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert_eq!(x, y, "parameter {name} differs after resume");
    }

    // The final model file reloads to identical outputs.
    let out = tempfile::tempdir().unwrap();
    let (table, _) = covid_data(5);
    let cfg = wick_common::trial::TrialConfig::Covid(covid_cfg(6));
    covid::artifacts::write_all(out.path(), &cfg, &table, &data, &whole, &dev).unwrap();
    let bytes = std::fs::read(out.path().join("model.safetensors")).unwrap();
    let loaded = covid::train::load_model(&bytes, "model.safetensors", &dev).unwrap();
    let (c, model) = (loaded.config, loaded.model);
    assert_eq!(c, covid_cfg(6));
    assert_eq!(loaded.temperature, 1.0, "no validation set, no calibration");
    let idx: Vec<usize> = (0..data.test.len()).collect();
    let xt = batch_time_major(&data.test.x, 5, &idx, &dev).unwrap();
    let before = whole.model.forward(&xt).unwrap().to_vec2::<f32>().unwrap();
    let after = model.forward(&xt).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(before, after);
    let forecast: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("forecast.json")).unwrap()).unwrap();
    assert_eq!(forecast.as_array().unwrap().len(), 6);
    assert_eq!(forecast[0]["iso2"], "FR");

    // A truncated file and a file of another task are refused with what went wrong.
    let e = format!(
        "{:#}",
        covid::train::load_model(&bytes[..bytes.len() / 2], "cut.safetensors", &dev)
            .err()
            .unwrap()
    );
    assert!(
        e.contains("cut.safetensors") && e.contains("truncated or corrupt"),
        "{e}"
    );
}

/// Checkpoints spaced an hour apart: none for the early epochs, always one for the last.
#[test]
fn spaced_checkpoints_skip_epochs_but_never_the_last() {
    let (_, data) = covid_data(5);
    let dir = tempfile::tempdir().unwrap();
    let ck = CkptDir::open(dir.path(), 2)
        .unwrap()
        .every(std::time::Duration::from_secs(3600));
    let mut written = Vec::new();
    covid::train::train(&covid_cfg(3), &data, &Device::Cpu, Some(&ck), &mut |e| {
        written.push(ck.path_of(e.epoch).exists());
        Ok(())
    })
    .unwrap();
    assert_eq!(written, [false, false, true]);
}

#[test]
fn a_checkpoint_of_another_configuration_is_refused() {
    let (_, data) = covid_data(5);
    let dir = tempfile::tempdir().unwrap();
    let ck = CkptDir::open(dir.path(), 2).unwrap();
    covid::train::train(&covid_cfg(1), &data, &Device::Cpu, Some(&ck), &mut |_| {
        Ok(())
    })
    .unwrap();
    let mut other = covid_cfg(2);
    other.hidden = 7;
    let e = format!(
        "{:#}",
        covid::train::train(&other, &data, &Device::Cpu, Some(&ck), &mut |_| Ok(()))
            .err()
            .unwrap()
    );
    assert!(
        e.contains("another configuration") && e.contains("--ckpt-dir"),
        "{e}"
    );
}

fn images() -> ImageSet {
    let size = 6u32;
    let dim = 3 * 36;
    let pixels: Vec<f32> = (0..40 * dim)
        .map(|i| ((i * 7919) % 101) as f32 / 100.0)
        .collect();
    ImageSet {
        size,
        pixels,
        names: (0..40).map(|i| format!("{i}.png")).collect(),
        skipped: vec![],
    }
}

fn vae_cfg(epochs: usize) -> VaeConfig {
    VaeConfig {
        kl_weight: 1.0,
        size: 6,
        epochs,
        lr: 1e-3,
        batch: 16,
        seed: 5,
        hidden: 12,
        latent: 3,
        limit: 0,
        val: 0.0,
    }
}

#[test]
fn vae_resume_equals_uninterrupted_and_model_reloads() {
    let imgs = images();
    let dev = Device::Cpu;
    let whole = vae::train::train(&vae_cfg(4), &imgs, &dev, None, &mut |_| Ok(())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ck = CkptDir::open(dir.path(), 2).unwrap();
    vae::train::train(&vae_cfg(1), &imgs, &dev, Some(&ck), &mut |_| Ok(())).unwrap();
    let resumed = vae::train::train(&vae_cfg(4), &imgs, &dev, Some(&ck), &mut |_| Ok(())).unwrap();
    assert_eq!(resumed.resumed_from, 1);
    let losses = |r: &vae::train::VaeRun| {
        r.history
            .iter()
            .map(|e| (e.neg_elbo, e.recon, e.kl))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&resumed), losses(&whole));

    let out = tempfile::tempdir().unwrap();
    let cfg = wick_common::trial::TrialConfig::Vae(vae_cfg(4));
    let files = vae::artifacts::write_all(out.path(), &cfg, &imgs, &whole, &dev).unwrap();
    for f in [
        "neg_elbo.png",
        "reconstructions.png",
        "samples.png",
        "interpolation.png",
        "model.safetensors",
    ] {
        assert!(
            files.contains(&f.to_string()) && out.path().join(f).exists(),
            "{f}"
        );
    }
    let bytes = std::fs::read(out.path().join("model.safetensors")).unwrap();
    let (_, model, _) = vae::train::load_model(&bytes, "model", &dev).unwrap();
    let x = Tensor::from_slice(&imgs.pixels[..3 * 108], (3, 108), &dev).unwrap();
    let a = vae::artifacts::reconstruct(&whole.model, &x).unwrap();
    let b = vae::artifacts::reconstruct(&model, &x).unwrap();
    assert_eq!(a, b);
    let e = format!(
        "{:#}",
        covid::train::load_model(&bytes, "vae.safetensors", &dev)
            .err()
            .unwrap()
    );
    assert!(e.contains("not a covid"), "{e}");
}

/// The small VAE with a quarter of the 40 images held out. The images are noise, so what
/// it learns of the 30 training images soon stops carrying over: the validation −ELBO is
/// lowest at epoch 6 of 12.
fn vae_val_cfg(epochs: usize) -> VaeConfig {
    VaeConfig {
        val: 0.25,
        ..vae_cfg(epochs)
    }
}

#[test]
fn vae_resume_with_validation_serves_the_same_epoch() {
    const EPOCHS: usize = 12;
    let imgs = images();
    let dev = Device::Cpu;
    let whole =
        vae::train::train(&vae_val_cfg(EPOCHS), &imgs, &dev, None, &mut |_| Ok(())).unwrap();
    let val: Vec<f64> = whole
        .history
        .iter()
        .map(|e| e.val_neg_elbo.unwrap())
        .collect();
    let s = whole.selected_epoch;
    eprintln!("selected epoch {s} of {EPOCHS}: {val:?}");
    assert!(
        1 < s && s < EPOCHS,
        "the best epoch should be neither the first nor the last, so both the epochs before it \
         and those after it are tested: {val:?}"
    );
    assert_eq!((whole.images_train, whole.images_val), (30, 10));

    // Stopped right after the selected epoch, the best weights exist only in the
    // checkpoint when the run resumes; later epochs must not displace them.
    let dir = tempfile::tempdir().unwrap();
    let ck = CkptDir::open(dir.path(), 2).unwrap();
    let first =
        vae::train::train(&vae_val_cfg(s), &imgs, &dev, Some(&ck), &mut |_| Ok(())).unwrap();
    assert_eq!(first.selected_epoch, s);
    let resumed = vae::train::train(
        &vae_val_cfg(EPOCHS),
        &imgs,
        &dev,
        Some(&ck),
        &mut |_| Ok(()),
    )
    .unwrap();
    assert_eq!(resumed.resumed_from, s);
    assert_eq!(resumed.selected_epoch, s);
    let numbers = |r: &vae::train::VaeRun| {
        r.history
            .iter()
            .map(|e| {
                (
                    e.neg_elbo,
                    e.recon,
                    e.kl,
                    e.val_neg_elbo,
                    e.val_recon,
                    e.val_kl,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(numbers(&resumed), numbers(&whole));

    // Both serve the selected epoch's weights, bit for bit.
    let served = |r: &vae::train::VaeRun| {
        let out = tempfile::tempdir().unwrap();
        let cfg = wick_common::trial::TrialConfig::Vae(vae_val_cfg(EPOCHS));
        vae::artifacts::write_all(out.path(), &cfg, &imgs, r, &dev).unwrap();
        let bytes = std::fs::read(out.path().join("model.safetensors")).unwrap();
        let ck = wick_worker::ckpt::from_bytes(&bytes, "model.safetensors", &dev).unwrap();
        let mut v: Vec<(String, Vec<f32>)> = ck
            .tensors
            .iter()
            .map(|(k, t)| {
                (
                    k.clone(),
                    t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let a = served(&whole);
    assert_eq!(a.len(), 10);
    assert_eq!(a, served(&resumed));
    // And those are the weights of the selected epoch, not of the last one.
    let at_s: Vec<(String, Vec<f32>)> = {
        let mut v: Vec<_> = first
            .params
            .tensors(wick_worker::ckpt::MODEL_PREFIX)
            .into_iter()
            .map(|(k, t)| (k, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(a, at_s);
}
