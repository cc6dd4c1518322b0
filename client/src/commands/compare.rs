//! `compare SWEEP --by KNOB`: the sweep's succeeded trials grouped by one hyperparameter,
//! one row per value, so "does L = 40 beat L = 12?" is one command.
//!
//! A knob belongs to a task (`l`, `cell`: covid; `kl`: vae; `hidden`, `lr`: both), and
//! only trials of the tasks it belongs to are grouped: in a mixed sweep `--by kl` compares
//! the VAEs and leaves the classifiers out, and `--by hidden` gives one table per task,
//! since an accuracy and a negative ELBO do not share a column. A knob that belongs to
//! none of the sweep's tasks is an error naming the ones that do. Trials that did not
//! succeed (running, failed, stopped early, ...) are counted but not averaged: a partial
//! run's numbers would drag their group down.

use std::cmp::Ordering;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::Outcome;
use super::trials::{self, Trial};
use crate::cli::{CompareArgs, GroupBy};
use crate::connect::Session;
use crate::render::Table;

/// Every knob, in the order the help lists them.
const ALL: [GroupBy; 5] = [
    GroupBy::L,
    GroupBy::Cell,
    GroupBy::Hidden,
    GroupBy::Kl,
    GroupBy::Lr,
];

/// The knob's name on the command line.
fn flag(by: GroupBy) -> &'static str {
    match by {
        GroupBy::L => "l",
        GroupBy::Cell => "cell",
        GroupBy::Hidden => "hidden",
        GroupBy::Kl => "kl",
        GroupBy::Lr => "lr",
    }
}

/// The tasks whose trials have the knob.
fn tasks_of(by: GroupBy) -> &'static [&'static str] {
    match by {
        GroupBy::L | GroupBy::Cell => &["covid"],
        GroupBy::Kl => &["vae"],
        GroupBy::Hidden | GroupBy::Lr => &["covid", "vae"],
    }
}

/// A trial's value of the knob: a number, or the cell's name.
fn value(by: GroupBy, t: &Trial) -> Option<Value> {
    match (by, t.covid(), t.vae()) {
        (GroupBy::L, Some(c), _) => Some(json!(c.l)),
        (GroupBy::Cell, Some(c), _) => Some(json!(c.cell.as_str())),
        (GroupBy::Hidden, Some(c), _) => Some(json!(c.hidden)),
        (GroupBy::Hidden, _, Some(v)) => Some(json!(v.hidden)),
        (GroupBy::Lr, Some(c), _) => Some(json!(c.lr)),
        (GroupBy::Lr, _, Some(v)) => Some(json!(v.lr)),
        (GroupBy::Kl, _, Some(v)) => Some(json!(v.kl_weight)),
        _ => None,
    }
}

/// Group order: numbers ascending, names alphabetically.
fn order(a: &Value, b: &Value) -> Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// A value as a person reads it (`0.001`, `gru`).
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n
            .as_f64()
            .filter(|_| !n.is_u64())
            .map(|f| f.to_string())
            .unwrap_or_else(|| n.to_string()),
        other => other.to_string(),
    }
}

/// Mean of the values (NaN when empty).
fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The figure of merit of a task: its summary field and whether higher is better.
fn merit(task: &str) -> (&'static str, bool) {
    match task {
        "covid" => ("best_test_acc", true),
        _ => ("final_neg_elbo", false),
    }
}

/// One group: the trials sharing one value of the knob, with their statistics.
struct Group<'a> {
    /// The value.
    value: Value,
    /// Its succeeded trials.
    trials: Vec<&'a Trial>,
}

impl Group<'_> {
    /// The summary field `key` of every trial that has it.
    fn field(&self, key: &str) -> Vec<f64> {
        self.trials.iter().filter_map(|t| t.summary(key)).collect()
    }

    /// Mean figure of merit of the group: what "best group" ranks by.
    fn score(&self, task: &str) -> f64 {
        mean(&self.field(merit(task).0))
    }

    /// The trial with the best figure of merit.
    fn best_trial(&self, task: &str) -> &Trial {
        let (key, higher) = merit(task);
        let m = |t: &Trial| t.summary(key).unwrap_or(f64::NAN);
        let mut best = self.trials[0];
        for t in &self.trials[1..] {
            let better = match higher {
                true => m(t) > m(best),
                false => m(t) < m(best),
            };
            if better {
                best = t;
            }
        }
        best
    }

    /// The group as JSON: value, trials and the task's statistics.
    fn json(&self, task: &str, best: bool) -> Value {
        let ids: Vec<&str> = self.trials.iter().map(|t| t.id()).collect();
        let mut doc = json!({
            "task": task,
            "value": self.value,
            "trials": self.trials.len(),
            "trial_ids": ids,
            "best_trial": self.best_trial(task).id(),
            "best": best,
        });
        let stats = match task {
            "covid" => {
                let acc = self.field("best_test_acc");
                json!({
                    "mean_best_test_acc": mean(&acc),
                    "max_best_test_acc": acc.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    "mean_best_epoch": mean(&self.field("best_epoch")),
                })
            }
            _ => {
                let elbo = self.field("final_neg_elbo");
                json!({
                    "mean_final_neg_elbo": mean(&elbo),
                    "min_final_neg_elbo": elbo.iter().copied().fold(f64::INFINITY, f64::min),
                    "mean_final_recon": mean(&self.field("final_recon")),
                    "mean_final_kl": mean(&self.field("final_kl")),
                })
            }
        };
        if let (Some(d), Value::Object(s)) = (doc.as_object_mut(), stats) {
            d.extend(s);
        }
        doc
    }
}

