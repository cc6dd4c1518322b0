//! `report SWEEP --out DIR`: the coursework's whole report of a sweep as one
//! self-contained page, `DIR/index.html`, with its pictures beside it.
//!
//! Each task of the sweep gets a section (`covid`, `vae`): a results table of every trial
//! whatever its state, curves of every trial drawn here from its `metrics.jsonl`, the
//! pictures the workers made (copied from the store), and a parallel-coordinates plot of
//! knobs against the task's metric (`parallel`). A picture a trial does not have is left
//! out with a note on the page, never an error: a failed or stopped trial has fewer files.
//! `html` holds the markup helpers; every string from the data goes through its `esc`.

mod covid;
mod html;
mod parallel;
mod vae;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::json;

use super::Outcome;
use super::trials::{self, History, Trial};
use crate::cli::ReportArgs;
use crate::connect::Session;
use crate::render::{label, time_ms};
use html::esc;

/// Every trial's per-epoch metrics, by trial id.
type Histories = HashMap<String, History>;

/// Metric histories fetched at once: one round trip each, so that the report of a large
/// sweep does not wait for them one after another.
const CONCURRENT_FETCHES: usize = 16;

/// The report's folder and what has been written into it.
struct Out<'a> {
    /// The session, to fetch artifacts.
    s: &'a Session,
    /// The folder.
    dir: &'a Path,
    /// Files written, relative to `dir`, in page order.
    images: Vec<String>,
}

impl Out<'_> {
    /// Copies artifact `name` of `trial` into the folder as `file`; `None` when the trial
    /// has no such artifact.
    async fn artifact(&mut self, trial: &str, name: &str, file: &str) -> Result<Option<String>> {
        let Some(bytes) = trials::artifact(self.s, trial, name).await? else {
            return Ok(None);
        };
        super::write_file(&self.dir.join(file), &bytes)?;
        self.images.push(file.to_string());
        Ok(Some(file.to_string()))
    }

    /// The bytes of artifact `name` of `trial`, not copied into the folder.
    async fn artifact_bytes(&self, trial: &str, name: &str) -> Result<Option<Vec<u8>>> {
        trials::artifact(self.s, trial, name).await
    }

    /// Draws a picture into the folder as `file`.
    fn draw(&mut self, file: &str, draw: impl FnOnce(&Path) -> Result<()>) -> Result<String> {
        draw(&self.dir.join(file)).with_context(|| format!("cannot draw {file}"))?;
        self.images.push(file.to_string());
        Ok(file.to_string())
    }
}

/// `s` as a file-name part: letters, digits, `.` and `-` kept, anything else `_`.
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => c,
            _ => '_',
        })
        .collect()
}

/// A trial's name in legends and captions: its config, and its state unless succeeded.
fn name(t: &Trial) -> String {
    match t.succeeded() {
        true => label(&t.status),
        false => format!("{} ({})", label(&t.status), t.state()),
    }
}

/// How many trials are in each state, known states first: "3 succeeded, 1 failed".
fn state_counts(trials: &[Trial]) -> String {
    let known = [
        "succeeded",
        "running",
        "queued",
        "stopped_early",
        "failed",
        "cancelled",
    ];
    let mut states: Vec<&str> = trials.iter().map(Trial::state).collect();
    states.sort_by_key(|s| (known.iter().position(|k| k == s).unwrap_or(known.len()), *s));
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < states.len() {
        let n = states[i..].iter().take_while(|s| **s == states[i]).count();
        parts.push(format!("{n} {}", states[i]));
        i += n;
    }
    parts.join(", ")
}

/// The page's header: sweep, name, date, trial counts and the links to the sections.
fn header(st: &wick_proto::v1::SweepStatus, trials: &[Trial], sections: &[(&str, &str)]) -> String {
    let name = st.spec.as_ref().map(|s| s.name.as_str()).unwrap_or("");
    let mut h = format!(
        "<header>\n<h1>Sweep report <code>{}</code>{}</h1>\n",
        esc(&st.sweep_id),
        match name.is_empty() {
            true => String::new(),
            false => format!(" — {}", esc(name)),
        }
    );
    h.push_str(&format!(
        "<p class=\"meta\">Created {}. {} trials: {}.</p>\n",
        esc(&time_ms(st.created_ms)),
        trials.len(),
        esc(&state_counts(trials))
    ));
    if !sections.is_empty() {
        h.push_str("<nav>");
        for (id, title) in sections {
            h.push_str(&format!("<a href=\"#{id}\">{}</a>", esc(title)));
        }
        h.push_str("</nav>\n");
    }
    h.push_str("</header>\n");
    h
}

