//! The world map of predicted probabilities: an equirectangular (plate carrée) choropleth
//! of every country in the bundled Natural Earth shapes, drawn once for any plotters
//! backend so the SVG and the PNG are the same picture.
//!
//! Antarctica is left out and the map stops at 58°S: it would add a fifth of grey to the
//! picture and never has data. Countries are filled largest first so enclaves (Lesotho,
//! San Marino) land on top of the country around them, whose holes are filled with sea.
//! Countries too small to see at this scale (Singapore, Malta, ...) that have a value get a
//! dot, so their prediction is not lost.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use world_data::world_data_types::data::WorldData;

use crate::canvas::{self, DrawResult};
use crate::{Result, colour};

/// Picture size of both the PNG and the SVG (user units); 2:1 like the map itself.
pub(crate) const SIZE: (u32, u32) = (1600, 810);
/// Left and right margin of the map.
const MARGIN: f64 = 20.0;
/// Top edge of the map, below the title.
const TOP: f64 = 60.0;
/// Northernmost latitude shown (Greenland's tip is at 83.6°N).
const LAT_MAX: f64 = 84.0;
/// Southernmost latitude shown (Tierra del Fuego, South Georgia).
const LAT_MIN: f64 = -58.0;
/// Pixels per degree, the same on both axes as plate carrée requires.
const SCALE: f64 = (SIZE.0 as f64 - 2.0 * MARGIN) / 360.0;
/// Sea colour: pale, so grey no-data land still stands out from it.
pub(crate) const SEA: RGBColor = RGBColor(228, 238, 248);
/// Countries whose drawn shape is narrower than this many pixels get a dot instead.
const TINY_PX: i32 = 4;
/// Width of the legend's colour bar.
const BAR_W: i32 = 560;

/// Draws `values` (ISO 3166 alpha-2 code, probability in [0, 1]) on a world map and writes
/// it to `path` as SVG. Codes not in the map data are ignored; so is Taiwan (`TW`), which
/// the bundled shapes do not contain.
pub fn world_map_svg(
    path: &Path,
    values: &[(String, f64)],
    title: &str,
    legend: &str,
) -> Result<()> {
    let values = by_code(values);
    canvas::render_svg(path, SIZE, |root| draw(root, &values, title, legend))
}

/// Draws `values` like [`world_map_svg`] and writes it to `path` as a 1600 x 810 PNG.
pub fn world_map_png(
    path: &Path,
    values: &[(String, f64)],
    title: &str,
    legend: &str,
) -> Result<()> {
    let values = by_code(values);
    canvas::render_png(path, SIZE, |root| draw(root, &values, title, legend))
}

/// The values keyed by upper-case code (the map data's spelling); a later duplicate wins.
fn by_code(values: &[(String, f64)]) -> HashMap<String, f64> {
    values
        .iter()
        .map(|(c, v)| (c.to_ascii_uppercase(), *v))
        .collect()
}

/// Every country, projected, in drawing order: built once per process, the first time a
/// map is drawn or [`preload`] runs. The bundled shapes (about 0.5 M points) are
/// decompressed and projected for it and then dropped; the projected rings are a few
/// thousand points.
fn shapes() -> &'static [Shape] {
    static SHAPES: OnceLock<Vec<Shape>> = OnceLock::new();
    SHAPES.get_or_init(|| project_all(&world_data::load()))
}

/// Builds what the maps draw (the projected shapes; ~0.1 s) and registers the font now,
/// so that the first map drawn later costs no more than the next. For servers that would
/// rather pay it at start-up than inside the first job.
pub fn preload() -> Result<()> {
    shapes();
    crate::font::ensure_registered()
}

/// Pixel of longitude `lon`, latitude `lat`; south of [`LAT_MIN`] is pressed onto the
/// bottom edge, so the few islands that reach past it (South Sandwich) stay in the frame.
pub(crate) fn project(lon: f64, lat: f64) -> (i32, i32) {
    let x = MARGIN + (lon + 180.0) * SCALE;
    let y = TOP + (LAT_MAX - lat.max(LAT_MIN)) * SCALE;
    (x.round() as i32, y.round() as i32)
}

/// A ring's pixels with repeats and straight-run middles dropped: at 4 px per degree most
/// of the 10 m-scale points land on a pixel already visited or on a straight pixel run, and
/// the SVG would be several times bigger with them.
fn ring(coords: impl IntoIterator<Item = (f32, f32)>) -> Vec<(i32, i32)> {
    let mut out: Vec<(i32, i32)> = Vec::new();
    for (lon, lat) in coords {
        let p = project(f64::from(lon), f64::from(lat));
        if out.last() == Some(&p) {
            continue;
        }
        if let [.., a, b] = out[..] {
            let (u, v) = ((b.0 - a.0, b.1 - a.1), (p.0 - b.0, p.1 - b.1));
            let straight = u.0 * v.1 == u.1 * v.0 && u.0 * v.0 + u.1 * v.1 > 0;
            if straight {
                out.pop();
            }
        }
        out.push(p);
    }
    out
}

