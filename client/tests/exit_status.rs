//! The exit status of the real `client` binary, in embedded mode: 2 for a sweep refused
//! before anything is stored (a flag of a task the sweep does not run; an L longer than
//! the uploaded table, refused by the coordinator with the worker's own message), and 1
//! for a sweep whose trial fails on its worker, with the report printed all the same.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

/// Daily new cases of a made-up country on day k.
type Daily = fn(u32) -> u32;

/// A long-layout table of two made-up countries over 100 days from 2020-01-22: one's
/// daily cases rise while the other's fall, so no country correlates with another above
/// 0.7. Every check before queueing passes (it parses; L = 5 fits from 2020-03-01) and
/// the worker fails the trial: set C is empty.
fn uncorrelated(dir: &Path) -> String {
    let mut csv = String::from("Date,Country,Confirmed\n");
    let day0 = chrono::NaiveDate::from_ymd_opt(2020, 1, 22).unwrap();
    let countries: [(&str, Daily); 2] = [("Rising", |k| k), ("Falling", |k| 200 - k)];
    for (name, daily) in countries {
        let mut total = 0;
        for (k, day) in day0.iter_days().take(100).enumerate() {
            total += daily(k as u32);
            csv.push_str(&format!("{day},{name},{total}\n"));
        }
    }
    let path = dir.join("uncorrelated.csv");
    std::fs::write(&path, csv).unwrap();
    path.to_str().unwrap().to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The exit status, failing with the output when the process was killed.
fn code(out: &Output) -> i32 {
    out.status
        .code()
        .unwrap_or_else(|| panic!("killed: {:?}\nstderr:\n{}", out.status, text(&out.stderr)))
}

#[test]
fn a_knob_of_a_task_not_run_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let out = client(
        &home,
        tmp.path(),
        &["sweep", "--task", "vae", "--hidden", "16"],
    );
    let err = text(&out.stderr);
    assert_eq!(code(&out), 2, "{err}");
    assert!(
        err.contains("--hidden applies to covid trials only") && err.contains("--vae-hidden"),
        "{err}"
    );
    // Refused before any server started: the embedded store was not even created.
    assert!(!home.join("store").exists());
    let out = client(&home, tmp.path(), &["sweep", "--start-date", "2020/03/01"]);
    let err = text(&out.stderr);
    assert_eq!(code(&out), 2, "{err}");
    assert!(err.contains("YYYY-MM-DD"), "{err}");
}

#[test]
fn an_l_beyond_the_data_is_refused_before_anything_is_stored() {
    let Some(data) = data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let data = data.to_str().unwrap();
    let out = client(
        &home,
        tmp.path(),
        &[
            "--json", "sweep", "--data", data, "--task", "covid", "--l", "12,400", "--epochs", "1",
        ],
    );
    let err = text(&out.stderr);
    assert_eq!(code(&out), 2, "{err}");
    assert!(
        err.contains("L = 400 needs 401 days from 2020-03-01 but the data has ")
            && err.contains("use --l ")
            && err.contains(" or less or an earlier --start-date"),
        "{err}"
    );
    assert!(text(&out.stdout).is_empty(), "nothing on stdout");
    let list = json(&home, tmp.path(), &["list"]);
    assert_eq!(list["sweeps"], serde_json::json!([]), "{list:#}");
    // The same for a start date the data does not have.
    let out = client(
        &home,
        tmp.path(),
        &[
            "sweep",
            "--data",
            data,
            "--l",
            "12",
            "--start-date",
            "2019-12-01",
            "--epochs",
            "1",
        ],
    );
    let err = text(&out.stderr);
    assert_eq!(code(&out), 2, "{err}");
    assert!(
        err.contains("start date 2019-12-01 is before the first date"),
        "{err}"
    );
}

#[test]
fn a_failed_trial_makes_sweep_and_watch_exit_1_after_their_report() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let csv = uncorrelated(tmp.path());
    let out = client(
        &home,
        tmp.path(),
        &[
            "--json",
            "sweep",
            "--covid-csv",
            &csv,
            "--l",
            "5",
            "--cell",
            "rnn",
            "--hidden",
            "4",
            "--epochs",
            "1",
        ],
    );
    let (stdout, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(code(&out), 1, "stdout:\n{stdout}\nstderr:\n{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("the report is still one JSON document ({e}):\n{stdout}"));
    let trials = v["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 1, "{v:#}");
    assert_eq!(trials[0]["state"], "failed", "{v:#}");
    assert!(
        trials[0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("set C is empty"),
        "{v:#}"
    );
    assert!(err.contains("1 of 1 trials of sweep"), "{err}");

    let sweep = v["sweep"].as_str().unwrap();
    let out = client(&home, tmp.path(), &["watch", sweep]);
    let (stdout, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(code(&out), 1, "stdout:\n{stdout}\nstderr:\n{err}");
    assert!(stdout.contains("0 of 1 trials succeeded"), "{stdout}");
}
