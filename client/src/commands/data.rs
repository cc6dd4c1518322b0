//! `data fetch`: gets the data the quick start needs onto a machine that has no copy of
//! the shared data folder. Each file comes from the public source in [`COVID`] and
//! [`FACES`] (or a mirror named on the command line) into `DIR/.partial/NAME`, resuming
//! with an HTTP range request after an interruption; it is checked (size and SHA-256 where
//! the content is fixed, parsing where it is not) before it is moved where `--data DIR`
//! looks for it, so a half-downloaded or wrong file never sits at the final path. Files
//! already in place are not fetched again.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use wick_common::covid::CaseTable;
use wick_worker::data::{COVID_CSV, FACES_DIR};

use super::{Outcome, usage};
use crate::cli::FetchArgs;
use crate::progress::bytes_bar;

/// One file `data fetch` downloads.
#[derive(Debug, Clone)]
struct Source {
    /// Short name: the report's name and the download's name in `DIR/.partial/`.
    name: &'static str,
    /// Where it is downloaded from.
    url: String,
    /// Its size in bytes, where the content is fixed.
    size: Option<u64>,
    /// Its SHA-256 (lowercase hex), where the content is fixed.
    sha256: Option<String>,
}

/// The JHU CSSE confirmed-cases time series (wide layout, one row per province, which the
/// case-table loader sums per country). Upstream changed it daily until the project was
/// archived and may still fix it, so it has no size or hash: it is checked by parsing it
/// as a case table instead. Licence: CC BY 4.0, JHU CSSE.
const COVID: ManifestEntry = ManifestEntry {
    name: "covid_19.csv",
    url: "https://raw.githubusercontent.com/CSSEGISandData/COVID-19/master/csse_covid_19_data/csse_covid_19_time_series/time_series_covid19_confirmed_global.csv",
    size: None,
    sha256: None,
};

/// The `huggan/anime-faces` dataset on Hugging Face (21,551 64x64 PNG faces, the Kaggle
/// "anime-faces" set the coursework used; CC0-1.0 on its dataset card), as one zip. The
/// URL names a commit, so the file cannot change under it; size and SHA-256 are those
/// Hugging Face lists for that commit's git-LFS object (not checked by a download from
/// here: the machine this was written on had no internet).
const FACES: ManifestEntry = ManifestEntry {
    name: "anime-faces.zip",
    url: "https://huggingface.co/datasets/huggan/anime-faces/resolve/67ebcf8c69b45feb3883d695f04227078a6c9da9/data.zip",
    size: Some(462_126_466),
    sha256: Some("b50c3f2e1bbad0d119f8c5748a0d01138cb56152fb8997ce5c8b139129bf3c23"),
};

/// A [`Source`] as written in the code.
struct ManifestEntry {
    /// See [`Source::name`].
    name: &'static str,
    /// See [`Source::url`].
    url: &'static str,
    /// See [`Source::size`].
    size: Option<u64>,
    /// See [`Source::sha256`].
    sha256: Option<&'static str>,
}

impl ManifestEntry {
    /// The source, at `url` instead when a mirror is given: a mirror's content is checked
    /// against `sha256` only, since it may well be another (smaller) archive.
    fn source(&self, url: Option<&str>, sha256: Option<String>) -> Source {
        match url {
            None => Source {
                name: self.name,
                url: self.url.to_string(),
                size: self.size,
                sha256: sha256.or_else(|| self.sha256.map(str::to_string)),
            },
            Some(u) => Source {
                name: self.name,
                url: u.to_string(),
                size: None,
                sha256,
            },
        }
    }
}

/// Hidden file in the faces folder recording the archive it was unpacked from, so a
/// second run can tell it is in place without downloading the archive again. The image
/// loader skips hidden files.
const STAMP: &str = ".source.json";

/// How a file got into place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Downloaded from the start.
    Downloaded,
    /// Downloaded from where an earlier run stopped.
    Resumed,
    /// Already in place; nothing was downloaded.
    Cached,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Downloaded => "downloaded",
            Status::Resumed => "resumed",
            Status::Cached => "cached",
        }
    }
}

/// What happened to one file.
struct Fetched {
    /// The source it came from.
    source: Source,
    /// Where it is now (for the faces: the folder of images).
    path: PathBuf,
    /// Size of what was downloaded (for the faces: the archive).
    bytes: u64,
    /// SHA-256 of what was downloaded.
    sha256: String,
    /// How it got there.
    status: Status,
}

