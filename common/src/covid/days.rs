//! The one check of a covid trial that needs the data but not the pipeline: whether its
//! start date has a daily count and enough days follow it for a window of length L and
//! the day that labels it. [`prepare`](super::prepare) runs it on the worker, and the
//! coordinator runs it on the uploaded table before a sweep is stored, so a sweep that
//! cannot train is refused up front with the message the worker would have given.

use chrono::NaiveDate;

use super::load::CaseTable;
use crate::error::{Error, Result};

/// The dates of the daily new-case counts of `table`: its dates without the first, which
/// only serves as the base of the first difference. Fewer than two dates give no count.
pub fn daily_dates(table: &CaseTable) -> Result<&[NaiveDate]> {
    match table.dates.len() {
        0 | 1 => Err(Error::TooFewDates {
            dates: table.dates.len(),
        }),
        _ => Ok(&table.dates[1..]),
    }
}

/// Where `start` is in `new_dates` (the dates of the daily counts, see [`daily_dates`]),
/// if windows of `l` days from it leave at least one day to label: L + 1 days from the
/// start date on. [`Error::StartDate`] names the dates that would do,
/// [`Error::WindowLength`] the largest L that would.
pub fn check_window(new_dates: &[NaiveDate], start: NaiveDate, l: usize) -> Result<usize> {
    let (Some(&first), Some(&last)) = (new_dates.first(), new_dates.last()) else {
        // No daily count at all: the table had at most one date.
        return Err(Error::TooFewDates {
            dates: new_dates.len(),
        });
    };
    let from = new_dates
        .iter()
        .position(|&d| d == start)
        .ok_or(Error::StartDate { start, first, last })?;
    let days = new_dates.len() - from;
    if l == 0 || l >= days {
        return Err(Error::WindowLength {
            l,
            start,
            days,
            last,
        });
    }
    Ok(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2020, m, d).unwrap()
    }

    /// Daily counts for 2020-03-01 ..= 2020-04-12: 43 days.
    fn dates() -> Vec<NaiveDate> {
        date(3, 1).iter_days().take(43).collect()
    }

    #[test]
    fn a_window_needs_l_plus_one_days_from_the_start() {
        let d = dates();
        assert_eq!(check_window(&d, date(3, 1), 42).unwrap(), 0);
        assert_eq!(check_window(&d, date(3, 11), 32).unwrap(), 10);
        let e = check_window(&d, date(3, 1), 400).unwrap_err();
        assert!(
            matches!(
                e,
                Error::WindowLength {
                    l: 400,
                    days: 43,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "L = 400 needs 401 days from 2020-03-01 but the data has 43 (to 2020-04-12): \
             use --l 42 or less or an earlier --start-date"
        );
        let e = check_window(&d, date(3, 11), 33).unwrap_err().to_string();
        assert!(e.contains("has 33") && e.contains("--l 32 or less"), "{e}");
        let e = check_window(&d, date(4, 12), 1).unwrap_err().to_string();
        assert!(
            e.contains("has 1 (to 2020-04-12)") && !e.contains("--l 0"),
            "{e}"
        );
        let e = check_window(&d, date(3, 1), 0).unwrap_err().to_string();
        assert!(e.contains("L = 0"), "{e}");
    }

    #[test]
    fn a_start_outside_the_data_names_the_dates_that_would_do() {
        let e = check_window(&dates(), date(2, 1), 5).unwrap_err();
        assert!(matches!(e, Error::StartDate { .. }), "{e:?}");
        let e = e.to_string();
        assert!(
            e.contains("before the first date 2020-03-01")
                && e.contains("between 2020-03-01 and 2020-04-12"),
            "{e}"
        );
        assert!(matches!(
            check_window(&[], date(3, 1), 5),
            Err(Error::TooFewDates { .. })
        ));
    }
}
