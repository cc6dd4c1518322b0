//! What the user reads: trials as JSON objects (the `status --json` shape), short trial
//! labels and metric headlines, and plain aligned text tables. Everything here is pure so
//! the shapes are unit-tested without a server.

use serde_json::{Value, json};
use wick_common::trial::TrialConfig;
use wick_proto::v1::{SweepStatus, TrialStatus};

/// A JSON text field as a JSON value: `{}` when empty, the text itself when it does not
/// parse (so a malformed field is shown rather than lost).
pub fn parse_json(text: &str) -> Value {
    if text.trim().is_empty() {
        return json!({});
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// One trial in the `status --json` shape.
pub fn trial_json(t: &TrialStatus) -> Value {
    json!({
        "id": t.trial_id,
        "task": t.task,
        "config": parse_json(&t.config_json),
        "state": t.state,
        "epoch": t.epoch,
        "epochs": t.epochs,
        "worker": t.worker,
        "attempts": t.attempts,
        "resumed_from_epoch": t.resumed_from_epoch,
        "metrics": parse_json(&t.metrics_json),
        "message": t.message,
    })
}

/// A sweep in the `status --json` shape: `{"sweep": ID, "trials": [...]}`.
pub fn status_json(s: &SweepStatus) -> Value {
    json!({
        "sweep": s.sweep_id,
        "trials": s.trials.iter().map(trial_json).collect::<Vec<_>>(),
    })
}

/// A short name of a trial's configuration, e.g. `lstm 64 L=40` or `vae 28x28 kl=1`.
pub fn label(t: &TrialStatus) -> String {
    match serde_json::from_str::<TrialConfig>(&t.config_json) {
        Ok(TrialConfig::Covid(c)) => {
            let mut s = format!("{} {} L={}", c.cell, c.hidden, c.l);
            extras(&mut s, c.epochs, c.lr, c.seed);
            s
        }
        Ok(TrialConfig::Vae(c)) => {
            let mut s = format!("vae {0}x{0} kl={1}", c.size, c.kl_weight);
            extras(&mut s, c.epochs, c.lr, c.seed);
            s
        }
        Err(_) => t.task.clone(),
    }
}

/// Appends the knobs most sweeps leave at their defaults, only when they differ.
fn extras(s: &mut String, epochs: usize, lr: f64, seed: u64) {
    s.push_str(&format!(" e={epochs}"));
    if lr != 1e-3 {
        s.push_str(&format!(" lr={lr}"));
    }
    if seed != 0 {
        s.push_str(&format!(" seed={seed}"));
    }
}

/// A number field of a metrics object.
fn num(m: &Value, key: &str) -> Option<f64> {
    m.get(key).and_then(Value::as_f64)
}

/// The figure of merit of a trial's latest metrics: for a finished covid trial the test
/// accuracy of the served (validation-selected) epoch, for a running one its latest
/// validation and test accuracy; for vae the served epoch's validation negative ELBO, or
/// the latest; empty when there is none yet. Trials trained without a validation set show
/// what they always did.
pub fn headline(t: &TrialStatus) -> String {
    let m = parse_json(&t.metrics_json);
    let epoch = num(&m, "selected_epoch").unwrap_or(0.0);
    match t.task.as_str() {
        "covid" => match (num(&m, "selected_val_acc"), num(&m, "selected_test_acc")) {
            (Some(v), Some(a)) => format!("test acc {a:.3} (epoch {epoch} by val acc {v:.3})"),
            _ => num(&m, "best_test_acc")
                .map(|a| format!("best test acc {a:.3}"))
                .or_else(|| {
                    let test = num(&m, "test_acc")?;
                    Some(match num(&m, "val_acc") {
                        Some(v) => format!("val acc {v:.3}, test acc {test:.3}"),
                        None => format!("test acc {test:.3}"),
                    })
                })
                .unwrap_or_default(),
        },
        "vae" => match num(&m, "selected_val_neg_elbo") {
            Some(e) => format!("val -ELBO {e:.1} (epoch {epoch})"),
            None => num(&m, "final_neg_elbo")
                .or_else(|| num(&m, "val_neg_elbo"))
                .or_else(|| num(&m, "neg_elbo"))
                .map(|e| format!("-ELBO {e:.1}"))
                .unwrap_or_default(),
        },
        _ => String::new(),
    }
}

/// A text table: a header row and left-aligned columns two spaces apart.
pub struct Table {
    /// Column titles.
    header: Vec<String>,
    /// Cells, one `Vec` per row.
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are blank).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row, ending in a newline.
    pub fn render(&self) -> String {
        let cols = self.header.len();
        let mut width: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(cols) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, w) in width.iter().enumerate() {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                if i + 1 == cols {
                    s.push_str(cell);
                } else {
                    s.push_str(&format!("{cell:<w$}  "));
                }
            }
            s.trim_end().to_string() + "\n"
        };
        let mut out = line(&self.header);
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

/// The trial table of `status`, `watch` and `sweep`.
pub fn trial_table(trials: &[TrialStatus]) -> String {
    let mut t = Table::new(&[
        "TRIAL", "CONFIG", "STATE", "EPOCH", "WORKER", "TRIES", "RESULT",
    ]);
    for tr in trials {
        let mut result = headline(tr);
        if tr.resumed_from_epoch > 0 {
            result.push_str(&format!(" (resumed at epoch {})", tr.resumed_from_epoch));
        }
        if !tr.message.is_empty() && tr.state != "succeeded" {
            result = format!("{result} {}", tr.message).trim().to_string();
        }
        t.row(vec![
            tr.trial_id.clone(),
            label(tr),
            tr.state.clone(),
            format!("{}/{}", tr.epoch, tr.epochs),
            tr.worker.clone(),
            tr.attempts.to_string(),
            result,
        ]);
    }
    t.render()
}

/// A byte count for people (`4.4 MB`).
pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KB", n as f64 / (1u64 << 10) as f64),
        n => format!("{n} B"),
    }
}

