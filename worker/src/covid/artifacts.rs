//! What a finished COVID-19 trial leaves in its output folder: the correlation heatmap,
//! learning curves, confusion matrix, the world map of P(increase) (SVG and PNG),
//! `forecast.json` and the final `model.safetensors`.

use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use candle_core::Device;
use serde::{Deserialize, Serialize};
use wick_common::covid::{CaseTable, CovidData, Windows};
use wick_common::trial::TrialConfig;

use crate::ckpt::{self, MODEL_PREFIX};
use crate::covid::bptt::{Bptt, time_major};
use crate::covid::calibrate;
use crate::covid::model::{SeqModel, batch_time_major};
use crate::covid::train::CovidRun;
use crate::params::Params;

/// One country's forecast for the day after its last window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Forecast {
    /// Name as in the data.
    pub country: String,
    /// ISO 3166 alpha-2 code, when the country has one.
    pub iso2: Option<String>,
    /// Probability that the next day's new cases exceed the last day's.
    pub probability: f64,
    /// `probability > 0.5`.
    pub increase: bool,
}

/// P(increase) of every window of `w` at temperature `t` (see `calibrate`). On the CPU
/// the hand-written forward pass computes it from `params` (several times faster than the
/// autograd graph's forward); elsewhere `model` does.
pub fn probabilities(
    model: &SeqModel,
    params: &Params,
    w: &Windows,
    t: f64,
    device: &Device,
) -> Result<Vec<f64>> {
    let idx: Vec<usize> = (0..w.len()).collect();
    if idx.is_empty() {
        return Ok(Vec::new());
    }
    let logits: Vec<f32> = if device.is_cpu() {
        let mut bp = Bptt::new(model.cell, model.hidden);
        bp.load(params)?;
        let mut xt = Vec::new();
        time_major(&w.x, w.l, &idx, &mut xt);
        bp.forward(&xt, w.l, idx.len()).to_vec()
    } else {
        let z = model.forward(&batch_time_major(&w.x, w.l, &idx, device)?)?;
        z.detach().flatten_all()?.to_vec1()?
    };
    // softmax(a / t, b / t)[1] = 1 / (1 + e^((a − b) / t))
    Ok(logits
        .chunks_exact(2)
        .map(|z| calibrate::probability(f64::from(z[1] - z[0]), t))
        .collect())
}

/// P(increase) for every country that has at least L days (`data.last`), at temperature
/// `t`.
pub fn forecast(
    model: &SeqModel,
    params: &Params,
    t: f64,
    table: &CaseTable,
    data: &CovidData,
    device: &Device,
) -> Result<Vec<Forecast>> {
    let last = &data.last;
    let probs = probabilities(model, params, last, t, device)?;
    Ok(last
        .country
        .iter()
        .zip(probs)
        .map(|(&c, p)| Forecast {
            country: table.names[c].clone(),
            iso2: table.iso2(c).map(str::to_string),
            probability: p,
            increase: p > 0.5,
        })
        .collect())
}

/// Writes every artifact into `out` and returns the file names written.
pub fn write_all(
    out: &Path,
    config: &TrialConfig,
    table: &CaseTable,
    data: &CovidData,
    run: &CovidRun,
    device: &Device,
) -> Result<Vec<String>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut files = Vec::new();
    let mut add = |name: &str| {
        files.push(name.to_string());
        out.join(name)
    };

    correlation_heatmap(&add("correlation_heatmap.png"), table, data)?;

    let h = &run.history;
    let col = |f: fn(&crate::covid::train::EpochStats) -> f64| h.iter().map(f).collect::<Vec<_>>();
    let (trl, tel, tra, tea) = (
        col(|e| e.train_loss),
        col(|e| e.test_loss),
        col(|e| e.train_acc),
        col(|e| e.test_acc),
    );
    let TrialConfig::Covid(c) = config else {
        anyhow::bail!("not a covid trial")
    };
    let title = format!(
        "{} {} units, L = {}",
        c.cell.as_str().to_uppercase(),
        c.hidden,
        c.l
    );
    let val = |f: fn(&crate::covid::train::EpochStats) -> Option<f64>| -> Vec<f64> {
        h.iter().map_while(f).collect()
    };
    let (val_loss, val_acc) = (val(|e| e.val_loss), val(|e| e.val_acc));
    let curves = wick_viz::Curves {
        train_loss: &trl,
        test_loss: &tel,
        train_acc: &tra,
        test_acc: &tea,
        val_loss: &val_loss,
        val_acc: &val_acc,
        baseline_acc: Some(data.test.majority_baseline()),
    };
    let curves_title = match run.calibration {
        Some(_) => format!(
            "{title}: epoch {} served (best validation accuracy)",
            run.selected_epoch
        ),
        None => title.clone(),
    };
    wick_viz::learning_curves(&add("learning_curves.png"), &curves, &curves_title)?;
    wick_viz::confusion_matrix(
        &add("confusion_matrix.png"),
        run.confusion,
        ["no increase", "increase"],
        &format!("Test set, {title}, epoch {}", run.selected_epoch),
    )?;

    let fc = forecast(
        &run.model,
        &run.params,
        run.temperature(),
        table,
        data,
        device,
    )?;
    let values: Vec<(String, f64)> = fc
        .iter()
        .filter_map(|f| f.iso2.clone().map(|c| (c, f.probability)))
        .collect();
    let last_day = data
        .new_dates
        .last()
        .map(|d| d.to_string())
        .unwrap_or_default();
    let map_title = format!("P(new cases increase the day after {last_day}), {title}");
    wick_viz::world_map_svg(&add("world_map.svg"), &values, &map_title, "P(increase)")?;
    wick_viz::world_map_png(&add("world_map.png"), &values, &map_title, "P(increase)")?;
    std::fs::write(add("forecast.json"), serde_json::to_vec_pretty(&fc)?)?;

    // The model file is the selected epoch's, and says so; its temperature travels with it.
    let mut meta = ckpt::metadata(config, run.selected_epoch);
    meta.insert("temperature".into(), run.temperature().to_string());
    let bytes = ckpt::to_bytes(&run.params.tensors(MODEL_PREFIX), meta)?;
    ckpt::write_atomic(&add("model.safetensors"), &bytes)?;
    Ok(files)
}