/// The succeeded trials of `task` that have its figure of merit, grouped by `by`, sorted.
fn groups<'a>(by: GroupBy, task: &str, trials: &'a [Trial]) -> Vec<Group<'a>> {
    let mut out: Vec<Group> = Vec::new();
    let usable = trials
        .iter()
        .filter(|t| t.task() == task && t.summary(merit(task).0).is_some());
    for t in usable {
        let Some(v) = value(by, t) else { continue };
        match out.iter_mut().find(|g| g.value == v) {
            Some(g) => g.trials.push(t),
            None => out.push(Group {
                value: v,
                trials: vec![t],
            }),
        }
    }
    out.sort_by(|a, b| order(&a.value, &b.value));
    out
}

/// Index of the best group: highest mean best test accuracy, lowest mean −ELBO; the
/// first in row order on a tie.
fn best_group(task: &str, groups: &[Group]) -> Option<usize> {
    let higher = merit(task).1;
    let mut best: Option<(usize, f64)> = None;
    for (i, g) in groups.iter().enumerate() {
        let s = g.score(task);
        let better = match best {
            None => true,
            Some((_, b)) if higher => s > b,
            Some((_, b)) => s < b,
        };
        if better && s.is_finite() {
            best = Some((i, s));
        }
    }
    best.map(|(i, _)| i)
}

/// The text table of one task's groups.
fn table(by: GroupBy, task: &str, groups: &[Group], best: Option<usize>) -> String {
    let head: &[&str] = match task {
        "covid" => &[
            "TRIALS",
            "MEAN BEST TEST ACC",
            "MAX BEST TEST ACC",
            "MEAN BEST EPOCH",
        ],
        _ => &["TRIALS", "MEAN -ELBO", "MIN -ELBO", "MEAN RECON", "MEAN KL"],
    };
    let knob = flag(by).to_uppercase();
    let mut header = vec![knob.as_str()];
    header.extend_from_slice(head);
    header.push("");
    let mut t = Table::new(&header);
    for (i, g) in groups.iter().enumerate() {
        let doc = g.json(task, false);
        let f = |k: &str, prec: usize| format!("{:.prec$}", doc[k].as_f64().unwrap_or(f64::NAN));
        let mut row = vec![show(&g.value), g.trials.len().to_string()];
        match task {
            "covid" => row.extend([
                f("mean_best_test_acc", 3),
                f("max_best_test_acc", 3),
                f("mean_best_epoch", 1),
            ]),
            _ => row.extend([
                f("mean_final_neg_elbo", 1),
                f("min_final_neg_elbo", 1),
                f("mean_final_recon", 1),
                f("mean_final_kl", 2),
            ]),
        }
        row.push(if best == Some(i) { "<- best" } else { "" }.into());
        t.row(row);
    }
    t.render()
}

/// The error for a knob none of the sweep's trials has.
fn not_applicable(by: GroupBy, sweep: &str, tasks: &[&str]) -> anyhow::Error {
    let applies: Vec<&str> = ALL
        .into_iter()
        .filter(|b| tasks_of(*b).iter().any(|t| tasks.contains(t)))
        .map(flag)
        .collect();
    let has = match tasks {
        [] => "no trials".to_string(),
        [one] => format!("only {one} trials"),
        many => format!("only {} trials", many.join(" and ")),
    };
    let options = match applies.split_last() {
        None => "nothing applies to it".to_string(),
        Some((only, [])) => format!("use --by {only}"),
        Some((last, rest)) => format!("use --by {} or {last}", rest.join(", ")),
    };
    anyhow::anyhow!(
        "--by {} groups {} trials, and sweep {sweep} has {has}; {options}",
        flag(by),
        tasks_of(by).join(" and "),
    )
}

