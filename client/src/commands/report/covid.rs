//! The covid section of the report: the results table (best validation accuracy first,
//! with the served epoch's test accuracy beside the best on test), train
//! and test accuracy of every trial per window length L and per cell type, the knobs
//! against best test accuracy, the correlation heatmap, every confusion matrix, and the
//! best trial's world map with its most likely increases.

use anyhow::Result;
use serde_json::Value;
use wick_common::trial::CovidConfig;
use wick_viz::SeriesSpec;

use super::html::{self, esc, num, plain};
use super::parallel::{self, Axis, Plot, Values};
use super::{Histories, Out, name, slug};
use crate::commands::trials::{History, Trial};

/// Countries in the forecast table beside the map.
const TOP_FORECASTS: usize = 12;

/// One trial's row of the results table.
struct Row<'a> {
    /// The trial.
    t: &'a Trial,
    /// Its configuration.
    c: &'a CovidConfig,
    /// Its per-epoch metrics.
    h: &'a History,
    /// Best test accuracy and its epoch: the summary's, else the best epoch so far.
    best: Option<(f64, u64)>,
    /// The served epoch's validation accuracy, test accuracy and number (trials trained
    /// with a validation set).
    served: Option<(f64, f64, u64)>,
    /// Training accuracy after the last epoch run.
    final_train: Option<f64>,
    /// Epochs run.
    run: u64,
    /// Test accuracy of always guessing the majority class (in the summary).
    baseline: Option<f64>,
}

impl<'a> Row<'a> {
    fn new(t: &'a Trial, h: &'a History) -> Option<Row<'a>> {
        let c = t.covid()?;
        let best = match (t.summary("best_test_acc"), t.summary("best_epoch")) {
            (Some(a), Some(e)) => Some((a, e as u64)),
            _ => h.max("test_acc"),
        };
        let served = match (
            t.summary("selected_val_acc"),
            t.summary("selected_test_acc"),
            t.summary("selected_epoch"),
        ) {
            (Some(v), Some(a), Some(e)) => Some((v, a, e as u64)),
            _ => None,
        };
        Some(Row {
            t,
            c,
            h,
            best,
            served,
            final_train: t.summary("final_train_acc").or_else(|| h.last("train_acc")),
            run: match h.is_empty() {
                true => u64::from(t.status.epoch),
                false => h.len() as u64,
            },
            baseline: t.summary("test_majority_baseline"),
        })
    }
}

/// The results table, rows already sorted; the first succeeded row is the best.
fn results(rows: &[Row]) -> String {
    let numeric = [
        "L",
        "Hidden",
        "lr",
        "Val acc",
        "Test acc (served)",
        "Served epoch",
        "Best test acc",
        "Best epoch",
        "Final train acc",
        "Epochs run",
        "Majority baseline",
    ];
    let mut head = vec!["Trial", "Cell"];
    head.extend_from_slice(&numeric[..3]);
    head.push("State");
    head.extend_from_slice(&numeric[3..]);
    let mut t = html::Table::new(&head, &numeric);
    let best = rows
        .iter()
        .position(|r| r.t.succeeded() && r.best.is_some());
    for (i, r) in rows.iter().enumerate() {
        t.row(
            if Some(i) == best { "best" } else { "" },
            vec![
                format!("<code>{}</code>", esc(r.t.id())),
                esc(r.c.cell.as_str()),
                r.c.l.to_string(),
                r.c.hidden.to_string(),
                esc(&plain(r.c.lr)),
                html::state(r.t.state(), &r.t.status.message),
                num(r.served.map(|s| s.0), 3),
                num(r.served.map(|s| s.1), 3),
                r.served.map(|s| s.2.to_string()).unwrap_or("—".into()),
                num(r.best.map(|b| b.0), 3),
                r.best.map(|b| b.1.to_string()).unwrap_or("—".into()),
                num(r.final_train, 3),
                format!("{} / {}", r.run, r.c.epochs),
                num(r.baseline, 3),
            ],
        );
    }
    t.render()
}

