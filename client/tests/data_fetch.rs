//! `client data fetch` against a small HTTP/1.1 server on loopback serving a generated
//! JHU-layout case table and a zip of tiny PNGs: files land where `--data DIR` looks and
//! parse, a second run downloads nothing, a partial download is resumed with a range
//! request, and an archive with the wrong hash is refused and removed.

use std::io::{BufRead, BufReader, Cursor, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sha2::{Digest, Sha256};
use wick_common::covid::CaseTable;

/// One request the server saw.
#[derive(Debug, Clone)]
struct Seen {
    /// Request path.
    path: String,
    /// The `Range` header, if any.
    range: Option<String>,
}

/// A loopback server for two files (`/covid.csv`, `/faces.zip`), recording each request.
struct Server {
    /// `http://127.0.0.1:PORT`.
    base: String,
    /// Requests so far.
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(files: Vec<(&'static str, Vec<u8>)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        // The thread ends with the test process.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut range = None;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap() == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':')
                        && k.eq_ignore_ascii_case("range")
                    {
                        range = Some(v.trim().to_string());
                    }
                }
                log.lock().unwrap().push(Seen {
                    path: path.clone(),
                    range: range.clone(),
                });
                let Some((_, body)) = files.iter().find(|(p, _)| *p == path) else {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                };
                let from = range
                    .as_deref()
                    .and_then(|r| r.strip_prefix("bytes="))
                    .and_then(|r| r.strip_suffix('-'))
                    .and_then(|n| n.parse::<usize>().ok());
                let head = match from {
                    Some(n) if n < body.len() => format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {n}-{}/{}\r\nContent-Length: {}\r\n",
                        body.len() - 1,
                        body.len(),
                        body.len() - n
                    ),
                    _ => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n", body.len()),
                };
                let part = &body[from.filter(|n| *n < body.len()).unwrap_or(0)..];
                let _ = stream.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes());
                let _ = stream.write_all(part);
            }
        });
        Server { base, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Requests so far, forgetting them.
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// A small case table in the JHU CSSE wide layout, with a province row to sum.
fn covid_csv() -> Vec<u8> {
    let mut s = String::from("Province/State,Country/Region,Lat,Long");
    for d in 22..=31 {
        s += &format!(",1/{d}/20");
    }
    s += "\n";
    for (prov, country, scale) in [
        ("", "Taiwan*", 1),
        ("", "Italy", 3),
        ("Hubei", "China", 10),
        ("Beijing", "China", 2),
    ] {
        s += &format!("{prov},{country},1.0,2.0");
        for d in 0..10 {
            s += &format!(",{}", d * d * scale);
        }
        s += "\n";
    }
    s.into_bytes()
}

/// A zip of four 8x8 PNGs in a `data/` folder, plus a file that is not an image.
fn faces_zip() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for i in 0..4u8 {
        let img = image::RgbImage::from_fn(8, 8, |x, y| {
            image::Rgb([i * 60, x as u8 * 30, y as u8 * 30])
        });
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        zip.start_file(format!("data/{i}.png"), options).unwrap();
        zip.write_all(&png).unwrap();
    }
    zip.start_file("data/README.txt", options).unwrap();
    zip.write_all(b"not an image").unwrap();
    zip.finish().unwrap().into_inner()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Runs `client data fetch --dir DIR --json ARGS` with no WICK_* setting leaking in.
fn fetch(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_client"));
    for var in ["WICK_COORDINATOR", "WICK_DATA", "WICK_HOME", "WICK_STORE"] {
        cmd.env_remove(var);
    }
    cmd.args(["data", "fetch", "--json", "--dir"])
        .arg(dir)
        .args(args)
        .output()
        .expect("the client binary runs")
}

/// The JSON document of a run that must succeed.
fn ok(dir: &Path, args: &[&str]) -> Value {
    let out = fetch(dir, args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "data fetch failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{stdout}"))
}

