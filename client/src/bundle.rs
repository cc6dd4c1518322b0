//! The face folder as one archive: a tar of its image files at the archive's root, built
//! deterministically (sorted names, fixed mtime, mode and owner) so the same folder always
//! gives the same bytes, hence the same content-addressed key, hence the same trial ids
//! when a sweep is submitted again.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Extensions of the files bundled from a face folder (what the workers can decode).
const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// The image files of `dir` (not its subfolders, not hidden files) as one tar archive with
/// the files at its root, and their number. Same folder, same bytes.
pub fn faces_tar(dir: &Path) -> Result<(Vec<u8>, usize)> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "cannot read the face folder {}: pass --faces DIR or a --data folder holding anime-faces/",
            dir.display()
        )
    })?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            bail!(
                "{:?} in {} is not a UTF-8 file name; rename it",
                name,
                dir.display()
            );
        };
        let ext = Path::new(name)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let image = ext.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()));
        // metadata() follows symlinks, so a linked image counts as the file it points to.
        if image && !name.starts_with('.') && std::fs::metadata(entry.path())?.is_file() {
            names.push(name.to_string());
        }
    }
    if names.is_empty() {
        bail!(
            "no PNG or JPEG image in {}: the VAE needs a folder of face images (--faces DIR)",
            dir.display()
        );
    }
    names.sort();
    let mut tar = tar::Builder::new(Vec::new());
    for name in &names {
        let path = dir.join(name);
        let body =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, body.as_slice())
            .with_context(|| format!("cannot add {name} to the face bundle"))?;
    }
    let out = tar.into_inner().context("cannot finish the face bundle")?;
    Ok((out, names.len()))
}

#[cfg(test)]
mod tests {
    use wick_common::ids::sha256_hex;

    use super::*;

    fn write_faces(dir: &Path) {
        std::fs::write(dir.join("2.png"), b"png two").unwrap();
        std::fs::write(dir.join("10.jpg"), b"jpeg ten").unwrap();
        std::fs::write(dir.join("notes.txt"), b"not an image").unwrap();
        std::fs::write(dir.join(".hidden.png"), b"hidden").unwrap();
    }

    #[test]
    fn the_same_folder_always_gives_the_same_tar() {
        let a = tempfile::tempdir().unwrap();
        write_faces(a.path());
        let (tar1, n) = faces_tar(a.path()).unwrap();
        assert_eq!(n, 2);
        // Another folder with the same files written later (new mtimes, other order).
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = tempfile::tempdir().unwrap();
        std::fs::write(b.path().join("10.jpg"), b"jpeg ten").unwrap();
        std::fs::write(b.path().join("2.png"), b"png two").unwrap();
        let (tar2, _) = faces_tar(b.path()).unwrap();
        assert_eq!(sha256_hex(&tar1), sha256_hex(&tar2));
        let mut archive = tar::Archive::new(tar1.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["10.jpg", "2.png"]);
        let empty = tempfile::tempdir().unwrap();
        assert!(
            faces_tar(empty.path())
                .unwrap_err()
                .to_string()
                .contains("--faces")
        );
    }
}