/// Test and train accuracy of every trial in each group, two charts per group.
fn curves<K: Ord + Clone>(
    out: &mut Out,
    rows: &[Row],
    knob: &str,
    key: impl Fn(&Row) -> K,
    show: impl Fn(&K) -> String,
    notes: &mut Vec<String>,
) -> Result<String> {
    let mut keys: Vec<K> = rows.iter().map(&key).collect();
    keys.sort();
    keys.dedup();
    let mut s = String::new();
    for k in keys {
        let group: Vec<&Row> = rows
            .iter()
            .filter(|r| key(r) == k && !r.h.is_empty())
            .collect();
        let value = show(&k);
        if group.is_empty() {
            notes.push(format!(
                "accuracy curves for {knob} = {value}: no trial has finished an epoch"
            ));
            continue;
        }
        let names: Vec<String> = group.iter().map(|r| name(r.t)).collect();
        let mut figs = Vec::new();
        let charts = [
            (
                "Test",
                "test_acc",
                "Accuracy on the held-out test windows after each epoch.",
            ),
            (
                "Train",
                "train_acc",
                "Accuracy on the training windows after each epoch.",
            ),
        ];
        for (metric, field, what) in charts {
            let values: Vec<Vec<f64>> = group.iter().map(|r| r.h.series(field)).collect();
            // The bar to beat, when every trial of the group has the same one. Drawn first,
            // so a trial that never beats it (the same line) stays visible on top, and on
            // both charts, so each trial has the same colour in both.
            let first = group[0].baseline;
            let base: Vec<f64> = match first {
                Some(b) if group.iter().all(|r| r.baseline == first) => {
                    vec![b; values.iter().map(Vec::len).max().unwrap_or(0)]
                }
                _ => Vec::new(),
            };
            let mut series: Vec<SeriesSpec> = Vec::new();
            if !base.is_empty() {
                series.push(SeriesSpec {
                    name: "majority baseline (test set)",
                    values: &base,
                });
            }
            series.extend(
                names
                    .iter()
                    .zip(&values)
                    .map(|(n, v)| SeriesSpec { name: n, values: v }),
            );
            let title = format!("{metric} accuracy, {knob} = {value}");
            let file = format!(
                "covid-{}-acc-{}-{}.png",
                metric.to_lowercase(),
                slug(&knob.to_lowercase()),
                slug(&value)
            );
            let f = out.draw(&file, |p| {
                Ok(wick_viz::line_chart(
                    p, &series, &title, "epoch", "accuracy",
                )?)
            })?;
            figs.push(html::figure(&f, &title, what, "half"));
        }
        s.push_str(&format!("<h4>{} = {}</h4>\n", esc(knob), esc(&value)));
        s.push_str(&html::figures(&figs));
    }
    Ok(s)
}

/// The parallel-coordinates plot of the succeeded trials.
fn knobs_plot(out: &mut Out, rows: &[Row], notes: &mut Vec<String>) -> Result<String> {
    let done: Vec<&Row> = rows
        .iter()
        .filter(|r| r.t.succeeded() && r.best.is_some())
        .collect();
    if done.is_empty() {
        notes.push("knobs against best test accuracy: no trial has succeeded".into());
        return Ok(String::new());
    }
    let nums = |f: fn(&Row) -> f64| Values::Num(done.iter().map(|r| f(r)).collect());
    let mut knobs = vec![
        Axis {
            name: "cell".into(),
            values: Values::Text(done.iter().map(|r| r.c.cell.as_str().into()).collect()),
        },
        Axis {
            name: "L".into(),
            values: nums(|r| r.c.l as f64),
        },
        Axis {
            name: "hidden".into(),
            values: nums(|r| r.c.hidden as f64),
        },
        Axis {
            name: "lr".into(),
            values: nums(|r| r.c.lr),
        },
    ];
    if done.iter().any(|r| r.c.seed != done[0].c.seed) {
        knobs.push(Axis {
            name: "seed".into(),
            values: nums(|r| r.c.seed as f64),
        });
    }
    let plot = Plot {
        title: "Knobs against best test accuracy".into(),
        knobs,
        metric: "best test accuracy".into(),
        scores: done.iter().filter_map(|r| r.best.map(|b| b.0)).collect(),
        higher_is_better: true,
    };
    let f = out.draw("covid-knobs.svg", |p| parallel::draw(p, &plot))?;
    let caption = format!(
        "{} succeeded trials; trials that did not succeed are left out",
        done.len()
    );
    Ok(html::figures(&[html::figure(
        &f,
        "knobs against best test accuracy",
        &esc(&caption),
        "wide",
    )]))
}

