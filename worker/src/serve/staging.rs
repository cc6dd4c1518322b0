//! Where a leased trial's files go in the store, and moving them there. Every key a
//! worker writes for a trial sits under its lease id (`trials/<id>/ckpt/<lease>/…`,
//! `trials/<id>/staging/<lease>/…`), so two workers that both believe they hold a trial
//! never write the same key; the coordinator only follows (resumes from, promotes) the
//! keys of the lease it still honours.

use std::path::{Path, PathBuf};

use wick_common::store::Store;

/// `trials/<id>/ckpt/<lease>/epoch-<n>.safetensors`: the checkpoint after epoch `n`.
pub fn ckpt_key(trial: &str, lease: &str, epoch: usize) -> String {
    format!("trials/{trial}/ckpt/{lease}/epoch-{epoch}.safetensors")
}

/// Whether `key` is a checkpoint an earlier lease of `trial` wrote: once this lease's own
/// checkpoint is accepted, the coordinator resumes from that instead, and nobody reads the
/// earlier one again.
pub fn earlier_ckpt(trial: &str, lease: &str, key: &str) -> bool {
    let rest = key.strip_prefix(&format!("trials/{trial}/ckpt/"));
    rest.and_then(|r| r.split_once('/'))
        .is_some_and(|(l, file)| l != lease && !l.is_empty() && ckpt_file_name(file) == Some(file))
}

/// `trials/<id>/staging/<lease>/`: the final artifacts before the coordinator promotes them.
pub fn staging_prefix(trial: &str, lease: &str) -> String {
    format!("trials/{trial}/staging/{lease}/")
}

/// The local file name of a checkpoint key (`epoch-<n>.safetensors`), if it is one.
fn ckpt_file_name(key: &str) -> Option<&str> {
    let name = key.rsplit('/').next()?;
    let n = name.strip_prefix("epoch-")?.strip_suffix(".safetensors")?;
    (!n.is_empty() && n.chars().all(|c| c.is_ascii_digit())).then_some(name)
}

/// Downloads the checkpoint under `key` into the local checkpoint folder `dir`, named so
/// that `CkptDir` resumes from it. `Ok(None)` when the key is gone from the store: the
/// trial then starts over, which gives the same numbers, only later.
pub async fn fetch_checkpoint(
    store: &Store,
    key: &str,
    dir: &Path,
) -> Result<Option<PathBuf>, FetchError> {
    let name = ckpt_file_name(key).ok_or_else(|| {
        FetchError::Invalid(format!(
            "resume checkpoint '{key}' is not named epoch-<n>.safetensors"
        ))
    })?;
    let Some(bytes) = store
        .get(key)
        .await
        .map_err(|e| FetchError::Store(e.to_string()))?
    else {
        return Ok(None);
    };
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.part"));
    let write = async {
        tokio::fs::create_dir_all(dir).await?;
        tokio::fs::write(&tmp, &bytes).await?;
        tokio::fs::rename(&tmp, &path).await
    };
    write
        .await
        .map_err(|e| FetchError::Store(format!("cannot write {}: {e}", path.display())))?;
    Ok(Some(path))
}

/// Why a checkpoint could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The key is malformed: the coordinator handed out something no worker wrote.
    #[error("{0}")]
    Invalid(String),
    /// The store or the local disk failed: another try may work.
    #[error("{0}")]
    Store(String),
}

/// The plain files directly in `dir`, sorted by name (artifacts are written flat).
pub fn files_in(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file()
            && let Some(name) = entry.file_name().to_str()
        {
            out.push((name.to_string(), entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sit_under_the_lease() {
        assert_eq!(
            ckpt_key("t-1", "l-2", 3),
            "trials/t-1/ckpt/l-2/epoch-3.safetensors"
        );
        assert_eq!(staging_prefix("t-1", "l-2"), "trials/t-1/staging/l-2/");
        assert_eq!(
            ckpt_file_name(&ckpt_key("t", "l", 12)),
            Some("epoch-12.safetensors")
        );
        assert_eq!(ckpt_file_name("trials/t/ckpt/l/model.safetensors"), None);
    }

    #[test]
    fn only_an_earlier_lease_checkpoint_of_the_same_trial_is_garbage_later() {
        assert!(earlier_ckpt("t", "l-2", &ckpt_key("t", "l-1", 3)));
        for key in [
            ckpt_key("t", "l-2", 3),                      // this lease's own
            ckpt_key("u", "l-1", 3),                      // another trial's
            "trials/t/ckpt/l-1/model.safetensors".into(), // not a checkpoint
            "trials/t/ckpt/l-1/x/epoch-3.safetensors".into(),
            "trials/t/ckpt//epoch-3.safetensors".into(),
            "trials/t/model.safetensors".into(),
            String::new(),
        ] {
            assert!(!earlier_ckpt("t", "l-2", &key), "{key}");
        }
    }

    #[tokio::test]
    async fn fetches_a_checkpoint_under_its_epoch_name() {
        let store = Store::open("memory://").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key = ckpt_key("t", "l", 4);
        assert!(
            fetch_checkpoint(&store, &key, dir.path())
                .await
                .unwrap()
                .is_none()
        );
        store.put(&key, b"ck".to_vec()).await.unwrap();
        let path = fetch_checkpoint(&store, &key, dir.path())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(path, dir.path().join("epoch-4.safetensors"));
        assert_eq!(std::fs::read(path).unwrap(), b"ck");
        let e = fetch_checkpoint(&store, "trials/t/x.bin", dir.path())
            .await
            .unwrap_err();
        assert!(matches!(e, FetchError::Invalid(_)), "{e}");
    }
}
