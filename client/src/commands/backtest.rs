//! `backtest`: checks a covid trial's forecasts (its `plots/forecast.json`: P(new cases rise
//! on D + 1), D the last day of its data) against a later case table that continues past
//! D, and reports accuracy against the majority baseline, Brier score, log loss,
//! calibration bins and the most confident misses. The scoring itself is
//! `wick_common::covid::backtest`; this module finds the trial, its forecasts and D.
//!
//! forecast.json, summary.json and the metrics record no date, so D is re-read from the
//! trial's data: `data.json` names its store key, which the session's store (embedded, or
//! `--store` in cluster mode) reads, and D is that table's last day, exactly as the worker
//! computed it. Without a store at hand, D comes from the title of the trial's world map
//! ("... the day after YYYY-MM-DD ..."), which the worker writes from the same date.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use chrono::NaiveDate;
use serde_json::{Value, json};
use tonic::{Code, Status};
use wick_common::covid::CaseTable;
use wick_common::covid::backtest::{self, Checked, Forecast};
use wick_proto::v1::{BestTrialParams, GetSweepParams, ListSweepsParams, TrialStatus};

use super::Outcome;
use super::trials::fetch;
use crate::cli::BacktestArgs;
use crate::connect::Session;
use crate::render::{Table, label};

/// Most calibration bins `--bins` accepts: more would leave most bins of ~200 countries empty.
const MAX_BINS: u32 = 100;
/// Misses listed.
const WORST: usize = 10;
/// A later file that continues past the coursework data, for error messages.
const LATER_FILE: &str = "../shared/data/covid/countries-aggregated.csv (to 2021-09-28)";
/// What the world map's title says just before D (see worker/src/covid/artifacts.rs).
const MAP_DATE_MARK: &str = "the day after ";

/// The coordinator's message for a missing artifact; any other failure is returned as is.
pub(super) fn missing(st: Status) -> Result<String> {
    match st.code() {
        Code::NotFound => Ok(st.message().to_string()),
        _ => Err(st.into()),
    }
}

