//! Getting a sweep's data where the workers can read it. Workers never see the client's
//! file system: local data is uploaded into the shared store under a content-addressed key
//! (`data/sha256-<hex>/covid.csv`, `data/sha256-<hex>/faces.tar`), once — an upload whose
//! key already exists is skipped. The face folder travels as one tar (see `bundle`).
//!
//! A client with the store's URL and credentials (embedded mode, or `--store`) writes the
//! store itself; one with only the coordinator's address sends the files through the
//! coordinator (`relay`), which stores them under the same keys.
//!
//! An http(s) COVID-19 CSV is passed through for the workers to download; `store:KEY` (or
//! a URL inside the store) names data that is already there.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use wick_common::ids::sha256_hex;
use wick_common::store::{Store, keys};
use wick_proto::v1::DataRef;
use wick_proto::v1::sweeps_client::SweepsClient;
use wick_service::auth::AuthChannel;

use crate::bundle;
use crate::cli::{DataArgs, Task};
use crate::relay;
use crate::render::bytes;

/// The COVID-19 file inside a `--data` folder.
const COVID_CSV: &str = "covid/covid_19.csv";
/// The face folder inside a `--data` folder.
const FACES_DIR: &str = "anime-faces";
/// Name of the uploaded case file, and of the case file under a store location.
const COVID_NAME: &str = "covid.csv";
/// Name of the uploaded face bundle, and of the bundle under a store location.
const FACES_NAME: &str = "faces.tar";

/// Where one part of the data comes from.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    /// A file or folder on this machine, to upload.
    Local(PathBuf),
    /// An http(s) URL the workers download themselves.
    Url(String),
    /// A key already in the store.
    Key(String),
}

/// One object the client put (or found) in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Uploaded {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// True when the key already existed and nothing was written.
    pub skipped: bool,
}

fn is_http(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The key prefix named by `s` when it is a store location (`store:PREFIX`, or a URL
/// inside `store`), `None` when it is a local path.
fn location_key(s: &str, store: Option<&Store>) -> Result<Option<String>> {
    if let Some(key) = s.strip_prefix("store:") {
        return Ok(Some(key.trim_matches('/').to_string()));
    }
    if !s.contains("://") {
        return Ok(None);
    }
    let Some(store) = store else {
        bail!(
            "{s} is a store URL but this client does not know the store: pass --store URL (the one the coordinator uses), name the key as store:KEY, or pass a local folder to send through the coordinator"
        );
    };
    let base = store.url().trim_end_matches('/');
    match s.strip_prefix(base) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            Ok(Some(rest.trim_matches('/').to_string()))
        }
        _ => bail!(
            "{s} is not inside the store the workers read ({base}); copy the data there, or pass a local folder to upload"
        ),
    }
}

/// `prefix/name`, or `name` for an empty prefix.
fn join(prefix: &str, name: &str) -> String {
    match prefix {
        "" => name.to_string(),
        p => format!("{p}/{name}"),
    }
}

/// Where one part comes from: its own flag, else inside `--data`.
fn source(
    over: Option<&str>,
    data: Option<&str>,
    in_folder: &str,
    in_store: &str,
    store: Option<&Store>,
    missing: &str,
) -> Result<Source> {
    if let Some(s) = over {
        if is_http(s) {
            return Ok(Source::Url(s.to_string()));
        }
        return Ok(match location_key(s, store)? {
            Some(key) => Source::Key(key),
            None => Source::Local(PathBuf::from(s)),
        });
    }
    let Some(d) = data else { bail!("{missing}") };
    if is_http(d) {
        bail!("--data takes a folder or a store location; pass an http(s) CSV to --covid-csv");
    }
    Ok(match location_key(d, store)? {
        Some(prefix) => Source::Key(join(&prefix, in_store)),
        None => Source::Local(Path::new(d).join(in_folder)),
    })
}

/// Writes `bytes` under `data/sha256-<hex>/<name>` unless that key exists already.
pub async fn upload(store: &Store, name: &str, bytes: Vec<u8>) -> Result<Uploaded> {
    let key = keys::data(&sha256_hex(&bytes), name);
    let size = bytes.len() as u64;
    let skipped = store.exists(&key).await?;
    if !skipped {
        store.put(&key, bytes).await?;
    }
    Ok(Uploaded { key, size, skipped })
}

/// Where local data goes.
#[derive(Clone, Copy)]
pub enum Via<'a> {
    /// Straight into the store the workers read (embedded mode, or `--store`).
    Store(&'a Store),
    /// Through the coordinator (UploadData), with a progress bar unless `quiet`.
    Coordinator {
        /// The coordinator's client.
        sweeps: &'a SweepsClient<AuthChannel>,
        /// No progress bar (`--json`).
        quiet: bool,
    },
}

