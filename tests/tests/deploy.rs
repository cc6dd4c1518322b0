//! The Kubernetes manifests and images in `deploy/` configure the programs only through
//! settings the programs have: every `WICK_*` variable (and `RUST_LOG`) a coordinator or
//! worker container sets, and every `--flag` in a container's args, must appear in that
//! program's `--help`; names in the ConfigMap both programs read must be in both. A flag
//! renamed in the code without the manifests fails here rather than in a cluster.
//! (Schema validation of the rendered manifests is `deploy/validate.sh`, run by CI.)

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `--help` of a program (`coordinator`, or `worker serve`).
fn help(program: &str, sub: &[&str]) -> String {
    let out = Command::new(common::binary(program))
        .args(sub)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{program} {sub:?} --help failed");
    String::from_utf8(out.stdout).unwrap()
}

/// Every file under `dir` with one of `exts`.
fn files(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, exts, out);
        } else if exts.iter().any(|e| path.to_string_lossy().ends_with(e)) {
            out.push(path);
        }
    }
}

/// Setting names (`WICK_*`, `RUST_LOG`) and `--flags` in `text`, as `(name, is_flag)`.
fn settings(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')) {
            let setting = word.starts_with("WICK_") || word == "RUST_LOG";
            if setting || (word.starts_with("--") && word.len() > 2) {
                names.insert(word.to_string());
            }
        }
    }
    names
}

/// The program a manifest document configures: a Deployment named `coordinator` or
/// `worker` (base or patch), a kustomization (its ConfigMap goes to both), or none.
fn programs(doc: &str) -> Vec<&'static str> {
    let field = |key: &str| {
        doc.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
    };
    let name = doc
        .lines()
        .skip_while(|l| !l.starts_with("metadata:"))
        .find_map(|l| l.trim().strip_prefix("name:"))
        .map(|v| v.trim().to_string());
    match (field("kind:").as_deref(), name.as_deref()) {
        (Some("Deployment"), Some("coordinator")) => vec!["coordinator"],
        (Some("Deployment"), Some("worker")) => vec!["worker"],
        (Some("Kustomization"), _) => vec!["coordinator", "worker"],
        _ => vec![],
    }
}

#[test]
fn every_setting_the_manifests_use_is_one_the_programs_take() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let coordinator = help("coordinator", &[]);
    let worker = help("worker", &["serve"]);
    let mut manifests = Vec::new();
    files(&deploy.join("k8s"), &[".yaml", ".yml"], &mut manifests);
    assert!(
        manifests.len() >= 8,
        "too few manifests found: {manifests:?}"
    );
    let mut checked = BTreeSet::new();
    let mut missing = Vec::new();
    for path in &manifests {
        let text = std::fs::read_to_string(path).unwrap();
        for doc in text.split("\n---") {
            for program in programs(doc) {
                let help = if program == "coordinator" {
                    &coordinator
                } else {
                    &worker
                };
                for name in settings(doc) {
                    checked.insert(name.clone());
                    // A flag must be a whole word of the help ("--listen" not "--listen-x").
                    let found = if name.starts_with("--") {
                        help.split(|c: char| c.is_whitespace() || c == ',' || c == '=' || c == '[')
                            .any(|w| w == name)
                    } else {
                        help.contains(&name)
                    };
                    if !found {
                        missing.push(format!("{name} ({program}, {})", path.display()));
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "settings the programs do not take: {missing:#?}"
    );
    // The check saw the settings that matter, so an empty scan cannot pass.
    for name in [
        "WICK_STORE",
        "WICK_COORDINATOR",
        "WICK_ADVERTISE",
        "WICK_TOKEN_FILE",
        "WICK_METRICS_LISTEN",
    ] {
        assert!(
            checked.contains(name),
            "{name} not found in the manifests: {checked:?}"
        );
    }
}

#[test]
fn the_check_catches_a_setting_that_does_not_exist() {
    let worker = help("worker", &["serve"]);
    let doc = "kind: Deployment\nmetadata:\n  name: worker\nspec:\n  env:\n    - name: WICK_NO_SUCH_THING\n";
    assert_eq!(programs(doc), vec!["worker"]);
    let names = settings(doc);
    assert!(names.contains("WICK_NO_SUCH_THING"), "{names:?}");
    assert!(!worker.contains("WICK_NO_SUCH_THING"));
}
