//! The bad inputs themselves, written into a scratch folder: malformed case tables in each
//! layout's own way, a table whose countries never correlate (an empty set C), face
//! folders with a corrupt image or none, an oversized "image", and a one-file HTTP server
//! so a malformed table can also reach the workers unchecked, by URL.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// Every input file of the catalogue, by role.
pub struct Inputs {
    /// Header matching none of the three layouts.
    pub bad_header: PathBuf,
    /// Coursework layout with a count that is not a number on line 4.
    pub coursework_nan: PathBuf,
    /// JHU CSSE wide layout with a short row on line 3.
    pub jhu_short_row: PathBuf,
    /// Long layout with a count that is not a number on line 3.
    pub long_nan: PathBuf,
    /// An empty file.
    pub empty_csv: PathBuf,
    /// Two countries whose daily new cases are perfectly anti-correlated: set C is empty.
    pub uncorrelated: PathBuf,
    /// Face folder: a few real faces and one `.jpg` of garbage bytes.
    pub faces_with_garbage: PathBuf,
    /// Face folder holding no image at all.
    pub faces_empty: PathBuf,
    /// A `.jpg` of garbage bytes.
    pub garbage_jpg: PathBuf,
    /// A real face.
    pub face: PathBuf,
    /// A 100 MB `.png` (zeros): too large for one request.
    pub huge_png: PathBuf,
    /// Where commands are told to write their outputs; must stay empty after a refusal.
    pub out: PathBuf,
    /// `http://127.0.0.1:PORT/cases.csv`, serving `coursework_nan`'s content.
    pub csv_url: String,
}

/// Size of the oversized inputs: above the coordinator's 64 MiB request limit.
pub const HUGE: usize = 100 * 1024 * 1024;

/// Daily new cases of a made-up country on day k.
type Daily = fn(u32) -> u32;

/// A long-layout table of `countries`, each `(name, daily new cases)`, over 100 days from
/// 2020-01-22 (the windows start on 2020-03-01).
fn long_table(countries: &[(&str, Daily)]) -> String {
    let mut text = String::from("Date,Country,Confirmed\n");
    for (name, daily) in countries {
        let mut total = 0u64;
        for k in 0..100u32 {
            total += u64::from(daily(k));
            text.push_str(&format!("{},{name},{total}\n", day(k)));
        }
    }
    text
}

/// 2020-01-22 plus `k` days, as YYYY-MM-DD (2020 is a leap year).
fn day(k: u32) -> String {
    const LEN: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let (mut m, mut d) = (1usize, 22 + k);
    while d > LEN[m - 1] {
        d -= LEN[m - 1];
        m += 1;
    }
    format!("2020-{m:02}-{d:02}")
}

/// Serves `body` to every request on a loopback port, forever (the thread dies with the
/// test process); returns the URL.
fn serve(body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().map_while(Result::ok) {
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/cases.csv")
}

fn write(path: &Path, body: impl AsRef<[u8]>) -> PathBuf {
    std::fs::write(path, body).unwrap();
    path.to_path_buf()
}

/// Writes every input under `dir`; `data` is the shared data folder (real faces).
pub fn write_all(dir: &Path, data: &Path) -> Inputs {
    let coursework_nan = ",Lat,Long,1/22/20,1/23/20,1/24/20\n,,,sum,sum,sum\nCountry/Region,,,,,\nFrance,46.0,2.0,1,abc,3\n";
    let faces_with_garbage = dir.join("faces-with-garbage");
    let faces_empty = dir.join("faces-empty");
    let out = dir.join("out");
    for d in [&faces_with_garbage, &faces_empty, &out] {
        std::fs::create_dir_all(d).unwrap();
    }
    let real = data.join("anime-faces");
    for i in 0..8 {
        let name = format!("{i}.jpg");
        std::fs::copy(real.join(&name), faces_with_garbage.join(&name)).unwrap();
    }
    write(
        &faces_with_garbage.join("garbage.jpg"),
        b"these bytes are no JPEG",
    );
    std::fs::write(faces_empty.join("README.txt"), "no images here").unwrap();
    Inputs {
        bad_header: write(
            &dir.join("bad-header.csv"),
            "Nation,When,Cases\nFrance,2020-01-22,1\n",
        ),
        coursework_nan: write(&dir.join("coursework-nan.csv"), coursework_nan),
        jhu_short_row: write(
            &dir.join("jhu-short-row.csv"),
            "Province/State,Country/Region,Lat,Long,1/22/20,1/23/20\n,France,46.0,2.0,1,2\n,Italy,43.0,12.0\n",
        ),
        long_nan: write(
            &dir.join("long-nan.csv"),
            "Date,Country,Confirmed\n2020-01-22,France,1\n2020-01-23,France,many\n",
        ),
        empty_csv: write(&dir.join("empty.csv"), ""),
        uncorrelated: write(
            &dir.join("uncorrelated.csv"),
            long_table(&[("Rising", |k| k), ("Falling", |k| 200 - k)]),
        ),
        garbage_jpg: write(&dir.join("garbage.jpg"), b"these bytes are no JPEG"),
        face: real.join("0.jpg"),
        huge_png: write(&dir.join("huge.png"), vec![0u8; HUGE]),
        faces_with_garbage,
        faces_empty,
        out,
        csv_url: serve(coursework_nan.to_string()),
    }
}
