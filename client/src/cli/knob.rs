//! A value of a sweep knob that random search can draw: a number (`40`, `1e-3`), or a
//! range `LO..HI` (uniform) or `LO..HI:log` (log-uniform, for learning rates). Grids take
//! numbers only; `--random N` takes both, numbers as choices and ranges as intervals.
//! Also the values that are neither: an `--epochs` value, which may name its task
//! (`covid=500`), and a `--start-date`.

use anyhow::{Result, bail};
use chrono::NaiveDate;
use wick_proto::v1::Range;

/// One value of `--l`, `--hidden`, `--lr` or `--kl`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Knob {
    /// A number.
    Value(f64),
    /// An interval to draw from.
    Range {
        /// Low end.
        lo: f64,
        /// High end.
        hi: f64,
        /// Log-uniform.
        log: bool,
    },
}

/// Parses `40`, `1e-3`, `16..128` or `1e-4..1e-2:log` (clap's value parser).
pub fn parse(text: &str) -> Result<Knob, String> {
    let number = |s: &str| {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("'{s}' is not a number"))
    };
    let (body, log) = match text.strip_suffix(":log") {
        Some(b) => (b, true),
        None => (text, false),
    };
    match body.split_once("..") {
        Some((lo, hi)) => Ok(Knob::Range {
            lo: number(lo)?,
            hi: number(hi)?,
            log,
        }),
        None if log => Err(format!(
            "':log' goes after a range, as in 1e-4..1e-2:log, not after '{body}'"
        )),
        None => number(body).map(Knob::Value),
    }
}

/// One value of `--epochs`: for every task the sweep runs, or for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epochs {
    /// `N`: every task without a list of its own.
    All(u32),
    /// `covid=N`.
    Covid(u32),
    /// `vae=N`.
    Vae(u32),
}

/// Parses `30`, `covid=500` or `vae=30` (clap's value parser).
pub fn parse_epochs(text: &str) -> Result<Epochs, String> {
    let number = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| format!("'{s}' is not a whole number of epochs"))
    };
    match text.split_once('=') {
        None => number(text).map(Epochs::All),
        Some((task, n)) => match task.trim().to_ascii_lowercase().as_str() {
            "covid" => number(n).map(Epochs::Covid),
            "vae" => number(n).map(Epochs::Vae),
            other => Err(format!(
                "unknown task '{other}' in '{text}'; write N for every task, or covid=N or vae=N"
            )),
        },
    }
}

/// Parses a `--start-date`: a day written YYYY-MM-DD (clap's value parser).
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("'{text}' is not a date; write it YYYY-MM-DD, as in 2020-03-01"))
}

/// The numbers of `knobs` (repeats dropped) and its range, if any; `whole` knobs must be
/// positive whole numbers. More than one range is an error naming the flag.
pub fn split(name: &str, knobs: &[Knob], whole: bool) -> Result<(Vec<f64>, Option<Range>)> {
    let mut values: Vec<f64> = Vec::new();
    let mut range = None;
    for k in knobs {
        match *k {
            Knob::Value(v) => {
                if whole && (v < 1.0 || v.fract() != 0.0 || v > u32::MAX as f64) {
                    bail!("--{name} takes whole numbers of at least 1, not {v}");
                }
                if !values.iter().any(|o| o.to_bits() == v.to_bits()) {
                    values.push(v);
                }
            }
            Knob::Range { lo, hi, log } => {
                if range.is_some() {
                    bail!("--{name} has two ranges; give one LO..HI");
                }
                range = Some(Range {
                    name: name.into(),
                    lo,
                    hi,
                    log,
                });
            }
        }
    }
    Ok((values, range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_name_their_task_and_dates_their_format() {
        assert_eq!(parse_epochs("2"), Ok(Epochs::All(2)));
        assert_eq!(parse_epochs("covid=500"), Ok(Epochs::Covid(500)));
        assert_eq!(parse_epochs("VAE=30"), Ok(Epochs::Vae(30)));
        assert!(
            parse_epochs("gan=3")
                .unwrap_err()
                .contains("covid=N or vae=N")
        );
        assert!(parse_epochs("vae=x").unwrap_err().contains("'x'"));
        assert_eq!(
            parse_date("2020-04-01"),
            Ok(NaiveDate::from_ymd_opt(2020, 4, 1).unwrap())
        );
        let e = parse_date("01/04/2020").unwrap_err();
        assert!(
            e.contains("'01/04/2020'") && e.contains("YYYY-MM-DD"),
            "{e}"
        );
        assert!(parse_date("2020-02-30").is_err(), "no such day");
    }

    #[test]
    fn numbers_and_ranges_parse_and_mistakes_are_named() {
        assert_eq!(parse("40"), Ok(Knob::Value(40.0)));
        assert_eq!(
            parse("1e-4..1e-2:log"),
            Ok(Knob::Range {
                lo: 1e-4,
                hi: 1e-2,
                log: true
            })
        );
        assert_eq!(
            parse("16..128"),
            Ok(Knob::Range {
                lo: 16.0,
                hi: 128.0,
                log: false
            })
        );
        assert!(parse("abc").unwrap_err().contains("'abc'"));
        assert!(parse("3:log").unwrap_err().contains("after a range"));
        let (v, r) = split("hidden", &[Knob::Value(8.0), Knob::Value(8.0)], true).unwrap();
        assert_eq!((v, r), (vec![8.0], None));
        let e = split("l", &[Knob::Value(2.5)], true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--l") && e.contains("whole"), "{e}");
        let two = [
            Knob::Range {
                lo: 1.0,
                hi: 2.0,
                log: false,
            },
            Knob::Range {
                lo: 3.0,
                hi: 4.0,
                log: false,
            },
        ];
        assert!(
            split("lr", &two, false)
                .unwrap_err()
                .to_string()
                .contains("two ranges")
        );
    }
}