/// The trial `--trial` names (a unique prefix is enough), found in the sweeps, or the best
/// covid trial as `predict` picks it.
pub(super) async fn resolve(s: &Session, trial: Option<&str>) -> Result<TrialStatus> {
    let Some(query) = trial else {
        let best = s
            .sweeps
            .clone()
            .best_trial(BestTrialParams {
                sweep_id: String::new(),
                task: "covid".into(),
                kl_weight: None,
            })
            .await?;
        return Ok(best.into_inner());
    };
    let sweeps = s
        .sweeps
        .clone()
        .list_sweeps(ListSweepsParams {})
        .await?
        .into_inner()
        .sweeps;
    let mut found: Vec<TrialStatus> = Vec::new();
    for sw in sweeps {
        let st = s
            .sweeps
            .clone()
            .get_sweep(GetSweepParams {
                sweep_id: sw.sweep_id,
            })
            .await?
            .into_inner();
        for t in st.trials {
            // A trial shared by several sweeps is one trial.
            if t.trial_id.starts_with(query) && !found.iter().any(|f| f.trial_id == t.trial_id) {
                found.push(t);
            }
        }
    }
    match found.len() {
        0 => bail!(
            "no trial '{query}' in any sweep; `client list` and `client status SWEEP` show the trials, or leave --trial out to use the best covid trial"
        ),
        1 => Ok(found.remove(0)),
        _ => bail!(
            "'{query}' is the start of {} trial ids ({}); give more of the id",
            found.len(),
            found
                .iter()
                .map(|t| t.trial_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// What both forms of backtest start from: the `--actual` table (read first: a bad path
/// should not wait on the coordinator), the covid trial, and its file `name`, which only a
/// finished trial has (`what` says what it is for, in the error).
pub(super) async fn covid_trial_file(
    s: &Session,
    a: &BacktestArgs,
    name: &str,
    what: &str,
) -> Result<(CaseTable, TrialStatus, Vec<u8>)> {
    let actual = CaseTable::from_path(&a.actual).map_err(|e| anyhow!("{e}"))?;
    let trial = resolve(s, a.trial.as_deref()).await?;
    let id = trial.trial_id.as_str();
    if trial.task != "covid" {
        bail!(
            "trial {id} is a {} trial; backtest needs a covid trial (leave --trial out to use the best covid trial)",
            trial.task
        );
    }
    let bytes = match fetch(s, id, name).await {
        Ok(b) => b,
        Err(st) => bail!(
            "trial {id} is {} and has no {what} ({}); only a finished covid trial has {name}: wait for it, or leave --trial out to use the best covid trial",
            trial.state,
            missing(st)?
        ),
    };
    Ok((actual, trial, bytes))
}

/// The date in a world map's title, `... the day after YYYY-MM-DD ...`.
fn date_in_map(svg: &str) -> Option<NaiveDate> {
    let at = svg.find(MAP_DATE_MARK)? + MAP_DATE_MARK.len();
    NaiveDate::parse_from_str(svg.get(at..at + 10)?, "%Y-%m-%d").ok()
}

/// D from the trial's data in the store: `Ok(Err(why))` when it cannot be read from here.
async fn day_from_data(s: &Session, trial: &str) -> Result<Result<(NaiveDate, String), String>> {
    let refs = match fetch(s, trial, "data.json").await {
        Ok(bytes) => bytes,
        Err(st) => return Ok(Err(missing(st)?)),
    };
    let refs: Value = match serde_json::from_slice(&refs) {
        Ok(v) => v,
        Err(e) => return Ok(Err(format!("its data.json is not JSON ({e})"))),
    };
    let Some(key) = refs
        .get("covid_csv")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
    else {
        return Ok(Err("its data.json names no covid_csv".into()));
    };
    if key.starts_with("http://") || key.starts_with("https://") {
        return Ok(Err(format!(
            "its data is a URL ({key}), which the client does not fetch"
        )));
    }
    let Some(store) = s.store.as_ref() else {
        return Ok(Err(format!(
            "its data ({key}) is in the store, and no --store was given"
        )));
    };
    let Some(bytes) = store.get(key).await? else {
        return Ok(Err(format!("the store has no {key}")));
    };
    let text = String::from_utf8_lossy(&bytes);
    // A table the worker trained on parses; if it does not, that is worth saying as is.
    let table = CaseTable::parse(&text).map_err(|e| anyhow!("the trial's data {key}: {e}"))?;
    let day = *table
        .dates
        .last()
        .with_context(|| format!("the trial's data {key} has no dates"))?;
    Ok(Ok((day, format!("the trial's data, {key}"))))
}

/// D and where it was read (see the module doc).
async fn last_day(s: &Session, trial: &str) -> Result<(NaiveDate, String)> {
    let data_why = match day_from_data(s, trial).await? {
        Ok(found) => return Ok(found),
        Err(why) => why,
    };
    let map = "plots/world_map.svg";
    let map_why = match fetch(s, trial, map).await {
        Ok(svg) => match date_in_map(&String::from_utf8_lossy(&svg)) {
            Some(day) => return Ok((day, format!("the title of the trial's {map}"))),
            None => format!("its {map} names no date"),
        },
        Err(st) => missing(st)?,
    };
    bail!(
        "cannot tell which day trial {trial}'s forecasts follow: its forecast.json records no date; {data_why}; and {map_why}. Pass --store URL (the store the cluster uses) so that the trial's data can be read"
    )
}

/// One checked forecast as JSON.
fn record(c: &Checked) -> Value {
    let f = &c.forecast;
    json!({
        "country": f.country,
        "iso2": f.iso2,
        "actual_country": c.actual_name,
        "probability": f.probability,
        "predicted_increase": f.predicted(),
        "actual_increase": c.actual,
        "new_cases_last_day": c.new_last,
        "new_cases_forecast_day": c.new_next,
    })
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// A number for JSON: `null` instead of NaN.
pub(super) fn num(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

/// An optional mean for text.
fn opt3(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.3}"))
}

/// `backtest`.
pub async fn run(s: &Session, a: &BacktestArgs) -> Result<Outcome> {
    if a.bins == 0 || a.bins > MAX_BINS {
        bail!(
            "--bins {} is out of range: use 1 to {MAX_BINS} calibration bins (default 10)",
            a.bins
        );
    }
    if let Some(from) = &a.from {
        return super::rolling::run(s, a, from).await;
    }
    let (actual, trial, bytes) =
        covid_trial_file(s, a, "plots/forecast.json", "forecasts to check").await?;
    let id = trial.trial_id.as_str();
    let forecasts: Vec<Forecast> = serde_json::from_slice(&bytes)
        .with_context(|| format!("trial {id}'s plots/forecast.json is not a list of forecasts"))?;
    let (day, source) = last_day(s, id).await?;
    let file = a.actual.display();
    let bt = backtest::check(&forecasts, &actual, day).map_err(|e| {
        anyhow!("{file} cannot check the forecasts: {e}; use a file that continues past {day}, such as {LATER_FILE}")
    })?;
    if bt.checked.is_empty() {
        bail!(
            "none of trial {id}'s {} forecast countries is in {file} (matched by ISO code, then by name); is it a COVID-19 case table by country?",
            forecasts.len()
        );
    }
    let m = bt.metrics(a.bins as usize);
    let worst = bt.worst(WORST);
    Ok(Outcome {
        json: json!({
            "trial": id,
            "actual": file.to_string(),
            "last_day": day.to_string(),
            "last_day_source": source,
            "forecast_day": bt.forecast_day.to_string(),
            "scored": m.scored,
            "skipped": bt.skipped.iter().map(|k| json!({"country": k.country, "reason": k.reason})).collect::<Vec<_>>(),
            "accuracy": num(m.accuracy),
            "baseline": num(m.baseline),
            "brier": num(m.brier),
            "log_loss": num(m.log_loss),
            "bins": m.bins,
            "worst": worst.iter().map(|c| record(c)).collect::<Vec<_>>(),
            "countries": bt.checked.iter().map(record).collect::<Vec<_>>(),
        }),
        text: text(&trial, &a.actual, &source, &bt, &m, &worst),
    })
}

/// The report for a person.
fn text(
    trial: &TrialStatus,
    file: &Path,
    source: &str,
    bt: &backtest::Backtest,
    m: &backtest::Metrics,
    worst: &[&Checked],
) -> String {
    let mut out = format!(
        "trial {} ({}) against {}\nforecasts of {} (the day after {}, the last day of the trial's data, read from {source})\n",
        trial.trial_id,
        label(trial),
        file.display(),
        bt.forecast_day,
        bt.last_day,
    );
    let rose = bt.checked.iter().filter(|c| c.actual).count();
    let commoner = if 2 * rose >= bt.checked.len() {
        "increase"
    } else {
        "no increase"
    };
    out.push_str(&format!(
        "scored {} countries ({rose} increased), skipped {}\n\naccuracy     {:.3}\nbaseline     {:.3}  (always \"{commoner}\")\nBrier score  {:.4}\nlog loss     {:.4}\n\ncalibration:\n",
        m.scored,
        bt.skipped.len(),
        m.accuracy,
        m.baseline,
        m.brier,
        m.log_loss
    ));
    let mut bins = Table::new(&["P(INCREASE)", "COUNT", "MEAN P", "OBSERVED"]);
    for b in &m.bins {
        bins.row(vec![
            format!("{:.2}-{:.2}", b.lo, b.hi),
            b.count.to_string(),
            opt3(b.mean_p),
            opt3(b.observed),
        ]);
    }
    out.push_str(&bins.render());
    if worst.is_empty() {
        out.push_str("\nno wrong forecasts\n");
    } else {
        out.push_str(&format!(
            "\nthe {} most confident wrong forecasts:\n",
            worst.len()
        ));
        let mut t = Table::new(&[
            "COUNTRY",
            "ISO",
            "P(INCREASE)",
            "PREDICTED",
            "ACTUAL",
            "NEW ON D",
            "NEW ON D+1",
        ]);
        for c in worst {
            let f = &c.forecast;
            t.row(vec![
                f.country.clone(),
                f.iso2.clone().unwrap_or_default(),
                format!("{:.3}", f.probability),
                yes_no(f.predicted()).into(),
                yes_no(c.actual).into(),
                format!("{}", c.new_last),
                format!("{}", c.new_next),
            ]);
        }
        out.push_str(&t.render());
    }
    if !bt.skipped.is_empty() {
        out.push_str(&format!("\nskipped ({}):\n", bt.skipped.len()));
        let mut t = Table::new(&["COUNTRY", "REASON"]);
        for k in &bt.skipped {
            t.row(vec![k.country.clone(), k.reason.clone()]);
        }
        out.push_str(&t.render());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_date_in_a_world_map_title() {
        // The title as worker/src/covid/artifacts.rs writes it, inside SVG text.
        let svg = "<svg><text x=\"1\">P(new cases increase the day after 2020-04-12), RNN 8 units, L = 12</text></svg>";
        assert_eq!(date_in_map(svg), NaiveDate::from_ymd_opt(2020, 4, 12));
        assert_eq!(date_in_map("<svg><text>P(increase)</text></svg>"), None);
        assert_eq!(date_in_map("the day after 2020-4"), None);
    }
}
