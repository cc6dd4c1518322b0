//! `report` and `compare` end to end: the real `client` binary in embedded mode trains a
//! small sweep on the real data, then writes the report page and compares groups of its
//! trials. The page must hold every trial and section, reference only pictures that exist
//! beside it and decode, load nothing from the network, and display every picture in a
//! headless Chromium (the page counts loaded pictures into `<body data-images>`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{data, in_ci as ci};

/// Longest a Chromium run may take before it counts as hung.
const CHROMIUM_LIMIT: Duration = Duration::from_secs(120);

/// Runs a command that must succeed and returns its stdout.
fn ok(home: &Path, args: &[&str]) -> String {
    common::ok(home, home.parent().unwrap(), args)
}

/// Runs a command with `--json`; stdout must be exactly one JSON document.
fn json(home: &Path, args: &[&str]) -> Value {
    common::json(home, home.parent().unwrap(), args)
}

/// Runs a command that must fail and returns its stderr.
fn fails(home: &Path, args: &[&str]) -> String {
    common::fails(home, home.parent().unwrap(), args)
}

/// Every `src` of an `<img>` in `html`, in page order.
fn img_sources(html: &str) -> Vec<String> {
    html.split("<img ")
        .skip(1)
        .map(|tag| {
            let src = tag
                .split_once("src=\"")
                .unwrap_or_else(|| panic!("an <img> without src: {tag:.80}"))
                .1;
            src[..src.find('"').unwrap()].to_string()
        })
        .collect()
}

/// Checks `path` is a picture a browser can show: a PNG that decodes, or an SVG document
/// with a size.
fn assert_picture(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match path.extension().and_then(|e| e.to_str()) {
        Some("png") => {
            let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
                .unwrap_or_else(|e| panic!("{} is not a PNG: {e}", path.display()));
            assert!(img.width() > 10 && img.height() > 10, "{}", path.display());
        }
        Some("svg") => {
            let text = String::from_utf8_lossy(&bytes);
            let head = text.trim_start();
            assert!(
                head.starts_with("<svg") || head.starts_with("<?xml"),
                "{} is not an SVG",
                path.display()
            );
            assert!(text.trim_end().ends_with("</svg>"), "{}", path.display());
            let tag = &head[..head.find('>').unwrap()];
            assert!(
                tag.contains("width=") && tag.contains("height="),
                "{}: no size",
                path.display()
            );
        }
        other => panic!("{}: not a PNG or SVG ({other:?})", path.display()),
    }
}

/// The checks every report page passes; returns its HTML and its picture sources.
fn check_page(report: &Value, sweep: &str, trials: usize) -> (String, Vec<String>) {
    assert_eq!(report["sweep"], sweep, "{report:#}");
    assert_eq!(report["trials"], trials, "{report:#}");
    let out = PathBuf::from(report["out"].as_str().unwrap());
    let index = PathBuf::from(report["index"].as_str().unwrap());
    assert_eq!(index, out.join("index.html"));
    let html = std::fs::read_to_string(&index).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"), "{html:.200}");
    // Self-contained: nothing is fetched from anywhere.
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page refers to the network"
    );
    assert!(!html.contains("<link") && !html.contains("<script src"));
    let srcs = img_sources(&html);
    assert!(!srcs.is_empty(), "no pictures in the page");
    for src in &srcs {
        assert!(
            !src.contains('/') && !src.contains(".."),
            "{src} is not a file beside index.html"
        );
        assert_picture(&out.join(src));
    }
    // Every picture written is on the page, and the page shows nothing else.
    let mut written: Vec<String> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let p = PathBuf::from(p.as_str().unwrap());
            assert_eq!(p.parent(), Some(out.as_path()));
            p.file_name().unwrap().to_str().unwrap().to_string()
        })
        .collect();
    let mut shown = srcs.clone();
    written.sort();
    shown.sort();
    assert_eq!(written, shown);
    (html, srcs)
}

