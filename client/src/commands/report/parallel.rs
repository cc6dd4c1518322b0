//! A parallel-coordinates plot of hyperparameters against a metric, drawn with plotters as
//! an SVG: one vertical axis per knob and a last one for the metric, and one line per
//! trial through its values, darker for better trials (the best drawn last and thicker).
//!
//! A knob with few values (a grid's) gets them evenly spaced and labelled, which reads
//! better than a linear scale where 0, 1 and 100 or 0.001 and 0.01 crowd together; a knob
//! with many values (random search) gets a continuous scale, logarithmic when it spans a
//! factor of ten or more. The metric axis is always linear.
//!
//! Text is drawn as SVG `<text>` in the browser's sans-serif, so no font is needed here.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Knobs with at most this many values are drawn as evenly spaced categories.
const MAX_ORDINAL: usize = 8;
/// Picture size in SVG units (pixels at 100 %).
const SIZE: (u32, u32) = (1100, 520);
/// Space around the axes: left, right, top, bottom.
const MARGIN: (i32, i32, i32, i32) = (80, 90, 86, 56);
/// Size of the tick labels in CSS pixels.
const TICK_PX: f64 = 13.0;
/// plotters' SVG backend writes `font-size` as the size asked for / 1.24; asking for
/// `px * PT` gives `px` pixels in the browser.
const PT: f64 = 1.24;
/// Colour of the worst trial's line (light blue) and of the best (dark blue).
const WORST: (f64, f64, f64) = (189.0, 215.0, 238.0);
const BEST: (f64, f64, f64) = (8.0, 48.0, 107.0);

/// One knob's value for every trial.
pub enum Values {
    /// Names (the cell type): evenly spaced, in alphabetical order.
    Text(Vec<String>),
    /// Numbers.
    Num(Vec<f64>),
}

/// One axis of the plot.
pub struct Axis {
    /// Its title.
    pub name: String,
    /// One value per trial.
    pub values: Values,
}

/// What to draw.
pub struct Plot {
    /// Title above the axes.
    pub title: String,
    /// The knobs, left to right.
    pub knobs: Vec<Axis>,
    /// Name of the metric (the last axis).
    pub metric: String,
    /// The metric of every trial.
    pub scores: Vec<f64>,
    /// Whether a higher metric is better (accuracy) or a lower one (−ELBO).
    pub higher_is_better: bool,
}

/// Where a value sits on its axis, 0 at the bottom and 1 at the top, and the axis labels.
struct Scale {
    /// Position of each trial's value.
    pos: Vec<f64>,
    /// (position, text) of each label.
    ticks: Vec<(f64, String)>,
}

/// Evenly spaced categories: `keys` sorted, each at its rank.
fn ordinal(keys: &[String], sort: impl Fn(&String, &String) -> std::cmp::Ordering) -> Scale {
    let mut distinct: Vec<String> = keys.to_vec();
    distinct.sort_by(&sort);
    distinct.dedup();
    let at = |i: usize| match distinct.len() {
        1 => 0.5,
        n => i as f64 / (n - 1) as f64,
    };
    let pos = keys
        .iter()
        .map(|k| at(distinct.iter().position(|d| d == k).unwrap_or(0)))
        .collect();
    let ticks = distinct
        .iter()
        .enumerate()
        .map(|(i, d)| (at(i), d.clone()))
        .collect();
    Scale { pos, ticks }
}

