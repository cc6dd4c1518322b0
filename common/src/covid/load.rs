//! Loading a cumulative case table from CSV. The layout is recognised from the first row,
//! so users can bring the coursework file, the JHU CSSE time series or a long-format
//! export without saying which; every malformed input is reported with its line and column.

use std::path::Path;

use chrono::NaiveDate;
use csv::StringRecord;
use serde::{Deserialize, Serialize};

use super::{long, wide};
use crate::country;
use crate::error::{Error, Result};

/// The CSV layouts a case table can come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// The coursework file: header `,Lat,Long,1/22/20,...`, a row of `sum` markers, a
    /// `Country/Region` row, then one row per country.
    Coursework,
    /// The JHU CSSE time series: `Province/State,Country/Region,Lat,Long,1/22/20,...`, with
    /// several province rows for some countries, summed into the country.
    JhuWide,
    /// One row per country and day: `Date,Country,Confirmed,...` with ISO dates, any order.
    Long,
}

/// Cumulative confirmed cases per country and day.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseTable {
    /// Country names as written in the file, in file order (long layout: order of first
    /// appearance); they are what users see and type.
    pub names: Vec<String>,
    /// The days of the columns of `cumulative`: ascending and consecutive, which the
    /// windowing relies on.
    pub dates: Vec<NaiveDate>,
    /// `cumulative[country][day]`; may decrease where the source corrected its counts.
    pub cumulative: Vec<Vec<f64>>,
    /// The layout the table was read from, for reports.
    pub layout: Layout,
}

impl CaseTable {
    /// Reads and parses a case table file; errors name the path (and, for content errors,
    /// the line and column).
    pub fn from_path(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|error| Error::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Self::parse(&text).map_err(|error| Error::InFile {
            path: path.to_path_buf(),
            error: Box::new(error),
        })
    }

    /// Parses a case table, detecting its [`Layout`] from the first row.
    pub fn parse(text: &str) -> Result<Self> {
        // Spreadsheet exports often start with a byte-order mark, which would hide the header.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let rows = read_rows(text)?;
        let header = rows.first().ok_or(Error::EmptyFile)?;
        let cell = |i: usize| header.get(i).map_or("", str::trim);
        let is = |i: usize, name: &str| cell(i).eq_ignore_ascii_case(name);
        if cell(0).is_empty() && is(1, "Lat") && is(2, "Long") {
            wide::coursework(&rows)
        } else if is(0, "Province/State") && is(1, "Country/Region") && is(2, "Lat") {
            wide::jhu(&rows)
        } else if let Some(columns) = long::Columns::find(header) {
            long::parse(&rows, &columns)
        } else {
            let mut found = header.iter().collect::<Vec<_>>().join(",");
            if found.chars().count() > 80 {
                found = found.chars().take(80).collect::<String>() + "...";
            }
            Err(Error::UnrecognisedHeader { found })
        }
    }

    /// The ISO 3166 alpha-2 code of country `i`, if it has one (ships such as
    /// `Diamond Princess` do not).
    pub fn iso2(&self, i: usize) -> Option<&'static str> {
        self.names.get(i).and_then(|name| country::iso2_of(name))
    }

    /// Index of a country given its name as in the file or an ISO alpha-2 code
    /// (case-insensitive); other names of the same country (`South Korea` for
    /// `Korea, South`) work too. Unknown → [`Error::UnknownCountry`] with close names.
    pub fn find(&self, query: &str) -> Result<usize> {
        let q = query.trim();
        let lower = q.to_lowercase();
        if let Some(i) = self.names.iter().position(|n| n.to_lowercase() == lower) {
            return Ok(i);
        }
        let code = if q.len() == 2 {
            country::name_of(q).map(|_| q.to_ascii_uppercase())
        } else {
            country::iso2_of(q).map(str::to_string)
        };
        if let Some(code) = code
            && let Some(i) = (0..self.names.len()).find(|&i| self.iso2(i) == Some(code.as_str()))
        {
            return Ok(i);
        }
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let suggestions = country::suggest(q, &names, 5)
            .into_iter()
            .map(|name| match country::iso2_of(&name) {
                Some(code) => format!("{name} ({code})"),
                None => name,
            })
            .collect();
        Err(Error::UnknownCountry {
            query: q.to_string(),
            suggestions,
        })
    }
}

/// Every record of the text. The reader is `flexible` so that ragged rows reach the
/// layout parsers, which report them with the expected field count.
fn read_rows(text: &str) -> Result<Vec<StringRecord>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    reader
        .records()
        .map(|record| {
            record.map_err(|e| Error::Csv {
                line: e.position().map_or(0, |p| p.line()),
                message: e.to_string(),
            })
        })
        .collect()
}

/// 1-based line where a record starts.
pub(super) fn line_of(record: &StringRecord) -> u64 {
    record.position().map_or(0, |p| p.line())
}

/// Rejects a row whose field count differs from the header's.
pub(super) fn check_width(record: &StringRecord, expected: usize) -> Result<()> {
    if record.len() == expected {
        Ok(())
    } else {
        Err(Error::RaggedRow {
            line: line_of(record),
            expected,
            found: record.len(),
        })
    }
}

/// A date written `M/D/YY`, `M/D/YYYY` or `YYYY-MM-DD`.
pub(super) fn parse_date(cell: &str) -> Option<NaiveDate> {
    let s = cell.trim();
    if s.contains('-') {
        return NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    }
    let format = if s.rsplit('/').next()?.len() == 4 {
        "%m/%d/%Y"
    } else {
        "%m/%d/%y"
    };
    NaiveDate::parse_from_str(s, format).ok()
}

/// A cumulative count: any finite number (`12`, `12.0`; negative values are kept because
/// the sources publish corrections as drops in the cumulative series).
pub(super) fn parse_count(cell: &str, line: u64, column: &str) -> Result<f64> {
    let value = cell.trim();
    match value.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) => Err(Error::NotFinite {
            line,
            column: column.to_string(),
            value: value.to_string(),
        }),
        Err(_) => Err(Error::NotANumber {
            line,
            column: column.to_string(),
            value: value.to_string(),
        }),
    }
}

/// Checks that `dates` are consecutive ascending days; `locate(k)` gives the line and
/// column name of `dates[k]` for the error.
pub(super) fn check_consecutive(
    dates: &[NaiveDate],
    locate: impl Fn(usize) -> (u64, String),
) -> Result<()> {
    for (k, pair) in dates.windows(2).enumerate() {
        if pair[0].succ_opt() != Some(pair[1]) {
            let (line, column) = locate(k + 1);
            return Err(Error::DateOrder {
                line,
                column,
                previous: pair[0],
                date: pair[1],
            });
        }
    }
    Ok(())
}