/// The statuses of the covid and faces files, in that order.
fn statuses(doc: &Value) -> Vec<String> {
    doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["status"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn data_fetch_downloads_caches_resumes_and_verifies() {
    let (csv, zip) = (covid_csv(), faces_zip());
    let zip_sha = sha256(&zip);
    let server = Server::start(vec![
        ("/covid.csv", csv.clone()),
        ("/faces.zip", zip.clone()),
    ]);
    let (covid_url, faces_url) = (server.url("/covid.csv"), server.url("/faces.zip"));
    let args = [
        "--covid-url",
        &covid_url,
        "--faces-url",
        &faces_url,
        "--faces-sha256",
        &zip_sha,
    ];
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");

    // First run: both downloaded, where the worker reads them, and readable.
    let doc = ok(&dir, &args);
    assert_eq!(statuses(&doc), ["downloaded", "downloaded"], "{doc}");
    let faces = &doc["files"][1];
    assert_eq!(faces["sha256"], zip_sha.as_str());
    assert_eq!(faces["bytes"], zip.len() as u64);
    assert_eq!(faces["url"], faces_url.as_str());
    assert_eq!(doc["files"][0]["sha256"], sha256(&csv).as_str());
    let table = CaseTable::from_path(&dir.join("covid/covid_19.csv")).unwrap();
    assert_eq!(table.names.len(), 3, "China's provinces are summed");
    assert_eq!(table.dates.len(), 10);
    let mut images: Vec<_> = std::fs::read_dir(dir.join("anime-faces"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('.'))
        .collect();
    images.sort();
    assert_eq!(images, ["0.png", "1.png", "2.png", "3.png"]);
    for name in &images {
        let img = image::open(dir.join("anime-faces").join(name)).unwrap();
        assert_eq!((img.width(), img.height()), (8, 8));
    }
    assert!(!dir.join(".partial").exists(), "nothing is left half-done");
    assert_eq!(server.take().len(), 2);

    // Second run: nothing to download, no request at all.
    let doc = ok(&dir, &args);
    assert_eq!(statuses(&doc), ["cached", "cached"], "{doc}");
    assert_eq!(doc["files"][1]["sha256"], zip_sha.as_str());
    assert!(server.take().is_empty());

    // An interrupted download of the faces: the next run asks for the rest only.
    std::fs::remove_dir_all(dir.join("anime-faces")).unwrap();
    std::fs::create_dir_all(dir.join(".partial")).unwrap();
    let half = zip.len() / 2;
    std::fs::write(dir.join(".partial/anime-faces.zip"), &zip[..half]).unwrap();
    let doc = ok(&dir, &args);
    assert_eq!(statuses(&doc), ["cached", "resumed"], "{doc}");
    assert_eq!(doc["files"][1]["sha256"], zip_sha.as_str());
    let seen = server.take();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].path, "/faces.zip");
    assert_eq!(
        seen[0].range.as_deref(),
        Some(format!("bytes={half}-").as_str())
    );
    assert_eq!(
        std::fs::read_dir(dir.join("anime-faces")).unwrap().count(),
        4 + 1
    );

    // A wrong hash: refused, naming both hashes, with nothing left at the final path.
    let fresh = tmp.path().join("fresh");
    let wrong = "0123456789abcdef".repeat(4);
    let out = fetch(
        &fresh,
        &[
            "--covid-url",
            &covid_url,
            "--faces-url",
            &faces_url,
            "--faces-sha256",
            &wrong,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a wrong hash passed");
    assert!(
        stderr.contains(&wrong) && stderr.contains(&zip_sha) && stderr.contains(&faces_url),
        "{stderr}"
    );
    assert!(stderr.contains("again"), "says what to do: {stderr}");
    assert!(!fresh.join("anime-faces").exists());
    assert!(!fresh.join(".partial/anime-faces.zip").exists());
}
