//! Tests of the case-table loader: each layout on small texts, each malformed input with
//! its line and column, country lookup, and the real files.

use chrono::NaiveDate;

use super::load::{CaseTable, Layout};
use super::testdata::data_file;
use crate::error::Error;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
}

/// Parses text that must fail and returns the error.
fn fails(text: &str) -> Error {
    match CaseTable::parse(text) {
        Ok(table) => panic!("expected an error, parsed {table:?}"),
        Err(e) => e,
    }
}

/// A coursework-layout text over 2/29/20 .. 3/2/20 with the given country rows.
fn coursework(rows: &[&str]) -> String {
    let mut text = String::from(
        ",Lat,Long,2/29/20,3/1/20,3/2/20\n,sum,sum,sum,sum,sum\nCountry/Region,,,,,\n",
    );
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    text
}

#[test]
fn coursework_layout() {
    let text = coursework(&[
        "Afghanistan,33.0,65.0,0,1,1",
        "\"Korea, South\",36.0,128.0,3150,3736.0,4335",
    ]);
    let table = CaseTable::parse(&text).expect("parses");
    assert_eq!(table.layout, Layout::Coursework);
    assert_eq!(table.names, ["Afghanistan", "Korea, South"]);
    assert_eq!(
        table.dates,
        [date(2020, 2, 29), date(2020, 3, 1), date(2020, 3, 2)]
    );
    assert_eq!(
        table.cumulative,
        [vec![0.0, 1.0, 1.0], vec![3150.0, 3736.0, 4335.0]]
    );
    assert_eq!(table.iso2(1), Some("KR"));
}

#[test]
fn coursework_without_extra_header_rows() {
    let table = CaseTable::parse(",Lat,Long,1/22/20,1/23/20\nUS,40,-100,1,-1\n").expect("parses");
    assert_eq!(table.names, ["US"]);
    assert_eq!(
        table.cumulative,
        [vec![1.0, -1.0]],
        "negative corrections are kept"
    );
}

#[test]
fn jhu_wide_layout_sums_provinces() {
    let text = "Province/State,Country/Region,Lat,Long,1/22/20,1/23/20,1/24/20\n\
                Alberta,Canada,53.9,-116.5,0,1,2\n\
                ,Afghanistan,33.9,67.7,0,0,1\n\
                Ontario,Canada,51.2,-85.3,1,2,5\n\
                ,\"Korea, South\",35.9,127.8,1,1,2\n";
    let table = CaseTable::parse(text).expect("parses");
    assert_eq!(table.layout, Layout::JhuWide);
    assert_eq!(table.names, ["Canada", "Afghanistan", "Korea, South"]);
    assert_eq!(table.dates.first(), Some(&date(2020, 1, 22)));
    assert_eq!(
        table.cumulative,
        [
            vec![1.0, 3.0, 7.0],
            vec![0.0, 0.0, 1.0],
            vec![1.0, 1.0, 2.0]
        ]
    );
}

#[test]
fn long_layout_pivots_rows_in_any_order() {
    let text = "Date,Country,Confirmed,Recovered,Deaths\n\
                2020-01-23,France,3,0,0\n\
                2020-01-22,\"Korea, South\",1,0,0\n\
                2020-01-22,France,2.0,0,0\n\
                2020-01-23,\"Korea, South\",1,0,0\n";
    let table = CaseTable::parse(text).expect("parses");
    assert_eq!(table.layout, Layout::Long);
    assert_eq!(table.names, ["France", "Korea, South"]);
    assert_eq!(table.dates, [date(2020, 1, 22), date(2020, 1, 23)]);
    assert_eq!(table.cumulative, [vec![2.0, 3.0], vec![1.0, 1.0]]);
}

#[test]
fn empty_text() {
    assert!(matches!(fails(""), Error::EmptyFile));
    assert!(matches!(fails("\n\n"), Error::EmptyFile));
}

#[test]
fn unrecognised_header_lists_layouts() {
    let e = fails("when,where,how many\n2020-01-22,France,1\n");
    assert!(matches!(e, Error::UnrecognisedHeader { .. }));
    let message = e.to_string();
    assert!(message.starts_with("line 1: unrecognised header 'when,where,how many'"));
    assert!(message.contains("Province/State,Country/Region") && message.contains("Date,Country"));
}

