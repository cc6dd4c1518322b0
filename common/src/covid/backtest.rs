//! Backtesting a covid trial: its forecasts of whether each country's daily new cases rise
//! on the day after the training data ends (D + 1) are checked against a later case table
//! that continues past D. Pure: the caller reads the files; this module matches countries,
//! labels what actually happened with exactly the rule the training windows use, and
//! scores the probabilities (accuracy, majority baseline, Brier score, log loss,
//! calibration bins, the most confident misses).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::load::CaseTable;
use super::prep::{daily_new, windows};

/// Probabilities are clipped to `[EPS, 1 - EPS]` in the log loss, so that one confident
/// miss costs about 16 nats instead of making the mean infinite.
pub const LOG_LOSS_EPS: f64 = 1e-7;

/// One country's forecast, as a trial's `plots/forecast.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Name as in the trial's data.
    pub country: String,
    /// ISO 3166 alpha-2 code, when the country has one.
    #[serde(default)]
    pub iso2: Option<String>,
    /// P(new cases on D + 1 > new cases on D).
    pub probability: f64,
    /// The trial's own decision, when it recorded one.
    #[serde(default)]
    pub increase: Option<bool>,
}

impl Forecast {
    /// The predicted label: the trial's decision if it recorded one, else `probability > 0.5`.
    pub fn predicted(&self) -> bool {
        self.increase.unwrap_or(self.probability > 0.5)
    }

    /// The probability the forecast gave to the label it predicted: how sure it was.
    pub fn confidence(&self) -> f64 {
        if self.predicted() {
            self.probability
        } else {
            1.0 - self.probability
        }
    }
}

/// A forecast next to what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The forecast.
    pub forecast: Forecast,
    /// The country's name in the actual table.
    pub actual_name: String,
    /// Actual new cases on D.
    pub new_last: f64,
    /// Actual new cases on D + 1.
    pub new_next: f64,
    /// Whether new cases rose, by the training labels' rule.
    pub actual: bool,
}

impl Checked {
    /// Whether the predicted label matches what happened.
    pub fn correct(&self) -> bool {
        self.forecast.predicted() == self.actual
    }
}

/// A forecast that could not be checked, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The forecast's country name.
    pub country: String,
    /// Why it was not scored.
    pub reason: String,
}

/// Every forecast of a trial, either checked or skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Backtest {
    /// D: the last day of the trial's data.
    pub last_day: NaiveDate,
    /// D + 1: the day the forecasts are about.
    pub forecast_day: NaiveDate,
    /// Forecasts with an actual label, in forecast order.
    pub checked: Vec<Checked>,
    /// Forecasts without one, in forecast order.
    pub skipped: Vec<Skipped>,
}

/// Why an actual table cannot check forecasts about D + 1 at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoverageError {
    /// The table has no dates.
    #[error("it has no dates")]
    NoDates,
    /// The table stops on or before D.
    #[error(
        "it ends on {last}, which is not after {day} (the last day of the trial's data): it does not continue past {day}, so there are no cases of {next} to check the forecasts against"
    )]
    EndsTooEarly {
        /// The table's last date.
        last: NaiveDate,
        /// D.
        day: NaiveDate,
        /// D + 1.
        next: NaiveDate,
    },
    /// The table starts after D - 1, so the new cases of D are unknown.
    #[error(
        "it starts on {first}, but the new cases of {day} need the cumulative count of {before}"
    )]
    StartsTooLate {
        /// The table's first date.
        first: NaiveDate,
        /// D.
        day: NaiveDate,
        /// D - 1.
        before: NaiveDate,
    },
}

/// Whether new cases rose from day `day` to day `day + 1` of a cumulative series (indices
/// into it), by the training labels' rule: new cases are the first difference of the
/// cumulative counts, negative corrections kept as they are, and the label is a strict
/// "more than" (equal counts are no increase). `None` when the series lacks `day - 1` or
/// `day + 1`.
pub fn increase_label(cumulative: &[f64], day: usize) -> Option<bool> {
    let around = cumulative.get(day.checked_sub(1)?..=day + 1)?;
    // A window of length 1 over [new(D), new(D+1)] is labelled by the very function that
    // labels the training windows, so the two rules cannot drift apart.
    let (_, label) = windows(&daily_new(around), 1).pop()?;
    Some(label == 1)
}