/// A number for a label: short, without float noise.
fn label(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e5) {
        return format!("{v:.2e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// `v` with as many decimals as labels `step` apart need to differ (at most 6).
fn stepped(v: f64, step: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e5) {
        return format!("{v:.2e}");
    }
    let decimals = match step > 0.0 {
        true => (1.0 - step.log10().floor()).clamp(0.0, 6.0) as usize,
        false => 4,
    };
    format!("{v:.decimals$}")
}

/// A continuous scale over `lo..hi` (log when `log`), five labels.
fn continuous(values: &[f64], lo: f64, hi: f64, log: bool) -> Scale {
    let f = |v: f64| if log { v.ln() } else { v };
    let (a, b) = (f(lo), f(hi));
    let at = |v: f64| if b > a { (f(v) - a) / (b - a) } else { 0.5 };
    let ticks = (0..5)
        .map(|i| {
            let t = i as f64 / 4.0;
            let v = a + t * (b - a);
            let s = match log {
                true => label(v.exp()),
                false => stepped(v, (b - a) / 4.0),
            };
            (t, s)
        })
        .collect();
    Scale {
        pos: values.iter().map(|&v| at(v)).collect(),
        ticks,
    }
}

/// The scale of one knob.
fn knob_scale(values: &Values) -> Scale {
    match values {
        Values::Text(t) => ordinal(t, |a, b| a.cmp(b)),
        Values::Num(v) => {
            let mut distinct = v.clone();
            distinct.sort_by(f64::total_cmp);
            distinct.dedup();
            if distinct.len() <= MAX_ORDINAL {
                let keys: Vec<String> = v.iter().map(|x| label(*x)).collect();
                let rank = |s: &String| distinct.iter().position(|d| label(*d) == *s).unwrap_or(0);
                return ordinal(&keys, |a, b| rank(a).cmp(&rank(b)));
            }
            let (lo, hi) = (distinct[0], distinct[distinct.len() - 1]);
            continuous(v, lo, hi, lo > 0.0 && hi / lo >= 10.0)
        }
    }
}

/// The metric's scale: its span plus a little room, so no line ends on the frame.
fn metric_scale(scores: &[f64]) -> Scale {
    let lo = scores.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else {
        (hi.abs() * 0.01).max(1e-3)
    };
    continuous(scores, lo - pad, hi + pad, false)
}

/// The line colour of a trial whose quality is `q` (0 worst, 1 best).
fn shade(q: f64) -> RGBColor {
    let mix = |a: f64, b: f64| (a + (b - a) * q.clamp(0.0, 1.0)).round() as u8;
    RGBColor(
        mix(WORST.0, BEST.0),
        mix(WORST.1, BEST.1),
        mix(WORST.2, BEST.2),
    )
}

/// Text in the browser's sans-serif at `px` pixels, anchored at (h, v).
fn text(px: f64, h: HPos, v: VPos) -> TextStyle<'static> {
    ("sans-serif", px * PT)
        .into_font()
        .color(&RGBColor(40, 44, 52))
        .pos(Pos::new(h, v))
}

