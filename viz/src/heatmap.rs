//! The country-by-country correlation heatmap. At 185 countries the only way to keep it
//! readable is one small label per row and column, so cells are sized to the label font and
//! the image grows (about 2,600 px square); labels repeat on all four sides so a cell in
//! the far corner of the matrix is never far from its names.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontTransform;
use plotters::style::text_anchor::{HPos, VPos};

use crate::canvas::{self, DrawResult};
use crate::{Result, VizError, colour};

/// Outer margin of the picture.
const MARGIN: i32 = 20;
/// Height reserved for the title.
const TITLE_H: i32 = 50;
/// Space between the matrix and its labels.
const GAP: i32 = 6;
/// Widest label in pixels; longer names are cut with an ellipsis so one odd name cannot
/// push the matrix off to the side.
const MAX_LABEL_W: i32 = 220;
/// Width of the colour bar of the legend.
const BAR_W: i32 = 24;
/// Room to the right of the bar for ticks and tick labels.
const LEGEND_TEXT_W: i32 = 110;

/// Where everything goes, computed once from the labels so drawing and tests agree.
pub(crate) struct Layout {
    /// Number of rows (and columns).
    n: usize,
    /// Side of one cell in pixels.
    pub(crate) cell: i32,
    /// Label font size in pixels.
    font: f64,
    /// Width of a row label column (and height of a column label row).
    label_w: i32,
    /// Left edge of the matrix.
    left: i32,
    /// Top edge of the matrix.
    top: i32,
    /// Picture size.
    pub(crate) size: (u32, u32),
}

impl Layout {
    /// Cells shrink as the matrix grows but never below 11 px, the smallest that still fits
    /// one readable line of 10 px text per row.
    pub(crate) fn new(labels: &[String]) -> Self {
        let n = labels.len();
        let cell = (720 / n.max(1) as i32).clamp(11, 40);
        let font = f64::from((cell - 1).min(14));
        let style = canvas::text(font);
        let widest = labels.iter().map(|l| canvas::text_width(&style, l)).max();
        let label_w = widest.unwrap_or(0).min(MAX_LABEL_W) + 4;
        let left = MARGIN + label_w + GAP;
        let top = MARGIN + TITLE_H + label_w + GAP;
        let side = cell * n as i32;
        let legend_x = left + side + GAP + label_w + 30;
        let width = legend_x + BAR_W + LEGEND_TEXT_W + MARGIN;
        let legend_bottom = top + Self::legend_height(side) + 60;
        let height = (top + side + GAP + label_w + MARGIN).max(legend_bottom);
        Self {
            n,
            cell,
            font,
            label_w,
            left,
            top,
            size: (width as u32, height as u32),
        }
    }

    /// Side of the square matrix in pixels.
    fn side(&self) -> i32 {
        self.cell * self.n as i32
    }

    /// The colour bar is as tall as the matrix, within limits that keep its ticks apart.
    fn legend_height(side: i32) -> i32 {
        side.clamp(200, 600)
    }

    /// Pixel at the centre of the cell in row `i`, column `j`.
    #[cfg(test)]
    pub(crate) fn centre(&self, i: usize, j: usize) -> (i32, i32) {
        (
            self.left + j as i32 * self.cell + self.cell / 2,
            self.top + i as i32 * self.cell + self.cell / 2,
        )
    }
}

/// Draws `matrix` (rows and columns in the order of `labels`, values in [-1, 1], NaN for
/// undefined) as a PNG heatmap at `path` with every row and column labelled.
///
/// Errors if the matrix is empty, not square, or does not match `labels` in size.
pub fn heatmap(path: &Path, labels: &[String], matrix: &[Vec<f64>], title: &str) -> Result<()> {
    let n = labels.len();
    if n == 0 {
        return Err(VizError::bad_input(path, "heatmap has no rows"));
    }
    if matrix.len() != n {
        return Err(VizError::bad_input(
            path,
            format!("{n} labels but {} matrix rows", matrix.len()),
        ));
    }
    if let Some((i, row)) = matrix.iter().enumerate().find(|(_, r)| r.len() != n) {
        return Err(VizError::bad_input(
            path,
            format!(
                "matrix row {i} has {} values, expected {n} (a square matrix)",
                row.len()
            ),
        ));
    }
    crate::font::ensure_registered()?;
    let layout = Layout::new(labels);
    canvas::render_png(path, layout.size, |root| {
        draw(root, &layout, labels, matrix, title)
    })
}

/// Cuts `label` to fit `max_w` pixels, ending it with an ellipsis when cut.
fn fit(style: &TextStyle<'_>, label: &str, max_w: i32) -> String {
    if canvas::text_width(style, label) <= max_w {
        return label.to_string();
    }
    let mut s: String = label.to_string();
    while !s.is_empty() && canvas::text_width(style, &format!("{s}…")) > max_w {
        s.pop();
    }
    format!("{}…", s.trim_end())
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    l: &Layout,
    labels: &[String],
    matrix: &[Vec<f64>],
    title: &str,
) -> DrawResult<DB> {
    canvas::title(root, title, MARGIN)?;
    for (i, row) in matrix.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            let (x, y) = (l.left + j as i32 * l.cell, l.top + i as i32 * l.cell);
            root.draw(&Rectangle::new(
                [(x, y), (x + l.cell, y + l.cell)],
                colour::diverging(v).filled(),
            ))?;
        }
    }
    let side = l.side();
    root.draw(&Rectangle::new(
        [(l.left, l.top), (l.left + side, l.top + side)],
        BLACK.stroke_width(1),
    ))?;
    draw_labels(root, l, labels)?;
    draw_legend(root, l)
}

