//! Embedded mode end to end: the real `client` binary with no server running anywhere.
//! A tiny sweep (one covid trial, one VAE trial) trains in-process over a store in a
//! temporary --home; later invocations — each starting a fresh embedded coordinator —
//! find its trials, answer predict and sample, and resubmitting the sweep runs nothing.

mod common;

use common::*;

/// Colour of the gaps between the cells of an image grid.
const GAP: image::Rgb<u8> = image::Rgb([128, 128, 128]);

/// Maximal runs of indices for which `is_gap` is false: the cells along one axis.
fn runs(len: u32, is_gap: impl Fn(u32) -> bool) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut start = None;
    for i in 0..=len {
        match (i < len && !is_gap(i), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Cells of an image grid that hold a picture: blocks between all-grey gap lines that are
/// not themselves all grey (padding after a short row is).
fn grid_cells(img: &image::RgbImage) -> usize {
    let (w, h) = img.dimensions();
    let cols = runs(w, |x| (0..h).all(|y| *img.get_pixel(x, y) == GAP));
    let rows = runs(h, |y| (0..w).all(|x| *img.get_pixel(x, y) == GAP));
    let mut cells = 0;
    for &(y0, y1) in &rows {
        for &(x0, x1) in &cols {
            if (y0..y1).any(|y| (x0..x1).any(|x| *img.get_pixel(x, y) != GAP)) {
                cells += 1;
            }
        }
    }
    cells
}

#[test]
fn a_tiny_embedded_sweep_then_predict_sample_and_a_resubmission() {
    let Some(data) = data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let cwd = tmp.path();
    let data = data.to_str().unwrap();
    let sweep = [
        "sweep",
        "--data",
        data,
        "--l",
        "12",
        "--cell",
        "rnn",
        "--hidden",
        "8",
        "--vae-hidden",
        "8",
        "--kl",
        "1",
        "--epochs",
        "2",
        "--limit",
        "200",
    ];

    let v = json(&home, cwd, &sweep);
    let trials = v["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2, "{v:#}");
    assert_eq!(v["queued"], 2, "{v:#}");
    let mut tasks: Vec<&str> = trials.iter().map(|t| t["task"].as_str().unwrap()).collect();
    tasks.sort();
    assert_eq!(tasks, ["covid", "vae"]);
    for t in trials {
        assert_eq!(t["state"], "succeeded", "{t:#}");
        assert_eq!(
            (t["epoch"].as_u64(), t["epochs"].as_u64()),
            (Some(2), Some(2)),
            "{t:#}"
        );
        let id = t["id"].as_str().unwrap();
        let arts = json(&home, cwd, &["artifacts", "ls", id]);
        let names: Vec<&str> = arts["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert!(
            names.iter().any(|n| n.ends_with("model.safetensors")),
            "{names:?}"
        );
        assert!(names.iter().any(|n| n.ends_with(".png")), "{names:?}");
    }
    let sweep_id = v["sweep"].as_str().unwrap();
    let best_covid = v["best"]["covid"]["id"].as_str().unwrap();

    let p = json(&home, cwd, &["predict", "--country", "TW"]);
    assert_eq!(p["trial"], best_covid, "{p:#}");
    let f = &p["forecasts"][0];
    assert_eq!(f["iso2"], "TW", "{p:#}");
    let prob = f["probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&prob), "{p:#}");
    assert_eq!(f["increase"].as_bool().unwrap(), prob > 0.5);
    let text = ok(&home, cwd, &["predict", "--country", "TW"]);
    assert!(text.contains("(TW): P(increase) = "), "{text}");

    let text = ok(&home, cwd, &["sample", "--n", "16", "--out", "grid.png"]);
    assert_eq!(text.trim(), "grid.png");
    let grid = image::open(cwd.join("grid.png")).unwrap().to_rgb8();
    assert_eq!(grid_cells(&grid), 16);

    let again = json(&home, cwd, &sweep);
    assert_eq!(again["sweep"], sweep_id);
    assert_eq!(again["queued"], 0, "{again:#}");

    let st = json(&home, cwd, &["status", sweep_id]);
    assert_eq!(st["sweep"], sweep_id);
    assert_eq!(st["trials"].as_array().unwrap().len(), 2);
    assert_eq!(st.as_object().unwrap().len(), 2, "{st:#}");

    // A reader that stops early (`client --json status ID | head -1`) is not an error.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_client"))
        .arg("--home")
        .arg(&home)
        .args(["--json", "status", sweep_id])
        .current_dir(cwd)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_random_search_with_asha_is_seeded_and_ends_every_trial() {
    let Some(data) = data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let cwd = tmp.path();
    let data = data.to_str().unwrap();
    let search = [
        "sweep",
        "--data",
        data,
        "--task",
        "covid",
        "--l",
        "12",
        "--cell",
        "rnn,gru",
        "--hidden",
        "4..16",
        "--lr",
        "1e-4..3e-2:log",
        "--epochs",
        "9",
        "--random",
        "6",
        "--search-seed",
        "3",
        "--early-stop",
        "asha",
        "--eta",
        "3",
        "--min-epochs",
        "1",
        "--max-parallel",
        "1",
    ];
    let v = json(&home, cwd, &search);
    let trials = v["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 6, "{v:#}");
    let mut epochs = 0;
    for t in trials {
        let c = &t["config"];
        let hidden = c["hidden"].as_u64().unwrap();
        let lr = c["lr"].as_f64().unwrap();
        assert!(
            (4..=16).contains(&hidden) && (1e-4..=3e-2).contains(&lr),
            "{c}"
        );
        epochs += t["epoch"].as_u64().unwrap();
        match t["state"].as_str().unwrap() {
            "succeeded" => assert_eq!(t["epoch"], 9, "{t:#}"),
            "stopped_early" => {
                let m = t["message"].as_str().unwrap_or("");
                assert!(m.contains("ASHA rung"), "{t:#}");
                assert!(t["epoch"].as_u64().unwrap() < 9, "{t:#}");
            }
            other => panic!("trial ended {other}: {t:#}"),
        }
    }
    // One trial at a time in draw order: the third trial to reach the first rung is the
    // first that can be stopped, so at most 4 of 6 run to the end.
    assert!(epochs < 6 * 9, "ASHA stopped nothing: {epochs} epochs");
    // The same seed names the same trials, all finished: nothing runs again.
    let again = json(&home, cwd, &search);
    assert_eq!(again["sweep"], v["sweep"]);
    assert_eq!(again["queued"], 0, "{again:#}");
}
