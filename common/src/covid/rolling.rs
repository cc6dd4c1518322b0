//! Rolling backtests: a covid model's forecasts made on each of N consecutive days, every
//! one from the case counts up to its own day only, scored against what happened the day
//! after. This module cuts the inputs out of a case table ([`inputs_on`]), and scores the
//! days one by one and pooled ([`Rolling`]); running the model is the caller's.
//!
//! Unlike the coursework's random split, where test windows interleave with the training
//! days, every forecast here lies in the model's future, as a forecast in use would.

use chrono::NaiveDate;
use serde::Serialize;

use super::backtest::{Backtest, Checked, Metrics, brier, log_loss};
use super::load::CaseTable;
use super::prep::{Windows, daily_new, normalise};

/// Every country's forecast input on `day`: its last `l` daily new-case counts up to and
/// including `day`, normalised as training windows are, in table order (`country` indexes
/// `table.names`). Nothing after `day` is read. `None` when `day` is not in the table or
/// the table does not reach `l` days before it.
pub fn inputs_on(table: &CaseTable, day: NaiveDate, l: usize) -> Option<Windows> {
    let first = *table.dates.first()?;
    let d = usize::try_from((day - first).num_days()).ok()?;
    if d >= table.dates.len() || d < l || l == 0 {
        return None;
    }
    let mut w = Windows {
        l,
        ..Windows::default()
    };
    for (c, series) in table.cumulative.iter().enumerate() {
        let start = w.x.len();
        // l + 1 cumulative counts give the l daily counts ending on `day`.
        w.x.extend(daily_new(&series[d - l..=d]).iter().map(|&v| v as f32));
        normalise(&mut w.x[start..]);
        w.y.push(0);
        w.country.push(c);
    }
    Some(w)
}

/// One forecast day's scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayScores {
    /// The day forecast (the data ends the day before).
    pub forecast_day: NaiveDate,
    /// Forecasts scored.
    pub scored: usize,
    /// Share of right forecasts.
    pub accuracy: f64,
    /// Accuracy of answering "no increase" for every country.
    pub always_no: f64,
    /// Brier score.
    pub brier: f64,
    /// Log loss.
    pub log_loss: f64,
}

/// The scores of a constant forecast P(increase) = `p` for every country: what a
/// forecaster who knows only how often counts rise would get.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ConstantScores {
    /// The probability given to every country.
    pub probability: f64,
    /// Accuracy of its decision (`p > 0.5`).
    pub accuracy: f64,
    /// Brier score.
    pub brier: f64,
    /// Log loss.
    pub log_loss: f64,
}

/// The backtests of consecutive forecast days.
#[derive(Debug, Clone, PartialEq)]
pub struct Rolling {
    /// One per forecast day, in order.
    pub days: Vec<Backtest>,
}

impl Rolling {
    /// Every day's checked forecasts as one backtest (its dates are the first day's).
    pub fn pooled(&self) -> Backtest {
        let checked: Vec<Checked> = self.days.iter().flat_map(|d| d.checked.clone()).collect();
        let first = self.days.first();
        Backtest {
            last_day: first.map_or(NaiveDate::MIN, |d| d.last_day),
            forecast_day: first.map_or(NaiveDate::MIN, |d| d.forecast_day),
            checked,
            skipped: self.days.iter().flat_map(|d| d.skipped.clone()).collect(),
        }
    }

    /// The pooled metrics with `bins` calibration bins.
    pub fn metrics(&self, bins: usize) -> Metrics {
        self.pooled().metrics(bins)
    }

    /// Each day's scores.
    pub fn per_day(&self) -> Vec<DayScores> {
        self.days
            .iter()
            .map(|d| {
                let m = d.metrics(1);
                DayScores {
                    forecast_day: d.forecast_day,
                    scored: m.scored,
                    accuracy: m.accuracy,
                    always_no: always_no(&d.checked),
                    brier: m.brier,
                    log_loss: m.log_loss,
                }
            })
            .collect()
    }

    /// The pooled scores of the constant forecast P(increase) = `p`.
    pub fn constant(&self, p: f64) -> ConstantScores {
        let checked = self.pooled().checked;
        let pairs: Vec<(f64, bool)> = checked.iter().map(|c| (p, c.actual)).collect();
        let right = checked.iter().filter(|c| (p > 0.5) == c.actual).count();
        ConstantScores {
            probability: p,
            accuracy: right as f64 / checked.len().max(1) as f64,
            brier: brier(&pairs),
            log_loss: log_loss(&pairs),
        }
    }
}

/// Share of `checked` whose counts did not rise: the accuracy of always answering "no".
pub fn always_no(checked: &[Checked]) -> f64 {
    let no = checked.iter().filter(|c| !c.actual).count();
    no as f64 / checked.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::covid::backtest::{Forecast, check};
    use crate::covid::prep::{PrepOptions, prepare};

    fn real() -> Option<CaseTable> {
        let path = crate::covid::testdata::data_file("covid/covid_19.csv")?;
        Some(CaseTable::from_path(&path).expect("the shared coursework data loads"))
    }

    #[test]
    fn inputs_on_the_last_day_are_the_forecast_windows_training_uses() {
        let Some(table) = real() else { return };
        let data = prepare(
            &table,
            &PrepOptions {
                l: 12,
                ..PrepOptions::default()
            },
        )
        .unwrap();
        let last = *table.dates.last().unwrap();
        let w = inputs_on(&table, last, 12).unwrap();
        assert_eq!(w.x, data.last.x);
        assert_eq!(w.country, data.last.country);
        // Nothing after the day is read: a table cut at the day gives the same inputs.
        let day = table.dates[30];
        let mut cut = table.clone();
        cut.dates.truncate(31);
        for s in &mut cut.cumulative {
            s.truncate(31);
        }
        assert_eq!(inputs_on(&table, day, 12), inputs_on(&cut, day, 12));
        assert!(
            inputs_on(&table, table.dates[11], 12).is_none(),
            "too early"
        );
        assert!(inputs_on(&table, last.succ_opt().unwrap(), 12).is_none());
    }

    #[test]
    fn days_are_scored_one_by_one_and_pooled() {
        let Some(table) = real() else { return };
        let n = table.dates.len();
        // Two days; countries 0 and 1 forecast 0.9 and 0.2.
        let days: Vec<Backtest> = [n - 3, n - 2]
            .iter()
            .map(|&d| {
                let f = |c: usize, p: f64| Forecast {
                    country: table.names[c].clone(),
                    iso2: None,
                    probability: p,
                    increase: None,
                };
                check(&[f(0, 0.9), f(1, 0.2)], &table, table.dates[d]).unwrap()
            })
            .collect();
        let r = Rolling { days };
        let per = r.per_day();
        assert_eq!(per.len(), 2);
        assert_eq!(per[0].forecast_day, table.dates[n - 2]);
        assert_eq!(r.metrics(10).scored, 4);
        let mean_acc = (per[0].accuracy + per[1].accuracy) / 2.0;
        assert!((r.metrics(10).accuracy - mean_acc).abs() < 1e-12);
        let c = r.constant(0.3);
        assert!((c.accuracy - always_no(&r.pooled().checked)).abs() < 1e-12);
    }
}
