//! The legend row every chart uses: entries laid out side by side above the plot, centred,
//! instead of plotters' legend box inside it. Outside the plot a legend can never hide a
//! curve, wherever the curves happen to run.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use crate::canvas;

/// Height of the legend row.
const LEGEND_H: u32 = 30;
/// Height of the caption above the legend row, when there is one.
const CAPTION_H: u32 = 28;
/// Length of a legend entry's line sample.
const SWATCH_W: i32 = 28;
/// Space between legend entries.
const ENTRY_GAP: i32 = 28;

/// One legend entry.
pub(crate) struct Entry<'a> {
    /// Legend text.
    pub(crate) name: &'a str,
    /// Line colour.
    pub(crate) colour: RGBColor,
    /// Whether the line is dashed (the reference line).
    pub(crate) dashed: bool,
}

/// Splits a caption (if any) and the legend rows off the top of `area`, draws them, and
/// returns the rest for the plot. Entries that do not fit on one row wrap onto the next.
pub(crate) fn head<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    entries: &[Entry],
) -> std::result::Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let w = area.dim_in_pixel().0 as i32;
    let style = canvas::text(15.0);
    let rows = rows(entries, &style, w - 2 * ENTRY_GAP);
    let caption_h = if caption.is_empty() { 0 } else { CAPTION_H };
    let (top, body) = area.split_vertically(caption_h + LEGEND_H * rows.len() as u32);
    if !caption.is_empty() {
        let style = canvas::anchored(canvas::bold(18.0), HPos::Center, VPos::Top);
        top.draw(&Text::new(caption.to_string(), (w / 2, 4), style))?;
    }
    let label = canvas::anchored(style, HPos::Left, VPos::Center);
    for (r, row) in rows.iter().enumerate() {
        let y = (caption_h + LEGEND_H * r as u32 + LEGEND_H / 2) as i32;
        let total = row.iter().map(|(_, width)| width + ENTRY_GAP).sum::<i32>() - ENTRY_GAP;
        let mut x = (w - total) / 2;
        for (e, width) in row {
            let stroke = vec![(x, y), (x + SWATCH_W, y)];
            let line = e.colour.stroke_width(3);
            if e.dashed {
                top.draw(&DashedPathElement::new(stroke, 6, 4, line))?;
            } else {
                top.draw(&PathElement::new(stroke, line))?;
            }
            top.draw(&Text::new(
                e.name.to_string(),
                (x + SWATCH_W + 6, y),
                label.clone(),
            ))?;
            x += width + ENTRY_GAP;
        }
    }
    Ok(body)
}

/// Entries with their drawn widths, greedily packed into rows of at most `max_w` pixels
/// (an entry wider than that gets a row of its own). Always at least one row, so plots
/// with and without a legend line up.
fn rows<'e, 'a>(
    entries: &'e [Entry<'a>],
    style: &TextStyle,
    max_w: i32,
) -> Vec<Vec<(&'e Entry<'a>, i32)>> {
    let mut rows: Vec<Vec<(&Entry, i32)>> = vec![Vec::new()];
    let mut used = 0;
    for e in entries {
        let width = SWATCH_W + 6 + canvas::text_width(style, e.name);
        let row = rows.last_mut().expect("rows starts non-empty");
        if !row.is_empty() && used + ENTRY_GAP + width > max_w {
            rows.push(vec![(e, width)]);
            used = width;
        } else {
            used += if row.is_empty() {
                width
            } else {
                ENTRY_GAP + width
            };
            row.push((e, width));
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_legends_wrap() {
        crate::font::ensure_registered().unwrap();
        let names: Vec<String> = (0..10).map(|i| format!("series number {i}")).collect();
        let entries: Vec<Entry> = names
            .iter()
            .map(|name| Entry {
                name,
                colour: BLACK,
                dashed: false,
            })
            .collect();
        let style = canvas::text(15.0);
        assert_eq!(rows(&entries[..2], &style, 900).len(), 1);
        let wrapped = rows(&entries, &style, 900);
        assert!(wrapped.len() >= 2, "{} rows", wrapped.len());
        assert_eq!(wrapped.iter().map(Vec::len).sum::<usize>(), 10);
        for row in &wrapped {
            let w: i32 = row.iter().map(|(_, w)| w + ENTRY_GAP).sum::<i32>() - ENTRY_GAP;
            assert!(w <= 900);
        }
        assert_eq!(rows(&[], &style, 900).len(), 1);
    }
}