/// One country ready to draw: rings in pixels, largest country first.
struct Shape {
    /// ISO alpha-2 code.
    code: String,
    /// Outer rings of every polygon.
    outer: Vec<Vec<(i32, i32)>>,
    /// Holes of every polygon (enclaves, lakes).
    holes: Vec<Vec<(i32, i32)>>,
    /// Whether the whole country is smaller than [`TINY_PX`] across.
    tiny: bool,
}

/// Taiwan's outline (lon, lat), coarse: the bundled shapes have no TW, and `client predict
/// --country TW` is the example every user tries first.
const TAIWAN: [(f32, f32); 14] = [
    (121.55, 25.30),
    (121.92, 24.98),
    (121.83, 24.40),
    (121.52, 23.50),
    (121.20, 22.78),
    (120.85, 21.92),
    (120.62, 22.30),
    (120.25, 22.62),
    (120.10, 23.05),
    (120.15, 23.62),
    (120.40, 24.30),
    (120.72, 24.72),
    (121.02, 25.10),
    (121.55, 25.30),
];

/// Every country of `world` but Antarctica, projected, in drawing order.
fn project_all(world: &WorldData) -> Vec<Shape> {
    let mut countries: Vec<_> = world
        .countries
        .iter()
        .filter(|(code, _)| code.as_str() != "AQ")
        .collect();
    countries.sort_by(|a, b| b.1.area.cmp(&a.1.area).then(a.0.cmp(b.0)));
    countries
        .into_iter()
        .map(|(code, c)| {
            let outer: Vec<_> = c
                .polygons
                .iter()
                .map(|p| ring(p.exterior().0.iter().map(|q| (q.x, q.y))))
                .collect();
            let holes = c
                .polygons
                .iter()
                .flat_map(|p| p.interiors())
                .map(|r| ring(r.0.iter().map(|q| (q.x, q.y))))
                .collect();
            let (xs, ys): (Vec<i32>, Vec<i32>) = outer.iter().flatten().copied().unzip();
            let span = |v: &[i32]| v.iter().max().unwrap_or(&0) - v.iter().min().unwrap_or(&0);
            let tiny = span(&xs) < TINY_PX && span(&ys) < TINY_PX;
            Shape {
                code: code.clone(),
                outer,
                holes,
                tiny,
            }
        })
        .chain((!world.countries.contains_key("TW")).then(|| Shape {
            code: "TW".to_string(),
            outer: vec![ring(TAIWAN)],
            holes: vec![],
            tiny: false,
        }))
        .collect()
}

