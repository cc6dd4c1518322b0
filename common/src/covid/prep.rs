//! The coursework pipeline from a [`CaseTable`] to training data: daily new cases, the
//! Pearson correlation between countries, the set C of countries that correlate with
//! another above a threshold, labelled windows of C's series from a start date (label 1 when
//! the next day's count is higher than the window's last), a seeded train/test split (with
//! a validation set carved out of train when asked), and every country's last window for
//! forecasting.
//!
//! It follows the reference implementation (`covid_ref.py`) step for step, so that window
//! counts and split sizes match it exactly; only the shuffle differs (ChaCha8 instead of
//! numpy's generator).

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::load::CaseTable;
use crate::error::{Error, Result};

/// How windows are divided between train and test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Pool every window, shuffle, cut: the coursework's split (test days overlap train days).
    Random,
    /// Per country, the latest windows go to test: a forecast-like evaluation.
    Time,
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Random => "random",
            Split::Time => "time",
        })
    }
}

impl FromStr for Split {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "random" => Ok(Split::Random),
            "time" => Ok(Split::Time),
            _ => Err(Error::InvalidConfig(format!(
                "unknown split '{s}'; use 'random' or 'time'"
            ))),
        }
    }
}

/// The coursework's start date, checked at compile time.
const DEFAULT_START: NaiveDate = match NaiveDate::from_ymd_opt(2020, 3, 1) {
    Some(date) => date,
    None => panic!("2020-03-01 is a date"),
};

/// The knobs of [`prepare`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrepOptions {
    /// Window length L in days.
    pub l: usize,
    /// Correlation a country must exceed with at least one other to enter set C.
    pub threshold: f64,
    /// First day whose new-case count goes into windows.
    pub start: NaiveDate,
    /// Seed of the shuffle, so that a trial's split is reproducible.
    pub seed: u64,
    /// How windows are divided between train and test.
    pub split: Split,
    /// Share of windows that go to train, in (0, 1).
    pub train_fraction: f64,
    /// Share of the training windows held out for validation, in [0, 1): model selection
    /// and calibration use them so that the test set stays unseen. Random split: a seeded
    /// random share; time split: the latest training windows of every country, so that
    /// validation, like test, lies after what the model learnt from.
    #[serde(default)]
    pub val_fraction: f64,
}

impl Default for PrepOptions {
    /// The coursework's settings: L = 40, threshold 0.7, from 2020-03-01, seed 0, random
    /// 70/30 split.
    fn default() -> Self {
        Self {
            l: 40,
            threshold: 0.7,
            start: DEFAULT_START,
            seed: 0,
            split: Split::Random,
            train_fraction: 0.7,
            val_fraction: 0.0,
        }
    }
}

/// A set of normalised windows with their labels, ready to become tensors.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Windows {
    /// Window length: values per row of `x`.
    pub l: usize,
    /// `len() * l` values, row-major, each row normalised by [`normalise`].
    pub x: Vec<f32>,
    /// Per row: 1 if the day after the window has more new cases than its last day, else 0.
    pub y: Vec<u8>,
    /// Per row: the country it was cut from (index into [`CaseTable::names`]).
    pub country: Vec<usize>,
}

impl Windows {
    /// Number of windows.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there is no window.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Share of label-1 windows; NaN when empty.
    pub fn positive_fraction(&self) -> f64 {
        let ones = self.y.iter().filter(|&&y| y == 1).count();
        ones as f64 / self.len() as f64
    }

    /// Accuracy of always answering the commoner label, `max(p, 1 - p)`: what a model must
    /// beat to have learnt anything. NaN when empty.
    pub fn majority_baseline(&self) -> f64 {
        let p = self.positive_fraction();
        p.max(1.0 - p)
    }

    /// The `i`-th window's values.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.l..(i + 1) * self.l]
    }

    /// Builds normalised windows from `(country, first day, label)` cuts of `series`.
    fn from_cuts(series: &[Vec<f64>], l: usize, cuts: &[Cut]) -> Self {
        let mut out = Windows {
            l,
            x: Vec::with_capacity(cuts.len() * l),
            y: Vec::with_capacity(cuts.len()),
            country: Vec::with_capacity(cuts.len()),
        };
        for cut in cuts {
            let start = out.x.len();
            let raw = &series[cut.country][cut.day..cut.day + l];
            out.x.extend(raw.iter().map(|&v| v as f32));
            normalise(&mut out.x[start..]);
            out.y.push(cut.label);
            out.country.push(cut.country);
        }
        out
    }
}

