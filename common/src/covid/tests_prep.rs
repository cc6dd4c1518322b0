//! Tests of the preparation pipeline: the formulas on hand-checked tiny inputs, the split's
//! reproducibility, each error, and the reference implementation's numbers on the real
//! coursework file.

use std::collections::HashSet;

use chrono::{Days, NaiveDate};

use super::load::{CaseTable, Layout};
use super::prep::*;
use super::testdata::data_file;
use crate::error::Error;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
}

/// A table whose daily new cases (from 2020-03-01 on) are the given series.
fn table_from_new(series: &[Vec<f64>]) -> CaseTable {
    let days = series[0].len() + 1;
    let first = date(2020, 2, 29);
    CaseTable {
        names: (0..series.len()).map(|i| format!("country {i}")).collect(),
        dates: (0..days).map(|k| first + Days::new(k as u64)).collect(),
        cumulative: series
            .iter()
            .map(|s| {
                std::iter::once(10.0)
                    .chain(s.iter().scan(10.0, |total, x| {
                        *total += x;
                        Some(*total)
                    }))
                    .collect()
            })
            .collect(),
        layout: Layout::Coursework,
    }
}

/// Four countries over 30 days: 0 and 1 proportional (correlation 1), 2 constant (NaN),
/// 3 alternating (uncorrelated with the trend of 0 and 1).
fn small_table() -> CaseTable {
    let a: Vec<f64> = (0..30).map(|k| (k + k % 3) as f64).collect();
    let b: Vec<f64> = a.iter().map(|x| 2.0 * x + 1.0).collect();
    let z = vec![0.0; 30];
    let n: Vec<f64> = (0..30)
        .map(|k| if k % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    table_from_new(&[a, b, z, n])
}

fn opts(l: usize) -> PrepOptions {
    PrepOptions {
        l,
        ..PrepOptions::default()
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn pearson_by_hand() {
    assert!(close(pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]), 1.0));
    assert!(close(pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0));
    // a = [1,2,3,4], b = [2,1,4,3]: deviations (-1.5,-0.5,0.5,1.5) and (-0.5,-1.5,1.5,0.5);
    // cov = 0.75+0.75+0.75+0.75 = 3, var sums 5 and 5, r = 3/5.
    assert!(close(
        pearson(&[1.0, 2.0, 3.0, 4.0], &[2.0, 1.0, 4.0, 3.0]),
        0.6
    ));
    assert!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_nan());
}

#[test]
fn correlated_set_excludes_constant_and_self() {
    let series = vec![
        vec![1.0, 2.0, 3.0, 4.0],
        vec![2.0, 1.0, 4.0, 3.0],
        vec![5.0, 5.0, 5.0, 5.0],
        vec![4.0, 3.0, 2.0, 1.0],
    ];
    let corr = correlation_matrix(&series);
    assert!(close(corr[0][1], 0.6) && close(corr[1][0], 0.6));
    assert!(close(corr[0][3], -1.0));
    assert!(corr[2][2].is_nan() && corr[0][2].is_nan());
    assert!(close(corr[0][0], 1.0), "the diagonal is 1 but never counts");
    assert_eq!(correlated_set(&corr, 0.5), [0, 1]);
    assert_eq!(correlated_set(&corr, 0.7), Vec::<usize>::new());
    assert_eq!(correlated_set(&corr, -2.0), [0, 1, 3]);
}

#[test]
fn daily_new_is_the_first_difference() {
    assert_eq!(daily_new(&[0.0, 1.0, 4.0, 3.0]), [1.0, 3.0, -1.0]);
    assert!(daily_new(&[5.0]).is_empty());
}

#[test]
fn windows_and_labels() {
    assert_eq!(
        windows(&[1.0, 3.0, 2.0, 5.0], 2),
        [(vec![1.0, 3.0], 0), (vec![3.0, 2.0], 1)]
    );
    assert_eq!(
        windows(&[1.0, 1.0, 1.0], 1),
        [(vec![1.0], 0), (vec![1.0], 0)]
    );
    assert!(windows(&[1.0, 2.0], 2).is_empty());
    assert!(windows(&[1.0, 2.0], 0).is_empty());
}

#[test]
fn normalise_divides_by_max_abs_plus_one() {
    let mut w = [0.0f32, -4.0, 2.0];
    normalise(&mut w);
    assert_eq!(w, [0.0, -0.8, 0.4]);
    let mut zero = [0.0f32; 3];
    normalise(&mut zero);
    assert_eq!(zero, [0.0; 3]);
}

#[test]
fn split_from_str_and_display() {
    assert_eq!("random".parse::<Split>().ok(), Some(Split::Random));
    assert_eq!(" Time ".parse::<Split>().ok(), Some(Split::Time));
    assert_eq!(Split::Time.to_string(), "time");
    assert!(matches!(
        "later".parse::<Split>(),
        Err(Error::InvalidConfig(_))
    ));
}

