//! Image sheets for the VAE: originals over reconstructions, samples, interpolation strips.
//! Images arrive as the model sees them, channel-major `(3, size, size)` floats in [0, 1];
//! they are turned into RGB, blown up by a whole factor (nearest neighbour, so pixels stay
//! crisp at 28 x 28) and laid out with grey gaps so neighbouring faces do not run together.

use std::path::Path;

use image::{Rgb, RgbImage};

use crate::{Result, VizError};

/// Width of the grey frame around and between cells.
const GAP: u32 = 2;
/// Colour of the gaps and of padding after short rows.
const GREY: Rgb<u8> = Rgb([128, 128, 128]);

/// Converts one channel-major `(3, size, size)` image with values in [0, 1] to RGB;
/// values are clamped and rounded, NaN becomes 0.
///
/// Errors if `chw` does not hold exactly `3 * size * size` values.
pub fn chw_to_rgb(chw: &[f32], size: u32) -> Result<RgbImage> {
    check_len(chw, size, "image")?;
    let plane = (size * size) as usize;
    Ok(RgbImage::from_fn(size, size, |x, y| {
        let i = (y * size + x) as usize;
        Rgb([0, 1, 2].map(|c| to_byte(chw[c * plane + i])))
    }))
}

/// Lays out rows of channel-major `(3, size, size)` images as one picture, every image
/// scaled up `scale` times with nearest-neighbour, [`GAP`]-px grey gaps around and between
/// cells; shorter rows are padded with grey.
///
/// Errors if `size` or `scale` is 0, there are no images, or any image has the wrong length.
pub fn image_grid(rows: &[Vec<&[f32]>], size: u32, scale: u32) -> Result<RgbImage> {
    if size == 0 || scale == 0 {
        return Err(VizError::BadImage {
            problem: format!("size {size} and scale {scale} must both be at least 1"),
        });
    }
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
    if cols == 0 {
        return Err(VizError::BadImage {
            problem: "no images to lay out".into(),
        });
    }
    let cell = size * scale;
    let width = GAP + cols * (cell + GAP);
    let height = GAP + rows.len() as u32 * (cell + GAP);
    let mut sheet = RgbImage::from_pixel(width, height, GREY);
    for (r, row) in rows.iter().enumerate() {
        for (c, chw) in row.iter().enumerate() {
            check_len(chw, size, &format!("row {r}, image {c}"))?;
            let img = chw_to_rgb(chw, size)?;
            let (x0, y0) = (GAP + c as u32 * (cell + GAP), GAP + r as u32 * (cell + GAP));
            for (x, y, px) in img.enumerate_pixels() {
                for dy in 0..scale {
                    for dx in 0..scale {
                        sheet.put_pixel(x0 + x * scale + dx, y0 + y * scale + dy, *px);
                    }
                }
            }
        }
    }
    Ok(sheet)
}

/// The error for an image of the wrong length, named by `which`.
fn check_len(chw: &[f32], size: u32, which: &str) -> Result<()> {
    let expected = 3 * size as usize * size as usize;
    if chw.len() == expected {
        Ok(())
    } else {
        Err(VizError::BadImage {
            problem: format!(
                "{which} has {} values, expected {expected} (3 x {size} x {size})",
                chw.len()
            ),
        })
    }
}

/// A [0, 1] float as a byte; `as` saturates and maps NaN to 0.
fn to_byte(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Writes `img` to `path` as PNG.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|source| VizError::Png {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_clamped_and_rounded() {
        assert_eq!(to_byte(-0.5), 0);
        assert_eq!(to_byte(0.5), 128);
        assert_eq!(to_byte(2.0), 255);
        assert_eq!(to_byte(f32::NAN), 0);
    }

    #[test]
    fn channels_are_planes() {
        // 1x1 image: R plane, G plane, B plane.
        let img = chw_to_rgb(&[1.0, 0.0, 0.2], 1).unwrap();
        assert_eq!(img.get_pixel(0, 0).0, [255, 0, 51]);
    }
}