/// The `<td>` of a trial id in a results table.
fn row_cell(id: &str) -> String {
    format!("<td><code>{id}</code></td>")
}

/// A headless Chromium on this machine, or `None` (skip) outside CI.
fn chromium() -> Option<PathBuf> {
    let names = ["chromium", "chromium-browser", "google-chrome"];
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for n in names {
            if dir.join(n).is_file() {
                return Some(dir.join(n));
            }
        }
    }
    assert!(
        !ci(),
        "no chromium on PATH; CI must install it (apt-get install -y chromium)"
    );
    eprintln!("skipping the browser check: no chromium on PATH (apt-get install -y chromium)");
    None
}

/// Renders `index` in headless Chromium and returns `<body data-images>`: "loaded/total"
/// as the page's own script counted them once the window loaded.
fn loaded_images(chromium: &Path, index: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=5000", "--dump-dom"])
        .arg(format!("file://{}", index.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    // A guard against a hung browser, not a timing assertion.
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > CHROMIUM_LIMIT {
            let _ = child.kill();
            panic!("chromium did not finish within {CHROMIUM_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let body = dom
        .split_once("<body")
        .unwrap_or_else(|| panic!("no <body> in chromium's DOM dump:\n{dom:.500}"))
        .1;
    let body = &body[..body.find('>').unwrap()];
    let value = body
        .split_once("data-images=\"")
        .unwrap_or_else(|| panic!("the page's load script did not run: <body{body}>"))
        .1;
    value[..value.find('"').unwrap()].to_string()
}

#[test]
fn report_and_compare_a_mixed_sweep() {
    let Some(data) = data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let sweep = [
        "sweep",
        "--data",
        data.to_str().unwrap(),
        "--l",
        "12",
        "--cell",
        "rnn,gru",
        "--hidden",
        "8",
        "--vae-hidden",
        "8",
        "--kl",
        "1,100",
        "--size",
        "28",
        "--limit",
        "200",
        "--epochs",
        "2",
    ];
    let v = json(&home, &sweep);
    let id = v["sweep"].as_str().unwrap().to_string();
    let status = json(&home, &["status", &id]);
    let trials = status["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 4, "{status:#}");
    assert!(
        trials.iter().all(|t| t["state"] == "succeeded"),
        "{status:#}"
    );
    let by_id: HashMap<&str, &Value> = trials
        .iter()
        .map(|t| (t["id"].as_str().unwrap(), t))
        .collect();

    // The page.
    let out = tmp.path().join("report");
    let report = json(&home, &["report", &id, "--out", out.to_str().unwrap()]);
    let (html, srcs) = check_page(&report, &id, 4);
    for t in trials {
        let tid = t["id"].as_str().unwrap();
        assert!(html.contains(&row_cell(tid)), "no row for {tid}");
    }
    for heading in [
        "id=\"covid\"",
        "id=\"vae\"",
        "<h3>Results</h3>",
        "Accuracy per epoch by window length L",
        "Accuracy per epoch by cell type",
        "Knobs against best test accuracy",
        "Correlation of daily new cases",
        "Confusion matrices",
        "Forecast of the best trial",
        "Negative ELBO per epoch",
        "Knobs against final negative ELBO",
        "<h3>Reconstructions</h3>",
        "<h3>Prior samples</h3>",
        "<h3>Interpolation</h3>",
    ] {
        assert!(html.contains(heading), "no {heading} in the page");
    }
    // Nothing was missing, so nothing is left out.
    assert_eq!(report["notes"], serde_json::json!([]), "{report:#}");
    assert!(!html.contains("Not shown"));
    // One confusion matrix per covid trial, the three VAE pictures per VAE trial, and
    // the charts drawn here from metrics.jsonl.
    let count = |prefix: &str| srcs.iter().filter(|s| s.starts_with(prefix)).count();
    assert_eq!(count("covid-confusion-"), 2, "{srcs:?}");
    for kind in ["reconstructions", "samples", "interpolation"] {
        assert_eq!(count(&format!("vae-{kind}-")), 2, "{srcs:?}");
    }
    // Each interpolation is the coursework's strip in one row: original | reconstruction |
    // 11 steps | reconstruction | original, 28 px tiles at scale 3 with 2 px gaps.
    for src in srcs.iter().filter(|s| s.starts_with("vae-interpolation-")) {
        let img = image::open(out.join(src)).unwrap();
        assert_eq!(
            (img.width(), img.height()),
            (2 + 15 * (84 + 2), 2 + 84 + 2),
            "{src}"
        );
    }
    assert!(html.contains("Selected epoch") && html.contains("Val −ELBO"));
    // L = 12 and cells gru and rnn: test and train accuracy each.
    assert_eq!(count("covid-test-acc-"), 3, "{srcs:?}");
    assert_eq!(count("covid-train-acc-"), 3, "{srcs:?}");
    for one in ["covid-knobs.svg", "vae-knobs.svg", "vae-neg-elbo.png"] {
        assert_eq!(count(one), 1, "{srcs:?}");
    }
    let text = ok(&home, &["report", &id, "--out", out.to_str().unwrap()]);
    assert!(text.contains("index.html"), "{text}");
    assert!(text.contains("4 trials (2 covid, 2 vae)"), "{text}");

    // Every picture displays in a browser; a broken one is caught.
    if let Some(chromium) = chromium() {
        let index = out.join("index.html");
        let n = srcs.len();
        assert_eq!(loaded_images(&chromium, &index), format!("{n}/{n}"));
        std::fs::remove_file(out.join(&srcs[0])).unwrap();
        assert_eq!(
            loaded_images(&chromium, &index),
            format!("{}/{n}", n - 1),
            "the browser check does not notice a missing picture"
        );
    }

    // compare: the cells, each one trial, with the accuracies `status` reports.
    let c = json(&home, &["compare", &id, "--by", "cell"]);
    assert_eq!(
        (c["sweep"].as_str(), c["by"].as_str()),
        (Some(id.as_str()), Some("cell"))
    );
    let groups = c["groups"].as_array().unwrap();
    let values: Vec<&str> = groups
        .iter()
        .map(|g| g["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["gru", "rnn"], "{c:#}");
    for g in groups {
        assert_eq!(g["task"], "covid");
        assert_eq!(g["trials"], 1, "{c:#}");
        let tid = g["trial_ids"][0].as_str().unwrap();
        let t = by_id[tid];
        assert_eq!(t["config"]["cell"], g["value"]);
        let acc = t["metrics"]["best_test_acc"].as_f64().unwrap();
        assert_eq!(g["max_best_test_acc"].as_f64(), Some(acc), "{c:#}");
        assert_eq!(g["mean_best_test_acc"].as_f64(), Some(acc), "{c:#}");
        assert_eq!(
            g["mean_best_epoch"],
            t["metrics"]["best_epoch"].as_f64().unwrap()
        );
    }
    let best: Vec<&Value> = groups.iter().filter(|g| g["best"] == true).collect();
    assert_eq!(best.len(), 1, "{c:#}");
    let top = groups
        .iter()
        .map(|g| g["mean_best_test_acc"].as_f64().unwrap())
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(best[0]["mean_best_test_acc"].as_f64(), Some(top));

    let k = json(&home, &["compare", &id, "--by", "kl"]);
    let groups = k["groups"].as_array().unwrap();
    let values: Vec<f64> = groups
        .iter()
        .map(|g| g["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [1.0, 100.0], "{k:#}");
    for g in groups {
        assert_eq!(
            (g["task"].as_str(), g["trials"].as_u64()),
            (Some("vae"), Some(1))
        );
        let t = by_id[g["trial_ids"][0].as_str().unwrap()];
        assert_eq!(t["config"]["kl_weight"].as_f64(), g["value"].as_f64());
        assert_eq!(
            g["min_final_neg_elbo"], t["metrics"]["final_neg_elbo"],
            "{k:#}"
        );
        assert_eq!(g["mean_final_kl"], t["metrics"]["final_kl"], "{k:#}");
    }

    // A knob of both tasks groups each task on its own.
    let h = json(&home, &["compare", &id, "--by", "hidden"]);
    let tasks: Vec<(&str, u64)> = h["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["task"].as_str().unwrap(), g["trials"].as_u64().unwrap()))
        .collect();
    assert_eq!(tasks, [("covid", 2), ("vae", 2)], "{h:#}");
    let l = json(&home, &["compare", &id, "--by", "l"]);
    assert_eq!(l["groups"].as_array().unwrap().len(), 1, "{l:#}");
    assert_eq!(
        (
            l["groups"][0]["value"].as_u64(),
            l["groups"][0]["trials"].as_u64()
        ),
        (Some(12), Some(2))
    );
    let text = ok(&home, &["compare", &id, "--by", "cell"]);
    assert!(text.contains("CELL") && text.contains("<- best"), "{text}");
}

#[test]
fn a_covid_only_sweep_with_a_failed_trial() {
    let Some(data) = data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    // No two countries correlate above a threshold of 1, so set C is empty: that trial
    // fails on its worker, with a message, and leaves no pictures. (An L longer than the
    // data no longer gets that far: the coordinator refuses it before queueing.) The
    // sweep then exits with status 1, its report printed all the same.
    let out = common::client(
        &home,
        home.parent().unwrap(),
        &[
            "--json",
            "sweep",
            "--data",
            data.to_str().unwrap(),
            "--l",
            "12",
            "--threshold",
            "0.7,1",
            "--cell",
            "rnn",
            "--hidden",
            "8",
            "--epochs",
            "1",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let id = v["sweep"].as_str().unwrap().to_string();
    let trials = v["trials"].as_array().unwrap();
    let state = |threshold: f64| {
        trials
            .iter()
            .find(|t| t["config"]["threshold"] == threshold)
            .unwrap_or_else(|| panic!("no threshold {threshold} trial: {v:#}"))
    };
    assert_eq!(state(0.7)["state"], "succeeded", "{v:#}");
    let failed = state(1.0);
    assert_eq!(failed["state"], "failed", "{v:#}");
    let failed_id = failed["id"].as_str().unwrap();

    let out = tmp.path().join("report");
    let report = json(&home, &["report", &id, "--out", out.to_str().unwrap()]);
    let (html, srcs) = check_page(&report, &id, 2);
    // Only the task the sweep ran.
    assert!(html.contains("id=\"covid\""));
    assert!(!html.contains("id=\"vae\"") && !html.contains("Face VAEs"));
    assert!(srcs.iter().all(|s| s.starts_with("covid-")), "{srcs:?}");
    // The failed trial is in the table with its state and why, and its missing confusion
    // matrix is a note rather than an error.
    assert!(html.contains(&row_cell(failed_id)));
    assert!(html.contains(r#"<span class="st bad">failed</span>"#));
    assert!(html.contains("set C is empty"), "no failure message");
    let notes: Vec<&str> = report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with(&format!("confusion matrix of {failed_id}"))),
        "{notes:?}"
    );
    assert!(html.contains("Not shown"));
    assert_eq!(
        srcs.iter()
            .filter(|s| s.starts_with("covid-confusion-"))
            .count(),
        1
    );

    // compare leaves the failed trial out, and --by kl does not apply.
    let l = json(&home, &["compare", &id, "--by", "l"]);
    let groups = l["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{l:#}");
    assert_eq!(groups[0]["value"], 12);
    assert_eq!(l["left_out"], 1);
    let e = fails(&home, &["compare", &id, "--by", "kl"]);
    assert!(e.contains("--by kl groups vae trials"), "{e}");
    assert!(e.contains("only covid trials"), "{e}");
    assert!(e.contains("use --by l, cell, hidden or lr"), "{e}");
}
