//! What an operator relies on, on a real cluster (coordinator and worker processes, an
//! S3-compatible server): the bearer token keeps out calls without it or with a wrong one
//! and never reaches a log; both processes serve Prometheus metrics that count what
//! happened; the worker's gRPC health follows whether it can reach the coordinator and
//! the store; log lines name the trial and the worker, as JSON with --json-logs.

mod common;

use std::time::Duration;

use common::{Cluster, addr_after, http_get, wait_for};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const TOKEN: &str = "t0k3n-for-the-test";

/// The worker's health status for `service` (1 = SERVING, 2 = NOT_SERVING).
fn health(addr: &str, service: &str) -> i32 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut c = HealthClient::new(channel);
        c.check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
    })
}

/// The value of the sample `name` (labels included, as printed) in a metrics page.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn token_metrics_health_and_logs_on_a_real_cluster() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let token_flags = |dir: &std::path::Path| common::token_flags(dir, TOKEN);
    let Some(mut c) = Cluster::start_with(|dir| {
        let mut args = token_flags(dir);
        args.extend(["--metrics-listen", "127.0.0.1:0", "--json-logs"].map(String::from));
        args
    }) else {
        return;
    };
    c.worker_args = token_flags(c.dir.path());
    c.worker_args
        .extend(["--metrics-listen", "127.0.0.1:0"].map(String::from));
    let w = c.start_worker("w1");
    let coordinator_log = || c.coordinator.as_ref().unwrap().log_text();
    let coord_metrics = wait_for(Duration::from_secs(20), "the metrics address", || {
        addr_after(&coordinator_log(), "coordinator metrics on ")
    });
    let worker_log = c.workers[w].log_text();
    let worker_metrics = addr_after(&worker_log, "metrics on ").unwrap();
    let worker_grpc = addr_after(&worker_log, "listening on ").unwrap();

    // No token, then a wrong one: refused with a message that says what to do.
    let out = c.client_raw(&["list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no bearer token"),
        "{err}"
    );
    assert!(err.contains("--token-file"), "{err}");
    let wrong = c.dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-token").unwrap();
    c.client_env = vec![("WICK_TOKEN_FILE".into(), wrong.to_string_lossy().into())];
    let out = c.client_raw(&["list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("wrong bearer token"),
        "{err}"
    );

    // With the token the sweep runs (the worker sends it too, or it could not lease).
    c.client_env = vec![("WICK_TOKEN".into(), TOKEN.into())];
    let data = data.to_string_lossy().to_string();
    let submitted = c.client(&[
        "sweep", "--data", &data, "--l", "12", "--cell", "rnn", "--hidden", "8", "--epochs", "3",
        "--detach",
    ]);
    let sweep = submitted["sweep"].as_str().unwrap().to_string();
    let trials = c.wait_done(&sweep, Duration::from_secs(180));
    assert_eq!(trials.len(), 1);
    assert_eq!(trials[0]["state"], "succeeded", "{:?}", trials[0]);
    let trial = trials[0]["id"].as_str().unwrap().to_string();
    let p = c.client(&["predict", "--country", "TW"]);
    assert_eq!(p["forecasts"][0]["iso2"], "TW", "{p}");
    // The coordinator routes inference to the worker, which also demands the token.
    let out = {
        let mut c2 = std::process::Command::new(common::binary("client"));
        c2.args(["--coordinator", &format!("http://{worker_grpc}"), "list"]);
        c2.output().unwrap()
    };
    assert!(
        !out.status.success(),
        "a worker answered a call with no token"
    );

    // The refusals were logged, the token never.
    let log = coordinator_log();
    assert!(log.contains("refused a call with no bearer token"), "{log}");
    assert!(!log.contains(TOKEN), "the token reached the log");

    // Coordinator metrics count what happened.
    let page = http_get(&coord_metrics, "/metrics").unwrap();
    let want = [
        ("wick_coordinator_trials{state=\"succeeded\"}", 1.0),
        ("wick_coordinator_trials{state=\"queued\"}", 0.0),
        ("wick_coordinator_leases_granted_total", 1.0),
        ("wick_coordinator_leases_expired_total", 0.0),
        (
            "wick_coordinator_epochs_completed_total{task=\"covid\"}",
            3.0,
        ),
        (
            "wick_coordinator_epoch_duration_seconds_count{task=\"covid\"}",
            3.0,
        ),
        ("wick_coordinator_workers", 1.0),
        (
            "wick_coordinator_inference_requests_total{method=\"predict\",code=\"Ok\"}",
            1.0,
        ),
        (
            "wick_coordinator_inference_latency_seconds_count{method=\"predict\"}",
            1.0,
        ),
        ("wick_coordinator_store_errors_total{op=\"put\"}", 0.0),
    ];
    for (name, value) in want {
        assert_eq!(sample(&page, name), Some(value), "{name} in\n{page}");
    }

    // So do the worker's.
    let page = http_get(&worker_metrics, "/metrics").unwrap();
    let want = [
        ("wick_worker_leases_total", 1.0),
        ("wick_worker_trials_running", 0.0),
        ("wick_worker_epochs_completed_total{task=\"covid\"}", 3.0),
        (
            "wick_worker_epoch_duration_seconds_count{task=\"covid\"}",
            3.0,
        ),
        (
            "wick_worker_inference_requests_total{method=\"predict\",code=\"Ok\"}",
            1.0,
        ),
        ("wick_worker_dependency_up{dependency=\"coordinator\"}", 1.0),
        ("wick_worker_dependency_up{dependency=\"store\"}", 1.0),
        ("wick_worker_store_errors_total{op=\"get\"}", 0.0),
    ];
    for (name, value) in want {
        assert_eq!(sample(&page, name), Some(value), "{name} in\n{page}");
    }

    // Log lines name the trial and the worker: the worker's as text spans, the
    // coordinator's as JSON fields.
    let worker_log = c.workers[w].log_text();
    assert!(
        worker_log
            .lines()
            .any(|l| l.contains("worker{worker=w1}")
                && l.contains(&format!("trial{{trial={trial}}}"))),
        "no worker line names both the worker and trial {trial}:\n{worker_log}"
    );
    let leased = coordinator_log()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|j| j["fields"]["message"] == "trial leased")
        .expect("a JSON 'trial leased' line");
    assert_eq!(leased["fields"]["trial"], trial.as_str(), "{leased}");
    assert_eq!(leased["fields"]["worker"], "w1", "{leased}");

    // Health: serving while the coordinator answers; not once it is gone, though the
    // process stays alive.
    const SERVING: i32 = 1;
    const NOT_SERVING: i32 = 2;
    assert_eq!(health(&worker_grpc, ""), SERVING);
    assert_eq!(health(&worker_grpc, "liveness"), SERVING);
    c.coordinator.as_mut().unwrap().kill9();
    wait_for(
        Duration::from_secs(20),
        "the worker to report NOT_SERVING",
        || (health(&worker_grpc, "") == NOT_SERVING).then_some(()),
    );
    assert_eq!(health(&worker_grpc, "liveness"), SERVING);
    let page = http_get(&worker_metrics, "/metrics").unwrap();
    assert_eq!(
        sample(
            &page,
            "wick_worker_dependency_up{dependency=\"coordinator\"}"
        ),
        Some(0.0),
        "{page}"
    );
    c.start_coordinator();
    wait_for(
        Duration::from_secs(20),
        "the worker to report SERVING again",
        || (health(&worker_grpc, "") == SERVING).then_some(()),
    );
}