#[test]
fn prepare_small_table() {
    let data = prepare(&small_table(), &opts(5)).expect("prepares");
    assert_eq!(data.members, [0, 1]);
    assert_eq!(data.new_dates.first(), Some(&date(2020, 3, 1)));
    assert_eq!(data.new_cases[0].len(), 30);
    // Start 3/1 is the first daily value: 30 - 5 = 25 windows per member, 50 in all.
    assert_eq!(data.train.len() + data.test.len(), 50);
    assert_eq!(data.train.len(), 35);
    assert_eq!(data.train.x.len(), 35 * 5);
    assert_eq!(data.last.len(), 4);
    assert!(data.last.y.iter().all(|&y| y == 0));
    let mut last_row: Vec<f32> = data.new_cases[3][25..].iter().map(|&v| v as f32).collect();
    normalise(&mut last_row);
    assert_eq!(data.last.row(3), last_row.as_slice());
    for set in [&data.train, &data.test] {
        assert!(set.country.iter().all(|c| data.members.contains(c)));
        assert!(set.x.iter().all(|v| v.abs() < 1.0));
        let p = set.positive_fraction();
        assert!(close(set.majority_baseline(), p.max(1.0 - p)));
    }
}

#[test]
fn same_seed_same_split_other_seed_other_order() {
    let table = small_table();
    let a = prepare(&table, &opts(5)).expect("prepares");
    let b = prepare(&table, &opts(5)).expect("prepares");
    // CovidData holds NaN correlations (NaN != NaN), so compare what the seed decides.
    assert_eq!((&a.train, &a.test), (&b.train, &b.test));
    let c = prepare(&table, &PrepOptions { seed: 1, ..opts(5) }).expect("prepares");
    assert_ne!(a.train.x, c.train.x);
    let all_rows = |d: &CovidData| {
        let mut rows: Vec<Vec<u32>> = [&d.train, &d.test]
            .iter()
            .flat_map(|w| (0..w.len()).map(|i| w.row(i).iter().map(|v| v.to_bits()).collect()))
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(
        all_rows(&a),
        all_rows(&c),
        "another seed reorders the same windows"
    );
}

#[test]
fn time_split_holds_out_each_countrys_latest_windows() {
    let table = small_table();
    let options = PrepOptions {
        split: Split::Time,
        ..opts(5)
    };
    let data = prepare(&table, &options).expect("prepares");
    // floor(0.7 × 25) = 17 per country to train, 8 to test.
    assert_eq!((data.train.len(), data.test.len()), (34, 16));
    for &c in &data.members {
        let rows = |set: &Windows| -> HashSet<Vec<u32>> {
            (0..set.len())
                .filter(|&i| set.country[i] == c)
                .map(|i| set.row(i).iter().map(|v| v.to_bits()).collect())
                .collect()
        };
        let expected = |range: std::ops::Range<usize>| -> HashSet<Vec<u32>> {
            range
                .map(|t| {
                    let mut w: Vec<f32> = data.new_cases[c][t..t + 5]
                        .iter()
                        .map(|&v| v as f32)
                        .collect();
                    normalise(&mut w);
                    w.iter().map(|v| v.to_bits()).collect()
                })
                .collect()
        };
        assert_eq!(rows(&data.train), expected(0..17), "country {c} train");
        assert_eq!(rows(&data.test), expected(17..25), "country {c} test");
    }
}

#[test]
fn validation_is_carved_out_of_train_and_never_overlaps_test() {
    let table = small_table();
    let rows = |set: &Windows| -> HashSet<(usize, Vec<u32>)> {
        (0..set.len())
            .map(|i| {
                (
                    set.country[i],
                    set.row(i).iter().map(|v| v.to_bits()).collect(),
                )
            })
            .collect()
    };
    for split in [Split::Random, Split::Time] {
        let plain = prepare(&table, &PrepOptions { split, ..opts(5) }).expect("prepares");
        let data = prepare(
            &table,
            &PrepOptions {
                split,
                val_fraction: 0.2,
                ..opts(5)
            },
        )
        .expect("prepares");
        assert!(plain.val.is_empty(), "no validation without a fraction");
        // The test set does not move; validation + train = the old train.
        assert_eq!(rows(&data.test), rows(&plain.test), "{split}");
        let mut joined = rows(&data.train);
        joined.extend(rows(&data.val));
        assert_eq!(joined, rows(&plain.train), "{split}");
        assert!(rows(&data.train).is_disjoint(&rows(&data.val)), "{split}");
        match split {
            // floor(0.7 × 50) = 35 train, of which floor(0.2 × 35) = 7 validate.
            Split::Random => assert_eq!((data.train.len(), data.val.len()), (28, 7)),
            // Per country: 17 train, of which floor(0.2 × 17) = 3 (the latest) validate.
            Split::Time => assert_eq!((data.train.len(), data.val.len()), (28, 6)),
        }
    }
    let time = prepare(
        &table,
        &PrepOptions {
            split: Split::Time,
            val_fraction: 0.2,
            ..opts(5)
        },
    )
    .expect("prepares");
    // Time split: a country's validation windows are its latest training days (14..17).
    for &c in &time.members {
        let mut starts: Vec<usize> = (0..time.val.len())
            .filter(|&i| time.val.country[i] == c)
            .map(|i| {
                (0..25)
                    .find(|&t| {
                        let mut w: Vec<f32> = time.new_cases[c][t..t + 5]
                            .iter()
                            .map(|&v| v as f32)
                            .collect();
                        normalise(&mut w);
                        w == time.val.row(i)
                    })
                    .expect("a window of the series")
            })
            .collect();
        starts.sort();
        assert_eq!(starts, [14, 15, 16], "country {c}");
    }
}

#[test]
fn an_empty_validation_split_says_what_to_change() {
    // 25 windows per country, 17 train: 5 % of 17 is 0 per country.
    let options = PrepOptions {
        split: Split::Time,
        val_fraction: 0.05,
        ..opts(5)
    };
    let e = prepare(&small_table(), &options).unwrap_err().to_string();
    assert!(e.contains("validation split is empty"), "{e}");
    assert!(e.contains("17 per country") && e.contains("--val 0"), "{e}");
}

/// Runs `prepare` on the small table with changed options; it must fail.
fn fails(change: impl FnOnce(&mut PrepOptions)) -> Error {
    let mut options = opts(5);
    change(&mut options);
    match prepare(&small_table(), &options) {
        Ok(_) => panic!("expected an error with {options:?}"),
        Err(e) => e,
    }
}

#[test]
fn errors_say_what_to_change() {
    let e = fails(|o| o.start = date(2021, 1, 1));
    assert!(matches!(e, Error::StartDate { .. }));
    assert_eq!(
        e.to_string(),
        "start date 2021-01-01 is after the last date 2020-03-30 of the data; \
         use a --start-date between 2020-03-01 and 2020-03-30"
    );
    let e = fails(|o| o.start = date(2020, 2, 29));
    assert!(
        e.to_string().contains("before the first date 2020-03-01"),
        "{e}"
    );

    let e = fails(|o| o.l = 30);
    assert_eq!(
        e.to_string(),
        "L = 30 needs 31 days from 2020-03-01 but the data has 30 (to 2020-03-30): \
         use --l 29 or less or an earlier --start-date"
    );
    assert!(matches!(
        fails(|o| o.l = 0),
        Error::WindowLength { l: 0, .. }
    ));

    let e = fails(|o| o.threshold = 1.0);
    assert_eq!(
        e.to_string(),
        "no country correlates above threshold 1 with another, so set C is empty; use a case \
         table with more countries whose outbreaks move together, or a lower --threshold \
         (default 0.7)"
    );
    for f in [0.0, 1.0, -0.5, f64::NAN] {
        let e = fails(|o| o.train_fraction = f);
        assert!(matches!(e, Error::TrainFraction(_)), "{e}");
    }
    // Two windows in all (one per member): floor(0.4 × 2) leaves train empty. (An empty
    // test split would need floor(f × n) = n, which f < 1 rules out.)
    let e = fails(|o| {
        o.l = 29;
        o.train_fraction = 0.4;
    });
    let empty_train = matches!(
        e,
        Error::EmptySplit {
            split: "train",
            windows: 2,
            ..
        }
    );
    assert!(empty_train, "{e}");

    let table = small_table();
    let one_day = CaseTable {
        dates: table.dates[..1].to_vec(),
        cumulative: table.cumulative.iter().map(|c| c[..1].to_vec()).collect(),
        ..table
    };
    let e = prepare(&one_day, &opts(5)).map(|_| ()).unwrap_err();
    assert!(matches!(e, Error::TooFewDates { dates: 1 }), "{e}");
}

/// The reference implementation's numbers on the coursework file (`covid_ref.py`,
/// `reference/README.md`); the totals do not depend on the shuffle.
#[test]
fn real_coursework_file_matches_reference() {
    let Some(path) = data_file("covid/covid_19.csv") else {
        return;
    };
    let table = CaseTable::from_path(&path).expect("loads");
    for (l, train, test, positives, all_zero) in
        [(40, 300, 129, 182, 1), (12, 3103, 1330, 2077, 319)]
    {
        let data = prepare(&table, &opts(l)).expect("prepares");
        assert_eq!(data.members.len(), 143);
        assert_eq!(
            (data.train.len(), data.test.len()),
            (train, test),
            "L = {l}"
        );
        let ones = |w: &Windows| w.y.iter().filter(|&&y| y == 1).count();
        assert_eq!(ones(&data.train) + ones(&data.test), positives, "L = {l}");
        let zero_rows = |w: &Windows| {
            (0..w.len())
                .filter(|&i| w.row(i).iter().all(|&v| v == 0.0))
                .count()
        };
        assert_eq!(
            zero_rows(&data.train) + zero_rows(&data.test),
            all_zero,
            "L = {l}"
        );
        assert_eq!(data.last.len(), 185);
        assert_eq!(data.new_cases[0].len(), 81);
        let negative: usize = data
            .new_cases
            .iter()
            .flatten()
            .filter(|&&v| v < 0.0)
            .count();
        assert_eq!(negative, 2);
    }
}