/// Runs `data fetch`.
pub async fn fetch(a: &FetchArgs, json: bool) -> Result<Outcome> {
    let faces_sha256 = match &a.faces_sha256 {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(h.to_ascii_lowercase())
        }
        Some(h) => {
            return Err(usage(format!(
                "--faces-sha256 must be 64 hex digits (a SHA-256), not '{h}'"
            )));
        }
        None => None,
    };
    let covid = COVID.source(a.covid_url.as_deref(), None);
    let faces = FACES.source(a.faces_url.as_deref(), faces_sha256);
    let dir = &a.dir;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .build()
        .context("cannot set up the HTTP client")?;
    let fetched = vec![
        fetch_covid(&http, covid, dir, json).await?,
        fetch_faces(&http, faces, dir, json).await?,
    ];
    // The folder is left behind only by an interrupted run; drop it once nothing is in it.
    let _ = std::fs::remove_dir(dir.join(".partial"));
    Ok(outcome(dir, &fetched))
}

/// The report: one JSON entry and one line per file.
fn outcome(dir: &Path, fetched: &[Fetched]) -> Outcome {
    let files: Vec<Value> = fetched
        .iter()
        .map(|f| {
            json!({
                "name": f.source.name,
                "url": f.source.url,
                "path": f.path.display().to_string(),
                "bytes": f.bytes,
                "sha256": f.sha256,
                "status": f.status.as_str(),
            })
        })
        .collect();
    let mut text = String::new();
    for f in fetched {
        text += &format!(
            "{:<10} {:<16} -> {} ({} bytes, sha256 {})\n",
            f.status.as_str(),
            f.source.name,
            f.path.display(),
            f.bytes,
            f.sha256
        );
    }
    text += &format!(
        "next: client sweep --data {} (or export WICK_DATA={})\n",
        dir.display(),
        dir.display()
    );
    Outcome {
        json: json!({ "dir": dir.display().to_string(), "files": files }),
        text,
    }
}

/// The case table at `DIR/covid/covid_19.csv`: kept when one that parses is there.
async fn fetch_covid(
    http: &reqwest::Client,
    source: Source,
    dir: &Path,
    quiet: bool,
) -> Result<Fetched> {
    let path = dir.join(COVID_CSV);
    if path.is_file() && CaseTable::from_path(&path).is_ok() {
        let (bytes, sha256) = hash_file(&path).await?;
        return Ok(Fetched {
            source,
            path,
            bytes,
            sha256,
            status: Status::Cached,
        });
    }
    let (partial, status) = download(http, &source, dir, quiet).await?;
    let (bytes, sha256) = verify(&source, &partial).await?;
    if let Err(e) = CaseTable::from_path(&partial) {
        let _ = std::fs::remove_file(&partial);
        bail!(
            "{} is not a COVID-19 case table ({e}); the download was deleted. Check the URL (--covid-url), or copy a covid_19.csv into {}",
            source.url,
            path.display()
        );
    }
    place(&partial, &path)?;
    Ok(Fetched {
        source,
        path,
        bytes,
        sha256,
        status,
    })
}

/// The face images at `DIR/anime-faces/`: kept when its stamp names the expected archive.
async fn fetch_faces(
    http: &reqwest::Client,
    source: Source,
    dir: &Path,
    quiet: bool,
) -> Result<Fetched> {
    let path = dir.join(FACES_DIR);
    let stamp_path = path.join(STAMP);
    if path.is_dir() {
        // A folder someone copied in has no stamp; replacing it would lose their images.
        let Some(stamp) = std::fs::read(&stamp_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            bail!(
                "{} exists and was not made by `client data fetch`; it is left alone. Use it with --data {}, or remove it to fetch the faces again",
                path.display(),
                dir.display()
            );
        };
        let sha256 = stamp["sha256"].as_str().unwrap_or_default().to_string();
        let bytes = stamp["bytes"].as_u64().unwrap_or_default();
        // Without a hash to expect, the same URL is taken to mean the same archive.
        let same = match &source.sha256 {
            Some(h) => *h == sha256,
            None => stamp["url"].as_str() == Some(source.url.as_str()),
        };
        if same {
            return Ok(Fetched {
                source,
                path,
                bytes,
                sha256,
                status: Status::Cached,
            });
        }
    }
    let (partial, status) = download(http, &source, dir, quiet).await?;
    let (bytes, sha256) = verify(&source, &partial).await?;
    let tmp = dir.join(".partial").join(format!("{FACES_DIR}.unpacking"));
    let (zip, to) = (partial.clone(), tmp.clone());
    let unpacked = tokio::task::spawn_blocking(move || unzip_images(&zip, &to))
        .await
        .context("unpacking the faces stopped")?;
    let count = match unpacked {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            let _ = std::fs::remove_file(&partial);
            return Err(e.context(format!(
                "{} is not a zip of PNG/JPEG images; the download was deleted. Check --faces-url",
                source.url
            )));
        }
    };
    let stamp = json!({ "url": source.url, "bytes": bytes, "sha256": sha256, "images": count });
    std::fs::write(tmp.join(STAMP), stamp.to_string())
        .with_context(|| format!("cannot write {}", tmp.join(STAMP).display()))?;
    if path.is_dir() {
        // Only a folder this command made (it has a stamp) gets here.
        std::fs::remove_dir_all(&path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
    }
    place(&tmp, &path)?;
    std::fs::remove_file(&partial)
        .with_context(|| format!("cannot remove {}", partial.display()))?;
    Ok(Fetched {
        source,
        path,
        bytes,
        sha256,
        status,
    })
}