/// Unix milliseconds as a UTC date and time.
pub fn time_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(task: &str, config: &str, metrics: &str) -> TrialStatus {
        TrialStatus {
            trial_id: "t-0123456789abcdef".into(),
            task: task.into(),
            config_json: config.into(),
            state: "running".into(),
            epoch: 3,
            epochs: 10,
            worker: "w1".into(),
            attempts: 2,
            resumed_from_epoch: 1,
            metrics_json: metrics.into(),
            message: "lease expired".into(),
        }
    }

    const COVID: &str = r#"{"task":"covid","cell":"gru","hidden":64,"l":12,"epochs":10,"lr":0.001,"batch":64,"seed":0,"threshold":0.7,"start":"2020-03-01","split":"random"}"#;

    #[test]
    fn status_json_has_exactly_the_documented_shape() {
        let status = SweepStatus {
            sweep_id: "s-abc".into(),
            spec: None,
            trials: vec![
                trial("covid", COVID, r#"{"epoch":3,"test_acc":0.61}"#),
                trial("vae", "", ""),
            ],
            created_ms: 0,
        };
        let v = status_json(&status);
        assert_eq!(v["sweep"], "s-abc");
        let t = &v["trials"][0];
        let mut keys: Vec<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "attempts",
                "config",
                "epoch",
                "epochs",
                "id",
                "message",
                "metrics",
                "resumed_from_epoch",
                "state",
                "task",
                "worker"
            ]
        );
        assert_eq!(t["id"], "t-0123456789abcdef");
        assert_eq!(t["config"]["cell"], "gru");
        assert_eq!(t["metrics"]["test_acc"], 0.61);
        assert_eq!(
            (t["epoch"].as_u64(), t["epochs"].as_u64()),
            (Some(3), Some(10))
        );
        assert_eq!(
            (t["attempts"].as_u64(), t["resumed_from_epoch"].as_u64()),
            (Some(2), Some(1))
        );
        assert_eq!(v["trials"][1]["config"], json!({}));
        assert_eq!(v["trials"][1]["metrics"], json!({}));
    }

    #[test]
    fn labels_headlines_and_tables() {
        let t = trial("covid", COVID, r#"{"best_test_acc":0.7123}"#);
        assert_eq!(label(&t), "gru 64 L=12 e=10");
        assert_eq!(headline(&t), "best test acc 0.712");
        // A validated trial shows the served epoch's test accuracy, not the best on test.
        let s = trial(
            "covid",
            COVID,
            r#"{"best_test_acc":0.8,"selected_epoch":47,"selected_val_acc":0.72,"selected_test_acc":0.64}"#,
        );
        assert_eq!(headline(&s), "test acc 0.640 (epoch 47 by val acc 0.720)");
        let v = trial(
            "vae",
            "",
            r#"{"neg_elbo":[300.0,250.5],"final_neg_elbo":250.5}"#,
        );
        assert_eq!(headline(&v), "-ELBO 250.5");
        let table = trial_table(&[t]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("TRIAL") && lines[0].contains("RESULT"),
            "{table}"
        );
        assert!(
            lines[1].contains("3/10") && lines[1].contains("resumed at epoch 1"),
            "{table}"
        );
        assert_eq!(lines[0].find("CONFIG"), lines[1].find("gru"), "{table}");
        assert_eq!(bytes(4_613_734), "4.4 MB");
    }
}
