//! A sweep over TLS on a real cluster: a CA and a server certificate (for 127.0.0.1 and
//! localhost) are made at run time; the coordinator and the worker serve TLS with it and
//! dial each other over TLS with the CA; the client trains a trial and gets a forecast
//! routed to the worker. A plain-text client, or one without the CA, fails with a message
//! that says what to change.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Cluster;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// Writes ca.pem, server.pem and server.key into `dir`.
fn certificates(dir: &Path) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
}

fn tls_flags(dir: &Path) -> Vec<String> {
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    vec![
        "--tls-cert".into(),
        p("server.pem"),
        "--tls-key".into(),
        p("server.key"),
        "--tls-ca".into(),
        p("ca.pem"),
    ]
}

#[test]
fn a_sweep_over_tls_and_plain_text_is_refused_clearly() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let Some(mut c) = Cluster::start_with(|dir| {
        certificates(dir);
        tls_flags(dir)
    }) else {
        return;
    };
    c.scheme = "https";
    c.worker_args = tls_flags(c.dir.path());
    c.start_worker("w1");
    let ca = c.dir.path().join("ca.pem").to_string_lossy().into_owned();

    // Without the CA the client refuses the https URL before dialing.
    let out = c.client_raw(&["list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--tls-ca"), "{err}");

    c.client_env = vec![("WICK_TLS_CA".into(), ca.clone())];
    let data = data.to_string_lossy().to_string();
    let submitted = c.client(&[
        "sweep", "--data", &data, "--l", "12", "--cell", "rnn", "--hidden", "8", "--epochs", "2",
        "--detach",
    ]);
    let sweep = submitted["sweep"].as_str().unwrap().to_string();
    let trials = c.wait_done(&sweep, Duration::from_secs(180));
    assert_eq!(trials[0]["state"], "succeeded", "{:?}", trials[0]);
    // Coordinator to worker, over TLS too.
    let p = c.client(&["predict", "--country", "TW"]);
    assert_eq!(p["forecasts"][0]["iso2"], "TW", "{p}");

    // Plain text to the TLS port fails, naming the likely cause.
    let plain = std::process::Command::new(common::binary("client"))
        .args([
            "--coordinator",
            &format!("http://127.0.0.1:{}", c.port),
            "list",
        ])
        .env_remove("WICK_TLS_CA")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&plain.stderr);
    assert!(
        !plain.status.success(),
        "plain text got an answer from a TLS port"
    );
    assert!(
        err.contains("https://") && err.contains("--tls-ca"),
        "{err}"
    );
}