/// Row labels left (right-aligned) and right, column labels above (reading upwards) and
/// below (reading downwards), every one centred on its cell.
fn draw_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    l: &Layout,
    labels: &[String],
) -> DrawResult<DB> {
    let style = canvas::text(l.font);
    let side = l.side();
    let max_w = l.label_w - 4;
    for (i, label) in labels.iter().enumerate() {
        let label = fit(&style, label, max_w);
        let mid = i as i32 * l.cell + l.cell / 2;
        let row_y = l.top + mid;
        let col_x = l.left + mid;
        let left = canvas::anchored(style.clone(), HPos::Right, VPos::Center);
        root.draw(&Text::new(label.clone(), (l.left - GAP, row_y), left))?;
        let right = canvas::anchored(style.clone(), HPos::Left, VPos::Center);
        root.draw(&Text::new(
            label.clone(),
            (l.left + side + GAP, row_y),
            right,
        ))?;
        let up = canvas::anchored(style.clone(), HPos::Left, VPos::Center)
            .transform(FontTransform::Rotate270);
        root.draw(&Text::new(label.clone(), (col_x, l.top - GAP), up))?;
        let down = canvas::anchored(style.clone(), HPos::Left, VPos::Center)
            .transform(FontTransform::Rotate90);
        root.draw(&Text::new(label, (col_x, l.top + side + GAP), down))?;
    }
    Ok(())
}

/// A vertical colour bar from -1 (bottom) to +1 (top) with ticks every 0.5, and a grey
/// swatch explaining NaN cells.
fn draw_legend<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, l: &Layout) -> DrawResult<DB> {
    let x = l.left + l.side() + GAP + l.label_w + 30;
    let h = Layout::legend_height(l.side());
    let (top, bottom) = (l.top, l.top + h);
    for y in top..bottom {
        let v = 1.0 - 2.0 * f64::from(y - top) / f64::from(h - 1);
        root.draw(&Rectangle::new(
            [(x, y), (x + BAR_W, y + 1)],
            colour::diverging(v).filled(),
        ))?;
    }
    root.draw(&Rectangle::new(
        [(x, top), (x + BAR_W, bottom)],
        BLACK.stroke_width(1),
    ))?;
    let style = canvas::anchored(canvas::text(13.0), HPos::Left, VPos::Center);
    for k in 0..=4 {
        let v = 1.0 - 0.5 * f64::from(k);
        let y = top + ((h - 1) as f64 * f64::from(k) / 4.0).round() as i32;
        root.draw(&PathElement::new(
            vec![(x + BAR_W, y), (x + BAR_W + 5, y)],
            BLACK,
        ))?;
        root.draw(&Text::new(
            format!("{v:+.1}"),
            (x + BAR_W + 8, y),
            style.clone(),
        ))?;
    }
    let swatch_y = bottom + 20;
    root.draw(&Rectangle::new(
        [(x, swatch_y), (x + BAR_W, swatch_y + 14)],
        colour::MISSING.filled(),
    ))?;
    root.draw(&Text::new(
        "NaN",
        (x + BAR_W + 8, swatch_y + 7),
        style.clone(),
    ))?;
    let caption = canvas::anchored(canvas::text(13.0), HPos::Left, VPos::Bottom);
    root.draw(&Text::new("Pearson r", (x, top - 8), caption))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagonal_is_red_and_anticorrelation_is_blue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.png");
        let labels: Vec<String> = ["US", "Korea, South", "Taiwan*"].map(String::from).to_vec();
        let m = vec![
            vec![1.0, -1.0, f64::NAN],
            vec![-1.0, 1.0, 0.0],
            vec![f64::NAN, 0.0, 1.0],
        ];
        heatmap(&path, &labels, &m, "test").unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        let layout = Layout::new(&labels);
        assert_eq!(img.dimensions(), layout.size);
        let px = |i, j| {
            let (x, y) = layout.centre(i, j);
            img.get_pixel(x as u32, y as u32).0
        };
        let [r, g, b] = px(1, 1);
        assert!(r > 150 && b < 80 && g < 80, "diagonal not red: {r},{g},{b}");
        let [r, g, b] = px(0, 1);
        assert!(b > 150 && r < 80, "-1 not blue: {r},{g},{b}");
        assert_eq!(px(1, 2), [255, 255, 255]);
        assert_eq!(px(2, 0), [205, 205, 205]);
    }

    #[test]
    fn big_matrix_has_readable_cells() {
        crate::font::ensure_registered().unwrap();
        let labels: Vec<String> = (0..185).map(|i| format!("Country {i}")).collect();
        let l = Layout::new(&labels);
        assert_eq!(l.cell, 11);
        assert!(l.size.0 > 2100 && l.size.0 < 3000, "{:?}", l.size);
    }

    #[test]
    fn long_labels_are_cut() {
        crate::font::ensure_registered().unwrap();
        let style = canvas::text(10.0);
        let long = "Saint Vincent and the Grenadines and some more words to make it long";
        let cut = fit(&style, long, 100);
        assert!(cut.ends_with('…') && canvas::text_width(&style, &cut) <= 100);
        assert_eq!(fit(&style, "Chad", 100), "Chad");
    }
}
