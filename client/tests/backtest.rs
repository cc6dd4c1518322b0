//! `client backtest` end to end in embedded mode on the real data: a tiny covid trial's
//! forecasts for the day after the coursework file ends are checked against the later
//! long-format file, and one country (Taiwan) is re-labelled here from the raw CSV rows to
//! compare. Also the refusals: a file that ends too early, a malformed file, a VAE trial,
//! bad --bins.

use std::path::Path;

use chrono::NaiveDate;
use serde_json::Value;

mod common;

use common::*;

/// The last date of the coursework file: the last column of its header (`4/12/20`).
fn coursework_last_day(data: &Path) -> NaiveDate {
    let text = std::fs::read_to_string(data.join("covid/covid_19.csv")).unwrap();
    let header = text.lines().next().unwrap();
    let last = header.trim_end().rsplit(',').next().unwrap();
    NaiveDate::parse_from_str(last, "%m/%d/%y").unwrap()
}

/// Taiwan's cumulative confirmed cases on `day` in the long file (`Date,Country,Confirmed,..`).
fn taiwan_on(long_csv: &str, day: NaiveDate) -> f64 {
    cases_on(long_csv, "Taiwan*", day)
}

/// `country`'s cumulative confirmed cases on `day` in the long file.
fn cases_on(long_csv: &str, country: &str, day: NaiveDate) -> f64 {
    let prefix = format!("{day},{country},");
    let row = long_csv
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {country} row on {day}"));
    row[prefix.len()..]
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number: {v:#}"))
}

#[test]
fn backtest_scores_a_real_trial_against_the_later_file() {
    let Some(data) = data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let cwd = tmp.path();
    let later = data.join("covid/countries-aggregated.csv");
    let later_arg = later.to_str().unwrap();
    let sweep = json(
        &home,
        cwd,
        &[
            "sweep",
            "--data",
            data.to_str().unwrap(),
            "--l",
            "12",
            "--cell",
            "rnn",
            "--hidden",
            "8",
            "--vae-hidden",
            "8",
            "--epochs",
            "3",
            "--kl",
            "1",
            "--size",
            "28",
            "--limit",
            "200",
            "--workers",
            "1",
        ],
    );
    let trials = sweep["trials"].as_array().unwrap();
    let id_of = |task: &str| {
        trials
            .iter()
            .find(|t| t["task"] == task)
            .and_then(|t| t["id"].as_str())
            .unwrap_or_else(|| panic!("no {task} trial: {sweep:#}"))
            .to_string()
    };
    let (covid, vae) = (id_of("covid"), id_of("vae"));
    let forecasts: Vec<Value> = {
        ok(
            &home,
            cwd,
            &[
                "artifacts",
                "get",
                &covid,
                "plots/forecast.json",
                "--out",
                "forecast.json",
            ],
        );
        serde_json::from_slice(&std::fs::read(cwd.join("forecast.json")).unwrap()).unwrap()
    };

    // Without --trial: the best covid trial, the only one here.
    let v = json(&home, cwd, &["backtest", "--actual", later_arg]);
    assert_eq!(v["trial"], covid.as_str(), "{v:#}");
    let d = coursework_last_day(&data);
    let next = d.succ_opt().unwrap();
    assert_eq!(v["last_day"], d.to_string(), "{v:#}");
    assert_eq!(v["forecast_day"], next.to_string(), "{v:#}");
    let scored = v["scored"].as_u64().unwrap() as usize;
    assert!(scored >= 100, "{v:#}");
    let skipped = v["skipped"].as_array().unwrap();
    assert_eq!(
        scored + skipped.len(),
        forecasts.len(),
        "every forecast is scored or listed as skipped"
    );
    for k in skipped {
        assert!(!k["reason"].as_str().unwrap().is_empty(), "{k:#}");
    }
    let (accuracy, brier) = (num(&v, "accuracy"), num(&v, "brier"));
    assert!((0.0..=1.0).contains(&accuracy), "{v:#}");
    assert!((0.0..=1.0).contains(&brier), "{v:#}");
    assert!((0.5..=1.0).contains(&num(&v, "baseline")), "{v:#}");
    assert!(num(&v, "log_loss") > 0.0, "{v:#}");

    // The summary numbers agree with the per-country records.
    let countries = v["countries"].as_array().unwrap();
    assert_eq!(countries.len(), scored);
    let right = countries
        .iter()
        .filter(|c| c["predicted_increase"] == c["actual_increase"])
        .count();
    assert!((accuracy - right as f64 / scored as f64).abs() < 1e-12);
    let sq: f64 = countries
        .iter()
        .map(|c| {
            let y = if c["actual_increase"].as_bool().unwrap() {
                1.0
            } else {
                0.0
            };
            (num(c, "probability") - y).powi(2)
        })
        .sum();
    assert!((brier - sq / scored as f64).abs() < 1e-12);

    let bins = v["bins"].as_array().unwrap();
    assert_eq!(bins.len(), 10);
    assert_eq!((num(&bins[0], "lo"), num(&bins[9], "hi")), (0.0, 1.0));
    let binned: u64 = bins.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(binned as usize, scored);

    let worst = v["worst"].as_array().unwrap();
    assert!(worst.len() <= 10 && worst.len() <= scored - right, "{v:#}");
    for w in worst {
        assert_ne!(w["predicted_increase"], w["actual_increase"], "{w:#}");
    }

    // Taiwan, re-labelled from the raw rows: new cases on D + 1 against D.
    let long = std::fs::read_to_string(&later).unwrap();
    let day_before = d.pred_opt().unwrap();
    let new_d = taiwan_on(&long, d) - taiwan_on(&long, day_before);
    let new_next = taiwan_on(&long, next) - taiwan_on(&long, d);
    let tw = countries
        .iter()
        .find(|c| c["iso2"] == "TW")
        .unwrap_or_else(|| panic!("no TW record: {v:#}"));
    assert_eq!(
        tw["actual_increase"].as_bool(),
        Some(new_next > new_d),
        "{tw:#}"
    );
    assert_eq!(num(tw, "new_cases_last_day"), new_d, "{tw:#}");
    assert_eq!(num(tw, "new_cases_forecast_day"), new_next, "{tw:#}");
    let tw_forecast = forecasts.iter().find(|f| f["iso2"] == "TW").unwrap();
    assert_eq!(tw["probability"], tw_forecast["probability"]);

    // The same trial by id prefix, four bins, as text.
    let v4 = json(
        &home,
        cwd,
        &[
            "backtest",
            "--trial",
            &covid[..8],
            "--actual",
            later_arg,
            "--bins",
            "4",
        ],
    );
    assert_eq!(v4["trial"], covid.as_str());
    assert_eq!(v4["bins"].as_array().unwrap().len(), 4);
    assert_eq!(v4["accuracy"], v["accuracy"]);
    let text = ok(&home, cwd, &["backtest", "--actual", later_arg]);
    assert!(text.contains(&format!("forecasts of {next}")), "{text}");
    assert!(
        text.contains(&format!("scored {scored} countries (")),
        "{text}"
    );
    assert!(text.contains("calibration"), "{text}");

    // Rolling: two forecast days from D + 1, each from the counts up to the day before.
    let r = json(
        &home,
        cwd,
        &[
            "backtest",
            "--from",
            &next.to_string(),
            "--days",
            "2",
            "--actual",
            later_arg,
            "--plot",
            "rolling.png",
        ],
    );
    assert_eq!(r["trial"], covid.as_str(), "{r:#}");
    let per_day = r["per_day"].as_array().unwrap();
    assert_eq!(per_day.len(), 2, "{r:#}");
    assert_eq!(
        per_day[1]["forecast_day"],
        next.succ_opt().unwrap().to_string()
    );
    let all = r["forecasts"].as_array().unwrap();
    let pooled = r["scored"].as_u64().unwrap() as usize;
    assert_eq!(all.len(), pooled);
    assert_eq!(
        pooled as u64,
        per_day
            .iter()
            .map(|d| d["scored"].as_u64().unwrap())
            .sum::<u64>()
    );
    let right = all
        .iter()
        .filter(|f| (num(f, "probability") > 0.5) == f["actual_increase"].as_bool().unwrap())
        .count();
    assert!((num(&r, "accuracy") - right as f64 / pooled as f64).abs() < 1e-12);
    let no = all.iter().filter(|f| f["actual_increase"] == false).count();
    assert!((num(&r, "always_no_accuracy") - no as f64 / pooled as f64).abs() < 1e-12);
    assert!(num(&r["base_rate"], "log_loss") > 0.0, "{r:#}");
    // Two countries re-labelled by hand from the raw rows, on both days.
    for (iso, name) in [("TW", "Taiwan*"), ("DE", "Germany")] {
        for day in [next, next.succ_opt().unwrap()] {
            let c = |k: u64| cases_on(&long, name, day - chrono::Days::new(k));
            let rose = c(0) - c(1) > c(1) - c(2);
            let f = all
                .iter()
                .find(|f| f["iso2"] == iso && f["forecast_day"] == day.to_string())
                .unwrap_or_else(|| panic!("no {iso} forecast of {day}: {r:#}"));
            assert_eq!(f["actual_increase"].as_bool(), Some(rose), "{f:#}");
        }
    }
    let png = image::open(cwd.join("rolling.png")).expect("the rolling picture is a PNG");
    assert_eq!((png.width(), png.height()), (1400, 600));
    let err = fails(
        &home,
        cwd,
        &["backtest", "--from", "2020-13-01", "--actual", later_arg],
    );
    assert!(
        err.contains("--from '2020-13-01' is not a YYYY-MM-DD date"),
        "{err}"
    );
    let err = fails(
        &home,
        cwd,
        &["backtest", "--from", "2020-01-23", "--actual", later_arg],
    );
    assert!(
        err.contains("has no 12 days of counts up to 2020-01-22"),
        "{err}"
    );

    // A file that stops on D cannot check forecasts of D + 1.
    let from = d - chrono::Days::new(5);
    let mut truncated = String::from("Date,Country,Confirmed,Recovered,Deaths\n");
    for line in long.lines().skip(1) {
        let date = NaiveDate::parse_from_str(&line[..10], "%Y-%m-%d").unwrap();
        if (from..=d).contains(&date) {
            truncated.push_str(line);
            truncated.push('\n');
        }
    }
    std::fs::write(cwd.join("truncated.csv"), truncated).unwrap();
    let err = fails(&home, cwd, &["backtest", "--actual", "truncated.csv"]);
    assert!(err.contains("truncated.csv"), "{err}");
    assert!(
        err.contains(&format!("does not continue past {d}")),
        "{err}"
    );
    assert!(err.contains("countries-aggregated.csv"), "{err}");

    let err = fails(
        &home,
        cwd,
        &["backtest", "--trial", &vae, "--actual", later_arg],
    );
    assert!(err.contains("backtest needs a covid trial"), "{err}");
}

#[test]
fn backtest_refuses_bad_input_before_asking_for_a_trial() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let cwd = tmp.path();
    std::fs::write(
        cwd.join("bad.csv"),
        "Date,Country,Confirmed\n2020-04-12,Taiwan*,388\n2020-04-13,Taiwan*,many\n",
    )
    .unwrap();
    let err = fails(&home, cwd, &["backtest", "--actual", "bad.csv"]);
    assert!(err.contains("bad.csv"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("many"), "{err}");

    let err = fails(&home, cwd, &["backtest", "--actual", "missing.csv"]);
    assert!(err.contains("missing.csv"), "{err}");

    for bins in ["0", "101"] {
        let err = fails(
            &home,
            cwd,
            &["backtest", "--actual", "bad.csv", "--bins", bins],
        );
        assert!(
            err.contains(&format!("--bins {bins} is out of range")),
            "{err}"
        );
    }
}