/// Draws `p` as an SVG at `path`. Errors when there is no trial or no axis.
pub fn draw(path: &Path, p: &Plot) -> Result<()> {
    let n = p.scores.len();
    if n == 0 || p.knobs.is_empty() {
        return Err(anyhow!("{}: no trial or no knob to draw", path.display()));
    }
    let mut scales: Vec<(&str, Scale)> = p
        .knobs
        .iter()
        .map(|a| (a.name.as_str(), knob_scale(&a.values)))
        .collect();
    scales.push((p.metric.as_str(), metric_scale(&p.scores)));
    let (w, h) = (SIZE.0 as i32, SIZE.1 as i32);
    let (left, right, top, bottom) = MARGIN;
    let x = |k: usize| left + (w - left - right) * k as i32 / (scales.len() as i32 - 1).max(1);
    let y = |t: f64| top + ((h - top - bottom) as f64 * (1.0 - t)).round() as i32;
    let lo = p.scores.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = p.scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let quality = |s: f64| {
        let q = if hi > lo { (s - lo) / (hi - lo) } else { 1.0 };
        if p.higher_is_better { q } else { 1.0 - q }
    };
    // Worst first, so the best lines end up on top.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| quality(p.scores[a]).total_cmp(&quality(p.scores[b])));

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let fail = |e: &dyn std::fmt::Display| anyhow!("{}: cannot draw: {e}", path.display());
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let bold = ("sans-serif", 20.0 * PT, FontStyle::Bold)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(p.title.clone(), (w / 2, 12), bold))
            .map_err(|e| fail(&e))?;
        let last = scales.len() - 1;
        let mut labels: Vec<(String, (i32, i32), HPos)> = Vec::new();
        for (k, (name, scale)) in scales.iter().enumerate() {
            let ax = x(k);
            let axis = RGBColor(120, 126, 138).stroke_width(2);
            root.draw(&PathElement::new(vec![(ax, y(0.0)), (ax, y(1.0))], axis))
                .map_err(|e| fail(&e))?;
            let head = ("sans-serif", 15.0 * PT, FontStyle::Bold)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Bottom));
            root.draw(&Text::new(name.to_string(), (ax, top - 16), head))
                .map_err(|e| fail(&e))?;
            // Labels left of the knob axes, right of the metric axis (the plot's edge).
            let (dx, anchor) = if k == last {
                (8, HPos::Left)
            } else {
                (-8, HPos::Right)
            };
            for (t, s) in &scale.ticks {
                let tick = BLACK.mix(0.5).stroke_width(1);
                root.draw(&PathElement::new(
                    vec![(ax - 4, y(*t)), (ax + 4, y(*t))],
                    tick,
                ))
                .map_err(|e| fail(&e))?;
                labels.push((s.clone(), (ax + dx, y(*t)), anchor));
            }
        }
        for (rank, &i) in order.iter().enumerate() {
            let q = quality(p.scores[i]);
            let best = rank + 1 == n;
            let colour = shade(q);
            let points: Vec<(i32, i32)> = scales
                .iter()
                .enumerate()
                .map(|(k, (_, s))| (x(k), y(s.pos[i])))
                .collect();
            let width = if best { 4 } else { 2 };
            root.draw(&PathElement::new(
                points.clone(),
                colour.stroke_width(width),
            ))
            .map_err(|e| fail(&e))?;
            for pt in points {
                root.draw(&Circle::new(pt, 4, colour.filled()))
                    .map_err(|e| fail(&e))?;
            }
        }
        // Labels last, on a white box, so lines running through them do not hide them.
        for (s, (lx, ly), anchor) in labels {
            let w = (s.chars().count() as f64 * TICK_PX * 0.62).ceil() as i32 + 6;
            let x0 = match anchor {
                HPos::Right => lx - w + 3,
                _ => lx - 3,
            };
            let half = (TICK_PX * 0.7) as i32;
            let bg = WHITE.mix(0.85).filled();
            root.draw(&Rectangle::new([(x0, ly - half), (x0 + w, ly + half)], bg))
                .map_err(|e| fail(&e))?;
            root.draw(&Text::new(s, (lx, ly), text(TICK_PX, anchor, VPos::Center)))
                .map_err(|e| fail(&e))?;
        }
        let better = if p.higher_is_better {
            "higher"
        } else {
            "lower"
        };
        let foot = format!(
            "one line per succeeded trial; darker = {better} {}, the thickest line is the best trial",
            p.metric
        );
        root.draw(&Text::new(
            foot,
            (w / 2, h - 14),
            text(13.0, HPos::Center, VPos::Bottom),
        ))
        .map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    std::fs::write(path, svg).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_values_are_evenly_spaced_and_many_values_are_scaled() {
        let s = knob_scale(&Values::Num(vec![100.0, 0.0, 1.0, 1.0]));
        assert_eq!(s.pos, [1.0, 0.0, 0.5, 0.5]);
        let labels: Vec<&str> = s.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0", "1", "100"]);
        let s = knob_scale(&Values::Text(vec!["rnn".into(), "gru".into()]));
        assert_eq!(s.pos, [1.0, 0.0]);
        let one = knob_scale(&Values::Num(vec![8.0]));
        assert_eq!(one.pos, [0.5]);
        let lrs: Vec<f64> = (0..10).map(|i| 1e-4 * 10f64.powf(i as f64 / 4.5)).collect();
        let s = knob_scale(&Values::Num(lrs));
        assert!((s.pos[0]).abs() < 1e-12 && (s.pos[9] - 1.0).abs() < 1e-12);
        assert!(
            (s.pos[4] - 4.0 / 9.0).abs() < 1e-9,
            "log scale: {:?}",
            s.pos
        );
    }

    #[test]
    fn the_plot_is_an_svg_with_every_axis() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.svg");
        let plot = Plot {
            title: "covid".into(),
            knobs: vec![
                Axis {
                    name: "cell".into(),
                    values: Values::Text(vec!["rnn".into(), "gru".into()]),
                },
                Axis {
                    name: "L".into(),
                    values: Values::Num(vec![12.0, 40.0]),
                },
            ],
            metric: "best test accuracy".into(),
            scores: vec![0.6, 0.7],
            higher_is_better: true,
        };
        draw(&path, &plot).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for s in ["cell", "L", "best test accuracy", "rnn", "gru", "12", "40"] {
            assert!(svg.contains(&format!(">\n{s}\n</text>")), "{s} missing");
        }
    }
}
