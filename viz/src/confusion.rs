//! The 2x2 confusion matrix of the increase classifier: rows are the actual class, columns
//! the predicted one, every cell shaded by its count and labelled with the count and its
//! share of the row, so per-class recall reads straight off the picture.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontTransform;
use plotters::style::text_anchor::{HPos, VPos};

use crate::Result;
use crate::canvas::{self, DrawResult};

/// Side of one cell.
const CELL: i32 = 200;
/// Least left edge of the matrix: room for the rotated "actual" and short class names;
/// longer names push the matrix right (see [`left`]).
const MIN_LEFT: i32 = 190;
/// Top edge of the matrix: room for the title, "predicted" and the column class names.
const TOP: i32 = 130;
/// Height of the picture: the matrix plus margins and a line of totals underneath.
const HEIGHT: u32 = (TOP + 2 * CELL + 70) as u32;
/// Font size of the class names.
const LABEL_SIZE: f64 = 16.0;
/// Lightest and darkest shade (ColorBrewer Blues ends).
const LIGHT: (f64, f64, f64) = (247.0, 251.0, 255.0);
/// See [`LIGHT`].
const DARK: (f64, f64, f64) = (8.0, 48.0, 107.0);

/// Draws `counts[actual][predicted]` as a PNG at `path`, with `class_names[0]` and
/// `class_names[1]` naming classes 0 and 1.
pub fn confusion_matrix(
    path: &Path,
    counts: [[u64; 2]; 2],
    class_names: [&str; 2],
    title: &str,
) -> Result<()> {
    crate::font::ensure_registered()?;
    let left = left(class_names);
    let size = ((left + 2 * CELL + 40) as u32, HEIGHT);
    canvas::render_png(path, size, |root| {
        draw(root, left, counts, class_names, title)
    })
}

/// Left edge of the matrix, far enough right for the widest row label.
fn left(names: [&str; 2]) -> i32 {
    let style = canvas::text(LABEL_SIZE);
    let widest = names
        .iter()
        .map(|n| canvas::text_width(&style, n))
        .max()
        .unwrap_or(0);
    MIN_LEFT.max(60 + widest + 10)
}

/// Shade for a cell holding `share` of the largest count (0..=1).
fn shade(share: f64) -> RGBColor {
    let mix = |a: f64, b: f64| (a + (b - a) * share.clamp(0.0, 1.0)).round() as u8;
    RGBColor(
        mix(LIGHT.0, DARK.0),
        mix(LIGHT.1, DARK.1),
        mix(LIGHT.2, DARK.2),
    )
}

/// Centre of the cell for actual class `row`, predicted class `col`.
fn centre(left: i32, row: usize, col: usize) -> (i32, i32) {
    (
        left + col as i32 * CELL + CELL / 2,
        TOP + row as i32 * CELL + CELL / 2,
    )
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    left: i32,
    counts: [[u64; 2]; 2],
    names: [&str; 2],
    title: &str,
) -> DrawResult<DB> {
    canvas::title(root, title, 12)?;
    let max = counts.iter().flatten().copied().max().unwrap_or(0).max(1) as f64;
    for (r, row) in counts.iter().enumerate() {
        let row_total: u64 = row.iter().sum();
        for (c, &n) in row.iter().enumerate() {
            let share = n as f64 / max;
            let (x, y) = (left + c as i32 * CELL, TOP + r as i32 * CELL);
            root.draw(&Rectangle::new(
                [(x, y), (x + CELL, y + CELL)],
                shade(share).filled(),
            ))?;
            // Past the middle of the scale black text drowns, so switch to white.
            let ink: &'static RGBColor = if share > 0.5 { &WHITE } else { &BLACK };
            let (cx, cy) = centre(left, r, c);
            let big = canvas::anchored(canvas::bold(30.0).color(ink), HPos::Center, VPos::Center);
            root.draw(&Text::new(n.to_string(), (cx, cy - 14), big))?;
            let pct = if row_total == 0 {
                "no actual cases".to_string()
            } else {
                format!("{:.1}% of row", 100.0 * n as f64 / row_total as f64)
            };
            let small = canvas::anchored(canvas::text(15.0).color(ink), HPos::Center, VPos::Center);
            root.draw(&Text::new(pct, (cx, cy + 22), small))?;
        }
    }
    root.draw(&Rectangle::new(
        [(left, TOP), (left + 2 * CELL, TOP + 2 * CELL)],
        BLACK.stroke_width(1),
    ))?;
    draw_axes(root, left, names)?;
    let total: u64 = counts.iter().flatten().sum();
    let correct = counts[0][0] + counts[1][1];
    let summary = if total == 0 {
        "no predictions".to_string()
    } else {
        format!(
            "accuracy {:.1}%  ({correct} of {total})",
            100.0 * correct as f64 / total as f64
        )
    };
    let style = canvas::anchored(canvas::text(16.0), HPos::Center, VPos::Top);
    root.draw(&Text::new(
        summary,
        (left + CELL, TOP + 2 * CELL + 24),
        style,
    ))
}

/// Class names beside and above the cells, with "actual" and "predicted" naming the axes.
fn draw_axes<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    left: i32,
    names: [&str; 2],
) -> DrawResult<DB> {
    let axis = canvas::bold(17.0);
    let predicted = canvas::anchored(axis.clone(), HPos::Center, VPos::Bottom);
    root.draw(&Text::new("predicted", (left + CELL, TOP - 40), predicted))?;
    let actual =
        canvas::anchored(axis, HPos::Center, VPos::Center).transform(FontTransform::Rotate270);
    root.draw(&Text::new("actual", (30, TOP + CELL), actual))?;
    let label = canvas::text(LABEL_SIZE);
    for (i, name) in names.iter().enumerate() {
        let (cx, cy) = centre(left, i, i);
        let col = canvas::anchored(label.clone(), HPos::Center, VPos::Bottom);
        root.draw(&Text::new(name.to_string(), (cx, TOP - 10), col))?;
        let row = canvas::anchored(label.clone(), HPos::Right, VPos::Center);
        root.draw(&Text::new(name.to_string(), (left - 10, cy), row))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_shaded_by_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cm.png");
        confusion_matrix(&path, [[90, 0], [10, 45]], ["no increase", "increase"], "t").unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        let left = left(["no increase", "increase"]);
        assert_eq!(img.dimensions(), ((left + 2 * CELL + 40) as u32, HEIGHT));
        // A corner of each cell, away from its text.
        let px = |r, c| {
            let (x, y) = centre(left, r, c);
            img.get_pixel((x - CELL / 2 + 5) as u32, (y - CELL / 2 + 5) as u32)
                .0
        };
        assert_eq!(px(0, 0), [8, 48, 107]);
        assert_eq!(px(0, 1), [247, 251, 255]);
        let [r, _, b] = px(1, 1);
        assert!(
            r < 200 && b > r,
            "half-count cell not mid blue: {:?}",
            px(1, 1)
        );
        // The count's text is drawn: the centre of the big number is not the cell colour.
        let (x, y) = centre(left, 0, 0);
        let ink =
            (-20..20).any(|dx| img.get_pixel((x + dx) as u32, (y - 14) as u32).0 != [8, 48, 107]);
        assert!(ink, "no count text in the cell");
    }

    #[test]
    fn long_class_names_move_the_matrix() {
        crate::font::ensure_registered().unwrap();
        assert_eq!(left(["no", "yes"]), MIN_LEFT);
        assert!(left(["new cases did not increase the next day", "yes"]) > MIN_LEFT + 100);
    }
}
