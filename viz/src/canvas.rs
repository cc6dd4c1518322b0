//! Turning a drawing closure into a file: PNGs are rendered into an in-memory RGB buffer and
//! written with `image` (one encoder and one error type for every PNG), SVGs into a string.
//! Also the text styles every plot uses, so sizes and the font family are set in one place.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::bitmap::Bitmap;
use crate::{Result, VizError, font};

/// What a drawing function returns: plotters' error for the backend it draws on.
pub(crate) type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Draws `(w, h)` pixels with `draw` on a white canvas and writes them to `path` as PNG
/// (through `image`, so every PNG of the crate has one encoder and one error type).
pub(crate) fn render_png<F>(path: &Path, (w, h): (u32, u32), draw: F) -> Result<()>
where
    F: for<'b> FnOnce(&DrawingArea<Bitmap<'b>, Shift>) -> DrawResult<Bitmap<'b>>,
{
    font::ensure_registered()?;
    let mut buf = vec![0u8; w as usize * h as usize * 3];
    {
        let root = Bitmap(BitMapBackend::with_buffer(&mut buf, (w, h))).into_drawing_area();
        root.fill(&WHITE).map_err(|e| VizError::draw(path, e))?;
        draw(&root).map_err(|e| VizError::draw(path, e))?;
        root.present().map_err(|e| VizError::draw(path, e))?;
    }
    let img = image::RgbImage::from_raw(w, h, buf)
        .ok_or_else(|| VizError::draw(path, "pixel buffer has the wrong size"))?;
    crate::grid::save_png(&img, path)
}

/// Draws `(w, h)` user units with `draw` on a white canvas and writes them to `path` as SVG.
pub(crate) fn render_svg<F>(path: &Path, (w, h): (u32, u32), draw: F) -> Result<()>
where
    F: for<'b> FnOnce(&DrawingArea<SVGBackend<'b>, Shift>) -> DrawResult<SVGBackend<'b>>,
{
    font::ensure_registered()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| VizError::draw(path, e))?;
        draw(&root).map_err(|e| VizError::draw(path, e))?;
        root.present().map_err(|e| VizError::draw(path, e))?;
    }
    std::fs::write(path, svg).map_err(|source| VizError::Svg {
        path: path.to_path_buf(),
        source,
    })
}

/// Regular DejaVu at `size` px, black, anchored at its left-top corner.
pub(crate) fn text(size: f64) -> TextStyle<'static> {
    (font::FAMILY, size).into_font().color(&BLACK)
}

/// Bold DejaVu at `size` px, black, for titles.
pub(crate) fn bold(size: f64) -> TextStyle<'static> {
    (font::FAMILY, size, FontStyle::Bold)
        .into_font()
        .color(&BLACK)
}

/// `style` anchored at the given horizontal and vertical position of the text box.
pub(crate) fn anchored(style: TextStyle<'static>, h: HPos, v: VPos) -> TextStyle<'static> {
    style.pos(Pos::new(h, v))
}

/// Width in pixels of `s` drawn with `style` (0 if the font cannot measure it).
pub(crate) fn text_width(style: &TextStyle<'_>, s: &str) -> i32 {
    style.font.box_size(s).map(|(w, _)| w as i32).unwrap_or(0)
}

/// Draws the title centred at the top of `area`, `y` pixels down.
pub(crate) fn title<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &str,
    y: i32,
) -> DrawResult<DB> {
    let w = area.dim_in_pixel().0 as i32;
    area.draw(&Text::new(
        s.to_string(),
        (w / 2, y),
        anchored(bold(24.0), HPos::Center, VPos::Top),
    ))
}
