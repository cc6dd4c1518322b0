//! `worker train` as a user runs it: the real binary, its JSON summary, its artifacts, and
//! its errors for missing data and impossible hyperparameters.

mod common;

use std::process::Command;

fn worker() -> Command {
    Command::new(env!("CARGO_BIN_EXE_worker"))
}

#[test]
fn covid_trial_prints_the_documented_json_and_writes_every_artifact() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let o = worker()
        .args([
            "train", "--task", "covid", "--cell", "rnn", "--l", "12", "--epochs", "2", "--json",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("stdout is one JSON object");
    for key in [
        "task",
        "cell",
        "hidden",
        "l",
        "epochs",
        "seed",
        "windows_train",
        "windows_test",
        "test_majority_baseline",
        "final_train_acc",
        "final_test_acc",
        "best_test_acc",
        "best_epoch",
        "windows_val",
        "selected_epoch",
        "selected_val_acc",
        "selected_test_acc",
        "temperature",
        "val_ece_before",
        "val_ece_after",
        "epoch_seconds_median",
        "train_samples_per_second",
        "artifacts",
    ] {
        assert!(v.get(key).is_some(), "missing key {key} in {v}");
    }
    // The coursework's 3103 training windows, of which the default 15 % validate.
    assert_eq!(
        (
            v["windows_train"].as_u64(),
            v["windows_val"].as_u64(),
            v["windows_test"].as_u64()
        ),
        (Some(2638), Some(465), Some(1330))
    );
    assert_eq!(v["hidden"], 32, "the RNN's default hidden size");
    for f in v["artifacts"].as_array().unwrap() {
        let p = out.path().join(f.as_str().unwrap());
        assert!(std::fs::metadata(&p).unwrap().len() > 0, "{}", p.display());
    }
    let forecast: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(out.path().join("forecast.json")).unwrap()).unwrap();
    assert_eq!(forecast.len(), 185, "every country has at least L days");
    let tw = forecast
        .iter()
        .find(|f| f["iso2"] == "TW")
        .expect("Taiwan* maps to TW");
    assert_eq!(tw["country"], "Taiwan*");
}

#[test]
fn vae_trial_json_has_one_neg_elbo_per_epoch() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let o = worker()
        .args([
            "train", "--task", "vae", "--epochs", "2", "--limit", "100", "--size", "16", "--json",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["images"], 100);
    assert_eq!(v["neg_elbo"].as_array().unwrap().len(), 2);
    assert_eq!(v["final_neg_elbo"], v["neg_elbo"][1]);
    let img = image::open(out.path().join("samples.png")).unwrap();
    // 8 columns of 16 px at scale 3 with 2 px gaps: 8·48 + 9·2
    assert_eq!(img.width(), 8 * 48 + 9 * 2);
}

#[test]
fn missing_data_and_bad_hyperparameters_fail_clearly() {
    let out = tempfile::tempdir().unwrap();
    let o = worker()
        .args(["train", "--task", "covid", "--epochs", "1"])
        .arg("--out")
        .arg(out.path())
        .env_remove("WICK_DATA")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--data DIR") && err.contains("--covid-csv"),
        "{err}"
    );

    let o = worker()
        .args(["train", "--task", "vae", "--kl", "-1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("KL weight"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bad.csv");
    std::fs::write(
        &csv,
        "Date,Country,Confirmed\n2020-03-01,France,12\n2020-03-02,France,abc\n",
    )
    .unwrap();
    let o = worker()
        .args(["train", "--task", "covid", "--epochs", "1", "--covid-csv"])
        .arg(&csv)
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("line 3") && err.contains("abc"),
        "{err}"
    );
}
