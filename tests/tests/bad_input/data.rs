//! Case tables malformed in each layout's own way (refused by the client before upload,
//! naming the file and line), a malformed table by URL and a table the workers alone can
//! judge (an empty set C), which fail their trial once; a window longer than the series,
//! which the coordinator refuses before queueing; face folders with a corrupt image or
//! none.

use super::{cli, covid_sweep, failing_trial, s};
use crate::harness::{Act, Case, Ctx, Want, Writes};

/// Data files, local and remote, in each layout's own way of being wrong.
pub fn data_cases(ctx: &Ctx) -> Vec<Case> {
    let i = &ctx.inputs;
    let p = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let mut cases = vec![];
    for (name, file, says) in [
        (
            "csv: unrecognised header",
            p(&i.bad_header),
            vec![
                "line 1",
                "unrecognised header 'Nation,When,Cases'",
                "accepted layouts",
            ],
        ),
        (
            "csv: coursework non-number",
            p(&i.coursework_nan),
            vec!["line 4", "column '1/23/20'", "'abc' is not a number"],
        ),
        (
            "csv: JHU short row",
            p(&i.jhu_short_row),
            vec!["line 3", "expected 6 fields", "found 4"],
        ),
        (
            "csv: long non-number",
            p(&i.long_nan),
            vec!["line 3", "column 'Confirmed'", "'many' is not a number"],
        ),
        (
            "csv: empty file",
            p(&i.empty_csv),
            vec!["the case table is empty", "header row"],
        ),
    ] {
        let mut says = says;
        says.extend([file.as_str(), "fix the file", "--covid-csv FILE|URL"]);
        cases.push(cli(
            name,
            [s(&["sweep"]), covid_sweep(&file, &["--detach"])].concat(),
            1,
            &says,
        ));
    }
    cases.push(cli(
        "csv: no such file",
        [
            s(&["sweep"]),
            covid_sweep("/no/such/cases.csv", &["--detach"]),
        ]
        .concat(),
        1,
        &["not found at /no/such/cases.csv", "--covid-csv FILE|URL"],
    ));
    cases.extend([
        // Once named the worker's cached copy of the file instead of the URL.
        failing_trial(
            "csv by URL: non-number",
            covid_sweep(&i.csv_url, &[]),
            &[
                &i.csv_url,
                "line 4",
                "column '1/23/20'",
                "'abc' is not a number",
            ],
        ),
        failing_trial(
            "csv: empty set C",
            covid_sweep(&p(&i.uncorrelated), &[]),
            &[
                "no country correlates above threshold 0.7",
                "set C is empty",
                "more countries",
            ],
        ),
    ]);
    // Refused by the coordinator before anything is stored, with the worker's message.
    cases.push(cli(
        "L longer than the series",
        [
            s(&["sweep"]),
            covid_sweep(&ctx.data_csv(), &["--l", "500", "--detach"]),
        ]
        .concat(),
        2,
        &[
            "L = 500 needs 501 days from 2020-03-01",
            "use --l",
            "or less or an earlier --start-date",
        ],
    ));
    cases.push(Case {
        name: "faces: one corrupt .jpg",
        act: Act::Sweep(s(&[
            "--faces",
            &p(&i.faces_with_garbage),
            "--kl",
            "1",
            "--epochs",
            "1",
            "--vae-hidden",
            "8",
        ])),
        want: Want::Trial("succeeded"),
        // The file was once named only on the worker's stderr; the summary names it now.
        says: s(&[
            "\"skipped_files\":1",
            "garbage.jpg",
            "not a decodable PNG or JPEG image",
        ]),
        logs: s(&[
            "skipping",
            "garbage.jpg",
            "not a decodable PNG or JPEG image",
        ]),
        writes: Writes::Trial,
    });
    cases.push(cli(
        "faces: folder with no image",
        s(&[
            "sweep",
            "--faces",
            &p(&i.faces_empty),
            "--kl",
            "1",
            "--detach",
        ]),
        1,
        &["no PNG or JPEG image in", &p(&i.faces_empty), "--faces DIR"],
    ));
    cases
}
