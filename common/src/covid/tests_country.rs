//! The country table against the real data: every country name of both case tables maps
//! to the code the JHU CSSE lookup table (`reference.csv`) gives it. The lookup file is read
//! here only; the mapping itself lives in code.

use std::collections::HashMap;

use super::load::CaseTable;
use super::testdata::data_file;
use crate::country::iso2_of;

/// `Country_Region` → `iso2` of the lookup table's country rows (no province, no county).
fn reference_codes() -> Option<HashMap<String, String>> {
    let path = data_file("covid/reference.csv")?;
    let mut reader = csv::Reader::from_path(&path).expect("reference.csv opens");
    let header = reader
        .headers()
        .expect("reference.csv has a header")
        .clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("reference.csv has no {name} column"))
    };
    let (iso2, admin2, province, country) = (
        column("iso2"),
        column("Admin2"),
        column("Province_State"),
        column("Country_Region"),
    );
    let mut codes = HashMap::new();
    for record in reader.records() {
        let record = record.expect("reference.csv row parses");
        if record[admin2].is_empty() && record[province].is_empty() {
            codes.insert(record[country].to_string(), record[iso2].to_string());
        }
    }
    Some(codes)
}

fn check_names(file: &str, expected_countries: usize) {
    let (Some(codes), Some(path)) = (reference_codes(), data_file(file)) else {
        return;
    };
    let table = CaseTable::from_path(&path).expect("case table loads");
    assert_eq!(table.names.len(), expected_countries);
    let mut with_code = 0;
    for (i, name) in table.names.iter().enumerate() {
        let reference = codes
            .get(name)
            .unwrap_or_else(|| panic!("{file}: '{name}' is not in reference.csv"));
        if reference.is_empty() {
            assert_eq!(iso2_of(name), None, "{file}: '{name}' has no code");
        } else {
            assert_eq!(iso2_of(name), Some(reference.as_str()), "{file}: '{name}'");
            assert_eq!(table.iso2(i), Some(reference.as_str()));
            with_code += 1;
        }
    }
    assert!(
        with_code + 3 >= table.names.len(),
        "only {with_code} names have a code"
    );
}

#[test]
fn coursework_names_map_to_reference_codes() {
    check_names("covid/covid_19.csv", 185);
}

#[test]
fn aggregated_names_map_to_reference_codes() {
    check_names("covid/countries-aggregated.csv", 195);
}