#[test]
fn no_date_columns() {
    let e = fails(",Lat,Long\nFrance,46,2\n");
    assert!(
        matches!(
            e,
            Error::NoDateColumns {
                layout: "coursework"
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("line 1"));
}

#[test]
fn ragged_row() {
    let e = fails(&coursework(&["France,46,2,1,2,3", "Spain,40,-4,1,2"]));
    assert!(
        matches!(
            e,
            Error::RaggedRow {
                line: 5,
                expected: 6,
                found: 5
            }
        ),
        "{e}"
    );
    assert!(e.to_string().starts_with("line 5: expected 6 fields"));
}

#[test]
fn non_numeric_count() {
    let e = fails(&coursework(&[
        "A,0,0,1,1,1",
        "B,0,0,1,1,1",
        "C,0,0,1,1,1",
        "D,0,0,1,2,abc",
    ]));
    assert!(
        e.to_string()
            .starts_with("line 7, column '3/2/20': 'abc' is not a number"),
        "{e}"
    );
    let e = fails("Date,Country,Confirmed\n2020-01-22,France,\n");
    assert!(matches!(e, Error::NotANumber { line: 2, ref column, .. } if column == "Confirmed"));
}

#[test]
fn non_finite_count() {
    for bad in ["inf", "NaN"] {
        let e = fails(&coursework(&[&format!("France,46,2,1,{bad},3")]));
        assert!(matches!(e, Error::NotFinite { line: 4, .. }), "{e}");
        assert!(e.to_string().contains("column '3/1/20'"), "{e}");
    }
}

#[test]
fn bad_header_date() {
    let e = fails(",Lat,Long,2/28/20,2/30/20\nFrance,46,2,1,2\n");
    assert!(
        matches!(
            e,
            Error::BadDate {
                line: 1,
                column: 5,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("line 1, column 5: '2/30/20' is not a date")
    );
}

#[test]
fn dates_not_consecutive_or_not_ascending() {
    let e = fails(",Lat,Long,1/22/20,1/24/20\nFrance,46,2,1,2\n");
    assert!(matches!(e, Error::DateOrder { line: 1, .. }), "{e}");
    assert!(e.to_string().contains("column '1/24/20'"), "{e}");
    let e = fails("Province/State,Country/Region,Lat,Long,1/23/20,1/22/20\n,France,46,2,1,2\n");
    assert!(matches!(e, Error::DateOrder { .. }), "{e}");
    // Long layout: the gap is in the set of dates, wherever the rows are.
    let e = fails("Date,Country,Confirmed\n2020-01-24,France,1\n2020-01-22,France,1\n");
    assert!(
        matches!(e, Error::DateOrder { line: 2, ref column, .. } if column == "Date"),
        "{e}"
    );
}

#[test]
fn long_missing_and_duplicate_rows() {
    let e = fails(
        "Date,Country,Confirmed\n2020-01-22,France,1\n2020-01-23,France,2\n2020-01-22,Spain,1\n",
    );
    assert!(
        matches!(e, Error::MissingValue { ref country, date: d } if country == "Spain" && d == date(2020, 1, 23)),
        "{e}"
    );
    assert!(e.to_string().contains("'Spain' has no row for 2020-01-23"));
    let e = fails("Date,Country,Confirmed\n2020-01-22,France,1\n2020-01-22,France,2\n");
    assert!(
        matches!(
            e,
            Error::DuplicateRow {
                line: 3,
                first_line: 2,
                ..
            }
        ),
        "{e}"
    );
    let e = fails("Date,Country,Confirmed\n01/22/2020x,France,1\n");
    assert!(
        matches!(
            e,
            Error::BadDate {
                line: 2,
                column: 1,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn empty_names_duplicates_and_no_rows() {
    let e = fails(",Lat,Long,1/22/20\n,sum,sum,sum\nCountry/Region,,,\nFrance,46,2,1\n ,1,1,1\n");
    assert!(matches!(e, Error::EmptyName { line: 5, .. }), "{e}");
    let e = fails(&coursework(&["France,46,2,1,2,3", "France,46,2,1,2,3"]));
    assert!(
        matches!(
            e,
            Error::DuplicateCountry {
                line: 5,
                first_line: 4,
                ..
            }
        ),
        "{e}"
    );
    assert!(matches!(fails(&coursework(&[])), Error::NoCountries));
    assert!(matches!(
        fails("Date,Country,Confirmed\n"),
        Error::NoCountries
    ));
}

#[test]
fn from_path_names_the_file() {
    let missing = std::path::Path::new("/nonexistent/covid.csv");
    let e = CaseTable::from_path(missing).expect_err("missing file");
    assert!(matches!(e, Error::Io { .. }));
    assert!(e.to_string().contains("/nonexistent/covid.csv"), "{e}");

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.csv");
    std::fs::write(&path, coursework(&["France,46,2,1,x,3"])).expect("write");
    let e = CaseTable::from_path(&path).expect_err("bad content");
    let message = e.to_string();
    assert!(
        matches!(e, Error::InFile { ref error, .. } if matches!(**error, Error::NotANumber { line: 4, .. }))
    );
    assert!(
        message.contains("bad.csv") && message.contains("line 4"),
        "{message}"
    );
}

#[test]
fn find_by_name_code_or_alias() {
    let text = coursework(&[
        "Afghanistan,0,0,1,1,1",
        "\"Korea, South\",0,0,1,1,1",
        "Taiwan*,0,0,1,1,1",
        "Diamond Princess,0,0,1,1,1",
    ]);
    let table = CaseTable::parse(&text).expect("parses");
    assert_eq!(table.find("afghanistan").ok(), Some(0));
    assert_eq!(table.find(" KOREA, SOUTH ").ok(), Some(1));
    assert_eq!(table.find("kr").ok(), Some(1));
    assert_eq!(table.find("South Korea").ok(), Some(1));
    assert_eq!(table.find("TW").ok(), Some(2));
    assert_eq!(table.find("Taiwan").ok(), Some(2));
    assert_eq!(table.find("diamond princess").ok(), Some(3));
    assert_eq!(table.iso2(3), None);

    let e = table.find("Tawian").expect_err("typo");
    assert!(matches!(e, Error::UnknownCountry { .. }));
    assert_eq!(
        e.to_string(),
        "unknown country 'Tawian'; did you mean: Taiwan* (TW)? \
         Use a name as in the data or an ISO 3166 alpha-2 code."
    );
    let e = table.find("Qwertyuiop").expect_err("nothing close");
    assert_eq!(
        e.to_string(),
        "unknown country 'Qwertyuiop'. Use a name as in the data or an ISO 3166 alpha-2 code."
    );
    // A valid code of a country absent from the table is unknown too.
    assert!(matches!(
        table.find("FR"),
        Err(Error::UnknownCountry { .. })
    ));
}

#[test]
fn real_coursework_file() {
    let Some(path) = data_file("covid/covid_19.csv") else {
        return;
    };
    let table = CaseTable::from_path(&path).expect("loads");
    assert_eq!(table.layout, Layout::Coursework);
    assert_eq!(table.names.len(), 185);
    assert_eq!(table.dates.len(), 82);
    assert_eq!(table.dates.first(), Some(&date(2020, 1, 22)));
    assert_eq!(table.dates.last(), Some(&date(2020, 4, 12)));
    assert!(table.cumulative.iter().all(|row| row.len() == 82));
    let us = table.find("US").expect("US is there");
    assert_eq!(table.cumulative[us].last(), Some(&555_313.0));
}

#[test]
fn real_aggregated_file() {
    let Some(path) = data_file("covid/countries-aggregated.csv") else {
        return;
    };
    let table = CaseTable::from_path(&path).expect("loads");
    assert_eq!(table.layout, Layout::Long);
    assert_eq!(table.names.len(), 195);
    assert_eq!(table.dates.len(), 616);
    assert_eq!(table.dates.first(), Some(&date(2020, 1, 22)));
    assert_eq!(table.dates.last(), Some(&date(2021, 9, 28)));
    assert_eq!(table.names.first().map(String::as_str), Some("Afghanistan"));
}
