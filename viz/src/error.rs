//! The one error type of wick-viz. Every message names the file being drawn (or the image
//! being built) and what was wrong, so a caller can log it as is.

use std::fmt::Display;
use std::path::{Path, PathBuf};

/// Result of every fallible wick-viz function.
pub type Result<T> = std::result::Result<T, VizError>;

/// Why a picture could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum VizError {
    /// The data handed in cannot be drawn (wrong shape, no points, ...).
    #[error("{}: cannot draw: {problem}", path.display())]
    BadInput {
        /// The picture that was asked for.
        path: PathBuf,
        /// What is wrong with the data.
        problem: String,
    },
    /// plotters failed while drawing (a backend or font error).
    #[error("{}: drawing failed: {message}", path.display())]
    Draw {
        /// The picture being drawn.
        path: PathBuf,
        /// plotters' own description of the failure.
        message: String,
    },
    /// The PNG encoder could not write the file.
    #[error("{}: cannot write PNG: {source}", path.display())]
    Png {
        /// The file being written.
        path: PathBuf,
        /// The encoder's error.
        source: image::ImageError,
    },
    /// The SVG text could not be written to disk.
    #[error("{}: cannot write SVG: {source}", path.display())]
    Svg {
        /// The file being written.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An image given to [`crate::chw_to_rgb`] or [`crate::image_grid`] has the wrong shape.
    #[error("image grid: {problem}")]
    BadImage {
        /// Which image and what is wrong with it.
        problem: String,
    },
    /// The embedded DejaVu Sans font was rejected by plotters (a broken build, not bad data).
    #[error("embedded DejaVu Sans font could not be registered with plotters")]
    Font,
}

impl VizError {
    /// A [`VizError::BadInput`] for `path`.
    pub(crate) fn bad_input(path: &Path, problem: impl Into<String>) -> Self {
        Self::BadInput {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }

    /// A [`VizError::Draw`] for `path`; takes any plotters error by its `Display`, because
    /// those errors are generic over the backend and we only need the words.
    pub(crate) fn draw(path: &Path, err: impl Display) -> Self {
        Self::Draw {
            path: path.to_path_buf(),
            message: err.to_string(),
        }
    }
}