impl Via<'_> {
    fn store(&self) -> Option<&Store> {
        match self {
            Via::Store(s) => Some(s),
            Via::Coordinator { .. } => None,
        }
    }
}

/// One part of a sweep's data, where the workers will read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// Its DataRef value: a store key or a URL.
    pub value: String,
    /// One line for the user.
    pub note: String,
    /// The same for scripts (`sweep --json`'s `data`).
    pub json: Value,
}

/// Puts one part where the workers can read it.
async fn place(src: Source, name: &'static str, via: Via<'_>, what: &str) -> Result<Placed> {
    match src {
        Source::Url(url) => Ok(Placed {
            note: format!("{what}: workers download {url}"),
            json: json!({"file": name, "url": url}),
            value: url,
        }),
        Source::Key(key) => {
            if let Some(store) = via.store()
                && !store.exists(&key).await?
            {
                bail!(
                    "{what}: the store {} has no '{key}'; upload it first or pass a local folder with --data",
                    store.url()
                );
            }
            Ok(Placed {
                note: format!("{what}: {key} (already in the store)"),
                json: json!({"file": name, "key": key, "existed": true}),
                value: key,
            })
        }
        Source::Local(path) => {
            let body = read_local(path.clone(), name, what).await?;
            let size = body.len() as u64;
            let (key, how, json) = match via {
                Via::Store(store) => {
                    let up = upload(store, name, body).await?;
                    let how = match up.skipped {
                        true => "already in the store",
                        false => "uploaded",
                    };
                    let json = json!({"via": "store", "existed": up.skipped});
                    (up.key, how.to_string(), json)
                }
                Via::Coordinator { sweeps, quiet } => {
                    let sent = relay::send(sweeps, name, body.into(), quiet).await?;
                    let how = match (sent.existed, sent.resumed_from) {
                        (true, _) => "already in the store".to_string(),
                        (false, 0) => "sent through the coordinator".to_string(),
                        (false, n) => {
                            format!("sent through the coordinator, resumed at byte {n}")
                        }
                    };
                    let json = json!({"via": "coordinator", "existed": sent.existed, "resumed_from": sent.resumed_from});
                    (sent.key, how, json)
                }
            };
            let mut json = json;
            json["file"] = json!(name);
            json["source"] = json!(path.display().to_string());
            json["key"] = json!(key);
            json["bytes"] = json!(size);
            Ok(Placed {
                note: format!("{what}: {} ({}) {how}: {key}", path.display(), bytes(size)),
                json,
                value: key,
            })
        }
    }
}

/// The bytes to upload for a local part: the file itself, or the folder's tar.
async fn read_local(path: PathBuf, name: &str, what: &str) -> Result<Vec<u8>> {
    if !path.exists() {
        bail!(
            "{what} not found at {}: pass {} or a --data folder that holds {}",
            path.display(),
            if name == COVID_NAME {
                "--covid-csv FILE|URL"
            } else {
                "--faces DIR"
            },
            if name == COVID_NAME {
                COVID_CSV
            } else {
                FACES_DIR
            },
        );
    }
    if name == COVID_NAME {
        return tokio::fs::read(&path)
            .await
            .with_context(|| format!("cannot read {}", path.display()));
    }
    // Reading and hashing a few thousand images is blocking work.
    let (tar, _) = tokio::task::spawn_blocking(move || bundle::faces_tar(&path)).await??;
    Ok(tar)
}

