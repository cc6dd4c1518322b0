//! The object store every wick process shares, behind one small API over the
//! `object_store` crate: `file:///abs/path` (the embedded default), `s3://bucket/prefix`
//! (credentials, endpoint and `AWS_ALLOW_HTTP` from the standard `AWS_*` variables, so a
//! MinIO or any S3-compatible server works), and `memory://` for unit tests.
//!
//! A `put` is atomic on every backend (object_store writes local files through a temporary
//! file and a rename, and an S3 object appears whole or not at all), so a reader never sees
//! half an artifact. Keys are relative to the URL's prefix.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use crate::{Error, Result};

/// A handle on the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// The backend.
    inner: Arc<dyn ObjectStore>,
    /// Prefix under which every key lives (from the URL's path).
    prefix: String,
    /// The URL it was opened from, for messages.
    url: String,
    /// Failed operations so far, by kind, shared by every clone (for the metrics).
    errors: Arc<[AtomicU64; OPS.len()]>,
}

/// The kinds of store operation, as counted in [`Store::error_counts`].
const OPS: [&str; 6] = ["put", "get", "exists", "list", "delete", "copy"];

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.url)
    }
}

impl Store {
    /// Opens `url` (`file:///abs/path`, `s3://bucket[/prefix]`, `memory://`). A `file://`
    /// folder is created if missing.
    pub fn open(url: &str) -> Result<Store> {
        let bad = |e: &dyn std::fmt::Display| {
            Error::Store(format!(
                "cannot open store '{url}': {e}; use file:///absolute/path, s3://bucket/prefix or memory://"
            ))
        };
        if url == "memory://" || url.starts_with("memory://") {
            let inner: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
            return Ok(Store {
                inner,
                prefix: String::new(),
                url: url.into(),
                errors: Default::default(),
            });
        }
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(bad(
                    &"a file:// URL needs an absolute path (file:///home/me/wick)",
                ));
            }
            std::fs::create_dir_all(path).map_err(|e| bad(&e))?;
            let fs =
                object_store::local::LocalFileSystem::new_with_prefix(path).map_err(|e| bad(&e))?;
            return Ok(Store {
                inner: Arc::new(fs),
                prefix: String::new(),
                url: url.into(),
                errors: Default::default(),
            });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad(&"no bucket name"));
            }
            let s3 = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| bad(&e))?;
            let prefix = prefix.trim_matches('/').to_string();
            return Ok(Store {
                inner: Arc::new(s3),
                prefix,
                url: url.into(),
                errors: Default::default(),
            });
        }
        Err(bad(&"unknown scheme"))
    }

    /// A `file://` URL for a local folder (made absolute).
    pub fn file_url(dir: &std::path::Path) -> Result<String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Store(format!("cannot create {}: {e}", dir.display())))?;
        let abs = dir
            .canonicalize()
            .map_err(|e| Error::Store(format!("cannot resolve {}: {e}", dir.display())))?;
        Ok(format!("file://{}", abs.display()))
    }

    /// The URL the store was opened from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many operations of each kind (`put`, `get`, `exists`, `list`, `delete`, `copy`) have
    /// failed through this store or any clone of it.
    pub fn error_counts(&self) -> Vec<(&'static str, u64)> {
        OPS.iter()
            .zip(self.errors.iter())
            .map(|(op, n)| (*op, n.load(Ordering::Relaxed)))
            .collect()
    }

    /// Counts a failed `op` and names it, the key and the store in the error.
    fn fail(&self, op: &str, what: &str, e: impl std::fmt::Display) -> Error {
        if let Some(i) = OPS.iter().position(|o| *o == op) {
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
        Error::Store(format!("{what} in {}: {e}", self.url))
    }

    fn path(&self, key: &str) -> StorePath {
        if self.prefix.is_empty() {
            StorePath::from(key)
        } else {
            StorePath::from(format!("{}/{}", self.prefix, key))
        }
    }

    fn key_of(&self, p: &StorePath) -> String {
        let s = p.as_ref();
        match self.prefix.is_empty() {
            true => s.to_string(),
            false => s
                .strip_prefix(&format!("{}/", self.prefix))
                .unwrap_or(s)
                .to_string(),
        }
    }

    /// Writes `bytes` under `key`, atomically.
    pub async fn put(&self, key: &str, bytes: impl Into<Bytes>) -> Result<()> {
        let payload = PutPayload::from_bytes(bytes.into());
        self.inner
            .put(&self.path(key), payload)
            .await
            .map(|_| ())
            .map_err(|e| self.fail("put", &format!("cannot write '{key}'"), e))
    }

    /// The bytes under `key`, or `None` when there is no such key.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        match self.inner.get(&self.path(key)).await {
            Ok(r) => r
                .bytes()
                .await
                .map(Some)
                .map_err(|e| self.fail("get", &format!("cannot read '{key}'"), e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail("get", &format!("cannot read '{key}'"), e)),
        }
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        match self.inner.head(&self.path(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.fail("exists", &format!("cannot look up '{key}'"), e)),
        }
    }

    /// Every key under `prefix` (recursively) with its size, sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let p = self.path(prefix.trim_end_matches('/'));
        let mut out: Vec<(String, u64)> = self
            .inner
            .list(Some(&p))
            .map_ok(|m| (self.key_of(&m.location), m.size))
            .try_collect()
            .await
            .map_err(|e| self.fail("list", &format!("cannot list '{prefix}'"), e))?;
        out.sort();
        Ok(out)
    }

    /// Copies `from` to `to`, replacing `to`, inside the store: S3 copies on the server and
    /// a local folder links the file, so the bytes never pass through this process.
    pub async fn copy(&self, from: &str, to: &str) -> Result<()> {
        self.inner
            .copy(&self.path(from), &self.path(to))
            .await
            .map_err(|e| self.fail("copy", &format!("cannot copy '{from}' to '{to}'"), e))
    }

    /// A writer for a large object under `key`, sent in parts so that it is never whole in
    /// this process's memory. Like `put`, nothing appears under `key` until `finish`.
    pub async fn writer(&self, key: &str) -> Result<Writer> {
        let upload = self
            .inner
            .put_multipart(&self.path(key))
            .await
            .map_err(|e| self.fail("put", &format!("cannot start writing '{key}'"), e))?;
        Ok(Writer {
            inner: WriteMultipart::new(upload),
            key: key.to_string(),
            store: self.clone(),
        })
    }

    /// Removes `key` (no error if it is already gone).
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.inner.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail("delete", &format!("cannot delete '{key}'"), e)),
        }
    }
}

