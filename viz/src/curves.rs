//! Per-epoch curves: the classifier's loss and accuracy side by side, a generic multi-line
//! chart, and the VAE's negative ELBO (training and, when images were held out, validation)
//! with its reconstruction and KL parts (KL on its own right-hand axis, because with
//! kl_weight 100 it is orders of magnitude below the rest).
//!
//! The x axis is the 1-based epoch, with one spare epoch either side so that a run of one
//! epoch still shows its point; short runs (up to [`MARKER_MAX_EPOCHS`]) also get markers.

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::canvas::{self, DrawResult};
use crate::legend::{Entry, head};
use crate::{Result, VizError, colour};

/// Runs up to this many epochs get a marker on every point, so one or two points are visible.
const MARKER_MAX_EPOCHS: usize = 30;
/// Size of the two-panel learning-curve picture.
const CURVES_SIZE: (u32, u32) = (1400, 560);
/// Size of a single-panel chart.
const CHART_SIZE: (u32, u32) = (1000, 600);
/// Height of the title strip above the panels.
const TITLE_H: u32 = 50;
/// Colour of the dashed reference line: neutral, so it reads as a bar, not a result.
const REFERENCE: RGBColor = RGBColor(100, 100, 100);

/// A classifier's per-epoch history, each slice indexed by epoch - 1.
pub struct Curves<'a> {
    /// Mean training loss per epoch.
    pub train_loss: &'a [f64],
    /// Test loss per epoch.
    pub test_loss: &'a [f64],
    /// Training accuracy per epoch, in [0, 1].
    pub train_acc: &'a [f64],
    /// Test accuracy per epoch, in [0, 1].
    pub test_acc: &'a [f64],
    /// Validation loss per epoch; empty when the run held no validation set.
    pub val_loss: &'a [f64],
    /// Validation accuracy per epoch; empty when the run held no validation set.
    pub val_acc: &'a [f64],
    /// Accuracy of always predicting the majority class, drawn dashed as the bar to beat.
    pub baseline_acc: Option<f64>,
}

/// A VAE's per-epoch history, each slice indexed by epoch - 1.
pub struct VaeCurves<'a> {
    /// Negative ELBO on the training images.
    pub neg_elbo: &'a [f64],
    /// Negative ELBO on the held-out images; empty when the run held none out.
    pub val_neg_elbo: &'a [f64],
    /// Reconstruction term of the training −ELBO.
    pub recon: &'a [f64],
    /// KL term of the training −ELBO.
    pub kl: &'a [f64],
}

/// One named series of a [`line_chart`], plotted against epoch 1, 2, ...
pub struct SeriesSpec<'a> {
    /// Legend text.
    pub name: &'a str,
    /// One value per epoch; non-finite values are skipped.
    pub values: &'a [f64],
}

/// One line of a panel with the colour it is drawn in.
struct Line<'a> {
    /// Legend text.
    name: &'a str,
    /// One value per epoch.
    values: &'a [f64],
    /// Stroke colour.
    colour: RGBColor,
}

impl<'a> Line<'a> {
    /// This line's legend entry.
    fn entry(&self) -> Entry<'a> {
        Entry {
            name: self.name,
            colour: self.colour,
            dashed: false,
        }
    }
}

/// What one chart panel shows.
struct Panel<'a> {
    /// Caption above the plot area (empty for none).
    caption: &'a str,
    /// Text of the x axis.
    x_label: &'a str,
    /// Text of the y axis.
    y_label: &'a str,
    /// Lines on the left axis.
    lines: Vec<Line<'a>>,
    /// A dashed horizontal reference line and its legend text.
    reference: Option<(&'a str, f64)>,
}

