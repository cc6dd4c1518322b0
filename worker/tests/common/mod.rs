//! Shared test setup: where the real data is, and small helpers.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/data` beside the checkout, or `None` (with a note) when it is absent outside
/// CI. Under `CI=true` a missing folder fails the test: CI must never skip silently.
pub fn shared_data() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data"));
    if dir.join("covid/covid_19.csv").exists() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "CI=true but the shared data is missing at {}",
            dir.display()
        );
    }
    eprintln!("note: {} is missing; skipping this test", dir.display());
    None
}