/// Centre of a shape's bounding box.
fn centre(s: &Shape) -> (i32, i32) {
    let pts = s.outer.iter().flatten();
    let (x0, x1) = pts
        .clone()
        .fold((i32::MAX, i32::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = pts.fold((i32::MAX, i32::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    ((x0 + x1) / 2, (y0 + y1) / 2)
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    values: &HashMap<String, f64>,
    title: &str,
    legend: &str,
) -> DrawResult<DB> {
    canvas::title(root, title, 16)?;
    let (x0, y0) = project(-180.0, LAT_MAX);
    let (x1, y1) = project(180.0, LAT_MIN);
    root.draw(&Rectangle::new([(x0, y0), (x1, y1)], SEA.filled()))?;
    let shapes = shapes();
    let fill = |s: &Shape| {
        values
            .get(&s.code)
            .map_or(colour::MISSING, |&v| colour::sequential(v))
    };
    for s in shapes {
        let style = fill(s).filled();
        for r in s.outer.iter().filter(|r| r.len() >= 3) {
            root.draw(&Polygon::new(r.clone(), style))?;
        }
        for r in s.holes.iter().filter(|r| r.len() >= 3) {
            root.draw(&Polygon::new(r.clone(), SEA.filled()))?;
        }
    }
    // Borders after all fills, so no later country paints over an earlier one's edge.
    let border = BLACK.mix(0.55).stroke_width(1);
    for r in shapes.iter().flat_map(|s| s.outer.iter().chain(&s.holes)) {
        if r.len() >= 2 {
            let mut closed = r.clone();
            closed.push(r[0]);
            root.draw(&PathElement::new(closed, border))?;
        }
    }
    for s in shapes
        .iter()
        .filter(|s| s.tiny && values.contains_key(&s.code))
    {
        root.draw(&Circle::new(centre(s), 4, fill(s).filled()))?;
        root.draw(&Circle::new(centre(s), 4, border))?;
    }
    root.draw(&Rectangle::new(
        [(x0, y0), (x1, y1)],
        BLACK.mix(0.4).stroke_width(1),
    ))?;
    draw_legend(root, y1, legend)
}

/// A horizontal colour bar 0..1 under the map, centred, with the legend text above it and
/// a grey "no data" swatch beside it.
fn draw_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    map_bottom: i32,
    legend: &str,
) -> DrawResult<DB> {
    let w = root.dim_in_pixel().0 as i32;
    let x = (w - BAR_W) / 2;
    let top = map_bottom + 40;
    let h = 20;
    let caption = canvas::anchored(canvas::text(16.0), HPos::Center, VPos::Bottom);
    root.draw(&Text::new(legend.to_string(), (w / 2, top - 8), caption))?;
    // Two-pixel steps: smooth to the eye and half the SVG elements of one-pixel ones.
    for i in (0..BAR_W).step_by(2) {
        let t = f64::from(i) / f64::from(BAR_W - 1);
        root.draw(&Rectangle::new(
            [(x + i, top), (x + i + 2, top + h)],
            colour::sequential(t).filled(),
        ))?;
    }
    root.draw(&Rectangle::new(
        [(x, top), (x + BAR_W, top + h)],
        BLACK.stroke_width(1),
    ))?;
    let label = canvas::anchored(canvas::text(14.0), HPos::Center, VPos::Top);
    for k in 0..=4 {
        let tx = x + (BAR_W * k) / 4;
        root.draw(&PathElement::new(
            vec![(tx, top + h), (tx, top + h + 5)],
            BLACK,
        ))?;
        let text = ["0", "0.25", "0.5", "0.75", "1"][k as usize];
        root.draw(&Text::new(text, (tx, top + h + 8), label.clone()))?;
    }
    let sx = x + BAR_W + 40;
    root.draw(&Rectangle::new(
        [(sx, top), (sx + 30, top + h)],
        colour::MISSING.filled(),
    ))?;
    root.draw(&Rectangle::new(
        [(sx, top), (sx + 30, top + h)],
        BLACK.mix(0.55).stroke_width(1),
    ))?;
    let side = canvas::anchored(canvas::text(14.0), HPos::Left, VPos::Center);
    root.draw(&Text::new("no data", (sx + 38, top + h / 2), side))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb(c: RGBColor) -> [u8; 3] {
        [c.0, c.1, c.2]
    }

    #[test]
    fn rings_keep_only_corners() {
        let step = 1.0 / SCALE as f32;
        let square = [
            (0.0, 0.0),
            (step, 0.0),
            (2.0 * step, 0.0),
            (2.0 * step, 0.0),
            (2.0 * step, -step),
        ];
        let (x, y) = project(0.0, 0.0);
        assert_eq!(ring(square), vec![(x, y), (x + 2, y), (x + 2, y + 1)]);
    }

    fn probe() -> Vec<(String, f64)> {
        vec![
            ("AU".into(), 1.0),
            ("br".into(), 0.0),
            ("ZZ".into(), 0.5),
            ("SG".into(), 1.0),
            ("TW".into(), 1.0),
        ]
    }

    #[test]
    fn png_colours_countries_by_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.png");
        world_map_png(&path, &probe(), "test", "P(increase)").unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), SIZE);
        let at = |lon, lat| {
            let (x, y) = project(lon, lat);
            img.get_pixel(x as u32, y as u32).0
        };
        let top = rgb(colour::sequential(1.0));
        assert_eq!(at(134.0, -25.0), top, "middle of Australia");
        let bottom = rgb(colour::sequential(0.0));
        assert_eq!(at(-50.0, -10.0), bottom, "middle of Brazil");
        let grey = rgb(colour::MISSING);
        assert_eq!(at(-105.0, 55.0), grey, "Canada has no value");
        assert_eq!(at(-140.0, 0.0), rgb(SEA), "Pacific");
        // Singapore is a dot, but a dot in the top colour.
        assert_eq!(at(103.82, 1.35), top, "Singapore");
        assert_eq!(at(121.0, 23.7), top, "Taiwan, drawn from its own outline");
    }

    #[test]
    fn enclaves_are_drawn_over_their_surroundings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.png");
        let values = vec![("ZA".to_string(), 0.0), ("LS".to_string(), 1.0)];
        world_map_png(&path, &values, "t", "p").unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        let (x, y) = project(28.3, -29.6);
        let top = rgb(colour::sequential(1.0));
        assert_eq!(img.get_pixel(x as u32, y as u32).0, top, "Lesotho");
    }
}