/// The most likely increases of a forecast (`plots/forecast.json`), as a table.
fn forecast_table(bytes: &[u8]) -> Option<String> {
    let mut all: Vec<Value> = serde_json::from_slice(bytes).ok()?;
    let p = |v: &Value| v["probability"].as_f64().unwrap_or(f64::NAN);
    all.sort_by(|a, b| p(b).total_cmp(&p(a)));
    let up = all.iter().filter(|v| v["increase"] == true).count();
    let mut t = html::Table::new(&["Country", "ISO", "P(increase)"], &["P(increase)"]);
    for v in all.iter().take(TOP_FORECASTS) {
        t.row(
            "",
            vec![
                esc(v["country"].as_str().unwrap_or("?")),
                esc(v["iso2"].as_str().unwrap_or("")),
                num(Some(p(v)), 3),
            ],
        );
    }
    Some(format!(
        "<div><p>{} countries forecast, {up} of them to increase. Most likely increases:</p>\n{}</div>\n",
        all.len(),
        t.render()
    ))
}

/// The correlation heatmap: the same for every trial on the same data, so the first that
/// has one.
async fn heatmap(out: &mut Out<'_>, rows: &[Row<'_>], notes: &mut Vec<String>) -> Result<String> {
    for r in rows {
        let id = r.t.id();
        let file = format!("covid-heatmap-{}.png", slug(id));
        if let Some(f) = out
            .artifact(id, "plots/correlation_heatmap.png", &file)
            .await?
        {
            let caption = format!(
                "Pearson correlation of daily new cases between the countries the classifiers train on (from trial {id}; every trial on the same data has the same). Click for full size."
            );
            return Ok(html::figures(&[html::figure(
                &f,
                "correlation heatmap",
                &esc(&caption),
                "wide",
            )]));
        }
    }
    notes.push("correlation heatmap: no trial has one".into());
    Ok(String::new())
}

/// Every trial's test-set confusion matrix, in table order.
async fn confusions(
    out: &mut Out<'_>,
    rows: &[Row<'_>],
    notes: &mut Vec<String>,
) -> Result<String> {
    let mut figs = Vec::new();
    for r in rows {
        let id = r.t.id();
        let file = format!("covid-confusion-{}.png", slug(id));
        match out
            .artifact(id, "plots/confusion_matrix.png", &file)
            .await?
        {
            Some(f) => {
                let caption = format!(
                    "<code>{}</code> {}, best test acc {}",
                    esc(id),
                    esc(&name(r.t)),
                    num(r.best.map(|b| b.0), 3)
                );
                figs.push(html::figure(&f, "confusion matrix", &caption, "quarter"));
            }
            None => notes.push(format!(
                "confusion matrix of {id} ({}): the trial has none",
                r.t.state()
            )),
        }
    }
    Ok(match figs.is_empty() {
        true => String::new(),
        false => html::figures(&figs),
    })
}

/// The best trial's world map and its forecast table.
async fn map(out: &mut Out<'_>, rows: &[Row<'_>], notes: &mut Vec<String>) -> Result<String> {
    let Some(best) = rows.iter().find(|r| r.t.succeeded() && r.best.is_some()) else {
        notes.push("world map: no trial has succeeded".into());
        return Ok(String::new());
    };
    let id = best.t.id();
    let mut pic = None;
    for ext in ["svg", "png"] {
        let file = format!("covid-world-map-{}.{ext}", slug(id));
        pic = out
            .artifact(id, &format!("plots/world_map.{ext}"), &file)
            .await?;
        if pic.is_some() {
            break;
        }
    }
    let forecast = out.artifact_bytes(id, "plots/forecast.json").await?;
    let mut s = format!(
        "<p>From the best trial, <code>{}</code> {}.</p>\n<div class=\"side\">\n",
        esc(id),
        esc(&name(best.t))
    );
    match pic {
        Some(f) => s.push_str(&html::figure(
            &f,
            "world map of P(increase)",
            "P(next day's new cases increase) per country",
            "",
        )),
        None => notes.push(format!("world map of {id}: the trial has none")),
    }
    match forecast.as_deref().and_then(forecast_table) {
        Some(t) => s.push_str(&t),
        None => notes.push(format!(
            "forecast table of {id}: no readable plots/forecast.json"
        )),
    }
    s.push_str("</div>\n");
    Ok(s)
}