/// An object being written in parts (see [`Store::writer`]).
pub struct Writer {
    inner: WriteMultipart,
    key: String,
    store: Store,
}

/// Parts in flight at once: bounds the memory a writer holds (parts are 5 MiB).
const PARTS_IN_FLIGHT: usize = 4;

impl Writer {
    /// Appends `bytes`, waiting while too many parts are in flight.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if let Err(e) = self.inner.wait_for_capacity(PARTS_IN_FLIGHT).await {
            return Err(self
                .store
                .fail("put", &format!("cannot write '{}'", self.key), e));
        }
        self.inner.write(bytes);
        Ok(())
    }

    /// Completes the object: it appears under its key, whole.
    pub async fn finish(self) -> Result<()> {
        let Writer { inner, key, store } = self;
        inner
            .finish()
            .await
            .map(|_| ())
            .map_err(|e| store.fail("put", &format!("cannot write '{key}'"), e))
    }

    /// Gives the object up: nothing appears under its key.
    pub async fn abort(self) -> Result<()> {
        let Writer { inner, key, store } = self;
        inner
            .abort()
            .await
            .map_err(|e| store.fail("put", &format!("cannot abandon writing '{key}'"), e))
    }
}

/// Keys of the storage layout, in one place.
pub mod keys {
    /// `sweeps/<id>/spec.json`: the sweep as submitted.
    pub fn sweep_spec(sweep: &str) -> String {
        format!("sweeps/{sweep}/spec.json")
    }
    /// `sweeps/<id>/state.json`: the coordinator's durable record of the sweep.
    pub fn sweep_state(sweep: &str) -> String {
        format!("sweeps/{sweep}/state.json")
    }
    /// `trials/<id>/`: everything of one trial.
    pub fn trial_dir(trial: &str) -> String {
        format!("trials/{trial}/")
    }
    /// `trials/<id>/config.json`.
    pub fn trial_config(trial: &str) -> String {
        format!("trials/{trial}/config.json")
    }
    /// `trials/<id>/state.json`: the coordinator's durable record of the trial.
    pub fn trial_state(trial: &str) -> String {
        format!("trials/{trial}/state.json")
    }
    /// `trials/<id>/metrics.jsonl`: one JSON line per epoch.
    pub fn trial_metrics(trial: &str) -> String {
        format!("trials/{trial}/metrics.jsonl")
    }
    /// `trials/<id>/summary.json`: the final summary.
    pub fn trial_summary(trial: &str) -> String {
        format!("trials/{trial}/summary.json")
    }
    /// `trials/<id>/ckpt/`: the checkpoints.
    pub fn trial_ckpt_dir(trial: &str) -> String {
        format!("trials/{trial}/ckpt/")
    }
    /// `trials/<id>/ckpt/epoch-<n>.safetensors`.
    pub fn trial_ckpt(trial: &str, epoch: usize) -> String {
        format!("trials/{trial}/ckpt/epoch-{epoch}.safetensors")
    }
    /// `trials/<id>/model.safetensors`: the final weights.
    pub fn trial_model(trial: &str) -> String {
        format!("trials/{trial}/model.safetensors")
    }
    /// `trials/<id>/plots/<name>`: pictures and other artifacts.
    pub fn trial_artifact(trial: &str, name: &str) -> String {
        format!("trials/{trial}/plots/{name}")
    }
    /// `data/sha256-<hex>/<name>`: content-addressed datasets.
    pub fn data(sha: &str, name: &str) -> String {
        format!("data/sha256-{sha}/{name}")
    }
    /// `uploads/sha256-<hex>/<name>/`: the parts of a dataset being uploaded through the
    /// coordinator, removed once it is whole under `data(sha, name)`.
    pub fn upload_dir(sha: &str, name: &str) -> String {
        format!("uploads/sha256-{sha}/{name}/")
    }
    /// `uploads/sha256-<hex>/<name>/part-<offset>`: the bytes of an upload from `offset` on
    /// (zero-padded, so parts list in order).
    pub fn upload_part(sha: &str, name: &str, offset: u64) -> String {
        format!("uploads/sha256-{sha}/{name}/part-{offset:020}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_list_delete_on_memory_and_file() {
        let dir = tempfile::tempdir().unwrap();
        for url in [
            "memory://".to_string(),
            Store::file_url(dir.path()).unwrap(),
        ] {
            let s = Store::open(&url).unwrap();
            assert_eq!(s.get("a/b.json").await.unwrap(), None);
            s.put("a/b.json", b"{}".to_vec()).await.unwrap();
            s.put("a/c/d.bin", vec![1u8, 2, 3]).await.unwrap();
            assert_eq!(s.get("a/b.json").await.unwrap().unwrap().as_ref(), b"{}");
            assert!(s.exists("a/c/d.bin").await.unwrap());
            let keys = s.list("a/").await.unwrap();
            assert_eq!(
                keys,
                vec![("a/b.json".to_string(), 2), ("a/c/d.bin".to_string(), 3)],
                "{url}"
            );
            s.delete("a/b.json").await.unwrap();
            s.delete("a/b.json").await.unwrap();
            assert!(!s.exists("a/b.json").await.unwrap());
        }
    }

    #[tokio::test]
    async fn copy_replaces_the_destination_and_keeps_the_source() {
        let dir = tempfile::tempdir().unwrap();
        for url in [
            "memory://".to_string(),
            Store::file_url(dir.path()).unwrap(),
        ] {
            let s = Store::open(&url).unwrap();
            s.put("staging/m.bin", b"new".to_vec()).await.unwrap();
            s.put("final/m.bin", b"old".to_vec()).await.unwrap();
            s.copy("staging/m.bin", "final/m.bin").await.unwrap();
            // Into a folder that does not exist yet, too.
            s.copy("staging/m.bin", "fresh/dir/m.bin").await.unwrap();
            for k in ["final/m.bin", "fresh/dir/m.bin"] {
                assert_eq!(
                    s.get(k).await.unwrap().unwrap().as_ref(),
                    b"new",
                    "{url} {k}"
                );
            }
            // Deleting the source (as clearing the staging area does) leaves the copies.
            s.delete("staging/m.bin").await.unwrap();
            assert_eq!(
                s.get("final/m.bin").await.unwrap().unwrap().as_ref(),
                b"new"
            );
            let e = s.copy("staging/m.bin", "final/m.bin").await.unwrap_err();
            assert!(e.to_string().contains("cannot copy 'staging/m.bin'"), "{e}");
            let copy_errors = s.error_counts().into_iter().find(|(op, _)| *op == "copy");
            assert_eq!(copy_errors, Some(("copy", 1)), "{url}");
        }
    }

    #[tokio::test]
    async fn failed_operations_are_counted_by_kind_across_clones() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&Store::file_url(dir.path()).unwrap()).unwrap();
        s.put("a", b"file".to_vec()).await.unwrap();
        // "a" is a file, so nothing can be written beneath it.
        let e = s.clone().put("a/b", b"x".to_vec()).await.unwrap_err();
        assert!(e.to_string().contains("cannot write 'a/b'"), "{e}");
        let counts = s.error_counts();
        assert_eq!(
            counts.iter().find(|(op, _)| *op == "put"),
            Some(&("put", 1))
        );
        assert!(
            counts
                .iter()
                .filter(|(op, _)| *op != "put")
                .all(|(_, n)| *n == 0)
        );
    }

    #[test]
    fn bad_urls_say_what_works() {
        let e = Store::open("ftp://x").unwrap_err().to_string();
        assert!(e.contains("s3://bucket/prefix"), "{e}");
        let e = Store::open("file://relative/path").unwrap_err().to_string();
        assert!(e.contains("absolute"), "{e}");
    }

    #[tokio::test]
    async fn a_writer_shows_nothing_until_finished_and_nothing_when_aborted() {
        let dir = tempfile::tempdir().unwrap();
        for url in [
            "memory://".to_string(),
            Store::file_url(dir.path()).unwrap(),
        ] {
            let s = Store::open(&url).unwrap();
            // Three multipart parts and a tail, written in uneven pieces.
            let bytes: Vec<u8> = (0..(16 << 20) + 77).map(|i| (i % 253) as u8).collect();
            let mut w = s.writer("big/file.bin").await.unwrap();
            for piece in bytes.chunks(3 << 20) {
                w.write(piece).await.unwrap();
            }
            assert!(!s.exists("big/file.bin").await.unwrap(), "{url}");
            w.finish().await.unwrap();
            assert_eq!(
                s.get("big/file.bin").await.unwrap().unwrap(),
                bytes,
                "{url}"
            );

            let mut w = s.writer("big/other.bin").await.unwrap();
            w.write(&bytes[..1000]).await.unwrap();
            w.abort().await.unwrap();
            assert!(!s.exists("big/other.bin").await.unwrap(), "{url}");
        }
    }
}
