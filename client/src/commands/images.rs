//! `reconstruct` and `interpolate`: the user's own images through a VAE trial (the best
//! VAE unless `--trial`), saved as one PNG. The interpolation is the coursework's strip in
//! one row: original | reconstruction | the `--steps` decoded points | reconstruction |
//! original.
//!
//! The images are checked before they are sent, so a mistake names the file: one that is
//! not a PNG or JPEG at all, or images too large for one request (the coordinator would
//! refuse them only after receiving them whole, with a message about bytes, not files).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::json;
use wick_proto::v1::{ImagesResult, InterpolateParams, ReconstructParams};

use super::{Outcome, read_file, write_file};
use crate::cli::{InterpolateArgs, ReconstructArgs};
use crate::connect::Session;
use crate::render::bytes;

/// Largest request the coordinator takes (its MAX_REQUEST), less room for the rest of the
/// message.
const MAX_REQUEST: u64 = 64 * 1024 * 1024 - 64 * 1024;

/// Refuses images that cannot fit in one request together, naming the largest.
fn check_sizes(paths: &[&Path]) -> Result<()> {
    let mut sizes = Vec::with_capacity(paths.len());
    for p in paths {
        let m = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        sizes.push((m.len(), *p));
    }
    let total: u64 = sizes.iter().map(|(n, _)| n).sum();
    if total > MAX_REQUEST {
        let (n, largest) = sizes.iter().max_by_key(|(n, _)| *n).expect("a file");
        bail!(
            "{} is {}{}, but one request to the coordinator carries at most {}; send smaller files (the VAE shrinks every image to its S x S anyway)",
            largest.display(),
            bytes(*n),
            if sizes.len() > 1 {
                format!(" and the images come to {} together", bytes(total))
            } else {
                String::new()
            },
            bytes(MAX_REQUEST + 64 * 1024)
        );
    }
    Ok(())
}

/// Reads an image, refusing a file that starts like neither a PNG nor a JPEG.
fn read_image(path: &Path) -> Result<Vec<u8>> {
    let b = read_file(path)?;
    if !(b.starts_with(b"\x89PNG\r\n\x1a\n") || b.starts_with(&[0xFF, 0xD8, 0xFF])) {
        bail!(
            "{} is not a PNG or JPEG image (it does not start like one); pass PNG or JPEG files",
            path.display()
        );
    }
    Ok(b)
}

/// Writes the grid of `r` to `out` (or `<stem>-<trial>.png` here) and reports it.
fn save(r: &ImagesResult, out: Option<&Path>, stem: &str) -> Result<Outcome> {
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(format!("{stem}-{}.png", r.trial_id)));
    write_file(&out, &r.grid_png)?;
    Ok(Outcome {
        json: json!({"trial": r.trial_id, "images": r.images_png.len(), "out": out.display().to_string()}),
        text: format!("{}\n", out.display()),
    })
}

/// `reconstruct IMAGE... [--out FILE]`.
pub async fn reconstruct(s: &Session, a: &ReconstructArgs) -> Result<Outcome> {
    check_sizes(&a.images.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
    let images = a
        .images
        .iter()
        .map(|p| read_image(p))
        .collect::<Result<Vec<_>>>()?;
    let params = ReconstructParams {
        trial_id: a.trial.clone().unwrap_or_default(),
        images,
    };
    let r = s
        .inference(|mut c| {
            let p = params.clone();
            async move { c.reconstruct(p).await }
        })
        .await?;
    save(&r, a.out.as_deref(), "reconstructions")
}

/// `interpolate --a IMG --b IMG [--steps N] [--out FILE]`: a strip of N + 4 tiles.
pub async fn interpolate(s: &Session, a: &InterpolateArgs) -> Result<Outcome> {
    check_sizes(&[&a.a, &a.b])?;
    let params = InterpolateParams {
        trial_id: a.trial.clone().unwrap_or_default(),
        a: read_image(&a.a)?,
        b: read_image(&a.b)?,
        steps: a.steps,
    };
    let r = s
        .inference(|mut c| {
            let p = params.clone();
            async move { c.interpolate(p).await }
        })
        .await?;
    save(&r, a.out.as_deref(), "interpolation")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_are_no_image_or_too_large_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("face.png");
        image::RgbImage::from_pixel(4, 4, image::Rgb([1, 2, 3]))
            .save(&png)
            .unwrap();
        let jpg = dir.path().join("face.jpg");
        image::RgbImage::from_pixel(4, 4, image::Rgb([1, 2, 3]))
            .save(&jpg)
            .unwrap();
        assert!(read_image(&png).is_ok() && read_image(&jpg).is_ok());
        let garbage = dir.path().join("garbage.jpg");
        std::fs::write(&garbage, b"no image here").unwrap();
        let e = read_image(&garbage).unwrap_err().to_string();
        assert!(
            e.contains("garbage.jpg") && e.contains("PNG or JPEG"),
            "{e}"
        );

        check_sizes(&[&png, &jpg]).unwrap();
        let big = dir.path().join("big.png");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(40 * 1024 * 1024).unwrap();
        check_sizes(&[&big]).unwrap();
        let e = check_sizes(&[&png, &big, &big]).unwrap_err().to_string();
        assert!(
            e.contains("big.png is 40.0 MB")
                && e.contains("80.0 MB together")
                && e.contains("64.0 MB"),
            "{e}"
        );
        let e = check_sizes(&[&dir.path().join("missing.png")]).unwrap_err();
        assert!(format!("{e:#}").contains("missing.png"), "{e:#}");
    }
}
