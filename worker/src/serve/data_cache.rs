//! The worker's local copy of the datasets. A trial names its data by reference: a store
//! key (`data/sha256-<hex>/covid.csv`, `data/sha256-<hex>/faces.tar`) or, for the COVID-19
//! CSV, an http(s) URL. Each reference is fetched once into `<root>/<slot>/` (the slot is
//! the content hash when the key carries one, else a hash of the store URL and key, or of
//! the URL) and reused by every later trial and inference call. Files are written to a
//! temporary name and renamed, and a tar is extracted into a temporary folder that is then
//! renamed, so a crash never leaves a half-fetched dataset that looks complete.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use wick_common::ids::sha256_hex;
use wick_common::store::Store;

/// Why a dataset could not be made available.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The reference points at nothing usable (no such key, HTTP 404, not a tar archive):
    /// fetching again will not help.
    #[error("{0}")]
    Invalid(String),
    /// The store or the web server could not be reached or failed: another try may work.
    #[error("{0}")]
    Unavailable(String),
}

/// Datasets fetched from the store or the web, cached on local disk.
pub struct DataCache {
    /// Folder holding one sub-folder per fetched reference.
    root: PathBuf,
    /// Where store keys are read from.
    store: Store,
    /// Client for http(s) references.
    http: reqwest::Client,
    /// One lock per slot, so concurrent trials needing the same data fetch it once.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

fn is_url(reference: &str) -> bool {
    reference.starts_with("http://") || reference.starts_with("https://")
}

/// A random-enough suffix for temporary names: several processes may share a cache.
fn tmp_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

fn local_err(what: &str, path: &Path, e: impl std::fmt::Display) -> DataError {
    DataError::Unavailable(format!(
        "cannot {what} {} in the data cache: {e}",
        path.display()
    ))
}

impl DataCache {
    /// A cache under `root` (created when first used) reading keys from `store`.
    pub fn new(root: PathBuf, store: Store) -> Self {
        DataCache {
            root,
            store,
            http: reqwest::Client::new(),
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// The folder of one reference: the content hash of a `data/sha256-<hex>/…` key, else
    /// a hash of where the reference points.
    fn slot(&self, reference: &str) -> String {
        if !is_url(reference)
            && let Some(rest) = reference.strip_prefix("data/sha256-")
            && let Some((hex, _)) = rest.split_once('/')
            && !hex.is_empty()
            && hex.chars().all(|c| c.is_ascii_hexdigit())
        {
            return format!("sha256-{hex}");
        }
        let source = if is_url(reference) {
            reference.to_string()
        } else {
            format!("{}\n{reference}", self.store.url())
        };
        format!("ref-{}", &sha256_hex(source.as_bytes())[..24])
    }

    fn lock(&self, slot: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(slot.to_string()).or_default().clone()
    }

    /// The local path of the COVID-19 CSV `reference` (store key or http(s) URL),
    /// fetching it on first use.
    pub async fn covid_csv(&self, reference: &str) -> Result<PathBuf, DataError> {
        if reference.is_empty() {
            return Err(DataError::Invalid(
                "the trial names no COVID-19 CSV; submit the sweep with --data DIR or --covid-csv"
                    .into(),
            ));
        }
        let slot = self.slot(reference);
        let lock = self.lock(&slot);
        let _guard = lock.lock().await;
        let dir = self.root.join(&slot);
        let name = reference
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty() && !n.starts_with('.') && !is_url(reference))
            .unwrap_or("covid.csv");
        let path = dir.join(name);
        if path.is_file() {
            return Ok(path);
        }
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| local_err("create", &dir, e))?;
        let tmp = dir.join(format!(".{name}.{}", tmp_suffix()));
        let fetched = if is_url(reference) {
            self.download(reference, &tmp).await
        } else {
            let bytes = self.get(reference).await?;
            tokio::fs::write(&tmp, &bytes)
                .await
                .map_err(|e| local_err("write", &tmp, e))
        };
        if let Err(e) = fetched {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| local_err("rename", &path, e))?;
        tracing::info!(data = %reference, path = %path.display(), "dataset cached");
        Ok(path)
    }

    /// The local folder of the face images in the tar archive under store key `key`,
    /// fetching and extracting it on first use.
    pub async fn faces(&self, key: &str) -> Result<PathBuf, DataError> {
        if key.is_empty() {
            return Err(DataError::Invalid(
                "the trial names no face images; submit the sweep with --data DIR or --faces DIR"
                    .into(),
            ));
        }
        let slot = self.slot(key);
        let lock = self.lock(&slot);
        let _guard = lock.lock().await;
        let dir = self.root.join(&slot);
        let faces = dir.join("faces");
        if faces.is_dir() {
            return Ok(faces);
        }
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| local_err("create", &dir, e))?;
        let bytes = self.get(key).await?;
        let tmp = dir.join(format!(".faces.{}", tmp_suffix()));
        let (t, k) = (tmp.clone(), key.to_string());
        let unpacked = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&t).map_err(|e| local_err("create", &t, e))?;
            // `unpack` refuses entries that would land outside the folder (`..`, absolute).
            tar::Archive::new(bytes.as_ref()).unpack(&t).map_err(|e| {
                DataError::Invalid(format!(
                    "'{k}' is not a readable tar archive of images: {e}"
                ))
            })
        })
        .await
        .map_err(|e| DataError::Unavailable(format!("extracting '{key}' stopped: {e}")))
        .and_then(|r| r);
        if let Err(e) = unpacked {
            let _ = tokio::fs::remove_dir_all(&tmp).await;
            return Err(e);
        }
        if let Err(e) = tokio::fs::rename(&tmp, &faces).await {
            let _ = tokio::fs::remove_dir_all(&tmp).await;
            // Another process sharing this cache may have finished first.
            if !faces.is_dir() {
                return Err(local_err("rename", &faces, e));
            }
        }
        tracing::info!(data = %key, path = %faces.display(), "dataset cached");
        Ok(faces)
    }

    /// The bytes under a store key.
    async fn get(&self, key: &str) -> Result<bytes::Bytes, DataError> {
        match self.store.get(key).await {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Err(DataError::Invalid(format!(
                "no '{key}' in the store {}; upload the data again (client sweep --data DIR)",
                self.store.url()
            ))),
            Err(e) => Err(DataError::Unavailable(e.to_string())),
        }
    }

    /// Streams `url` into the file `to`.
    async fn download(&self, url: &str, to: &Path) -> Result<(), DataError> {
        let unreachable =
            |e: reqwest::Error| DataError::Unavailable(format!("cannot download {url}: {e}"));
        let mut resp = self.http.get(url).send().await.map_err(unreachable)?;
        let status = resp.status();
        if status.is_client_error() {
            return Err(DataError::Invalid(format!(
                "{url} answered HTTP {status}; check the --covid-csv URL"
            )));
        }
        if !status.is_success() {
            return Err(DataError::Unavailable(format!(
                "{url} answered HTTP {status}"
            )));
        }
        let mut file = tokio::fs::File::create(to)
            .await
            .map_err(|e| local_err("create", to, e))?;
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            file.write_all(&chunk)
                .await
                .map_err(|e| local_err("write", to, e))?;
        }
        file.flush().await.map_err(|e| local_err("write", to, e))?;
        Ok(())
    }
}
