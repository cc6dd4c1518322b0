//! What the client's end-to-end tests share: the shared data beside the repository (or
//! a skip outside CI when it is missing), and running the real `client` binary in
//! embedded mode over a `--home` folder, with no WICK_* setting of the caller leaking in.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The shared data beside the repository.
pub const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");

/// Whether this is CI, where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The data folder, or `None` (skip) when it is missing outside CI.
pub fn data() -> Option<PathBuf> {
    let d = PathBuf::from(DATA);
    if d.join("covid/covid_19.csv").is_file()
        && d.join("covid/countries-aggregated.csv").is_file()
        && d.join("anime-faces").is_dir()
    {
        return Some(d);
    }
    assert!(
        !in_ci(),
        "the shared data is missing at {DATA}; CI needs ../shared/data beside the clone"
    );
    eprintln!("skipping: no shared data at {DATA}");
    None
}

/// Runs `client --home HOME ARGS` in `cwd`, with no WICK_* variable leaking in.
pub fn client(home: &Path, cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_client"));
    for var in [
        "WICK_COORDINATOR",
        "WICK_DATA",
        "WICK_HOME",
        "WICK_STORE",
        "WICK_TOKEN",
        "WICK_TOKEN_FILE",
        "WICK_TLS_CA",
    ] {
        cmd.env_remove(var);
    }
    cmd.arg("--home")
        .arg(home)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the client binary runs")
}

/// Runs a command that must succeed and returns its stdout.
pub fn ok(home: &Path, cwd: &Path, args: &[&str]) -> String {
    let out = client(home, cwd, args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "client {args:?} failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs a command with `--json`; stdout must be exactly one JSON document.
pub fn json(home: &Path, cwd: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let stdout = ok(home, cwd, &all);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{stdout}"))
}

/// Runs a command that must fail and returns its stderr.
pub fn fails(home: &Path, cwd: &Path, args: &[&str]) -> String {
    let out = client(home, cwd, args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "client {args:?} succeeded\nstdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}
