//! The picture of a rolling backtest: on the left a reliability diagram (per bin of
//! forecast probability, the share of forecasts that came true against the mean
//! probability given, with the diagonal a calibrated forecaster would follow and each
//! point's size growing with the forecasts in its bin), on the right the accuracy of every
//! forecast day against the always-"no" baseline of that day. Read together they say
//! whether the probabilities can be taken at face value and whether the model beats
//! guessing day after day.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::canvas::{self, DrawResult};
use crate::legend::{Entry, head};
use crate::{Result, VizError, colour};

/// Size of the two-panel picture.
const SIZE: (u32, u32) = (1400, 600);
/// Height of the title strip above the panels.
const TITLE_H: u32 = 50;
/// Colour of the dashed reference lines.
const REFERENCE: RGBColor = RGBColor(100, 100, 100);

/// One calibration bin of forecasts.
pub struct ReliabilityBin {
    /// Mean forecast probability in the bin.
    pub mean_p: f64,
    /// Share of the bin's forecasts whose event happened.
    pub observed: f64,
    /// Forecasts in the bin.
    pub count: usize,
}

/// One forecast day's score.
pub struct DayScore {
    /// Accuracy of the model's forecasts of that day.
    pub accuracy: f64,
    /// Accuracy of answering "no" for every country that day.
    pub baseline: f64,
}

/// Draws the backtest picture as a PNG at `path`; `first_day` labels the x axis of the
/// daily panel ("forecast day (1 = 2020-04-13)").
///
/// Errors if there is neither a bin nor a day to draw.
pub fn backtest_chart(
    path: &Path,
    bins: &[ReliabilityBin],
    days: &[DayScore],
    first_day: &str,
    title: &str,
) -> Result<()> {
    if bins.iter().all(|b| b.count == 0) && days.is_empty() {
        return Err(VizError::bad_input(path, "the backtest has no forecasts"));
    }
    canvas::render_png(path, SIZE, |root| {
        canvas::title(root, title, 12)?;
        let (_, body) = root.split_vertically(TITLE_H);
        let (left, right) = body.split_horizontally(SIZE.0 / 2);
        reliability(&left, bins)?;
        daily(&right, days, first_day)
    })
}

fn reliability<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    bins: &[ReliabilityBin],
) -> DrawResult<DB> {
    let model = colour::series(0);
    let entries = [
        Entry {
            name: "forecasts (size: how many)",
            colour: model,
            dashed: false,
        },
        Entry {
            name: "calibrated",
            colour: REFERENCE,
            dashed: true,
        },
    ];
    let body = head(area, "Reliability", &entries)?;
    let mut chart = ChartBuilder::on(&body)
        .margin(15)
        .margin_top(5)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("forecast P(increase)")
        .y_desc("observed share of increases")
        .label_style(canvas::text(14.0))
        .axis_desc_style(canvas::text(16.0))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(TRANSPARENT)
        .draw()?;
    chart.draw_series(DashedLineSeries::new(
        [(0.0, 0.0), (1.0, 1.0)],
        8,
        6,
        REFERENCE.stroke_width(2),
    ))?;
    let used: Vec<&ReliabilityBin> = bins.iter().filter(|b| b.count > 0).collect();
    let most = used.iter().map(|b| b.count).max().unwrap_or(1) as f64;
    chart.draw_series(LineSeries::new(
        used.iter().map(|b| (b.mean_p, b.observed)),
        model.stroke_width(2),
    ))?;
    chart.draw_series(used.iter().map(|b| {
        // Area, not radius, grows with the count: 3 px for one forecast, 14 px for the most.
        let r = 3.0 + 11.0 * (b.count as f64 / most).sqrt();
        Circle::new((b.mean_p, b.observed), r as i32, model.filled())
    }))?;
    Ok(())
}

fn daily<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    days: &[DayScore],
    first_day: &str,
) -> DrawResult<DB> {
    let (model, base) = (colour::series(0), REFERENCE);
    let entries = [
        Entry {
            name: "model",
            colour: model,
            dashed: false,
        },
        Entry {
            name: "always \"no\"",
            colour: base,
            dashed: true,
        },
    ];
    let body = head(area, "Accuracy per forecast day", &entries)?;
    let x_desc = format!("forecast day (1 = {first_day})");
    let mut chart = ChartBuilder::on(&body)
        .margin(15)
        .margin_top(5)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0..days.len() as i32 + 1, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc(x_desc.as_str())
        .y_desc("accuracy")
        .label_style(canvas::text(14.0))
        .axis_desc_style(canvas::text(16.0))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(TRANSPARENT)
        .x_labels(10)
        .draw()?;
    let at =
        |f: fn(&DayScore) -> f64| -> Vec<(i32, f64)> { (1..).zip(days.iter().map(f)).collect() };
    chart.draw_series(LineSeries::new(at(|d| d.accuracy), model.stroke_width(2)).point_size(3))?;
    chart.draw_series(DashedLineSeries::new(
        at(|d| d.baseline),
        8,
        6,
        base.stroke_width(2),
    ))?;
    Ok(())
}
