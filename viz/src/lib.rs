//! # wick-viz
//!
//! Every picture wick draws, as PNG (and SVG for the map), with an embedded font so no
//! system font is needed.
//!
//! # Layout
//!
//! - `error`: [`VizError`] and [`Result`].
//! - `font`: registers the embedded DejaVu Sans with plotters, once.
//! - `bitmap`: plotters' bitmap backend with a fix for lines drawn leftwards or upwards.
//! - `canvas`: renders a drawing into a PNG or SVG file; shared text styles.
//! - `colour`: the diverging and sequential colour scales and the series palette.
//! - `heatmap`: [`heatmap`], the labelled country correlation matrix.
//! - `curves`: [`learning_curves`], [`line_chart`] and [`vae_curves`].
//! - `confusion`: [`confusion_matrix`], a 2x2 table of counts and row percentages.
//! - `legend`: the legend row drawn above a chart's plot area.
//! - `map`: [`world_map_svg`] and [`world_map_png`], a choropleth of probabilities, and
//!   [`preload`], which builds its shapes ahead of the first map.
//! - `grid`: [`chw_to_rgb`], [`image_grid`] and [`save_png`] for VAE image sheets.
//! - `reliability`: [`backtest_chart`], a rolling backtest's reliability diagram and
//!   accuracy per forecast day.

mod bitmap;
mod canvas;
mod colour;
mod confusion;
mod curves;
mod error;
mod font;
mod grid;
mod heatmap;
mod legend;
mod map;
mod reliability;

pub use confusion::confusion_matrix;
pub use curves::{Curves, SeriesSpec, VaeCurves, learning_curves, line_chart, vae_curves};
pub use error::{Result, VizError};
pub use grid::{chw_to_rgb, image_grid, save_png};
pub use heatmap::heatmap;
pub use map::{preload, world_map_png, world_map_svg};
pub use reliability::{DayScore, ReliabilityBin, backtest_chart};