/// Draws `curves` as a PNG at `path`: loss (train, test, and validation when there is
/// one) on the left and accuracy (the same, and the dashed majority baseline) on the right,
/// both against the epoch.
///
/// Errors if every series is empty.
pub fn learning_curves(path: &Path, curves: &Curves, title: &str) -> Result<()> {
    let all = [
        curves.train_loss,
        curves.test_loss,
        curves.train_acc,
        curves.test_acc,
    ];
    if all.iter().all(|s| s.is_empty()) {
        return Err(VizError::bad_input(path, "learning curves have no epochs"));
    }
    let loss = Panel {
        caption: "Loss",
        x_label: "epoch",
        y_label: "loss",
        lines: with_val(
            vec![
                line("train", curves.train_loss, 0),
                line("test", curves.test_loss, 1),
            ],
            curves.val_loss,
        ),
        reference: None,
    };
    let acc = Panel {
        caption: "Accuracy",
        x_label: "epoch",
        y_label: "accuracy",
        lines: with_val(
            vec![
                line("train", curves.train_acc, 0),
                line("test", curves.test_acc, 1),
            ],
            curves.val_acc,
        ),
        reference: curves.baseline_acc.map(|b| ("majority baseline", b)),
    };
    canvas::render_png(path, CURVES_SIZE, |root| {
        canvas::title(root, title, 12)?;
        let (_, body) = root.split_vertically(TITLE_H);
        let (left, right) = body.split_horizontally(CURVES_SIZE.0 / 2);
        draw_panel(&left, &loss)?;
        draw_panel(&right, &acc)
    })
}

/// Draws several named series against the epoch as a PNG line chart at `path`.
///
/// Errors if there is no series or every series is empty.
pub fn line_chart(
    path: &Path,
    series: &[SeriesSpec],
    title: &str,
    x_label: &str,
    y_label: &str,
) -> Result<()> {
    if series.iter().all(|s| s.values.is_empty()) {
        return Err(VizError::bad_input(path, "line chart has no points"));
    }
    let panel = Panel {
        caption: "",
        x_label,
        y_label,
        lines: series
            .iter()
            .enumerate()
            .map(|(i, s)| line(s.name, s.values, i))
            .collect(),
        reference: None,
    };
    canvas::render_png(path, CHART_SIZE, |root| {
        canvas::title(root, title, 12)?;
        let (_, body) = root.split_vertically(TITLE_H);
        draw_panel(&body, &panel)
    })
}

/// Draws the VAE's per-epoch negative ELBO (training, and validation when there is one)
/// and reconstruction term on the left axis and its KL term on a right axis of its own, as
/// a PNG at `path`. The validation curve beside the training one shows where the model
/// starts to fit its training images rather than faces in general.
///
/// Errors if every series is empty.
pub fn vae_curves(path: &Path, curves: &VaeCurves, title: &str) -> Result<()> {
    let all = [
        curves.neg_elbo,
        curves.val_neg_elbo,
        curves.recon,
        curves.kl,
    ];
    if all.iter().all(|s| s.is_empty()) {
        return Err(VizError::bad_input(path, "VAE curves have no epochs"));
    }
    let mut left = Vec::with_capacity(3);
    if curves.val_neg_elbo.is_empty() {
        left.push(line("−ELBO", curves.neg_elbo, 0));
    } else {
        left.push(line("−ELBO (train)", curves.neg_elbo, 0));
        left.push(line("−ELBO (validation)", curves.val_neg_elbo, 2));
    }
    left.push(line("reconstruction", curves.recon, 1));
    let right = line("KL (right axis)", curves.kl, 3);
    canvas::render_png(path, CHART_SIZE, |root| {
        canvas::title(root, title, 12)?;
        let (_, body) = root.split_vertically(TITLE_H);
        draw_dual(&body, &left, &right)
    })
}

/// `lines` with a "validation" line of `values` added when there are any.
fn with_val<'a>(mut lines: Vec<Line<'a>>, values: &'a [f64]) -> Vec<Line<'a>> {
    if !values.is_empty() {
        lines.push(line("validation", values, 2));
    }
    lines
}

/// A [`Line`] in the `i`-th palette colour.
fn line<'a>(name: &'a str, values: &'a [f64], i: usize) -> Line<'a> {
    Line {
        name,
        values,
        colour: colour::series(i),
    }
}

/// Spare epochs either side: a single-epoch run would otherwise have a zero-width axis.
fn x_range(lines: &[&Line]) -> Range<i32> {
    let epochs = lines.iter().map(|l| l.values.len()).max().unwrap_or(0);
    0..epochs as i32 + 1
}