/// A window before it is copied out: which series, from which day, with which label.
#[derive(Debug, Clone, Copy)]
struct Cut {
    /// Index of the country.
    country: usize,
    /// Offset of the window's first day in the country's full new-case series.
    day: usize,
    /// 0 or 1, as in [`Windows::y`].
    label: u8,
}

/// Everything the COVID task trains and forecasts on.
#[derive(Debug, Clone, PartialEq)]
pub struct CovidData {
    /// `[country][k]` daily new cases, the first difference of the cumulative series;
    /// `new_cases[c][k]` belongs to `new_dates[k]`, i.e. the table's `dates[k + 1]`.
    pub new_cases: Vec<Vec<f64>>,
    /// The dates of the daily counts (the table's dates without the first).
    pub new_dates: Vec<NaiveDate>,
    /// Pearson correlation of the full new-case series of every pair of countries; NaN
    /// where undefined (a constant series), so heatmaps can show it as missing.
    pub corr: Vec<Vec<f64>>,
    /// Set C, ascending: countries whose correlation with at least one other exceeds the
    /// threshold.
    pub members: Vec<usize>,
    /// Training windows, shuffled.
    pub train: Windows,
    /// Validation windows (held out of training), shuffled; empty without a validation
    /// fraction.
    pub val: Windows,
    /// Test windows, shuffled.
    pub test: Windows,
    /// Every country with at least L daily counts: its last L days, normalised, in table
    /// order; the input of forecasts (labels are unknown, so `y` is all 0).
    pub last: Windows,
}

/// Daily new cases: the first difference of a cumulative series (one value shorter).
pub fn daily_new(cumulative: &[f64]) -> Vec<f64> {
    cumulative.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Pearson correlation of two equally long series; NaN if either is constant (or shorter
/// than 2), where the correlation is undefined.
///
/// # Panics
/// If the lengths differ: that is a bug in the caller, not bad data.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "pearson of series of different lengths");
    let n = a.len() as f64;
    let mean_a = a.iter().sum::<f64>() / n;
    let mean_b = b.iter().sum::<f64>() / n;
    let (mut cov, mut var_a, mut var_b) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - mean_a, y - mean_b);
        cov += dx * dy;
        var_a += dx * dx;
        var_b += dy * dy;
    }
    if var_a == 0.0 || var_b == 0.0 {
        return f64::NAN;
    }
    // Rounding can push |r| a hair above 1 for proportional series.
    (cov / (var_a * var_b).sqrt()).clamp(-1.0, 1.0)
}

/// The symmetric matrix of [`pearson`] between every pair of series.
pub fn correlation_matrix(series: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = series.len();
    let mut corr = vec![vec![f64::NAN; n]; n];
    for i in 0..n {
        for j in i..n {
            let r = pearson(&series[i], &series[j]);
            corr[i][j] = r;
            corr[j][i] = r;
        }
    }
    corr
}

/// Indices whose correlation with at least one OTHER index exceeds `threshold` (NaN
/// never does), ascending.
pub fn correlated_set(corr: &[Vec<f64>], threshold: f64) -> Vec<usize> {
    (0..corr.len())
        .filter(|&i| {
            corr[i]
                .iter()
                .enumerate()
                .any(|(j, &r)| j != i && r > threshold)
        })
        .collect()
}

/// Divides a window by `max |x| + 1`: scale-free across countries of very different size,
/// keeps the sign of corrections, and leaves an all-zero window at zero.
pub fn normalise(window: &mut [f32]) {
    let scale = window.iter().fold(0.0f32, |m, v| m.max(v.abs())) + 1.0;
    for v in window {
        *v /= scale;
    }
}

/// The raw windows of one series: input `s[t..t+l]`, label 1 iff `s[t+l] > s[t+l-1]`,
/// for every `t` that leaves a next day to label. Empty when `l` is 0 or not shorter than
/// the series.
pub fn windows(series: &[f64], l: usize) -> Vec<(Vec<f64>, u8)> {
    labelled_starts(series, l)
        .map(|(t, label)| (series[t..t + l].to_vec(), label))
        .collect()
}

/// `(t, label)` of every window of length `l` of `series`.
fn labelled_starts(series: &[f64], l: usize) -> impl Iterator<Item = (usize, u8)> + '_ {
    let count = if l == 0 {
        0
    } else {
        series.len().saturating_sub(l)
    };
    (0..count).map(move |t| (t, u8::from(series[t + l] > series[t + l - 1])))
}

