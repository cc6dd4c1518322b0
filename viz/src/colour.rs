//! Colour scales and the series palette shared by every plot, kept in one place so the
//! heatmap, map and curves agree and tests can ask for the exact colour a value gets.

use plotters::style::RGBColor;

/// Colour of a missing value (a NaN correlation, a country without a prediction).
pub(crate) const MISSING: RGBColor = RGBColor(205, 205, 205);

/// ColorBrewer RdBu from blue (-1) through pure white (0) to red (+1); the darkest ends
/// are left out so black text and borders stay visible on extreme cells.
const DIVERGING: [(u8, u8, u8); 9] = [
    (33, 102, 172),
    (67, 147, 195),
    (146, 197, 222),
    (209, 229, 240),
    (255, 255, 255),
    (253, 219, 199),
    (244, 165, 130),
    (214, 96, 77),
    (178, 24, 43),
];

/// Viridis sampled at nine points: perceptually even and readable in grey-scale print.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

/// Matplotlib's tab10: ten colours that stay distinct next to each other in a legend.
const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// Linear interpolation along evenly spaced `anchors`, `t` clamped to [0, 1].
fn interpolate(anchors: &[(u8, u8, u8)], t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0) * (anchors.len() - 1) as f64;
    let i = (t.floor() as usize).min(anchors.len() - 2);
    let f = t - i as f64;
    let (a, b) = (anchors[i], anchors[i + 1]);
    let mix = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Colour of a correlation `v` in [-1, 1] (clamped); NaN is [`MISSING`].
pub(crate) fn diverging(v: f64) -> RGBColor {
    if v.is_nan() {
        MISSING
    } else {
        interpolate(&DIVERGING, (v + 1.0) / 2.0)
    }
}

/// Colour of a probability `t` in [0, 1] (clamped); NaN is [`MISSING`].
pub(crate) fn sequential(t: f64) -> RGBColor {
    if t.is_nan() {
        MISSING
    } else {
        interpolate(&VIRIDIS, t)
    }
}

/// The `i`-th series colour, cycling when there are more series than colours.
pub(crate) fn series(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_hit_their_ends_and_middle() {
        assert_eq!(diverging(-1.0), RGBColor(33, 102, 172));
        assert_eq!(diverging(0.0), RGBColor(255, 255, 255));
        assert_eq!(diverging(1.0), RGBColor(178, 24, 43));
        assert_eq!(diverging(7.0), diverging(1.0));
        assert_eq!(diverging(f64::NAN), MISSING);
        assert_eq!(sequential(0.0), RGBColor(68, 1, 84));
        assert_eq!(sequential(1.0), RGBColor(253, 231, 37));
        assert_eq!(sequential(0.5), RGBColor(33, 144, 141));
    }
}
