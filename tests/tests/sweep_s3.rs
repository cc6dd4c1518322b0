//! A mixed sweep on a real cluster: coordinator, two workers and an S3-compatible server as
//! separate processes on loopback. Every trial succeeds, its artifacts are in the bucket,
//! predict and sample answer, and resubmitting the finished sweep runs nothing new.

mod common;

use std::time::Duration;

use common::Cluster;

#[test]
fn mixed_sweep_on_s3_then_predict_sample_and_resubmit() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let Some(mut c) = Cluster::start() else {
        return;
    };
    c.start_worker("w1");
    c.start_worker("w2");
    let data = data.to_string_lossy().to_string();
    let grid = [
        "sweep",
        "--data",
        &data,
        "--l",
        "12,40",
        "--kl",
        "1,100",
        "--cell",
        "rnn",
        "--hidden",
        "8",
        "--vae-hidden",
        "8",
        "--epochs",
        "2",
        "--limit",
        "200",
        "--detach",
    ];
    let submitted = c.client(&grid);
    let sweep = submitted["sweep"].as_str().unwrap().to_string();
    assert_eq!(
        submitted["trial_ids"].as_array().unwrap().len(),
        4,
        "2 covid (L) × 2 vae (KL): {submitted}"
    );
    assert_eq!(submitted["queued"], 4);

    let trials = c.wait_done(&sweep, Duration::from_secs(240));
    c.wait_settled(
        trials.iter().map(|t| t["id"].as_str().unwrap()),
        &["config.json", "metrics.jsonl"],
    );
    let workers: std::collections::BTreeSet<String> = trials
        .iter()
        .map(|t| t["worker"].as_str().unwrap_or("").to_string())
        .collect();
    for t in &trials {
        assert_eq!(t["state"], "succeeded", "{t}");
        assert_eq!(t["epoch"], 2);
        let id = t["id"].as_str().unwrap();
        let keys = c.s3.keys(&format!("cluster/trials/{id}/"));
        for want in [
            "model.safetensors",
            "summary.json",
            "metrics.jsonl",
            "config.json",
        ] {
            assert!(
                keys.iter().any(|k| k.ends_with(want)),
                "{id}: no {want} in the bucket: {keys:?}"
            );
        }
        assert!(
            keys.iter()
                .any(|k| k.contains("/plots/") && k.ends_with(".png")),
            "{id}: no plots: {keys:?}"
        );
        assert!(
            !keys.iter().any(|k| k.contains("/staging/")),
            "{id}: staging left behind: {keys:?}"
        );
    }
    assert!(
        workers.iter().all(|w| w == "w1" || w == "w2"),
        "{workers:?}"
    );

    let p = c.client(&["predict", "--country", "TW"]);
    let f = &p["forecasts"][0];
    assert_eq!(f["iso2"], "TW", "{p}");
    let prob = f["probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&prob), "{p}");

    let out = c.dir.path().join("grid.png");
    let s = c.client(&["sample", "--n", "16", "--out", out.to_str().unwrap()]);
    assert_eq!(s["images"], 16, "{s}");
    assert!(image_is_png(&out));

    let again = c.client(&grid);
    assert_eq!(
        again["sweep"].as_str(),
        Some(sweep.as_str()),
        "same grid, same sweep id"
    );
    assert_eq!(again["queued"], 0, "nothing new to run: {again}");
}

fn image_is_png(path: &std::path::Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(b"\x89PNG\r\n\x1a\n") && b.len() > 100)
}