/// Runs the whole pipeline on a table; errors say which option to change.
pub fn prepare(table: &CaseTable, opts: &PrepOptions) -> Result<CovidData> {
    let f = opts.train_fraction;
    if !(f > 0.0 && f < 1.0) {
        return Err(Error::TrainFraction(f));
    }
    if !(0.0..1.0).contains(&opts.val_fraction) {
        return Err(Error::InvalidConfig(format!(
            "validation fraction must be in [0, 1), got {}",
            opts.val_fraction
        )));
    }
    let new_cases: Vec<Vec<f64>> = table.cumulative.iter().map(|c| daily_new(c)).collect();
    let new_dates: Vec<NaiveDate> = super::days::daily_dates(table)?.to_vec();
    // The same check the coordinator runs before it stores a sweep.
    let from = super::days::check_window(&new_dates, opts.start, opts.l)?;
    let l = opts.l;
    // Correlation uses the full series, windows only the days from the start date.
    let corr = correlation_matrix(&new_cases);
    let members = correlated_set(&corr, opts.threshold);
    if members.is_empty() {
        return Err(Error::EmptyCorrelatedSet {
            threshold: opts.threshold,
        });
    }
    let per_country: Vec<Vec<Cut>> = members
        .iter()
        .map(|&country| {
            labelled_starts(&new_cases[country][from..], l)
                .map(|(t, label)| Cut {
                    country,
                    day: from + t,
                    label,
                })
                .collect()
        })
        .collect();
    let total: usize = per_country.iter().map(Vec::len).sum();
    let (train, val, test) = split(per_country, opts);
    if opts.val_fraction > 0.0 && val.is_empty() {
        let per_country = match opts.split {
            Split::Random => "in all".to_string(),
            Split::Time => format!(
                "{} per country, split by time",
                (f * (new_dates.len() - from - l) as f64).floor()
            ),
        };
        return Err(Error::EmptyValidation {
            train: train.len(),
            per_country,
            val: opts.val_fraction,
        });
    }
    for (name, part) in [("train", &train), ("test", &test)] {
        if part.is_empty() {
            return Err(Error::EmptySplit {
                split: name,
                windows: total,
                train_fraction: f,
            });
        }
    }
    let last_cuts: Vec<Cut> = new_cases
        .iter()
        .enumerate()
        .filter(|(_, s)| s.len() >= l)
        .map(|(country, s)| Cut {
            country,
            day: s.len() - l,
            label: 0,
        })
        .collect();
    Ok(CovidData {
        train: Windows::from_cuts(&new_cases, l, &train),
        val: Windows::from_cuts(&new_cases, l, &val),
        test: Windows::from_cuts(&new_cases, l, &test),
        last: Windows::from_cuts(&new_cases, l, &last_cuts),
        new_cases,
        new_dates,
        corr,
        members,
    })
}

/// Divides the windows (grouped per country, in time order) into shuffled train,
/// validation and test. Sizes are `floor(train_fraction × n)` as in the reference, overall
/// (random split) or per country (time split); validation is then `floor(val_fraction ×
/// train)` of those, drawn at random (random split) or each country's latest (time split).
fn split(per_country: Vec<Vec<Cut>>, opts: &PrepOptions) -> (Vec<Cut>, Vec<Cut>, Vec<Cut>) {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let n_train = |n: usize| (opts.train_fraction * n as f64).floor() as usize;
    let n_val = |n: usize| (opts.val_fraction * n as f64).floor() as usize;
    match opts.split {
        Split::Random => {
            let mut all: Vec<Cut> = per_country.into_iter().flatten().collect();
            all.shuffle(&mut rng);
            let test = all.split_off(n_train(all.len()));
            // Train is already in random order, so its tail is a random sample; without a
            // validation fraction the split is exactly the coursework's.
            let val = all.split_off(all.len() - n_val(all.len()));
            (all, val, test)
        }
        Split::Time => {
            let (mut train, mut val, mut test) = (Vec::new(), Vec::new(), Vec::new());
            for mut cuts in per_country {
                test.extend(cuts.split_off(n_train(cuts.len())));
                val.extend(cuts.split_off(cuts.len() - n_val(cuts.len())));
                train.extend(cuts);
            }
            train.shuffle(&mut rng);
            test.shuffle(&mut rng);
            val.shuffle(&mut rng);
            (train, val, test)
        }
    }
}