/// The covid section and its notes.
pub(super) async fn section(
    out: &mut Out<'_>,
    trials: &[&Trial],
    hist: &Histories,
) -> Result<(String, Vec<String>)> {
    let empty = History::default();
    let mut rows: Vec<Row> = trials
        .iter()
        .filter_map(|t| Row::new(t, hist.get(t.id()).unwrap_or(&empty)))
        .collect();
    // Best on validation first, then (trials without a validation set) best on test;
    // trials without a number yet last, in the coordinator's order.
    let rank = |r: &Row| match (r.served, r.best) {
        (Some(s), _) => Some((1, s.0)),
        (None, Some(b)) => Some((0, b.0)),
        (None, None) => None,
    };
    rows.sort_by(|a, b| match (rank(a), rank(b)) {
        (Some(x), Some(y)) => y.0.cmp(&x.0).then(y.1.total_cmp(&x.1)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let mut notes = Vec::new();
    let mut s = String::from(
        "<section id=\"covid\">\n<h2>COVID-19: will a country's new cases rise tomorrow?</h2>\n",
    );
    s.push_str(&format!(
        "<h3>Results</h3>\n<p>{} trials, best validation accuracy first. Each trial serves the weights of the epoch with the best validation accuracy; \"Test acc (served)\" is that model's test accuracy, the honest figure. \"Best test acc\" is the best of any epoch on the test set, shown for comparison only: choosing by it would be choosing on the test set. The majority baseline is the test accuracy of always guessing the more common class.</p>\n",
        rows.len()
    ));
    s.push_str(&results(&rows));
    s.push_str("<h3>Accuracy per epoch by window length L</h3>\n");
    s.push_str(&curves(
        out,
        &rows,
        "L",
        |r| r.c.l,
        |l| l.to_string(),
        &mut notes,
    )?);
    s.push_str("<h3>Accuracy per epoch by cell type</h3>\n");
    s.push_str(&curves(
        out,
        &rows,
        "cell",
        |r| r.c.cell.as_str().to_string(),
        |c| c.clone(),
        &mut notes,
    )?);
    s.push_str("<h3>Knobs against best test accuracy</h3>\n");
    s.push_str(&knobs_plot(out, &rows, &mut notes)?);
    s.push_str("<h3>Correlation of daily new cases</h3>\n");
    s.push_str(&heatmap(out, &rows, &mut notes).await?);
    s.push_str("<h3>Confusion matrices (test set)</h3>\n");
    s.push_str(&confusions(out, &rows, &mut notes).await?);
    s.push_str("<h3>Forecast of the best trial</h3>\n");
    s.push_str(&map(out, &rows, &mut notes).await?);
    s.push_str(&html::notes(&notes));
    s.push_str("</section>\n");
    Ok((s, notes))
}
