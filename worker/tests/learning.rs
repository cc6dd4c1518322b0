//! Learning tests on the real shared data: the models must learn, quickly.

mod common;

use candle_core::Device;
use wick_common::trial::{Cell, CovidConfig, VaeConfig};
use wick_worker::{covid, train::load_covid, vae};

#[test]
fn covid_lstm_beats_the_majority_baseline_on_test() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let cfg = CovidConfig {
        cell: Cell::Lstm,
        hidden: 64,
        l: 40,
        epochs: 60,
        lr: 1e-3,
        batch: 64,
        seed: 0,
        threshold: 0.7,
        start: "2020-03-01".into(),
        split: "random".into(),
        val: 0.0,
    };
    let (_, prepared) = load_covid(&data.join("covid/covid_19.csv"), &cfg).unwrap();
    let baseline = prepared.test.majority_baseline();
    let run = covid::train::train(&cfg, &prepared, &Device::Cpu, None, &mut |_| Ok(())).unwrap();
    let h = &run.history;
    let best = h.iter().map(|e| e.test_acc).fold(0.0, f64::max);
    assert!(
        best > baseline + 0.03,
        "best test acc {best:.3} vs majority baseline {baseline:.3}"
    );
    assert!(
        h.last().unwrap().train_loss < h[0].train_loss * 0.9,
        "training loss fell"
    );
    assert!(
        h.last().unwrap().train_acc > baseline,
        "fits the training set"
    );
}

#[test]
fn vae_negative_elbo_falls_over_three_epochs() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let cfg = VaeConfig {
        kl_weight: 1.0,
        size: 28,
        epochs: 3,
        lr: 1e-3,
        batch: 64,
        seed: 0,
        hidden: 400,
        latent: 50,
        limit: 400,
        val: 0.0,
    };
    let images = vae::images::load_folder(&data.join("anime-faces"), 28, cfg.limit).unwrap();
    assert_eq!(images.len(), 400);
    let run = vae::train::train(&cfg, &images, &Device::Cpu, None, &mut |_| Ok(())).unwrap();
    let e: Vec<f64> = run.history.iter().map(|s| s.neg_elbo).collect();
    assert!(
        e[1] < e[0] && e[2] < e[1],
        "negative ELBO must fall every epoch: {e:?}"
    );
    for s in &run.history {
        assert!(
            (s.neg_elbo - s.recon - s.kl).abs() < 1e-6 * s.neg_elbo,
            "-ELBO = recon + KL"
        );
    }
}