/// The finite values' span plus 5 %, widened when flat so the line is not on the frame.
fn y_range(lines: &[&Line], extra: Option<f64>) -> Range<f64> {
    let values = lines
        .iter()
        .flat_map(|l| l.values.iter().copied())
        .chain(extra);
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return 0.0..1.0;
    }
    let pad = if hi - lo > f64::EPSILON * hi.abs().max(1.0) {
        (hi - lo) * 0.05
    } else {
        (hi.abs() * 0.1).max(0.05)
    };
    lo - pad..hi + pad
}

/// The line's finite points as (epoch, value), epochs counted from 1.
fn points(l: &Line) -> Vec<(i32, f64)> {
    (1..)
        .zip(l.values.iter().copied())
        .filter(|(_, v)| v.is_finite())
        .collect()
}

/// The series marker radius: only short runs get one.
fn marker(l: &Line) -> u32 {
    if l.values.len() <= MARKER_MAX_EPOCHS {
        3
    } else {
        0
    }
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel) -> DrawResult<DB> {
    let refs: Vec<&Line> = p.lines.iter().collect();
    let reference_style = REFERENCE.stroke_width(2);
    let mut entries: Vec<Entry> = p.lines.iter().map(Line::entry).collect();
    if let Some((name, _)) = p.reference {
        entries.push(Entry {
            name,
            colour: REFERENCE,
            dashed: true,
        });
    }
    let body = head(area, p.caption, &entries)?;
    let x = x_range(&refs);
    let mut chart = ChartBuilder::on(&body)
        .margin(15)
        .margin_top(5)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x.clone(), y_range(&refs, p.reference.map(|r| r.1)))?;
    chart
        .configure_mesh()
        .x_desc(p.x_label)
        .y_desc(p.y_label)
        .label_style(canvas::text(14.0))
        .axis_desc_style(canvas::text(16.0))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(TRANSPARENT)
        .x_labels(10)
        .y_labels(8)
        .y_label_formatter(&tick)
        .draw()?;
    for l in &p.lines {
        chart.draw_series(
            LineSeries::new(points(l), l.colour.stroke_width(2)).point_size(marker(l)),
        )?;
    }
    if let Some((_, y)) = p.reference {
        chart.draw_series(DashedLineSeries::new(
            [(x.start, y), (x.end, y)],
            8,
            6,
            reference_style,
        ))?;
    }
    Ok(())
}

fn draw_dual<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    left: &[Line],
    right: &Line,
) -> DrawResult<DB> {
    let all: Vec<&Line> = left.iter().chain([right]).collect();
    let left_refs: Vec<&Line> = left.iter().collect();
    let entries: Vec<Entry> = all.iter().map(|l| l.entry()).collect();
    let body = head(area, "", &entries)?;
    let mut chart = ChartBuilder::on(&body)
        .margin(15)
        .margin_top(5)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .right_y_label_area_size(80)
        .build_cartesian_2d(x_range(&all), y_range(&left_refs, None))?
        .set_secondary_coord(x_range(&all), y_range(&[right], None));
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("−ELBO and reconstruction")
        .label_style(canvas::text(14.0))
        .axis_desc_style(canvas::text(16.0))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(TRANSPARENT)
        .x_labels(10)
        .y_labels(8)
        .y_label_formatter(&tick)
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("KL divergence")
        .label_style(canvas::text(14.0).color(&right.colour))
        .axis_desc_style(canvas::text(16.0).color(&right.colour))
        .y_labels(8)
        .y_label_formatter(&tick)
        .draw()?;
    for l in left {
        chart.draw_series(
            LineSeries::new(points(l), l.colour.stroke_width(2)).point_size(marker(l)),
        )?;
    }
    let kl = LineSeries::new(points(right), right.colour.stroke_width(2)).point_size(marker(right));
    chart.draw_secondary_series(kl)?;
    Ok(())
}

/// Formats an axis tick without float noise or a useless trailing `.0`.
fn tick(v: &f64) -> String {
    if *v != 0.0 && v.abs() < 1e-4 {
        return format!("{v:.2e}");
    }
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}
