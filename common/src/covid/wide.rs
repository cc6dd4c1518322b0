//! Parsers of the two wide layouts, one column per day: the coursework file (one row per
//! country, extra header rows) and the JHU CSSE time series (province rows summed into
//! their country).

use std::collections::HashMap;

use chrono::NaiveDate;
use csv::StringRecord;

use super::load::parse_date;
use super::load::{CaseTable, Layout, check_consecutive, check_width, line_of, parse_count};
use crate::error::{Error, Result};

/// Where a wide layout keeps its names and dates.
struct Shape {
    /// The layout being read, for the result and for messages.
    layout: Layout,
    /// Name of the layout in "no date columns" messages.
    label: &'static str,
    /// Column holding the country name.
    name_column: usize,
    /// First date column; the ones before it (names, Lat, Long) carry no counts.
    first_date: usize,
    /// Whether several rows may name the same country (JHU provinces) and are summed.
    sum_duplicates: bool,
}

/// Parses the coursework layout: header `,Lat,Long,dates...`, optional `sum` and
/// `Country/Region` rows, then one row per country.
pub(super) fn coursework(rows: &[StringRecord]) -> Result<CaseTable> {
    let shape = Shape {
        layout: Layout::Coursework,
        label: "coursework",
        name_column: 0,
        first_date: 3,
        sum_duplicates: false,
    };
    // The two extra header rows only label the columns; they are skipped, not required.
    let extra = rows[1..]
        .iter()
        .take(2)
        .take_while(|r| is_extra_header(r))
        .count();
    parse(rows, 1 + extra, &shape)
}

/// Parses the JHU CSSE layout `Province/State,Country/Region,Lat,Long,dates...`.
pub(super) fn jhu(rows: &[StringRecord]) -> Result<CaseTable> {
    let shape = Shape {
        layout: Layout::JhuWide,
        label: "JHU CSSE wide",
        name_column: 1,
        first_date: 4,
        sum_duplicates: true,
    };
    parse(rows, 1, &shape)
}

/// The coursework's `sum` marker row or its `Country/Region` row.
fn is_extra_header(row: &StringRecord) -> bool {
    let mut cells = row.iter().map(str::trim);
    match cells.next() {
        Some("") => cells.all(|c| c.is_empty() || c.eq_ignore_ascii_case("sum")),
        Some(first) if first.eq_ignore_ascii_case("Country/Region") => cells.all(str::is_empty),
        _ => false,
    }
}

/// Parses a wide table whose country rows start at `rows[data_start]`.
fn parse(rows: &[StringRecord], data_start: usize, shape: &Shape) -> Result<CaseTable> {
    let header = &rows[0];
    let dates = header_dates(header, shape)?;
    let width = header.len();
    let name_header = match header.get(shape.name_column).map(str::trim) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => "Country/Region".to_string(),
    };
    let mut names: Vec<String> = Vec::new();
    let mut cumulative: Vec<Vec<f64>> = Vec::new();
    // Name → (index, first line), to sum provinces or report a duplicate country.
    let mut seen: HashMap<String, (usize, u64)> = HashMap::new();
    for row in &rows[data_start..] {
        check_width(row, width)?;
        let line = line_of(row);
        let name = row.get(shape.name_column).map_or("", str::trim);
        if name.is_empty() {
            return Err(Error::EmptyName {
                line,
                column: name_header,
            });
        }
        let mut counts = Vec::with_capacity(dates.len());
        for (j, cell) in row.iter().enumerate().skip(shape.first_date) {
            counts.push(parse_count(cell, line, header[j].trim())?);
        }
        match seen.get(name) {
            Some(&(i, _)) if shape.sum_duplicates => {
                for (total, x) in cumulative[i].iter_mut().zip(counts) {
                    *total += x;
                }
            }
            Some(&(_, first_line)) => {
                return Err(Error::DuplicateCountry {
                    line,
                    name: name.to_string(),
                    first_line,
                });
            }
            None => {
                seen.insert(name.to_string(), (names.len(), line));
                names.push(name.to_string());
                cumulative.push(counts);
            }
        }
    }
    if names.is_empty() {
        return Err(Error::NoCountries);
    }
    Ok(CaseTable {
        names,
        dates,
        cumulative,
        layout: shape.layout,
    })
}

/// The dates of the header's date columns, checked to be consecutive days.
fn header_dates(header: &StringRecord, shape: &Shape) -> Result<Vec<NaiveDate>> {
    if header.len() <= shape.first_date {
        return Err(Error::NoDateColumns {
            layout: shape.label,
        });
    }
    let line = line_of(header);
    let mut dates = Vec::with_capacity(header.len() - shape.first_date);
    for (j, cell) in header.iter().enumerate().skip(shape.first_date) {
        dates.push(parse_date(cell).ok_or_else(|| Error::BadDate {
            line,
            column: j + 1,
            value: cell.to_string(),
        })?);
    }
    check_consecutive(&dates, |k| {
        (line, header[shape.first_date + k].trim().to_string())
    })?;
    Ok(dates)
}
