//! Loads a folder of PNG and JPEG images of any size as RGB in [0, 1], resized to S × S
//! with a bilinear (triangle) filter that averages the whole source footprint when
//! shrinking, laid out channel-major (3, S, S) and flattened. Files decode in parallel.
//! A file that does not decode is skipped with a warning naming it; a folder with nothing
//! usable is an error.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use image::imageops::FilterType;
use rayon::prelude::*;

/// Decoded images, all of one size.
pub struct ImageSet {
    /// Side length S.
    pub size: u32,
    /// n × 3·S·S values, channel-major per image.
    pub pixels: Vec<f32>,
    /// File names, in the order of `pixels`.
    pub names: Vec<String>,
    /// Files that were skipped, with the reason.
    pub skipped: Vec<(String, String)>,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no image loaded.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Values per image (3·S·S).
    pub fn dim(&self) -> usize {
        3 * (self.size as usize).pow(2)
    }

    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[f32] {
        let d = self.dim();
        &self.pixels[i * d..(i + 1) * d]
    }
}

/// Numbered files (`12.jpg`) sort by number, the rest after them by name, so "the first N
/// images" means the same thing on every file system.
fn sort_key(path: &Path) -> (u8, u64, String) {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_string();
    let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
    match digits.parse() {
        Ok(n) => (0, n, name),
        Err(_) => (1, 0, name),
    }
}

/// Decodes one file into channel-major (3, S, S) floats.
pub fn decode(bytes: &[u8], size: u32) -> Result<Vec<f32>> {
    let img = image::load_from_memory(bytes).context("not a decodable PNG or JPEG image")?;
    Ok(to_chw(&img.to_rgb8(), size))
}

fn to_chw(rgb: &image::RgbImage, size: u32) -> Vec<f32> {
    let small = image::imageops::resize(rgb, size, size, FilterType::Triangle);
    let plane = (size * size) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, p) in small.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = f32::from(p[c]) / 255.0;
        }
    }
    out
}

/// Loads up to `limit` images (0 = all) from `dir`, resized to `size`.
pub fn load_folder(dir: &Path, size: u32, limit: usize) -> Result<ImageSet> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "cannot read the image folder {}; pass --faces DIR with PNG or JPEG files",
            dir.display()
        )
    })?;
    let mut files: Vec<PathBuf> = Vec::new();
    for e in entries {
        let path = e?.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if path.is_file() && !hidden {
            files.push(path);
        }
    }
    files.sort_by_key(|p| sort_key(p));
    if limit > 0 {
        files.truncate(limit);
    }
    let decoded: Vec<(String, Result<Vec<f32>>)> = files
        .par_iter()
        .map(|p| {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("?")
                .to_string();
            let r = std::fs::read(p)
                .context("cannot read")
                .and_then(|b| decode(&b, size));
            (name, r)
        })
        .collect();
    let mut set = ImageSet {
        size,
        pixels: Vec::new(),
        names: Vec::new(),
        skipped: Vec::new(),
    };
    for (name, r) in decoded {
        match r {
            Ok(px) => {
                set.pixels.extend_from_slice(&px);
                set.names.push(name);
            }
            Err(e) => {
                eprintln!("warning: skipping {}: {e:#}", dir.join(&name).display());
                set.skipped.push((name, format!("{e:#}")));
            }
        }
    }
    if set.is_empty() {
        bail!(
            "no usable image in {} ({} files skipped); the VAE needs a folder of PNG or JPEG images (--faces DIR)",
            dir.display(),
            set.skipped.len()
        );
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, w: u32, h: u32, rgb: [u8; 3]) {
        image::RgbImage::from_pixel(w, h, image::Rgb(rgb))
            .save(path)
            .unwrap();
    }

    #[test]
    fn loads_png_and_jpeg_of_any_size_channel_major() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("2.png"), 50, 30, [255, 0, 0]);
        image::RgbImage::from_pixel(96, 96, image::Rgb([0, 0, 255]))
            .save(dir.path().join("10.jpg"))
            .unwrap();
        let set = load_folder(dir.path(), 8, 0).unwrap();
        assert_eq!(set.names, vec!["2.png", "10.jpg"], "numeric order");
        assert_eq!(set.dim(), 3 * 64);
        let red = set.image(0);
        assert!(red[..64].iter().all(|&v| v > 0.99) && red[64..].iter().all(|&v| v < 0.01));
        let blue = set.image(1);
        assert!(blue[128..].iter().all(|&v| v > 0.95) && blue[..64].iter().all(|&v| v < 0.05));
    }

    #[test]
    fn corrupt_files_are_skipped_and_an_empty_folder_fails() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("1.png"), 4, 4, [9, 9, 9]);
        std::fs::write(dir.path().join("2.jpg"), b"definitely not a jpeg").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
        let set = load_folder(dir.path(), 4, 0).unwrap();
        assert_eq!(set.len(), 1);
        let skipped: Vec<&str> = set.skipped.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(skipped, vec!["2.jpg", "notes.txt"]);

        let empty = tempfile::tempdir().unwrap();
        std::fs::write(empty.path().join("x.png"), b"\x89PNG broken").unwrap();
        let e = format!("{:#}", load_folder(empty.path(), 4, 0).err().unwrap());
        assert!(
            e.contains("no usable image") && e.contains("1 files skipped"),
            "{e}"
        );
    }
}
