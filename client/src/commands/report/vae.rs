//! The VAE section of the report: the results table (by KL weight, with the epoch that
//! validation selected for serving), the negative ELBO per epoch of every trial on one
//! chart, the knobs against the final negative ELBO, and each trial's reconstructions,
//! prior samples and interpolation strip side by side, so what the KL weight does is seen
//! at a glance.

use anyhow::Result;
use wick_common::trial::VaeConfig;
use wick_viz::SeriesSpec;

use super::html::{self, esc, num, plain};
use super::parallel::{self, Axis, Plot, Values};
use super::{Histories, Out, name, slug};
use crate::commands::trials::{History, Trial};

/// The pictures each trial gets: artifact, file-name part, heading, what it shows, and the
/// figure's width class.
const PICTURES: [(&str, &str, &str, &str, &str); 3] = [
    (
        "plots/reconstructions.png",
        "reconstructions",
        "Reconstructions",
        "The first images of the folder (top) and what the served VAE makes of them (bottom).",
        "third",
    ),
    (
        "plots/samples.png",
        "samples",
        "Prior samples",
        "Faces decoded from z drawn from the prior N(0, I).",
        "third",
    ),
    (
        "plots/interpolation.png",
        "interpolation",
        "Interpolation",
        "As in the coursework: original | reconstruction | 11 points decoded on the straight line between the two images' latent means | reconstruction | original.",
        "wide",
    ),
];

/// A numeric knob of a row.
type Knob = fn(&Row) -> f64;

/// One trial's row of the results table.
struct Row<'a> {
    /// The trial.
    t: &'a Trial,
    /// Its configuration.
    c: &'a VaeConfig,
    /// Its per-epoch metrics.
    h: &'a History,
    /// Negative ELBO, reconstruction and KL after the last epoch run.
    last: [Option<f64>; 3],
    /// The epoch served and its validation −ELBO, when the trial held images out.
    selected: Option<(u64, f64)>,
    /// Epochs run.
    run: u64,
}

impl<'a> Row<'a> {
    fn new(t: &'a Trial, h: &'a History) -> Option<Row<'a>> {
        let c = t.vae()?;
        let pick = |summary: &str, epoch: &str| t.summary(summary).or_else(|| h.last(epoch));
        Some(Row {
            t,
            c,
            h,
            last: [
                pick("final_neg_elbo", "neg_elbo"),
                pick("final_recon", "recon"),
                pick("final_kl", "kl"),
            ],
            selected: t
                .summary("selected_epoch")
                .zip(t.summary("selected_val_neg_elbo"))
                .map(|(e, v)| (e as u64, v)),
            run: match h.is_empty() {
                true => u64::from(t.status.epoch),
                false => h.len() as u64,
            },
        })
    }

    /// The KL weight and image size, for captions.
    fn caption(&self) -> String {
        format!(
            "KL weight {}, {}×{}",
            plain(self.c.kl_weight),
            self.c.size,
            self.c.size
        )
    }
}

/// The results table. The succeeded trial marked best is the one with the lowest validation
/// −ELBO (what the coordinator ranks by); trials without a validation set rank after those
/// with one, by final −ELBO, since a training −ELBO is not comparable to a held-out one.
fn results(rows: &[Row]) -> String {
    let numeric = [
        "KL weight",
        "Size",
        "Hidden",
        "Latent",
        "lr",
        "Epochs run",
        "Final −ELBO",
        "Recon",
        "KL",
        "Selected epoch",
        "Val −ELBO",
    ];
    let mut head = vec!["Trial"];
    head.extend_from_slice(&numeric[..5]);
    head.push("State");
    head.extend_from_slice(&numeric[5..]);
    let mut t = html::Table::new(&head, &numeric);
    let best = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.t.succeeded())
        .filter_map(|(i, r)| match r.selected {
            Some((_, v)) => Some((i, (0, v))),
            None => r.last[0].map(|e| (i, (1, e))),
        })
        .min_by(|a, b| a.1.0.cmp(&b.1.0).then(a.1.1.total_cmp(&b.1.1)))
        .map(|(i, _)| i);
    for (i, r) in rows.iter().enumerate() {
        t.row(
            if Some(i) == best { "best" } else { "" },
            vec![
                format!("<code>{}</code>", esc(r.t.id())),
                esc(&plain(r.c.kl_weight)),
                format!("{0}×{0}", r.c.size),
                r.c.hidden.to_string(),
                r.c.latent.to_string(),
                esc(&plain(r.c.lr)),
                html::state(r.t.state(), &r.t.status.message),
                format!("{} / {}", r.run, r.c.epochs),
                num(r.last[0], 1),
                num(r.last[1], 1),
                num(r.last[2], 2),
                match r.selected {
                    Some((e, _)) => e.to_string(),
                    None => "last".into(),
                },
                num(r.selected.map(|(_, v)| v), 1),
            ],
        );
    }
    t.render()
}