/// Moves a checked download into place, creating the parent folder.
fn place(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::rename(from, to)
        .with_context(|| format!("cannot move {} to {}", from.display(), to.display()))
}

/// Downloads `source` into `DIR/.partial/NAME`, continuing a partial file left by an
/// earlier run when the server honours the range request (206); a server that answers
/// 200 sends the whole file, which replaces the partial one.
async fn download(
    http: &reqwest::Client,
    source: &Source,
    dir: &Path,
    quiet: bool,
) -> Result<(PathBuf, Status)> {
    let partial_dir = dir.join(".partial");
    tokio::fs::create_dir_all(&partial_dir)
        .await
        .with_context(|| format!("cannot create {}", partial_dir.display()))?;
    let partial = partial_dir.join(source.name);
    let have = tokio::fs::metadata(&partial)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    let url = &source.url;
    let mut request = http.get(url);
    if have > 0 {
        request = request.header(RANGE, format!("bytes={have}-"));
    }
    let unreachable = |e: reqwest::Error| {
        anyhow::anyhow!(
            "cannot download {url}: {e}; check the network, or copy a data folder here and pass --data DIR (see `client data fetch --help`)"
        )
    };
    let mut resp = request.send().await.map_err(unreachable)?;
    let resumed = match resp.status() {
        StatusCode::PARTIAL_CONTENT if range_start(&resp) == Some(have) => true,
        StatusCode::PARTIAL_CONTENT => bail!(
            "{url} answered a range request for bytes {have}- with another range; delete {} and run again",
            partial.display()
        ),
        // The partial file already holds everything there is: check it as it stands.
        StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => return Ok((partial, Status::Resumed)),
        s if s.is_success() => false,
        s => bail!("{url} answered HTTP {s}; check the URL or try again later"),
    };
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed)
        .truncate(!resumed)
        .open(&partial)
        .await
        .with_context(|| format!("cannot write {}", partial.display()))?;
    let start = if resumed { have } else { 0 };
    let bar = bytes_bar(source.name, resp.content_length().map(|n| n + start), quiet);
    bar.set_position(start);
    while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
        file.write_all(&chunk)
            .await
            .with_context(|| format!("cannot write {}", partial.display()))?;
        bar.inc(chunk.len() as u64);
    }
    file.flush()
        .await
        .with_context(|| format!("cannot write {}", partial.display()))?;
    bar.finish_and_clear();
    let status = match resumed {
        true => Status::Resumed,
        false => Status::Downloaded,
    };
    Ok((partial, status))
}

/// Where the body of a 206 answer starts, from `Content-Range: bytes START-END/TOTAL`.
fn range_start(resp: &reqwest::Response) -> Option<u64> {
    let value = resp.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let range = value.strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

/// The size and SHA-256 of a download, checked against those `source` expects; a file
/// that does not match is deleted, so the next run starts it over.
async fn verify(source: &Source, partial: &Path) -> Result<(u64, String)> {
    let (bytes, sha256) = hash_file(partial).await?;
    let size_ok = source.size.is_none_or(|s| s == bytes);
    let hash_ok = source.sha256.as_ref().is_none_or(|h| *h == sha256);
    if size_ok && hash_ok {
        return Ok((bytes, sha256));
    }
    let _ = std::fs::remove_file(partial);
    let expected = match (source.size, &source.sha256) {
        (Some(s), Some(h)) => format!("{s} bytes with SHA-256 {h}"),
        (None, Some(h)) => format!("SHA-256 {h}"),
        (Some(s), None) => format!("{s} bytes"),
        (None, None) => unreachable!("a file with nothing to expect always matches"),
    };
    bail!(
        "{} does not match: expected {expected}, got {bytes} bytes with SHA-256 {sha256}; the download was deleted. Run `client data fetch` again; if it fails the same way the file has changed at its source: fetch from a mirror you trust (--faces-url URL --faces-sha256 HEX), or copy a data folder here and pass --data DIR",
        source.url
    )
}

/// The size and SHA-256 (hex) of a file, read in blocks (the faces archive is large).
async fn hash_file(path: &Path) -> Result<(u64, String)> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<(u64, String)> {
        let mut file =
            std::fs::File::open(&p).with_context(|| format!("cannot read {}", p.display()))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = file
                .read(&mut buf)
                .with_context(|| format!("cannot read {}", p.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            total += n as u64;
        }
        Ok((total, hex::encode(hasher.finalize())))
    })
    .await
    .context("hashing stopped")?
}