/// Title of the correlation heatmap.
const HEATMAP_TITLE: &str = "Pearson correlation of daily new cases";

/// The last correlation heatmap drawn in this process and what it was drawn from.
struct Drawn {
    names: Vec<String>,
    corr: Vec<Vec<f64>>,
    png: Vec<u8>,
}

/// Writes the correlation heatmap to `path`. It depends on the data alone, and at about
/// 2,600 px square it is a trial's costliest picture (~70 ms, a tenth of a short trial),
/// so a worker draws it once per dataset and copies the file into later trials' folders.
fn correlation_heatmap(path: &Path, table: &CaseTable, data: &CovidData) -> Result<()> {
    static LAST: Mutex<Option<Drawn>> = Mutex::new(None);
    // Held while drawing: a second trial of the same data waits and copies.
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    let same_bits = |a: &[Vec<f64>], b: &[Vec<f64>]| {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
            })
    };
    if let Some(d) = last.as_ref()
        && d.names == table.names
        && same_bits(&d.corr, &data.corr)
    {
        return std::fs::write(path, &d.png)
            .with_context(|| format!("cannot write {}", path.display()));
    }
    wick_viz::heatmap(path, &table.names, &data.corr, HEATMAP_TITLE)?;
    let png =
        std::fs::read(path).with_context(|| format!("cannot read back {}", path.display()))?;
    *last = Some(Drawn {
        names: table.names.clone(),
        corr: data.corr.clone(),
        png,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use wick_common::covid::{PrepOptions, prepare};

    use super::*;

    /// Four countries over 30 days; `twist` changes one country's curve.
    fn data(twist: u32) -> (CaseTable, CovidData) {
        let mut csv = String::from("Date,Country,Confirmed\n");
        let start = NaiveDate::from_ymd_opt(2020, 2, 1).unwrap();
        for (ci, name) in ["France", "Germany", "Italy", "Spain"].iter().enumerate() {
            let mut cum = 0u32;
            for d in 0..30u32 {
                cum += (d * (ci as u32 + 2) + if ci == 0 { twist * d * d } else { 0 }) % 11 + 1;
                let date = start + chrono::Days::new(u64::from(d));
                csv.push_str(&format!("{date},{name},{cum}\n"));
            }
        }
        let table = CaseTable::parse(&csv).unwrap();
        let opts = PrepOptions {
            l: 5,
            // Every country in set C: the heatmap is all that matters here.
            threshold: -1.0,
            start: NaiveDate::from_ymd_opt(2020, 2, 2).unwrap(),
            ..PrepOptions::default()
        };
        let data = prepare(&table, &opts).unwrap();
        (table, data)
    }

    /// The copy a worker writes for a later trial is the picture it would have drawn, and
    /// other data gets its own picture, never the last one's.
    #[test]
    fn the_heatmap_is_drawn_once_per_dataset() {
        let dir = tempfile::tempdir().unwrap();
        let path = |n: &str| dir.path().join(n);
        let read = |n: &str| std::fs::read(path(n)).unwrap();
        let fresh = |n: &str, (t, d): &(CaseTable, CovidData)| {
            wick_viz::heatmap(&path(n), &t.names, &d.corr, HEATMAP_TITLE).unwrap();
        };
        let (a, b) = (data(0), data(3));
        assert_ne!(a.1.corr, b.1.corr, "the two datasets must differ");
        fresh("a.png", &a);
        fresh("b.png", &b);
        // (Compared with `assert!`: a failure should not print megabytes of PNG.)
        assert!(read("a.png") != read("b.png"));

        correlation_heatmap(&path("a1.png"), &a.0, &a.1).unwrap();
        correlation_heatmap(&path("a2.png"), &a.0, &a.1).unwrap();
        correlation_heatmap(&path("b1.png"), &b.0, &b.1).unwrap();
        correlation_heatmap(&path("a3.png"), &a.0, &a.1).unwrap();
        for n in ["a1.png", "a2.png", "a3.png"] {
            assert!(
                read(n) == read("a.png"),
                "{n} is not the first dataset's picture"
            );
        }
        assert!(
            read("b1.png") == read("b.png"),
            "the second dataset got another picture"
        );
    }
}
