//! Model selection and calibration of a covid trial on the real coursework data: the
//! served `model.safetensors` holds the weights of the epoch with the best validation
//! accuracy (as the per-epoch metrics record it), `forecast.json` is that checkpoint's
//! forward pass at the fitted temperature, and the temperature lowers the validation NLL.

mod common;

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use serde_json::Value;
use wick_common::trial::{Cell, CovidConfig, TrialConfig};
use wick_worker::ckpt::{CkptDir, MODEL_PREFIX};
use wick_worker::covid::artifacts::probabilities;
use wick_worker::covid::train::load_model;
use wick_worker::train::{load_covid, run_trial};

fn cfg() -> CovidConfig {
    CovidConfig {
        cell: Cell::Rnn,
        hidden: 8,
        l: 12,
        epochs: 8,
        lr: 1e-2,
        batch: 64,
        seed: 1,
        threshold: 0.7,
        start: "2020-03-01".into(),
        split: "time".into(),
        val: 0.2,
    }
}

fn values(t: &HashMap<String, Tensor>) -> HashMap<String, Vec<f32>> {
    t.iter()
        .filter(|(k, _)| k.starts_with(MODEL_PREFIX))
        .map(|(k, v)| (k.clone(), v.flatten_all().unwrap().to_vec1().unwrap()))
        .collect()
}

#[test]
fn the_served_model_is_the_best_validation_epoch_calibrated() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let csv = data.join("covid/covid_19.csv");
    let dir = tempfile::tempdir().unwrap();
    let (out, ck) = (dir.path().join("out"), dir.path().join("ckpt"));
    let ckpt = CkptDir::open(&ck, 100).unwrap();
    let config = TrialConfig::Covid(cfg());
    let mut epochs: Vec<Value> = Vec::new();
    let summary = run_trial(&config, &csv, &out, Some(&ckpt), &Device::Cpu, &mut |e| {
        epochs.push(e.metrics.clone());
        Ok(())
    })
    .unwrap();

    // The argmax of validation accuracy (ties: lower loss, then the earlier epoch).
    let get = |e: &Value, k: &str| e[k].as_f64().unwrap_or_else(|| panic!("{k}: {e}"));
    let mut best = &epochs[0];
    for e in &epochs[1..] {
        let (a, b) = (get(e, "val_acc"), get(best, "val_acc"));
        if a > b || (a == b && get(e, "val_loss") < get(best, "val_loss")) {
            best = e;
        }
    }
    let selected = best["epoch"].as_u64().unwrap();
    assert_eq!(
        summary["selected_epoch"].as_u64(),
        Some(selected),
        "{summary:#}"
    );
    assert_eq!(summary["selected_test_acc"], best["test_acc"]);
    assert_eq!(summary["selected_val_acc"], best["val_acc"]);
    assert!(
        summary["windows_val"].as_u64().unwrap() > 100,
        "{summary:#}"
    );

    // model.safetensors holds exactly that epoch's checkpointed weights.
    let served = std::fs::read(out.join("model.safetensors")).unwrap();
    let chosen = std::fs::read(ckpt.path_of(selected as usize)).unwrap();
    let cpu = Device::Cpu;
    let s = wick_worker::ckpt::from_bytes(&served, "served", &cpu).unwrap();
    let c = wick_worker::ckpt::from_bytes(&chosen, "checkpoint", &cpu).unwrap();
    assert_eq!(s.epoch as u64, selected);
    assert_eq!(values(&s.tensors), values(&c.tensors));

    // The forecasts are that checkpoint's forward pass at the fitted temperature.
    let t = summary["temperature"].as_f64().unwrap();
    let m = load_model(&served, "served", &cpu).unwrap();
    assert_eq!(m.temperature, t);
    let from_ckpt = load_model(&chosen, "checkpoint", &cpu).unwrap();
    let (_, prepared) = load_covid(&csv, &cfg()).unwrap();
    let p = probabilities(&from_ckpt.model, &from_ckpt.params, &prepared.last, t, &cpu).unwrap();
    let forecast: Vec<Value> =
        serde_json::from_slice(&std::fs::read(out.join("forecast.json")).unwrap()).unwrap();
    assert_eq!(forecast.len(), p.len());
    for (f, p) in forecast.iter().zip(&p) {
        // serde_json's default float parsing may be one ulp off the printed value.
        let got = f["probability"].as_f64().unwrap();
        assert!((got - p).abs() < 1e-12, "{f} against {p}");
    }

    // Temperature scaling lowers the validation NLL (it never raises it: T = 1 is kept
    // when nothing better is found).
    let (before, after) = (
        get(&summary, "val_nll_before"),
        get(&summary, "val_nll_after"),
    );
    assert!(after <= before, "{summary:#}");
    if t != 1.0 {
        assert!(after < before, "{summary:#}");
    }
}

#[test]
fn a_resumed_run_serves_the_same_epoch_and_weights() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let (_, prepared) = load_covid(&data.join("covid/covid_19.csv"), &cfg()).unwrap();
    let cpu = Device::Cpu;
    let with = |epochs: usize| CovidConfig { epochs, ..cfg() };
    let train = wick_worker::covid::train::train;
    let whole = train(&with(8), &prepared, &cpu, None, &mut |_| Ok(())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ck = CkptDir::open(dir.path(), 2).unwrap();
    train(&with(4), &prepared, &cpu, Some(&ck), &mut |_| Ok(())).unwrap();
    let resumed = train(&with(8), &prepared, &cpu, Some(&ck), &mut |_| Ok(())).unwrap();
    assert_eq!(resumed.resumed_from, 4);
    assert_eq!(resumed.selected_epoch, whole.selected_epoch);
    assert_eq!(
        values(&resumed.params.tensors(MODEL_PREFIX)),
        values(&whole.params.tensors(MODEL_PREFIX))
    );
    assert_eq!(resumed.temperature(), whole.temperature());
    assert_eq!(resumed.confusion, whole.confusion);
}