/// The DataRef of a sweep running `tasks`: only the parts those tasks need are resolved
/// and uploaded. Returns it with one note per part for the user.
pub async fn resolve(
    args: &DataArgs,
    tasks: &[Task],
    via: Via<'_>,
) -> Result<(DataRef, Vec<Placed>)> {
    let data = args.data.as_deref();
    let store = via.store();
    let mut out = DataRef::default();
    let mut placed = Vec::new();
    if tasks.contains(&Task::Covid) {
        let src = source(
            args.covid_csv.as_deref(),
            data,
            COVID_CSV,
            COVID_NAME,
            store,
            "covid trials need the COVID-19 case file: pass --data DIR (a folder holding covid/covid_19.csv and anime-faces/), set WICK_DATA, or pass --covid-csv FILE|URL",
        )?;
        let p = place(src, COVID_NAME, via, "COVID-19 cases").await?;
        out.covid_csv = p.value.clone();
        placed.push(p);
    }
    if tasks.contains(&Task::Vae) {
        if args.faces.as_deref().is_some_and(is_http) {
            bail!(
                "--faces takes a local folder or store:KEY of a tar; image folders are not downloaded over http"
            );
        }
        let src = source(
            args.faces.as_deref(),
            data,
            FACES_DIR,
            FACES_NAME,
            store,
            "vae trials need face images: pass --data DIR (a folder holding covid/covid_19.csv and anime-faces/), set WICK_DATA, or pass --faces DIR",
        )?;
        let p = place(src, FACES_NAME, via, "faces").await?;
        out.faces = p.value.clone();
        placed.push(p);
    }
    Ok((out, placed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(data: Option<&str>, covid: Option<&str>, faces: Option<&str>) -> DataArgs {
        DataArgs {
            data: data.map(String::from),
            covid_csv: covid.map(String::from),
            faces: faces.map(String::from),
        }
    }

    /// A coordinator client that never connects: for cases decided before any call.
    fn nowhere() -> SweepsClient<AuthChannel> {
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:1").connect_lazy();
        SweepsClient::new(wick_service::auth::with_token(channel, None))
    }

    fn no_store(sweeps: &SweepsClient<AuthChannel>) -> Via<'_> {
        Via::Coordinator {
            sweeps,
            quiet: true,
        }
    }

    fn write_faces(dir: &Path) {
        std::fs::write(dir.join("2.png"), b"png two").unwrap();
        std::fs::write(dir.join("10.jpg"), b"jpeg ten").unwrap();
        std::fs::write(dir.join("notes.txt"), b"not an image").unwrap();
        std::fs::write(dir.join(".hidden.png"), b"hidden").unwrap();
    }

    #[tokio::test]
    async fn uploads_are_content_addressed_and_skipped_when_present() {
        let store = Store::open("memory://").unwrap();
        let first = upload(&store, "covid.csv", b"a,b\n".to_vec())
            .await
            .unwrap();
        assert!(!first.skipped);
        assert_eq!(
            first.key,
            format!("data/sha256-{}/covid.csv", sha256_hex(b"a,b\n"))
        );
        let again = upload(&store, "covid.csv", b"a,b\n".to_vec())
            .await
            .unwrap();
        assert!(again.skipped);
        assert_eq!(again.key, first.key);
        assert_eq!(store.list("data/").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn only_what_the_tasks_need_is_uploaded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("covid")).unwrap();
        std::fs::write(dir.path().join(COVID_CSV), b"x").unwrap();
        std::fs::create_dir_all(dir.path().join(FACES_DIR)).unwrap();
        write_faces(&dir.path().join(FACES_DIR));
        let store = Store::open("memory://").unwrap();
        let d = dir.path().to_str().unwrap();
        let (r, _) = resolve(
            &args(Some(d), None, None),
            &[Task::Covid],
            Via::Store(&store),
        )
        .await
        .unwrap();
        assert!(
            r.covid_csv.ends_with("/covid.csv") && r.faces.is_empty(),
            "{r:?}"
        );
        let (r2, placed) = resolve(
            &args(Some(d), None, None),
            &[Task::Covid, Task::Vae],
            Via::Store(&store),
        )
        .await
        .unwrap();
        let notes: Vec<&str> = placed.iter().map(|p| p.note.as_str()).collect();
        assert_eq!(r2.covid_csv, r.covid_csv);
        assert!(r2.faces.ends_with("/faces.tar"));
        assert!(
            notes[0].contains("already in the store") && notes[1].contains("uploaded"),
            "{notes:?}"
        );
        assert_eq!(placed[1].json["key"], r2.faces.as_str());
        assert_eq!(placed[1].json["via"], "store");
        assert_eq!(placed[0].json["existed"], true);
    }

    #[tokio::test]
    async fn urls_and_store_keys_pass_through_and_missing_things_say_what_to_pass() {
        let sweeps = nowhere();
        let url = "https://example.org/cases.csv";
        let (r, _) = resolve(
            &args(None, Some(url), None),
            &[Task::Covid],
            no_store(&sweeps),
        )
        .await
        .unwrap();
        assert_eq!(r.covid_csv, url);
        let (r, _) = resolve(
            &args(Some("store:data/x"), None, None),
            &[Task::Covid, Task::Vae],
            no_store(&sweeps),
        )
        .await
        .unwrap();
        assert_eq!(
            (r.covid_csv.as_str(), r.faces.as_str()),
            ("data/x/covid.csv", "data/x/faces.tar")
        );
        let store = Store::open("memory://").unwrap();
        let e = resolve(
            &args(None, Some("store:nope.csv"), None),
            &[Task::Covid],
            Via::Store(&store),
        )
        .await;
        assert!(e.unwrap_err().to_string().contains("no 'nope.csv'"));
        let e = resolve(&args(None, None, None), &[Task::Vae], no_store(&sweeps))
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("--data DIR") && e.to_string().contains("--faces"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let e = resolve(
            &args(dir.path().to_str(), None, None),
            &[Task::Covid],
            no_store(&sweeps),
        )
        .await;
        assert!(e.unwrap_err().to_string().contains("--covid-csv FILE|URL"));
        let e = resolve(
            &args(Some("s3://b/p"), None, None),
            &[Task::Covid],
            no_store(&sweeps),
        )
        .await;
        assert!(e.unwrap_err().to_string().contains("store:KEY"));
    }
}
