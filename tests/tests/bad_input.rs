//! The bad-input catalogue, on a real cluster (coordinator, one worker, an S3-compatible
//! server): malformed case tables in each layout, impossible hyperparameters and grids,
//! questions a trial cannot answer, wrong addresses, oversized and incomplete gRPC calls,
//! and a model truncated in the store. Each input must get its own answer — the exit
//! status or gRPC code, and a message that names the problem and what to do — and must
//! leave the cluster serving and the store free of partial artifacts. Every case runs and
//! the test fails once, listing each one that went wrong.
//!
//! One small sweep trains first (two covid trials, one VAE) so the trial questions have
//! real trials to ask.

#[path = "bad_input/cases.rs"]
mod cases;
#[path = "bad_input/check.rs"]
mod check;
mod common;
#[path = "bad_input/gaps.rs"]
mod gaps;
#[path = "bad_input/harness.rs"]
mod harness;
#[path = "bad_input/inputs.rs"]
mod inputs;

use std::cell::RefCell;
use std::time::Duration;

use common::Cluster;
use harness::Ctx;

/// Starts the cluster and trains the good sweep; `None` (skip) without the shared data or
/// the S3 server outside CI.
fn setup() -> Option<Ctx> {
    let data = common::shared_data()?;
    let mut c = Cluster::start()?;
    c.start_worker("w1");
    let scratch = c.dir.path().join("inputs");
    std::fs::create_dir_all(&scratch).unwrap();
    let inputs = inputs::write_all(&scratch, &data);
    let faces = scratch.join("faces-good");
    std::fs::create_dir_all(&faces).unwrap();
    for i in 0..100 {
        let name = format!("{i}.jpg");
        std::fs::copy(data.join("anime-faces").join(&name), faces.join(&name)).unwrap();
    }
    let data = data.to_string_lossy().into_owned();
    let submitted = c.client(&[
        "sweep",
        "--data",
        &data,
        "--faces",
        &faces.to_string_lossy(),
        "--l",
        "12,13",
        "--cell",
        "rnn",
        "--kl",
        "1",
        "--hidden",
        "8",
        "--vae-hidden",
        "8",
        "--epochs",
        "2",
        "--limit",
        "100",
        "--detach",
    ]);
    let good_sweep = submitted["sweep"].as_str().unwrap().to_string();
    let trials = c.wait_done(&good_sweep, Duration::from_secs(180));
    let find = |task: &str, l: u64| {
        let t = trials
            .iter()
            .find(|t| t["task"] == task && (task == "vae" || t["config"]["l"] == l))
            .unwrap_or_else(|| panic!("no {task} trial (L = {l}) in {trials:?}"));
        assert_eq!(t["state"], "succeeded", "the good sweep must succeed: {t}");
        t["id"].as_str().unwrap().to_string()
    };
    let (covid, spare, vae) = (find("covid", 12), find("covid", 13), find("vae", 0));
    let uploaded = |name: &str| {
        let key =
            c.s3.keys("cluster/data/")
                .into_iter()
                .find(|k| k.ends_with(name))
                .unwrap_or_else(|| panic!("no {name} in the store"));
        key.trim_start_matches("cluster/").to_string()
    };
    let (faces, covid_csv) = (
        format!("store:{}", uploaded("/faces.tar")),
        uploaded("/covid.csv"),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    Some(Ctx {
        c,
        rt,
        data,
        inputs,
        good_sweep,
        covid,
        spare,
        vae,
        faces,
        covid_csv,
        last_trial: RefCell::default(),
        last_failed: RefCell::default(),
    })
}

#[test]
fn every_bad_input_gets_its_own_clear_answer_and_leaves_nothing_behind() {
    let Some(ctx) = setup() else {
        return;
    };
    let mut cases = cases::all(&ctx);
    cases.extend(gaps::fixed(&ctx));
    assert!(cases.len() >= 25, "the catalogue has {} cases", cases.len());
    let report = check::run_all(&ctx, &cases);
    assert!(
        report.is_empty(),
        "{} of {} bad inputs were answered wrongly:\n{}\nworker log:\n{}",
        report.len(),
        cases.len(),
        report.join("\n"),
        tail(&ctx.c.workers[0].log_text(), 40)
    );
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
