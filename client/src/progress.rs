//! Live view of a sweep's event stream on stderr: one progress bar per running trial when
//! stderr is a terminal, and one line per state change otherwise (so logs of a CI job
//! still tell the story). With `--json` and no terminal it stays silent.

use std::collections::HashMap;
use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use wick_proto::v1::{SweepEvent, TrialStatus};

use crate::render::{headline, label};

/// Bar layout: trial, configuration, bar, epochs, latest metric or worker.
const TEMPLATE: &str = "{prefix} [{bar:30.cyan/blue}] {pos:>4}/{len:4} {msg}";

/// Which tenth of `epochs` epoch `e` falls in (so a line marks each 10 %).
fn tenth(e: u32, epochs: u32) -> u32 {
    (u64::from(e) * 10 / u64::from(epochs.max(1))) as u32
}

/// The live view of one sweep.
pub struct Progress {
    /// The bars, when stderr is a terminal.
    multi: Option<MultiProgress>,
    /// Bars of the trials now running, by trial id.
    bars: HashMap<String, ProgressBar>,
    /// Print a line per state change (no terminal, no `--json`).
    lines: bool,
}

impl Progress {
    /// A view that draws bars on a terminal, lines elsewhere unless `json`.
    pub fn new(json: bool) -> Progress {
        let tty = std::io::stderr().is_terminal();
        Progress {
            multi: tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            bars: HashMap::new(),
            lines: !tty && !json,
        }
    }

    /// Prints one line above the bars (or plainly, without bars).
    fn say(&self, line: String) {
        match &self.multi {
            Some(m) => {
                // A failed write to the terminal only loses a progress line.
                let _ = m.println(line);
            }
            None if self.lines => eprintln!("{line}"),
            None => {}
        }
    }

    /// Moves the bar of a running trial (created on first use) to its epoch.
    fn update_bar(&mut self, t: &TrialStatus) {
        let Some(multi) = &self.multi else { return };
        let pb = self.bars.entry(t.trial_id.clone()).or_insert_with(|| {
            let style = ProgressStyle::with_template(TEMPLATE)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            let pb = multi.add(ProgressBar::new(u64::from(t.epochs)).with_style(style));
            pb.set_prefix(format!("{} {:<22}", t.trial_id, label(t)));
            pb
        });
        pb.set_length(u64::from(t.epochs));
        pb.set_position(u64::from(t.epoch));
        let msg = match headline(t) {
            h if h.is_empty() => format!("on {}", t.worker),
            h => h,
        };
        pb.set_message(match t.resumed_from_epoch {
            0 => msg,
            r => format!("{msg} (resumed at {r})"),
        });
    }

    /// Removes the bar of a trial that has ended and says how it ended.
    fn ended(&mut self, kind: &str, t: &TrialStatus, name: &str) {
        if let Some(pb) = self.bars.remove(&t.trial_id) {
            pb.finish_and_clear();
            if let Some(m) = &self.multi {
                m.remove(&pb);
            }
        }
        let detail = match kind {
            "succeeded" => headline(t),
            _ => t.message.clone(),
        };
        self.say(format!("{name}: {kind} {detail}").trim_end().to_string());
    }

    /// Shows one event. Without bars the view starts with a line per trial (the
    /// snapshot) and reports epochs only at each tenth of a trial.
    pub fn event(&mut self, ev: &SweepEvent) {
        let Some(t) = &ev.trial else { return };
        let name = format!("{} {}", t.trial_id, label(t));
        let bars = self.multi.is_some();
        match (ev.kind.as_str(), t.state.as_str()) {
            ("snapshot", "running") => {
                if !bars {
                    self.say(format!(
                        "{name}: running on {}, epoch {}/{}",
                        t.worker, t.epoch, t.epochs
                    ));
                }
                self.update_bar(t);
            }
            ("snapshot", state) if !bars => {
                self.say(format!("{name}: {state} {}/{}", t.epoch, t.epochs))
            }
            ("running", _) => {
                self.say(format!("{name}: running on {}", t.worker));
                self.update_bar(t);
            }
            ("epoch", _) => {
                if !bars && tenth(t.epoch, t.epochs) > tenth(t.epoch.saturating_sub(1), t.epochs) {
                    self.say(format!(
                        "{name}: epoch {}/{} {}",
                        t.epoch,
                        t.epochs,
                        headline(t)
                    ));
                }
                self.update_bar(t);
            }
            ("queued", _) => self.say(format!("{name}: queued")),
            ("retrying", _) => {
                self.say(format!("{name}: retrying ({})", t.message));
                if let Some(pb) = self.bars.get(&t.trial_id) {
                    pb.set_message(format!("retrying: {}", t.message));
                }
            }
            (kind @ ("succeeded" | "failed" | "cancelled" | "stopped_early"), _) => {
                self.ended(kind, t, &name)
            }
            _ => {}
        }
    }

    /// Removes every bar (the stream ended or was interrupted).
    pub fn finish(self) {
        for pb in self.bars.values() {
            pb.finish_and_clear();
        }
        if let Some(m) = &self.multi {
            // Only the terminal's last frame is at stake.
            let _ = m.clear();
        }
    }
}

/// A progress bar on stderr for one transfer of bytes (drawn only on a terminal; none
/// with `--json`, so the output stays one document).
pub fn bytes_bar(name: &str, len: Option<u64>, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let (pb, template) = match len {
        Some(n) => (
            ProgressBar::new(n),
            "{prefix:16} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        ),
        None => (
            ProgressBar::no_length(),
            "{prefix:16} {spinner} {bytes} {bytes_per_sec}",
        ),
    };
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    pb.set_draw_target(ProgressDrawTarget::stderr());
    pb.set_style(style);
    pb.set_prefix(name.to_string());
    pb
}
