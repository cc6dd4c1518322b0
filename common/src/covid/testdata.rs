//! Test access to the real data under `../shared/data` (beside the workspace, never copied
//! into it): tests that need it skip with a note on a developer machine without it, and
//! fail in CI (`CI=true`), where a silent skip would hide a broken setup.

use std::path::PathBuf;

/// The shared data folder, relative to this crate so tests work from any directory.
const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");

/// The path of `relative` under the data folder, or `None` (after printing why) when it is
/// missing outside CI.
///
/// # Panics
/// When the file is missing and `CI=true`.
pub(crate) fn data_file(relative: &str) -> Option<PathBuf> {
    let path = PathBuf::from(DATA_DIR).join(relative);
    if path.is_file() {
        return Some(path);
    }
    let note = format!(
        "test data {} is missing; put the shared data folder beside the workspace (see ../shared/data/README.md)",
        path.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{note}");
    }
    eprintln!("skipping: {note}");
    None
}
