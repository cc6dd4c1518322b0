//! `predict`: the probability that a country's daily new cases rise the next day, from a
//! covid trial (the best one unless `--trial`), for one country or all, optionally drawn
//! on a world map.

use anyhow::{Context, Result};
use serde_json::json;
use wick_proto::v1::{CountryForecast, PredictParams, PredictResult};

use super::Outcome;
use crate::cli::PredictArgs;
use crate::connect::Session;
use crate::render::Table;

/// Asks the coordinator for a forecast.
async fn ask(s: &Session, trial_id: &str, country: &str, all: bool) -> Result<PredictResult> {
    let params = PredictParams {
        trial_id: trial_id.to_string(),
        country: country.to_string(),
        all,
    };
    Ok(s.inference(|mut c| {
        let p = params.clone();
        async move { c.predict(p).await }
    })
    .await?)
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// One forecast as JSON.
fn forecast_json(f: &CountryForecast) -> serde_json::Value {
    json!({"country": f.country, "iso2": f.iso2, "probability": f.probability, "increase": f.increase})
}

/// `predict`.
pub async fn run(s: &Session, a: &PredictArgs) -> Result<Outcome> {
    let mut trial = a.trial.clone().unwrap_or_default();
    let mut text = String::new();
    let one = match &a.country {
        Some(c) if !a.all => {
            let r = ask(s, &trial, c, false).await?;
            // Later calls use the same trial even if a better one finished meanwhile.
            trial = r.trial_id.clone();
            Some(r)
        }
        _ => None,
    };
    let all = match a.all || a.map.is_some() {
        true => {
            let mut r = ask(s, &trial, "", true).await?;
            r.forecasts
                .sort_by(|x, y| y.probability.total_cmp(&x.probability));
            Some(r)
        }
        false => None,
    };
    let shown = one.as_ref().or(all.as_ref()).context("nothing asked")?;
    match &one {
        Some(r) => {
            for f in &r.forecasts {
                text.push_str(&format!(
                    "{} ({}): P(increase) = {:.3}, increase: {}\n",
                    f.country,
                    if f.iso2.is_empty() {
                        "no ISO code"
                    } else {
                        &f.iso2
                    },
                    f.probability,
                    yes_no(f.increase)
                ));
            }
        }
        None if a.all => {
            let mut table = Table::new(&["COUNTRY", "ISO", "P(INCREASE)", "INCREASE"]);
            for f in &shown.forecasts {
                table.row(vec![
                    f.country.clone(),
                    f.iso2.clone(),
                    format!("{:.3}", f.probability),
                    yes_no(f.increase).into(),
                ]);
            }
            text.push_str(&table.render());
        }
        None => {}
    }
    text.push_str(&format!(
        "trial {}, cases up to {}\n",
        shown.trial_id, shown.last_date
    ));
    let mut map_path = None;
    if let (Some(path), Some(r)) = (&a.map, &all) {
        let values: Vec<(String, f64)> = r
            .forecasts
            .iter()
            .filter(|f| !f.iso2.is_empty())
            .map(|f| (f.iso2.clone(), f.probability))
            .collect();
        let title = format!(
            "P(daily new cases increase the next day), trial {}, data to {}",
            r.trial_id, r.last_date
        );
        let png = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        match png {
            true => wick_viz::world_map_png(path, &values, &title, "P(increase)"),
            false => wick_viz::world_map_svg(path, &values, &title, "P(increase)"),
        }
        .with_context(|| format!("cannot draw the map into {}", path.display()))?;
        text.push_str(&format!("map: {}\n", path.display()));
        map_path = Some(path.display().to_string());
    }
    let json = json!({
        "trial": shown.trial_id,
        "last_date": shown.last_date,
        "forecasts": shown.forecasts.iter().map(forecast_json).collect::<Vec<_>>(),
        "map": map_path,
    });
    Ok(Outcome { json, text })
}
