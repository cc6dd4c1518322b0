//! Parser of the long layout, one row per country and day (`Date,Country,Confirmed,...`),
//! pivoted into a [`CaseTable`]. Rows may come in any order, but every country must have
//! every date, so that the table stays rectangular without inventing counts.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use csv::StringRecord;

use super::load::{
    CaseTable, Layout, check_consecutive, check_width, line_of, parse_count, parse_date,
};
use crate::error::{Error, Result};

/// Positions of the columns the long layout needs; any other column is ignored.
pub(super) struct Columns {
    /// The `Date` column.
    date: usize,
    /// The `Country` (or `Country/Region`, `Country_Region`) column.
    country: usize,
    /// The `Confirmed` column: cumulative confirmed cases.
    confirmed: usize,
}

impl Columns {
    /// Finds the needed columns by name (case-insensitive); `None` if one is missing.
    pub(super) fn find(header: &StringRecord) -> Option<Self> {
        let position = |names: &[&str]| {
            header
                .iter()
                .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
        };
        Some(Self {
            date: position(&["Date"])?,
            country: position(&["Country", "Country/Region", "Country_Region"])?,
            confirmed: position(&["Confirmed"])?,
        })
    }
}

/// One data row: where it is, whose it is, which day, how many.
struct Entry {
    /// 1-based line of the row.
    line: u64,
    /// Index into the names, in order of first appearance.
    country: usize,
    /// The row's day.
    date: NaiveDate,
    /// Cumulative confirmed cases.
    value: f64,
}

/// Parses the rows of a long-layout table (header first).
pub(super) fn parse(rows: &[StringRecord], columns: &Columns) -> Result<CaseTable> {
    let header = &rows[0];
    let width = header.len();
    let column_name = |j: usize| header[j].trim().to_string();
    let mut names: Vec<String> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    // Date → first line giving it: sorts the dates and locates a gap.
    let mut first_lines: BTreeMap<NaiveDate, u64> = BTreeMap::new();
    let mut entries = Vec::with_capacity(rows.len() - 1);
    for row in &rows[1..] {
        check_width(row, width)?;
        let line = line_of(row);
        let name = row[columns.country].trim();
        if name.is_empty() {
            return Err(Error::EmptyName {
                line,
                column: column_name(columns.country),
            });
        }
        let date_cell = &row[columns.date];
        let date = parse_date(date_cell).ok_or_else(|| Error::BadDate {
            line,
            column: columns.date + 1,
            value: date_cell.to_string(),
        })?;
        let value = parse_count(
            &row[columns.confirmed],
            line,
            &column_name(columns.confirmed),
        )?;
        let country = *index.entry(name.to_string()).or_insert_with(|| {
            names.push(name.to_string());
            names.len() - 1
        });
        first_lines.entry(date).or_insert(line);
        entries.push(Entry {
            line,
            country,
            date,
            value,
        });
    }
    if names.is_empty() {
        return Err(Error::NoCountries);
    }
    let dates: Vec<NaiveDate> = first_lines.keys().copied().collect();
    check_consecutive(&dates, |k| {
        (first_lines[&dates[k]], column_name(columns.date))
    })?;

    let first = dates[0];
    // (value, line) per country and day; the line reports duplicates.
    let mut cells: Vec<Vec<Option<(f64, u64)>>> = vec![vec![None; dates.len()]; names.len()];
    for e in entries {
        // Dates are consecutive from `first`, so the offset is the column.
        let day = (e.date - first).num_days() as usize;
        let cell = &mut cells[e.country][day];
        if let Some((_, first_line)) = *cell {
            return Err(Error::DuplicateRow {
                line: e.line,
                country: names[e.country].clone(),
                date: e.date,
                first_line,
            });
        }
        *cell = Some((e.value, e.line));
    }
    let mut cumulative = Vec::with_capacity(names.len());
    for (name, row) in names.iter().zip(cells) {
        let mut series = Vec::with_capacity(dates.len());
        for (day, cell) in row.into_iter().enumerate() {
            let (value, _) = cell.ok_or_else(|| Error::MissingValue {
                country: name.clone(),
                date: dates[day],
            })?;
            series.push(value);
        }
        cumulative.push(series);
    }
    Ok(CaseTable {
        names,
        dates,
        cumulative,
        layout: Layout::Long,
    })
}
