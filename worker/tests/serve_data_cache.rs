//! The worker's data cache: a face archive in the store is extracted once, a CSV behind an
//! http(s) URL is downloaded once (a second resolve makes no request), and references
//! that point at nothing say so without being mistaken for an outage.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wick_common::store::Store;
use wick_worker::serve::data_cache::{DataCache, DataError};

mod serve_support;

/// Serves `body` at `/covid.csv` and 404 elsewhere over HTTP/1.1; returns the base URL
/// and the number of requests answered so far.
async fn http_server(body: String) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (body, counter) = (body.clone(), counter.clone());
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let found = String::from_utf8_lossy(&req).starts_with("GET /covid.csv ");
                let (status, body) = if found {
                    ("200 OK", body)
                } else {
                    ("404 Not Found", String::new())
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/csv\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (base, hits)
}

#[tokio::test]
async fn a_url_is_downloaded_once_and_a_missing_one_is_invalid() {
    let csv = serve_support::covid_csv();
    let (base, hits) = http_server(csv.clone()).await;
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = DataCache::new(
        cache_dir.path().join("data"),
        Store::open("memory://").unwrap(),
    );

    let url = format!("{base}/covid.csv");
    let path = cache.covid_csv(&url).await.unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), csv);
    assert!(
        path.starts_with(cache_dir.path().join("data")),
        "{}",
        path.display()
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // A second resolve, even through a fresh cache over the same folder, asks nothing.
    assert_eq!(cache.covid_csv(&url).await.unwrap(), path);
    let again = DataCache::new(
        cache_dir.path().join("data"),
        Store::open("memory://").unwrap(),
    );
    assert_eq!(again.covid_csv(&url).await.unwrap(), path);
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the cached file is reused");
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        leftovers,
        vec!["covid.csv".to_string()],
        "no temporary file is left"
    );

    let e = cache
        .covid_csv(&format!("{base}/nope.csv"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, DataError::Invalid(m) if m.contains("404")),
        "{e}"
    );
    // Nothing listens there: an outage, worth another try.
    let e = cache
        .covid_csv("http://127.0.0.1:1/covid.csv")
        .await
        .unwrap_err();
    assert!(matches!(e, DataError::Unavailable(_)), "{e}");
}

#[tokio::test]
async fn a_face_archive_is_extracted_once_and_store_keys_are_cached() {
    let store = Store::open("memory://").unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = DataCache::new(cache_dir.path().join("data"), store.clone());
    let key = "data/sha256-00ff/faces.tar";
    store.put(key, serve_support::faces_tar()).await.unwrap();

    let dir = cache.faces(key).await.unwrap();
    assert_eq!(dir, cache_dir.path().join("data/sha256-00ff/faces"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["0.png", "1.png", "2.png", "3.png", "4.png", "5.png"]
    );
    let images = wick_worker::vae::images::load_folder(&dir, 8, 0).unwrap();
    assert_eq!(images.len(), 6);

    // Gone from the store, still served from the cache: it was fetched only once.
    store.delete(key).await.unwrap();
    assert_eq!(cache.faces(key).await.unwrap(), dir);

    let csv_key = "data/sha256-abcd/covid.csv";
    store
        .put(csv_key, serve_support::covid_csv())
        .await
        .unwrap();
    let csv = cache.covid_csv(csv_key).await.unwrap();
    assert_eq!(csv, cache_dir.path().join("data/sha256-abcd/covid.csv"));

    let e = cache.faces("data/sha256-1234/faces.tar").await.unwrap_err();
    assert!(
        matches!(&e, DataError::Invalid(m) if m.contains("no 'data/sha256-1234/faces.tar' in the store")),
        "{e}"
    );
    store
        .put(
            "data/sha256-beef/faces.tar",
            b"not a tar at all, clearly".repeat(40),
        )
        .await
        .unwrap();
    let e = cache.faces("data/sha256-beef/faces.tar").await.unwrap_err();
    assert!(
        matches!(&e, DataError::Invalid(m) if m.contains("not a readable tar")),
        "{e}"
    );
    assert!(
        !cache_dir.path().join("data/sha256-beef/faces").exists(),
        "a bad archive leaves no folder"
    );
}
