//! `backtest --from DATE --days N`: a rolling backtest of a covid trial's model. For each
//! of N consecutive forecast days, the model (the trial's `model.safetensors`, with its
//! temperature) is run here on every country's counts in `--actual` up to the day before,
//! and nothing later; the forecasts are scored against what happened, day by day and all
//! together, next to two baselines: always "no" (accuracy) and the constant probability
//! of an increase the trial saw in its training windows (Brier score and log loss).
//! The scoring is `wick_common::covid::rolling`; this module runs the model and reports.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use chrono::{Days, NaiveDate};
use serde_json::{Value, json};
use wick_common::covid::CaseTable;
use wick_common::covid::backtest::{self, Forecast, Metrics, increase_label};
use wick_common::covid::rolling::{self, ConstantScores, DayScores, Rolling, inputs_on};
use wick_proto::v1::TrialStatus;
use wick_worker::covid::artifacts::probabilities;
use wick_worker::covid::train::{Loaded, load_model};

use super::Outcome;
use super::backtest::{covid_trial_file, num};
use crate::cli::BacktestArgs;
use crate::render::{Table, label, parse_json};

/// Most forecast days one backtest runs: a few years of daily data.
const MAX_DAYS: u32 = 3650;
/// Days before `--from` whose increases give the base rate when the trial's summary
/// records none (trials trained before it did).
const RATE_DAYS: u64 = 30;

/// The rolling backtest's inputs, checked.
struct Plan {
    /// First forecast day.
    from: NaiveDate,
    /// Forecast days.
    days: u32,
}

fn plan(a: &BacktestArgs, from: &str) -> Result<Plan> {
    let from = NaiveDate::parse_from_str(from.trim(), "%Y-%m-%d")
        .map_err(|e| anyhow!("--from '{from}' is not a YYYY-MM-DD date ({e})"))?;
    let days = a.days.unwrap_or(1);
    if days == 0 || days > MAX_DAYS {
        bail!("--days {days} is out of range: use 1 to {MAX_DAYS} forecast days");
    }
    Ok(Plan { from, days })
}

/// The day before `day`.
fn before(day: NaiveDate) -> NaiveDate {
    day.pred_opt().unwrap_or(day)
}

/// The model's forecasts from the counts up to `day` (the data's last day).
fn forecasts_on(m: &Loaded, actual: &CaseTable, day: NaiveDate) -> Result<Vec<Forecast>> {
    let l = m.config.l;
    let w = inputs_on(actual, day, l).ok_or_else(|| {
        anyhow!(
            "the actual file has no {l} days of counts up to {day} (it covers {} to {}); use a later --from or a file that starts earlier",
            actual.dates.first().map(|d| d.to_string()).unwrap_or_default(),
            actual.dates.last().map(|d| d.to_string()).unwrap_or_default(),
        )
    })?;
    let cpu = wick_worker::device::parse("cpu")?;
    let p = probabilities(&m.model, &m.params, &w, m.temperature, &cpu)?;
    Ok(w.country
        .iter()
        .zip(p)
        .map(|(&c, p)| Forecast {
            country: actual.names[c].clone(),
            iso2: actual.iso2(c).map(str::to_string),
            probability: p,
            increase: None,
        })
        .collect())
}

/// P(increase) a forecaster knowing only the base rate would give: the trial's training
/// share of increases, or (older trials) the share over the [`RATE_DAYS`] before `from`
/// in the actual file. Returns the rate and where it came from.
fn base_rate(trial: &TrialStatus, actual: &CaseTable, from: NaiveDate) -> (f64, String) {
    let summary = parse_json(&trial.metrics_json);
    if let Some(p) = summary
        .get("train_positive_fraction")
        .and_then(Value::as_f64)
    {
        return (p, "the trial's training windows".into());
    }
    let (mut rose, mut all) = (0usize, 0usize);
    for k in 1..=RATE_DAYS {
        let Some(day) = from.checked_sub_days(Days::new(k + 1)) else {
            continue;
        };
        let Some(i) = actual.dates.iter().position(|&d| d == day) else {
            continue;
        };
        for series in &actual.cumulative {
            if let Some(up) = increase_label(series, i) {
                rose += usize::from(up);
                all += 1;
            }
        }
    }
    let p = if all == 0 {
        0.5
    } else {
        rose as f64 / all as f64
    };
    (
        p,
        format!("the {RATE_DAYS} days before {from} in the actual file"),
    )
}