/// Trials of no task this report knows (a newer coordinator): listed, nothing more.
fn others(trials: &[&Trial]) -> String {
    let mut t = html::Table::new(&["Trial", "Task", "State"], &[]);
    for tr in trials {
        t.row(
            "",
            vec![
                format!("<code>{}</code>", esc(tr.id())),
                esc(tr.task()),
                html::state(tr.state(), &tr.status.message),
            ],
        );
    }
    format!(
        "<section id=\"other\">\n<h2>Other trials</h2>\n<p>Trials of a task this client cannot draw.</p>\n{}</section>\n",
        t.render()
    )
}

/// `report`.
pub async fn run(s: &Session, a: &ReportArgs) -> Result<Outcome> {
    let (st, all) = trials::sweep(s, &a.sweep).await?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let hist: Histories = stream::iter(&all)
        .map(|t| async move {
            Ok::<_, anyhow::Error>((t.id().to_string(), trials::history(s, t.id()).await?))
        })
        .buffer_unordered(CONCURRENT_FETCHES)
        .try_collect()
        .await?;
    let covid: Vec<&Trial> = all.iter().filter(|t| t.covid().is_some()).collect();
    let vae: Vec<&Trial> = all.iter().filter(|t| t.vae().is_some()).collect();
    let other: Vec<&Trial> = all
        .iter()
        .filter(|t| t.covid().is_none() && t.vae().is_none())
        .collect();
    let mut out = Out {
        s,
        dir: &a.out,
        images: Vec::new(),
    };
    let mut sections = Vec::new();
    let mut nav = Vec::new();
    let mut notes = Vec::new();
    if !covid.is_empty() {
        let (html, n) = covid::section(&mut out, &covid, &hist).await?;
        sections.push(html);
        notes.extend(n);
        nav.push(("covid", "COVID-19 classifiers"));
    }
    if !vae.is_empty() {
        let (html, n) = vae::section(&mut out, &vae, &hist).await?;
        sections.push(html);
        notes.extend(n);
        nav.push(("vae", "Face VAEs"));
    }
    if !other.is_empty() {
        sections.push(others(&other));
        nav.push(("other", "Other trials"));
    }
    if all.is_empty() {
        sections.push("<p>This sweep has no trials.</p>\n".into());
    }
    let page = html::page(
        &format!("Sweep report {}", st.sweep_id),
        &header(&st, &all, &nav),
        &sections,
    );
    let index = a.out.join("index.html");
    super::write_file(&index, page.as_bytes())?;
    let images: Vec<PathBuf> = out.images.iter().map(|f| a.out.join(f)).collect();
    let mut text = format!(
        "{}\n{} trials ({} covid, {} vae), {} pictures",
        index.display(),
        all.len(),
        covid.len(),
        vae.len(),
        images.len()
    );
    if !notes.is_empty() {
        text.push_str(&format!(
            ", {} left out (the page says which and why)",
            notes.len()
        ));
    }
    text.push('\n');
    Ok(Outcome {
        json: json!({
            "sweep": st.sweep_id,
            "out": a.out.display().to_string(),
            "index": index.display().to_string(),
            "images": images.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "trials": all.len(),
            "notes": notes,
        }),
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wick_proto::v1::TrialStatus;

    fn trial(state: &str) -> Trial {
        Trial::new(TrialStatus {
            state: state.into(),
            ..Default::default()
        })
    }

    #[test]
    fn states_are_counted_known_ones_first() {
        let t = [
            trial("failed"),
            trial("succeeded"),
            trial("weird"),
            trial("succeeded"),
            trial("stopped_early"),
        ];
        assert_eq!(
            state_counts(&t),
            "2 succeeded, 1 stopped_early, 1 failed, 1 weird"
        );
    }

    #[test]
    fn slugs_are_safe_file_names() {
        assert_eq!(slug("t-01ab"), "t-01ab");
        assert_eq!(slug("../x y"), ".._x_y");
        assert_eq!(slug("0.001"), "0.001");
    }
}
