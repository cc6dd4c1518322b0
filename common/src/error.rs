//! The error type of `wick-common`: every variant names the problem and what to do.
//!
//! Data errors carry the 1-based line and the column (by header name where there is one),
//! so a user can open the file at the right place; preparation errors name the flag to
//! change (`--l`, `--start-date`, `--threshold`: `worker train` and `client sweep` both
//! have them).

use std::path::PathBuf;

use chrono::NaiveDate;

/// The three case-table layouts, spelled out for "accepted layouts" messages.
const LAYOUTS: &str = "coursework (',Lat,Long,1/22/20,...' then 'sum' and 'Country/Region' rows), \
     JHU CSSE wide ('Province/State,Country/Region,Lat,Long,1/22/20,...') or \
     long ('Date,Country,Confirmed,...' with YYYY-MM-DD dates)";

/// Errors from loading data, resolving countries and validating configurations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A trial configuration that cannot be run (bad hyperparameter).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The object store refused or failed an operation.
    #[error("store: {0}")]
    Store(String),

    /// A data file could not be read.
    #[error("cannot read '{}': {error}; check that the file exists and is readable", path.display())]
    Io {
        /// The file that was asked for.
        path: PathBuf,
        /// What the operating system said (in the message, not a `source`, so that
        /// reporters that print the chain do not print it twice).
        error: std::io::Error,
    },

    /// A data file was read but its content is wrong; wraps the content error with the path.
    #[error("{}: {error}", path.display())]
    InFile {
        /// The file whose content is wrong.
        path: PathBuf,
        /// The content error, with its line and column.
        error: Box<Error>,
    },

    /// The CSV reader itself failed (for example a quote that is never closed).
    #[error("line {line}: malformed CSV ({message}); check the quoting on that line")]
    Csv {
        /// 1-based line where the reader stopped.
        line: u64,
        /// The CSV reader's description.
        message: String,
    },

    /// The text has no rows at all.
    #[error("the case table is empty; expected a header row in one of the layouts: {LAYOUTS}")]
    EmptyFile,

    /// The first row matches none of the accepted layouts.
    #[error("line 1: unrecognised header '{found}'; accepted layouts: {LAYOUTS}")]
    UnrecognisedHeader {
        /// The header row as read (cells joined with commas, shortened).
        found: String,
    },

    /// A wide header without any date column after its fixed columns.
    #[error(
        "line 1: the {layout} header has no date columns; add one column per day named like 1/22/20"
    )]
    NoDateColumns {
        /// Which layout was recognised.
        layout: &'static str,
    },

    /// The header has no country row under it.
    #[error("the case table has a header but no country rows; add one row per country")]
    NoCountries,

    /// A cell that should hold a date does not parse as one.
    #[error(
        "line {line}, column {column}: '{value}' is not a date; write dates as M/D/YY (1/22/20) or YYYY-MM-DD (2020-01-22)"
    )]
    BadDate {
        /// 1-based line.
        line: u64,
        /// 1-based column number.
        column: usize,
        /// The cell as written.
        value: String,
    },

    /// Dates that are not consecutive days in ascending order.
    #[error(
        "line {line}, column '{column}': date {date} does not follow {previous} by one day; the dates must be consecutive days in ascending order"
    )]
    DateOrder {
        /// 1-based line where the offending date is.
        line: u64,
        /// Name of the column holding it.
        column: String,
        /// The date before it.
        previous: NaiveDate,
        /// The offending date.
        date: NaiveDate,
    },

    /// A row with a different number of fields than the header.
    #[error(
        "line {line}: expected {expected} fields (as many as the header), found {found}; give every row one value per column"
    )]
    RaggedRow {
        /// 1-based line.
        line: u64,
        /// Fields in the header.
        expected: usize,
        /// Fields in this row.
        found: usize,
    },

    /// A count that is not a number.
    #[error(
        "line {line}, column '{column}': '{value}' is not a number; write counts like 12 or 12.0"
    )]
    NotANumber {
        /// 1-based line.
        line: u64,
        /// Column name from the header.
        column: String,
        /// The cell as written.
        value: String,
    },

    /// A count that parses but is infinite or NaN.
    #[error(
        "line {line}, column '{column}': '{value}' is not a finite number; write counts like 12 or 12.0"
    )]
    NotFinite {
        /// 1-based line.
        line: u64,
        /// Column name from the header.
        column: String,
        /// The cell as written.
        value: String,
    },

    /// A country row without a name.
    #[error("line {line}, column '{column}': the country name is empty; name the country")]
    EmptyName {
        /// 1-based line.
        line: u64,
        /// Column name from the header.
        column: String,
    },

    /// A country that appears twice in a layout with one row per country.
    #[error(
        "line {line}: country '{name}' already has a row on line {first_line}; keep one row per country"
    )]
    DuplicateCountry {
        /// 1-based line of the second row.
        line: u64,
        /// The country.
        name: String,
        /// 1-based line of the first row.
        first_line: u64,
    },

    /// Long layout: two rows for the same country and date.
    #[error(
        "line {line}: country '{country}' already has a row for {date} on line {first_line}; keep one row per country and date"
    )]
    DuplicateRow {
        /// 1-based line of the second row.
        line: u64,
        /// The country.
        country: String,
        /// The date both rows give.
        date: NaiveDate,
        /// 1-based line of the first row.
        first_line: u64,
    },

    /// Long layout: a country lacks a date that other countries have.
    #[error(
        "country '{country}' has no row for {date}, which other countries have; add the row (the cumulative count of that day)"
    )]
    MissingValue {
        /// The country.
        country: String,
        /// The missing date.
        date: NaiveDate,
    },

    /// A country query that matches no name and no code of the table.
    #[error("unknown country '{query}'{} Use a name as in the data or an ISO 3166 alpha-2 code.", did_you_mean(.suggestions))]
    UnknownCountry {
        /// What was asked for.
        query: String,
        /// Close names, each with its code when it has one (`Taiwan* (TW)`).
        suggestions: Vec<String>,
    },

    /// A table with fewer than two dates has no daily new cases.
    #[error(
        "the case table has {dates} date(s); daily new cases need at least 2 consecutive dates"
    )]
    TooFewDates {
        /// Dates in the table.
        dates: usize,
    },

    /// The start date lies outside the dates that have a daily count.
    #[error("{}", start_message(*.start, *.first, *.last))]
    StartDate {
        /// The requested start date.
        start: NaiveDate,
        /// First date with a daily new-case count (the day after the table's first date).
        first: NaiveDate,
        /// Last date of the data.
        last: NaiveDate,
    },

    /// A window length that is zero or leaves no day to label.
    #[error("{}", window_message(*.l, *.start, *.days, *.last))]
    WindowLength {
        /// The requested window length.
        l: usize,
        /// The start date of the windows.
        start: NaiveDate,
        /// Daily values from the start date to the end of the data.
        days: usize,
        /// Last date of the data.
        last: NaiveDate,
    },

    /// No country correlates with another above the threshold, so there is nothing to train on.
    #[error(
        "no country correlates above threshold {threshold} with another, so set C is empty; use a case table with more countries whose outbreaks move together, or a lower --threshold (default 0.7)"
    )]
    EmptyCorrelatedSet {
        /// The threshold used.
        threshold: f64,
    },

    /// A train fraction outside (0, 1).
    #[error("train fraction {0} is not strictly between 0 and 1; use for example 0.7")]
    TrainFraction(f64),

    /// A split that came out empty.
    #[error(
        "the {split} split is empty ({windows} windows in all, train fraction {train_fraction}); use a train fraction further from 0 and 1, a smaller --l or an earlier --start-date"
    )]
    EmptySplit {
        /// `train` or `test`.
        split: &'static str,
        /// Windows before splitting.
        windows: usize,
        /// The fraction that went to train.
        train_fraction: f64,
    },

    /// A validation fraction that leaves no validation window.
    #[error(
        "the validation split is empty: {train} training windows ({per_country}), validation fraction {val}; use a larger --val, a smaller --l or an earlier --start-date, or --val 0 to train without validation (and serve the last epoch)"
    )]
    EmptyValidation {
        /// Training windows before validation was carved out.
        train: usize,
        /// How they are counted: "in all" (random split) or "per country" detail.
        per_country: String,
        /// The validation fraction.
        val: f64,
    },
}

/// `"; did you mean: a, b?"`, or just the full stop when there is no suggestion.
fn did_you_mean(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        ".".into()
    } else {
        format!("; did you mean: {}?", suggestions.join(", "))
    }
}

fn start_message(start: NaiveDate, first: NaiveDate, last: NaiveDate) -> String {
    let side = if start > last {
        format!("after the last date {last}")
    } else {
        format!("before the first date {first} with a daily count")
    };
    format!(
        "start date {start} is {side} of the data; use a --start-date between {first} and {last}"
    )
}

fn window_message(l: usize, start: NaiveDate, days: usize, last: NaiveDate) -> String {
    if l == 0 {
        return "L = 0: a window needs at least one day; use --l 1 or more (default 40)".into();
    }
    let fix = if days >= 2 {
        format!("use --l {} or less or an earlier --start-date", days - 1)
    } else {
        "use an earlier --start-date".into()
    };
    // L days of input and one more whose count gives the label.
    format!(
        "L = {l} needs {} days from {start} but the data has {days} (to {last}): {fix}",
        l + 1
    )
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