/// The negative ELBO per epoch of every trial, one chart.
fn curves(out: &mut Out, rows: &[Row], notes: &mut Vec<String>) -> Result<String> {
    let drawn: Vec<&Row> = rows.iter().filter(|r| !r.h.is_empty()).collect();
    if drawn.is_empty() {
        notes.push("negative ELBO curves: no trial has finished an epoch".into());
        return Ok(String::new());
    }
    let names: Vec<String> = drawn.iter().map(|r| name(r.t)).collect();
    let values: Vec<Vec<f64>> = drawn.iter().map(|r| r.h.series("neg_elbo")).collect();
    let series: Vec<SeriesSpec> = names
        .iter()
        .zip(&values)
        .map(|(n, v)| SeriesSpec { name: n, values: v })
        .collect();
    let title = "Negative ELBO per epoch (lower is better)";
    let f = out.draw("vae-neg-elbo.png", |p| {
        Ok(wick_viz::line_chart(
            p,
            &series,
            title,
            "epoch",
            "−ELBO (recon + KL) per image",
        )?)
    })?;
    let caption = "−ELBO = reconstruction + KL, whatever KL weight the trial trained with, so the trials are comparable.";
    Ok(html::figures(&[html::figure(&f, title, caption, "wide")]))
}

/// The parallel-coordinates plot of the succeeded trials.
fn knobs_plot(out: &mut Out, rows: &[Row], notes: &mut Vec<String>) -> Result<String> {
    let done: Vec<&Row> = rows
        .iter()
        .filter(|r| r.t.succeeded() && r.last[0].is_some())
        .collect();
    if done.is_empty() {
        notes.push("knobs against final −ELBO: no trial has succeeded".into());
        return Ok(String::new());
    }
    let nums = |f: fn(&Row) -> f64| Values::Num(done.iter().map(|r| f(r)).collect());
    let mut knobs = vec![
        Axis {
            name: "KL weight".into(),
            values: nums(|r| r.c.kl_weight),
        },
        Axis {
            name: "size".into(),
            values: nums(|r| f64::from(r.c.size)),
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
    // Knobs sweeps rarely vary get an axis only when they do.
    let varies = |f: fn(&Row) -> f64| done.iter().any(|r| f(r) != f(done[0]));
    let extra: [(&str, Knob); 2] = [
        ("latent", |r| r.c.latent as f64),
        ("seed", |r| r.c.seed as f64),
    ];
    for (n, f) in extra {
        if varies(f) {
            knobs.push(Axis {
                name: n.into(),
                values: nums(f),
            });
        }
    }
    let plot = Plot {
        title: "Knobs against final negative ELBO".into(),
        knobs,
        metric: "final −ELBO".into(),
        scores: done.iter().filter_map(|r| r.last[0]).collect(),
        higher_is_better: false,
    };
    let f = out.draw("vae-knobs.svg", |p| parallel::draw(p, &plot))?;
    let caption = format!(
        "{} succeeded trials; trials that did not succeed are left out",
        done.len()
    );
    Ok(html::figures(&[html::figure(
        &f,
        "knobs against final negative ELBO",
        &esc(&caption),
        "wide",
    )]))
}

/// Each kind of picture for every trial, the trials side by side.
async fn pictures(out: &mut Out<'_>, rows: &[Row<'_>], notes: &mut Vec<String>) -> Result<String> {
    let mut s = String::new();
    for (artifact, part, heading, what, class) in PICTURES {
        let mut figs = Vec::new();
        for r in rows {
            let id = r.t.id();
            let file = format!("vae-{part}-{}.png", slug(id));
            match out.artifact(id, artifact, &file).await? {
                Some(f) => {
                    let caption = format!(
                        "<strong>{}</strong> · <code>{}</code>{}",
                        esc(&r.caption()),
                        esc(id),
                        match r.t.succeeded() {
                            true => String::new(),
                            false => format!(" ({})", esc(r.t.state())),
                        }
                    );
                    figs.push(html::figure(
                        &f,
                        &format!("{heading}, {}", r.caption()),
                        &caption,
                        class,
                    ));
                }
                None => notes.push(format!(
                    "{} of {id} ({}, {}): the trial has none",
                    heading.to_lowercase(),
                    r.caption(),
                    r.t.state()
                )),
            }
        }
        if !figs.is_empty() {
            s.push_str(&format!("<h3>{heading}</h3>\n<p>{what}</p>\n"));
            s.push_str(&html::figures(&figs));
        }
    }
    Ok(s)
}

/// The VAE section and its notes.
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
    rows.sort_by(|a, b| {
        let key = |r: &Row| {
            [
                r.c.kl_weight,
                f64::from(r.c.size),
                r.c.hidden as f64,
                r.c.lr,
            ]
        };
        let (x, y) = (key(a), key(b));
        x.iter()
            .zip(&y)
            .map(|(p, q)| p.total_cmp(q))
            .find(|o| o.is_ne())
            .unwrap_or(a.c.seed.cmp(&b.c.seed))
    });
    let mut notes = Vec::new();
    let mut s = String::from("<section id=\"vae\">\n<h2>Face VAEs: what the KL weight does</h2>\n");
    s.push_str(&format!(
        "<h3>Results</h3>\n<p>{} trials by KL weight. Negative ELBO, reconstruction and KL per image on the training images after the last epoch run; the selected epoch is the one with the lowest negative ELBO on the held-out images, and its weights are the ones served and pictured below (\"last\" for trials without held-out images).</p>\n",
        rows.len()
    ));
    s.push_str(&results(&rows));
    s.push_str("<h3>Negative ELBO per epoch</h3>\n");
    s.push_str(&curves(out, &rows, &mut notes)?);
    s.push_str("<h3>Knobs against final negative ELBO</h3>\n");
    s.push_str(&knobs_plot(out, &rows, &mut notes)?);
    s.push_str(&pictures(out, &rows, &mut notes).await?);
    s.push_str(&html::notes(&notes));
    s.push_str("</section>\n");
    Ok((s, notes))
}