/// Index of the forecast's country in `actual`: by ISO code first (names differ between
/// datasets), then by name; `iso` holds `actual`'s codes.
fn locate(f: &Forecast, actual: &CaseTable, iso: &[Option<&str>]) -> Option<usize> {
    let code = f.iso2.as_deref().map(str::trim).filter(|c| !c.is_empty());
    if let Some(code) = code
        && let Some(i) = iso
            .iter()
            .position(|c| c.is_some_and(|c| c.eq_ignore_ascii_case(code)))
    {
        return Some(i);
    }
    actual.find(&f.country).ok()
}

/// Checks every forecast about the day after `last_day` against `actual`. Errors when the
/// table cannot tell what happened on D + 1 for anyone; a country it lacks is skipped with
/// the reason, never dropped.
pub fn check(
    forecasts: &[Forecast],
    actual: &CaseTable,
    last_day: NaiveDate,
) -> Result<Backtest, CoverageError> {
    let (Some(&first), Some(&last)) = (actual.dates.first(), actual.dates.last()) else {
        return Err(CoverageError::NoDates);
    };
    let next = last_day.succ_opt().ok_or(CoverageError::NoDates)?;
    if last <= last_day {
        return Err(CoverageError::EndsTooEarly {
            last,
            day: last_day,
            next,
        });
    }
    let before = last_day.pred_opt().ok_or(CoverageError::NoDates)?;
    if first > before {
        return Err(CoverageError::StartsTooLate {
            first,
            day: last_day,
            before,
        });
    }
    // Dates are consecutive (the loader checks), so D's column is its offset from the first.
    let day = (last_day - first).num_days() as usize;
    let iso: Vec<Option<&str>> = (0..actual.names.len()).map(|i| actual.iso2(i)).collect();
    let mut out = Backtest {
        last_day,
        forecast_day: next,
        checked: Vec::new(),
        skipped: Vec::new(),
    };
    for f in forecasts {
        let skip = |reason: String| Skipped {
            country: f.country.clone(),
            reason,
        };
        if !(0.0..=1.0).contains(&f.probability) {
            out.skipped.push(skip(format!(
                "its probability {} is not in [0, 1]",
                f.probability
            )));
            continue;
        }
        let Some(i) = locate(f, actual, &iso) else {
            let reason = match f.iso2.as_deref().filter(|c| !c.trim().is_empty()) {
                Some(code) => format!(
                    "not in the actual data (no country with ISO code {code} or named '{}')",
                    f.country
                ),
                None => format!(
                    "not in the actual data (no ISO code, and no country named '{}')",
                    f.country
                ),
            };
            out.skipped.push(skip(reason));
            continue;
        };
        let series = &actual.cumulative[i];
        let Some(actual_label) = increase_label(series, day) else {
            // Tables are rectangular, so the coverage check above rules this out; kept so
            // that a ragged table could never drop a country silently.
            out.skipped.push(skip(format!(
                "the actual data has no counts of {before}..{next} for '{}'",
                actual.names[i]
            )));
            continue;
        };
        out.checked.push(Checked {
            forecast: f.clone(),
            actual_name: actual.names[i].clone(),
            new_last: series[day] - series[day - 1],
            new_next: series[day + 1] - series[day],
            actual: actual_label,
        });
    }
    Ok(out)
}

/// One calibration bin: forecasts with `lo <= p < hi` (the last bin includes 1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bin {
    /// Lower edge.
    pub lo: f64,
    /// Upper edge.
    pub hi: f64,
    /// Forecasts in the bin.
    pub count: usize,
    /// Their mean probability; `None` for an empty bin.
    pub mean_p: Option<f64>,
    /// The share of them that did increase; `None` for an empty bin.
    pub observed: Option<f64>,
}

/// Scores of a set of checked forecasts. Every mean is NaN when there are none.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// Forecasts scored.
    pub scored: usize,
    /// Share whose predicted label was right.
    pub accuracy: f64,
    /// Accuracy of always answering the commoner actual label.
    pub baseline: f64,
    /// Mean `(p - y)^2`.
    pub brier: f64,
    /// Mean `-(y ln p + (1 - y) ln(1 - p))`, `p` clipped by [`LOG_LOSS_EPS`].
    pub log_loss: f64,
    /// Calibration bins over [0, 1].
    pub bins: Vec<Bin>,
}