/// `compare`.
pub async fn run(s: &Session, a: &CompareArgs) -> Result<Outcome> {
    let (st, trials) = trials::sweep(s, &a.sweep).await?;
    let sweep = st.sweep_id.as_str();
    let mut present: Vec<&str> = Vec::new();
    for t in &trials {
        if !present.contains(&t.task()) {
            present.push(t.task());
        }
    }
    let tasks: Vec<&str> = tasks_of(a.by)
        .iter()
        .copied()
        .filter(|t| present.contains(t))
        .collect();
    if tasks.is_empty() {
        return Err(not_applicable(a.by, sweep, &present));
    }
    let mut docs = Vec::new();
    let mut text = String::new();
    let mut left_out = 0;
    for task in &tasks {
        let of_task = trials.iter().filter(|t| t.task() == *task).count();
        let gs = groups(a.by, task, &trials);
        let used: usize = gs.iter().map(|g| g.trials.len()).sum();
        left_out += of_task - used;
        if gs.is_empty() {
            continue;
        }
        let best = best_group(task, &gs);
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!(
            "{task} trials of sweep {sweep} by {}: {used} succeeded",
            flag(a.by)
        ));
        if of_task > used {
            text.push_str(&format!(", {} not succeeded and left out", of_task - used));
        }
        text.push('\n');
        text.push_str(&table(a.by, task, &gs, best));
        docs.extend(
            gs.iter()
                .enumerate()
                .map(|(i, g)| g.json(task, best == Some(i))),
        );
    }
    if docs.is_empty() {
        bail!(
            "sweep {sweep} has no succeeded {} trial to compare yet; follow it with `client watch {sweep}`, or see why with `client status {sweep}`",
            tasks.join(" or ")
        );
    }
    let ranked = match tasks.as_slice() {
        ["covid"] => "highest mean best test accuracy",
        ["vae"] => "lowest mean final -ELBO",
        _ => "highest mean best test accuracy (covid), lowest mean final -ELBO (vae)",
    };
    text.push_str(&format!("\nbest group: {ranked}\n"));
    Ok(Outcome {
        json: json!({
            "sweep": sweep,
            "by": flag(a.by),
            "groups": docs,
            "left_out": left_out,
        }),
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wick_proto::v1::TrialStatus;

    fn covid(id: &str, cell: &str, l: u32, acc: f64, epoch: u32, state: &str) -> Trial {
        Trial::new(TrialStatus {
            trial_id: id.into(),
            task: "covid".into(),
            config_json: format!(
                r#"{{"task":"covid","cell":"{cell}","hidden":8,"l":{l},"epochs":3,"lr":0.001,"batch":64,"seed":0,"threshold":0.7,"start":"2020-03-01","split":"random"}}"#
            ),
            state: state.into(),
            metrics_json: format!(r#"{{"best_test_acc":{acc},"best_epoch":{epoch}}}"#),
            ..Default::default()
        })
    }

    #[test]
    fn groups_are_sorted_averaged_and_the_best_is_marked() {
        let trials = [
            covid("t-1", "rnn", 40, 0.60, 2, "succeeded"),
            covid("t-2", "gru", 12, 0.70, 3, "succeeded"),
            covid("t-3", "rnn", 12, 0.64, 1, "succeeded"),
            // Not succeeded: left out even though its last epoch looks great.
            covid("t-4", "gru", 40, 0.99, 1, "stopped_early"),
        ];
        let gs = groups(GroupBy::Cell, "covid", &trials);
        let values: Vec<String> = gs.iter().map(|g| show(&g.value)).collect();
        assert_eq!(values, ["gru", "rnn"]);
        assert_eq!(best_group("covid", &gs), Some(0));
        let rnn = gs[1].json("covid", false);
        assert_eq!(rnn["trials"], 2);
        assert!((rnn["mean_best_test_acc"].as_f64().unwrap() - 0.62).abs() < 1e-12);
        assert_eq!(rnn["max_best_test_acc"], 0.64);
        assert_eq!(rnn["mean_best_epoch"], 1.5);
        assert_eq!(rnn["best_trial"], "t-3");

        let by_l = groups(GroupBy::L, "covid", &trials);
        let values: Vec<&Value> = by_l.iter().map(|g| &g.value).collect();
        assert_eq!(values, [&json!(12), &json!(40)]);
        assert_eq!(best_group("covid", &by_l), Some(0));
        let text = table(GroupBy::L, "covid", &by_l, Some(0));
        assert!(text.lines().nth(1).unwrap().ends_with("<- best"), "{text}");
    }

    #[test]
    fn a_knob_of_another_task_names_the_ones_that_apply() {
        let e = not_applicable(GroupBy::Kl, "s-1", &["covid"]).to_string();
        assert!(e.contains("--by kl groups vae trials"), "{e}");
        assert!(e.contains("only covid trials"), "{e}");
        assert!(e.ends_with("use --by l, cell, hidden or lr"), "{e}");
        let e = not_applicable(GroupBy::Cell, "s-1", &["vae"]).to_string();
        assert!(e.ends_with("use --by hidden, kl or lr"), "{e}");
    }

    #[test]
    fn values_read_as_typed() {
        assert_eq!(show(&json!(0.001)), "0.001");
        assert_eq!(show(&json!(12)), "12");
        assert_eq!(show(&json!(1.0)), "1");
        assert_eq!(show(&json!("gru")), "gru");
    }
}