/// Runs the rolling backtest `a` asks for from `from`.
pub async fn run(s: &crate::connect::Session, a: &BacktestArgs, from: &str) -> Result<Outcome> {
    let plan = plan(a, from)?;
    let (actual, trial, bytes) =
        covid_trial_file(s, a, "model.safetensors", "model to run").await?;
    let id = trial.trial_id.as_str();
    let cpu = wick_worker::device::parse("cpu")?;
    let model = load_model(&bytes, &format!("trial {id}'s model.safetensors"), &cpu)?;
    let file = a.actual.display().to_string();
    let mut days = Vec::with_capacity(plan.days as usize);
    for k in 0..plan.days {
        let day = plan.from + Days::new(u64::from(k));
        let data_end = before(day);
        let forecasts = forecasts_on(&model, &actual, data_end)?;
        let bt = backtest::check(&forecasts, &actual, data_end)
            .map_err(|e| anyhow!("{file} cannot score the forecasts of {day}: {e}"))?;
        days.push(bt);
    }
    let rolling = Rolling { days };
    let m = rolling.metrics(a.bins as usize);
    if m.scored == 0 {
        bail!("no forecast could be scored: {file} has no counts for the days after the forecasts");
    }
    let per_day = rolling.per_day();
    let (rate, rate_source) = base_rate(&trial, &actual, plan.from);
    let constant = rolling.constant(rate);
    let always_no = rolling::always_no(&rolling.pooled().checked);
    if let Some(path) = &a.plot {
        plot(path, &m, &per_day, plan.from, &trial)?;
    }
    let last = plan.from + Days::new(u64::from(plan.days - 1));
    Ok(Outcome {
        json: json!({
            "trial": id,
            "actual": file,
            "from": plan.from.to_string(),
            "to": last.to_string(),
            "days": plan.days,
            "l": model.config.l,
            "temperature": model.temperature,
            "scored": m.scored,
            "accuracy": num(m.accuracy),
            "baseline": num(m.baseline),
            "always_no_accuracy": num(always_no),
            "brier": num(m.brier),
            "log_loss": num(m.log_loss),
            "base_rate": {"probability": rate, "source": rate_source, "accuracy": num(constant.accuracy), "brier": num(constant.brier), "log_loss": num(constant.log_loss)},
            "bins": m.bins,
            "per_day": per_day,
            "forecasts": rolling.days.iter().flat_map(|d| d.checked.iter().map(move |c| json!({
                "forecast_day": d.forecast_day.to_string(),
                "country": c.forecast.country,
                "iso2": c.forecast.iso2,
                "probability": c.forecast.probability,
                "actual_increase": c.actual,
            }))).collect::<Vec<_>>(),
            "plot": a.plot.as_ref().map(|p| p.display().to_string()),
        }),
        text: text(
            &trial,
            &file,
            &plan,
            &m,
            always_no,
            &constant,
            &rate_source,
            &per_day,
            a.plot.as_deref(),
        ),
    })
}

/// Draws the reliability diagram and the accuracy per day.
fn plot(
    path: &Path,
    m: &Metrics,
    per_day: &[DayScores],
    from: NaiveDate,
    trial: &TrialStatus,
) -> Result<()> {
    let bins: Vec<wick_viz::ReliabilityBin> = m
        .bins
        .iter()
        .filter_map(|b| {
            Some(wick_viz::ReliabilityBin {
                mean_p: b.mean_p?,
                observed: b.observed?,
                count: b.count,
            })
        })
        .collect();
    let days: Vec<wick_viz::DayScore> = per_day
        .iter()
        .map(|d| wick_viz::DayScore {
            accuracy: d.accuracy,
            baseline: d.always_no,
        })
        .collect();
    let title = format!(
        "Rolling backtest of {} ({}), {} days from {from}",
        trial.trial_id,
        label(trial),
        per_day.len()
    );
    wick_viz::backtest_chart(path, &bins, &days, &from.to_string(), &title)
        .with_context(|| format!("cannot draw {}", path.display()))
}

/// The report for a person.
#[allow(clippy::too_many_arguments)]
fn text(
    trial: &TrialStatus,
    file: &str,
    plan: &Plan,
    m: &Metrics,
    always_no: f64,
    constant: &ConstantScores,
    rate_source: &str,
    per_day: &[DayScores],
    plot: Option<&Path>,
) -> String {
    let mut out = format!(
        "rolling backtest of trial {} ({}) against {file}\n{} forecast days from {}, each from the counts up to the day before; {} forecasts scored\n\n",
        trial.trial_id,
        label(trial),
        plan.days,
        plan.from,
        m.scored,
    );
    let mut t = Table::new(&["", "ACCURACY", "BRIER", "LOG LOSS"]);
    t.row(vec![
        "model".into(),
        format!("{:.3}", m.accuracy),
        format!("{:.4}", m.brier),
        format!("{:.4}", m.log_loss),
    ]);
    t.row(vec![
        "baseline".into(),
        format!("{always_no:.3}"),
        format!("{:.4}", constant.brier),
        format!("{:.4}", constant.log_loss),
    ]);
    out.push_str(&t.render());
    out.push_str(&format!(
        "(baseline: accuracy of always \"no\"; Brier and log loss of P(increase) = {:.3} for every country, the share of increases in {rate_source})\n\nper day:\n",
        constant.probability
    ));
    let mut d = Table::new(&[
        "FORECAST DAY",
        "SCORED",
        "ACCURACY",
        "ALWAYS NO",
        "BRIER",
        "LOG LOSS",
    ]);
    for s in per_day {
        d.row(vec![
            s.forecast_day.to_string(),
            s.scored.to_string(),
            format!("{:.3}", s.accuracy),
            format!("{:.3}", s.always_no),
            format!("{:.4}", s.brier),
            format!("{:.4}", s.log_loss),
        ]);
    }
    out.push_str(&d.render());
    if let Some(p) = plot {
        out.push_str(&format!("\npicture: {}\n", p.display()));
    }
    out
}
