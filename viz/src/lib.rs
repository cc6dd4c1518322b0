//! # wick-viz
//!
//! Every picture wick draws, as PNG (and SVG for the map), with an embedded font so no
//! system font is needed.
//!
//! # Layout
//!
//! - `error`: [`VizError`] and [`Result`].
//! - `font`: registers the embedded DejaVu Sans with plotters, once.
//! - `canvas`: renders a drawing into a PNG or SVG file; shared text styles.
//! - `colour`: the diverging and sequential colour scales and the series palette.
//! - `heatmap`: [`heatmap`], the labelled country correlation matrix.
//! - `curves`: [`learning_curves`], [`line_chart`] and [`vae_curves`].
//! - `confusion`: [`confusion_matrix`], a 2x2 table of counts and row percentages.
//! - `map`: [`world_map_svg`] and [`world_map_png`], a choropleth of probabilities.
//! - `grid`: [`chw_to_rgb`], [`image_grid`] and [`save_png`] for VAE image sheets.

mod canvas;
mod colour;
mod error;
mod font;
mod heatmap;

pub use error::{Result, VizError};
pub use heatmap::heatmap;

/// Writes `img` to `path` as PNG.
pub fn save_png(img: &image::RgbImage, path: &std::path::Path) -> Result<()> {
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|source| VizError::Png {
            path: path.to_path_buf(),
            source,
        })
}
