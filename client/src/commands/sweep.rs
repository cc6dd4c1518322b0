//! `sweep`: check what can be checked here, get the data into the store, submit the grid,
//! then (unless `--detach`) watch it to the end and report the table and the best trials.
//! Mistakes in the flags, and a sweep the coordinator refuses as invalid (its checks
//! against the uploaded data included), end the command as usage errors (exit status 2)
//! with nothing submitted; a watched sweep with a failed trial ends with exit status 1
//! after its report.
//!
//! A local COVID-19 file is parsed before it is uploaded: a malformed one is refused here,
//! naming the user's own file and line, instead of reaching the store and failing every
//! trial on the workers with the path of a cached copy.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::json;
use tonic::Code;
use wick_common::covid::CaseTable;
use wick_proto::v1::{DataRef, SubmitSweepParams};

use super::{Outcome, usage, watch};
use crate::cli::{DataArgs, SweepArgs, Task};
use crate::connect::Session;
use crate::upload;

/// The COVID-19 file inside a `--data` folder (as `upload` reads it).
const COVID_CSV: &str = "covid/covid_19.csv";

/// The local COVID-19 file a covid sweep would upload, if it is one (URLs, `store:` keys
/// and store URLs are not read here).
fn local_covid_csv(d: &DataArgs) -> Option<PathBuf> {
    let local = |s: &str| !s.contains("://") && !s.starts_with("store:");
    match (&d.covid_csv, &d.data) {
        (Some(f), _) => local(f).then(|| PathBuf::from(f)),
        (None, Some(dir)) => local(dir).then(|| Path::new(dir).join(COVID_CSV)),
        (None, None) => None,
    }
}

/// Parses the local COVID-19 file of a covid sweep; a missing file is left to `upload`,
/// which says where the file was looked for.
async fn check_covid_csv(d: &DataArgs, tasks: &[Task]) -> Result<()> {
    let Some(path) = local_covid_csv(d).filter(|p| p.is_file()) else {
        return Ok(());
    };
    if !tasks.contains(&Task::Covid) {
        return Ok(());
    }
    let parsed = tokio::task::spawn_blocking(move || CaseTable::from_path(&path))
        .await
        .context("checking the COVID-19 file stopped")?;
    if let Err(e) = parsed {
        bail!("COVID-19 cases: {e}; fix the file, or pass another with --covid-csv FILE|URL");
    }
    Ok(())
}

/// `sweep`.
pub async fn run(s: &Session, a: &SweepArgs, json: bool) -> Result<Outcome> {
    let tasks = a.tasks().map_err(usage)?;
    // Mistakes in the flags and in a local data file are reported before anything is
    // uploaded.
    a.spec(DataRef::default()).map_err(usage)?;
    check_covid_csv(&a.data, &tasks).await?;
    let via = match &s.store {
        Some(store) => upload::Via::Store(store),
        None => upload::Via::Coordinator {
            sweeps: &s.sweeps,
            quiet: json,
        },
    };
    let (data, placed) = upload::resolve(&a.data, &tasks, via).await?;
    let data_json: Vec<_> = placed.iter().map(|p| p.json.clone()).collect();
    let spec = a.spec(data).map_err(usage)?;
    // The coordinator stores nothing of a sweep it refuses as invalid: that is a mistake
    // in the call, as a bad flag is.
    let r = s
        .sweeps
        .clone()
        .submit_sweep(SubmitSweepParams { spec: Some(spec) })
        .await
        .map_err(|st| match st.code() {
            Code::InvalidArgument => usage(st.message()),
            _ => st.into(),
        })?
        .into_inner();
    let total = r.trial_ids.len();
    if !json {
        for p in &placed {
            eprintln!("{}", p.note);
        }
        eprintln!(
            "sweep {}: {total} trials, {} queued now, {} already finished or running",
            r.sweep_id,
            r.queued,
            total.saturating_sub(r.queued as usize)
        );
    }
    if a.detach {
        if !json {
            eprintln!(
                "follow it with: client --coordinator {} watch {}",
                s.target, r.sweep_id
            );
        }
        return Ok(Outcome {
            json: json!({"sweep": r.sweep_id, "trial_ids": r.trial_ids, "queued": r.queued, "data": data_json}),
            text: format!("{}\n", r.sweep_id),
        });
    }
    let status = watch::follow(s, &r.sweep_id, json).await?;
    let mut out = watch::report(s, &status).await?;
    out.json["queued"] = json!(r.queued);
    out.json["data"] = json!(data_json);
    watch::verdict(out, &status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(data: Option<&str>, covid: Option<&str>) -> DataArgs {
        DataArgs {
            data: data.map(String::from),
            covid_csv: covid.map(String::from),
            faces: None,
        }
    }

    #[tokio::test]
    async fn a_malformed_local_file_is_refused_naming_it_and_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("cases.csv");
        std::fs::write(
            &bad,
            "Date,Country,Confirmed\n2020-01-22,France,1\n2020-01-23,France,many\n",
        )
        .unwrap();
        let e = check_covid_csv(&args(None, bad.to_str()), &[Task::Covid])
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&bad.display().to_string())
                && e.contains("line 3")
                && e.contains("'many' is not a number")
                && e.contains("--covid-csv"),
            "{e}"
        );
        // Inside a --data folder too; a vae-only sweep does not read it.
        std::fs::create_dir_all(dir.path().join("covid")).unwrap();
        std::fs::write(dir.path().join(COVID_CSV), "").unwrap();
        let d = dir.path().to_str();
        let e = check_covid_csv(&args(d, None), &[Task::Covid, Task::Vae])
            .await
            .unwrap_err();
        assert!(e.to_string().contains("the case table is empty"), "{e}");
        check_covid_csv(&args(d, None), &[Task::Vae]).await.unwrap();
    }

    #[tokio::test]
    async fn remote_missing_and_good_files_pass_to_the_upload() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.csv");
        std::fs::write(
            &good,
            "Date,Country,Confirmed\n2020-01-22,France,1\n2020-01-23,France,2\n",
        )
        .unwrap();
        for a in [
            args(None, good.to_str()),
            args(None, Some("https://example.org/cases.csv")),
            args(None, Some("store:data/x/covid.csv")),
            args(Some("s3://bucket/data"), None),
            args(None, Some("/no/such/file.csv")),
        ] {
            check_covid_csv(&a, &[Task::Covid]).await.unwrap();
        }
        assert_eq!(local_covid_csv(&args(None, None)), None);
    }
}