fn y(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Mean of `f` over `items`; NaN when empty.
fn mean<T>(items: &[T], f: impl Fn(&T) -> f64) -> f64 {
    items.iter().map(f).sum::<f64>() / items.len() as f64
}

/// Share of `(predicted, actual)` pairs that agree.
pub fn accuracy(pairs: &[(bool, bool)]) -> f64 {
    mean(pairs, |&(p, a)| y(p == a))
}

/// Accuracy of always answering the commoner label: `max(q, 1 - q)`, `q` the share of
/// `true`.
pub fn majority_baseline(labels: &[bool]) -> f64 {
    let q = mean(labels, |&l| y(l));
    q.max(1.0 - q)
}

/// Mean squared error of the probabilities of `(p, actual)` pairs.
pub fn brier(pairs: &[(f64, bool)]) -> f64 {
    mean(pairs, |&(p, a)| (p - y(a)).powi(2))
}

/// Mean negative log-likelihood of `(p, actual)` pairs, `p` clipped to
/// `[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]`.
pub fn log_loss(pairs: &[(f64, bool)]) -> f64 {
    mean(pairs, |&(p, a)| {
        let p = p.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
        if a { -p.ln() } else { -(1.0 - p).ln() }
    })
}

/// `bins` equal bins over [0, 1] (none when `bins` is 0): bin `i` holds `i/B <= p < (i+1)/B`
/// and the last also `p = 1`, so every probability in [0, 1] falls in exactly one.
pub fn calibration(pairs: &[(f64, bool)], bins: usize) -> Vec<Bin> {
    let edge = |i: usize| i as f64 / bins as f64;
    let mut members: Vec<Vec<(f64, bool)>> = vec![Vec::new(); bins];
    if bins > 0 {
        for &(p, a) in pairs {
            // Compared with the same edges that are reported, so a p printed as an edge
            // lands in the bin that edge opens (p * B could round below it).
            let i = (1..bins).filter(|&i| p >= edge(i)).count();
            members[i].push((p, a));
        }
    }
    members
        .iter()
        .enumerate()
        .map(|(i, m)| Bin {
            lo: edge(i),
            hi: edge(i + 1),
            count: m.len(),
            mean_p: (!m.is_empty()).then(|| mean(m, |&(p, _)| p)),
            observed: (!m.is_empty()).then(|| mean(m, |&(_, a)| y(a))),
        })
        .collect()
}

impl Backtest {
    /// The scores, with `bins` calibration bins.
    pub fn metrics(&self, bins: usize) -> Metrics {
        let probs: Vec<(f64, bool)> = self
            .checked
            .iter()
            .map(|c| (c.forecast.probability, c.actual))
            .collect();
        let labels: Vec<(bool, bool)> = self
            .checked
            .iter()
            .map(|c| (c.forecast.predicted(), c.actual))
            .collect();
        let actual: Vec<bool> = self.checked.iter().map(|c| c.actual).collect();
        Metrics {
            scored: self.checked.len(),
            accuracy: accuracy(&labels),
            baseline: majority_baseline(&actual),
            brier: brier(&probs),
            log_loss: log_loss(&probs),
            bins: calibration(&probs, bins),
        }
    }

    /// The `n` wrong forecasts that were surest of themselves, surest first (ties by name).
    pub fn worst(&self, n: usize) -> Vec<&Checked> {
        let mut wrong: Vec<&Checked> = self.checked.iter().filter(|c| !c.correct()).collect();
        wrong.sort_by(|a, b| {
            b.forecast
                .confidence()
                .total_cmp(&a.forecast.confidence())
                .then_with(|| a.forecast.country.cmp(&b.forecast.country))
        });
        wrong.truncate(n);
        wrong
    }
}

#[cfg(test)]
mod tests {
    use chrono::Days;

    use super::*;
    use crate::covid::Layout;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn fc(country: &str, iso2: Option<&str>, p: f64) -> Forecast {
        Forecast {
            country: country.into(),
            iso2: iso2.map(str::to_string),
            probability: p,
            increase: None,
        }
    }

    /// A table from `first` with the given cumulative series.
    fn table(first: NaiveDate, rows: &[(&str, Vec<f64>)]) -> CaseTable {
        let days = rows[0].1.len();
        CaseTable {
            names: rows.iter().map(|(n, _)| n.to_string()).collect(),
            dates: (0..days).map(|k| first + Days::new(k as u64)).collect(),
            cumulative: rows.iter().map(|(_, s)| s.clone()).collect(),
            layout: Layout::Long,
        }
    }

    #[test]
    fn label_rule_matches_training_windows() {
        // New cases: 5, 3, 3, 7, -2 (a correction), 0.
        let cum = [10.0, 15.0, 18.0, 21.0, 28.0, 26.0, 26.0];
        assert_eq!(increase_label(&cum, 1), Some(false), "3 after 5 falls");
        assert_eq!(
            increase_label(&cum, 2),
            Some(false),
            "3 after 3 is equal: no increase"
        );
        assert_eq!(increase_label(&cum, 3), Some(true), "7 after 3 rises");
        assert_eq!(increase_label(&cum, 4), Some(false), "-2 after 7 falls");
        assert_eq!(
            increase_label(&cum, 5),
            Some(true),
            "0 after the -2 correction counts as a rise, as in training"
        );
        assert_eq!(increase_label(&cum, 0), None, "no day before the first");
        assert_eq!(increase_label(&cum, 6), None, "no day after the last");
        // The same labels as the training windows of length 1 over the new cases.
        let train: Vec<bool> = windows(&daily_new(&cum), 1)
            .into_iter()
            .map(|(_, l)| l == 1)
            .collect();
        let here: Vec<bool> = (1..6).map(|d| increase_label(&cum, d).unwrap()).collect();
        assert_eq!(here, train);
    }

    #[test]
    fn scores_on_hand_computed_inputs() {
        let pairs = [(0.9, true), (0.2, false), (0.6, false), (0.5, true)];
        // (0.01 + 0.04 + 0.36 + 0.25) / 4
        assert!(close(brier(&pairs), 0.165));
        let ll = -(0.9f64.ln() + 0.8f64.ln() + 0.4f64.ln() + 0.5f64.ln()) / 4.0;
        assert!(close(log_loss(&pairs), ll));
        // p = 0 for a case that happened costs -ln(EPS), not infinity.
        assert!(close(log_loss(&[(0.0, true)]), -LOG_LOSS_EPS.ln()));
        // 1 - (1 - EPS) is EPS up to rounding.
        assert!((log_loss(&[(1.0, false)]) + LOG_LOSS_EPS.ln()).abs() < 1e-6);
        assert!(close(
            accuracy(&[(true, true), (false, true), (false, false)]),
            2.0 / 3.0
        ));
        assert!(close(majority_baseline(&[true, false, false, false]), 0.75));
        assert!(close(majority_baseline(&[true, true, true, false]), 0.75));
        assert!(brier(&[]).is_nan() && accuracy(&[]).is_nan());
    }

    #[test]
    fn bins_cover_zero_to_one_with_one_in_the_last() {
        let pairs = [
            (0.0, false),
            (0.05, true),
            (0.25, false),
            (0.5, true),
            (0.75, true),
            (0.999, false),
            (1.0, true),
        ];
        let bins = calibration(&pairs, 4);
        let edges: Vec<(f64, f64)> = bins.iter().map(|b| (b.lo, b.hi)).collect();
        assert_eq!(edges, [(0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)]);
        let counts: Vec<usize> = bins.iter().map(|b| b.count).collect();
        assert_eq!(
            counts,
            [2, 1, 1, 3],
            "edges open their bin, 1.0 is in the last"
        );
        assert!(close(bins[0].mean_p.unwrap(), 0.025));
        assert!(close(bins[0].observed.unwrap(), 0.5));
        assert!(close(bins[3].mean_p.unwrap(), (0.75 + 0.999 + 1.0) / 3.0));
        assert!(close(bins[3].observed.unwrap(), 2.0 / 3.0));
        let ten = calibration(&[(0.3, true), (0.7, false)], 10);
        assert_eq!(ten[3].count, 1, "0.3 opens bin [0.3, 0.4)");
        assert_eq!(ten[7].count, 1, "0.7 opens bin [0.7, 0.8)");
        assert_eq!(ten[9].hi, 1.0);
        assert_eq!((ten[0].mean_p, ten[0].observed), (None, None), "empty bin");
        assert!(calibration(&pairs, 0).is_empty());
    }

    #[test]
    fn check_matches_by_code_then_name_and_lists_what_it_skips() {
        let d = date(2020, 4, 12);
        // From D - 1 to D + 1; "Korea, South" is KR, "Atlantis" has no code.
        let actual = table(
            date(2020, 4, 11),
            &[
                ("Korea, South", vec![100.0, 110.0, 125.0]),
                ("Atlantis", vec![5.0, 9.0, 13.0]),
                ("Taiwan*", vec![385.0, 388.0, 393.0]),
            ],
        );
        let forecasts = [
            fc("South Korea", Some("KR"), 0.8),
            fc("Atlantis", None, 0.4),
            fc("Narnia", None, 0.5),
            fc("Wakanda", Some("WK"), 0.9),
            fc("Taiwan", Some("TW"), f64::NAN),
        ];
        let b = check(&forecasts, &actual, d).unwrap();
        assert_eq!(b.forecast_day, date(2020, 4, 13));
        let got: Vec<(&str, &str, f64, f64, bool)> = b
            .checked
            .iter()
            .map(|c| {
                let f = &c.forecast;
                (
                    f.country.as_str(),
                    c.actual_name.as_str(),
                    c.new_last,
                    c.new_next,
                    c.actual,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("South Korea", "Korea, South", 10.0, 15.0, true),
                ("Atlantis", "Atlantis", 4.0, 4.0, false),
            ]
        );
        let skipped: Vec<&str> = b.skipped.iter().map(|s| s.country.as_str()).collect();
        assert_eq!(skipped, ["Narnia", "Wakanda", "Taiwan"]);
        assert!(b.skipped[1].reason.contains("ISO code WK"));
        assert!(b.skipped[2].reason.contains("not in [0, 1]"));
        let m = b.metrics(2);
        assert_eq!(m.scored, 2);
        assert!(close(m.accuracy, 1.0));
        assert!(close(m.baseline, 0.5));
        assert!(close(m.brier, (0.04 + 0.16) / 2.0));
    }

    #[test]
    fn check_refuses_tables_that_do_not_cover_the_day_after() {
        let d = date(2020, 4, 12);
        let ends_on_d = table(date(2020, 4, 10), &[("X", vec![1.0, 2.0, 3.0])]);
        let err = check(&[], &ends_on_d, d).unwrap_err();
        assert_eq!(
            err,
            CoverageError::EndsTooEarly {
                last: d,
                day: d,
                next: date(2020, 4, 13)
            }
        );
        assert!(
            err.to_string()
                .contains("does not continue past 2020-04-12")
        );
        let starts_on_d = table(d, &[("X", vec![1.0, 2.0, 3.0])]);
        assert!(matches!(
            check(&[], &starts_on_d, d),
            Err(CoverageError::StartsTooLate { .. })
        ));
    }

    #[test]
    fn worst_are_the_surest_misses() {
        let d = date(2020, 4, 12);
        // Everyone's new cases rise (1 then 2).
        let rows: Vec<(&str, Vec<f64>)> = ["France", "Germany", "Italy", "Spain"]
            .iter()
            .map(|&c| (c, vec![0.0, 1.0, 3.0]))
            .collect();
        let actual = table(date(2020, 4, 11), &rows);
        let mut decided = fc("ES", Some("ES"), 0.45);
        decided.increase = Some(true); // the trial's own threshold said yes: not a miss
        let forecasts = [
            fc("FR", Some("FR"), 0.3),
            fc("DE", Some("DE"), 0.05),
            fc("IT", Some("IT"), 0.9),
            decided,
        ];
        let b = check(&forecasts, &actual, d).unwrap();
        let worst: Vec<&str> = b
            .worst(10)
            .iter()
            .map(|c| c.forecast.country.as_str())
            .collect();
        assert_eq!(worst, ["DE", "FR"]);
        assert_eq!(b.worst(1).len(), 1);
        assert!(close(b.metrics(10).accuracy, 0.5));
    }
}