/// Whether a zip entry at `path` is a face image to keep, and its name in the folder:
/// the image loader reads one flat folder, so folders inside the archive are dropped,
/// and hidden files (macOS `._` forks, `__MACOSX/`) are skipped.
fn image_name(path: &Path) -> Option<String> {
    let hidden = |c: &std::path::Component| {
        c.as_os_str()
            .to_str()
            .is_none_or(|s| s.starts_with('.') || s == "__MACOSX")
    };
    if path.components().any(|c| hidden(&c)) {
        return None;
    }
    let name = path.file_name()?.to_str()?;
    let ext = Path::new(name).extension()?.to_str()?.to_ascii_lowercase();
    matches!(ext.as_str(), "png" | "jpg" | "jpeg").then(|| name.to_string())
}

/// Unpacks the images of the zip at `zip` into the new folder `to`; returns how many.
fn unzip_images(zip: &Path, to: &Path) -> Result<usize> {
    if to.exists() {
        std::fs::remove_dir_all(to).with_context(|| format!("cannot clear {}", to.display()))?;
    }
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let file =
        std::fs::File::open(zip).with_context(|| format!("cannot read {}", zip.display()))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))?;
    let mut count = 0;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i)?;
        // `enclosed_name` refuses paths that would leave the folder (`..`, absolute).
        let Some(name) = entry.enclosed_name().as_deref().and_then(image_name) else {
            continue;
        };
        if entry.is_dir() {
            continue;
        }
        let out = to.join(&name);
        if out.exists() {
            bail!("two images in the archive are named {name}; the folder would keep only one");
        }
        let mut w = std::fs::File::create(&out)
            .with_context(|| format!("cannot write {}", out.display()))?;
        std::io::copy(&mut entry, &mut w).with_context(|| format!("cannot unpack {name}"))?;
        count += 1;
    }
    if count == 0 {
        bail!("the archive holds no PNG or JPEG images");
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_images_are_flattened_and_hidden_files_skipped() {
        let name = |p: &str| image_name(Path::new(p));
        assert_eq!(name("data/10034.png").as_deref(), Some("10034.png"));
        assert_eq!(name("1.JPG").as_deref(), Some("1.JPG"));
        assert_eq!(name("__MACOSX/data/._1.png"), None);
        assert_eq!(name("data/.DS_Store"), None);
        assert_eq!(name("data/README.md"), None);
    }

    #[tokio::test]
    async fn data_mismatch_deletes_the_file_and_names_both_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"abc").unwrap();
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let source = |size, sha256: Option<&str>| Source {
            name: "f",
            url: "http://mirror/f".into(),
            size,
            sha256: sha256.map(str::to_string),
        };
        let ok = verify(&source(Some(3), Some(abc)), &file).await.unwrap();
        assert_eq!(ok, (3, abc.to_string()));
        let wrong = "0".repeat(64);
        let e = format!(
            "{:#}",
            verify(&source(None, Some(&wrong)), &file)
                .await
                .unwrap_err()
        );
        assert!(
            e.contains("http://mirror/f") && e.contains(&wrong) && e.contains(abc),
            "{e}"
        );
        assert!(!file.exists());
    }

    #[test]
    fn data_mirror_is_checked_against_its_own_hash_only() {
        let s = FACES.source(None, None);
        assert_eq!((s.size, s.sha256.as_deref()), (FACES.size, FACES.sha256));
        let s = FACES.source(Some("http://mirror/x.zip"), None);
        assert_eq!((s.size, s.sha256), (None, None));
        let s = FACES.source(Some("http://mirror/x.zip"), Some("ab".into()));
        assert_eq!(s.sha256.as_deref(), Some("ab"));
    }
}
