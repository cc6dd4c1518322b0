//! What a load run measured: per group of clients, how many requests completed, which
//! failed and with what gRPC code, the distinct answers seen, requests per second and
//! latency percentiles. Latencies are kept whole (one `u64` per request; the run is
//! bounded in count) so percentiles are exact rather than bucketed.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;

/// Distinct answers remembered per group; more are counted under [`OTHER_ANSWERS`].
const MAX_ANSWERS: usize = 16;
/// The key under which answers beyond [`MAX_ANSWERS`] distinct ones are counted.
pub const OTHER_ANSWERS: &str = "(other answers)";

/// What one client saw: a latency per completed request, failures by code, answers.
#[derive(Debug, Default)]
pub struct Tally {
    /// Microseconds of every completed request (failed ones included).
    pub latencies_us: Vec<u64>,
    /// Failures by gRPC code name (`Invalid` for an answer that failed the checks).
    pub errors: BTreeMap<String, u64>,
    /// The first message seen for each failure code, to say what went wrong.
    pub error_examples: BTreeMap<String, String>,
    /// Distinct answers (a one-line summary each) and how often each came.
    pub answers: BTreeMap<String, u64>,
}

impl Tally {
    /// Records one request that took `took` and ended in `outcome` (an answer's summary,
    /// or a failure's code and message).
    pub fn record(&mut self, took: Duration, outcome: Result<String, (String, String)>) {
        self.latencies_us.push(took.as_micros() as u64);
        match outcome {
            Ok(answer) => {
                let known = self.answers.len() < MAX_ANSWERS || self.answers.contains_key(&answer);
                let key = if known { answer } else { OTHER_ANSWERS.into() };
                *self.answers.entry(key).or_default() += 1;
            }
            Err((code, message)) => {
                *self.errors.entry(code.clone()).or_default() += 1;
                self.error_examples.entry(code).or_insert(message);
            }
        }
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
        for (code, m) in other.error_examples {
            self.error_examples.entry(code).or_insert(m);
        }
        for (answer, n) in other.answers {
            let known = self.answers.len() < MAX_ANSWERS || self.answers.contains_key(&answer);
            let key = if known { answer } else { OTHER_ANSWERS.into() };
            *self.answers.entry(key).or_default() += n;
        }
    }
}

/// Latency percentiles in milliseconds (nearest rank), over every completed request.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest request.
    pub max_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
}

impl Latency {
    /// The percentiles of `us` (microseconds, any order); all zero when empty.
    pub fn of(us: &mut [u64]) -> Latency {
        if us.is_empty() {
            return Latency::default();
        }
        us.sort_unstable();
        let rank = |q: f64| {
            let i = ((q * us.len() as f64).ceil() as usize).clamp(1, us.len()) - 1;
            us[i] as f64 / 1000.0
        };
        Latency {
            p50_ms: rank(0.50),
            p90_ms: rank(0.90),
            p99_ms: rank(0.99),
            max_ms: rank(1.0),
            mean_ms: us.iter().sum::<u64>() as f64 / us.len() as f64 / 1000.0,
        }
    }
}

/// One group of identical clients.
#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    /// `predict`, `sample` or `watch`.
    pub method: String,
    /// Concurrent clients of the group.
    pub clients: usize,
    /// Requests completed (failed ones included).
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
    /// Failures by gRPC code name (`Invalid`: an answer that failed the checks).
    pub errors_by_code: BTreeMap<String, u64>,
    /// The first message of each failure code.
    pub error_examples: BTreeMap<String, String>,
    /// Distinct answers and their counts (a watch's answer is its event count).
    pub answers: BTreeMap<String, u64>,
    /// Completed requests per second of the timed run.
    pub per_second: f64,
    /// Latency percentiles.
    pub latency: Latency,
}

impl GroupReport {
    /// The report of `tally`, gathered from `clients` clients of `method` over `elapsed`.
    pub fn new(method: &str, clients: usize, mut tally: Tally, elapsed: Duration) -> Self {
        let requests = tally.latencies_us.len() as u64;
        GroupReport {
            method: method.to_string(),
            clients,
            requests,
            errors: tally.errors.values().sum(),
            errors_by_code: tally.errors,
            error_examples: tally.error_examples,
            answers: tally.answers,
            per_second: requests as f64 / elapsed.as_secs_f64().max(1e-9),
            latency: Latency::of(&mut tally.latencies_us),
        }
    }
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Wall-clock seconds of the timed run (warm-up excluded).
    pub seconds: f64,
    /// Requests completed by every group.
    pub requests: u64,
    /// Failed requests of every group.
    pub errors: u64,
    /// Per group of clients.
    pub groups: Vec<GroupReport>,
}

impl Report {
    /// The report of `groups` over `elapsed`.
    pub fn new(groups: Vec<GroupReport>, elapsed: Duration) -> Report {
        Report {
            seconds: elapsed.as_secs_f64(),
            requests: groups.iter().map(|g| g.requests).sum(),
            errors: groups.iter().map(|g| g.errors).sum(),
            groups,
        }
    }

    /// The group of `method` (the first, when several).
    pub fn group(&self, method: &str) -> Option<&GroupReport> {
        self.groups.iter().find(|g| g.method == method)
    }

    /// A table for people: one row per group, then each failure code with an example.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<8} {:>7} {:>9} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8}",
            "method",
            "clients",
            "requests",
            "errors",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms"
        );
        for g in &self.groups {
            let l = &g.latency;
            let _ = writeln!(
                out,
                "{:<8} {:>7} {:>9} {:>7} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                g.method,
                g.clients,
                g.requests,
                g.errors,
                g.per_second,
                l.p50_ms,
                l.p90_ms,
                l.p99_ms,
                l.max_ms
            );
        }
        let _ = writeln!(
            out,
            "{} requests in {:.2} s, {} errors",
            self.requests, self.seconds, self.errors
        );
        for g in &self.groups {
            for (code, n) in &g.errors_by_code {
                let example = g.error_examples.get(code).map_or("", String::as_str);
                let _ = writeln!(out, "  {} {code} x{n}: {example}", g.method);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut us: Vec<u64> = (1..=100).rev().map(|i| i * 1000).collect();
        let l = Latency::of(&mut us);
        assert_eq!(
            (l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(l.mean_ms, 50.5);
        assert_eq!(Latency::of(&mut []), Latency::default());
    }

    #[test]
    fn tallies_count_errors_and_cap_distinct_answers() {
        let mut a = Tally::default();
        let ms = Duration::from_millis(1);
        a.record(ms, Err(("Unavailable".into(), "down".into())));
        a.record(ms, Err(("Unavailable".into(), "still down".into())));
        for i in 0..MAX_ANSWERS + 3 {
            a.record(ms, Ok(format!("answer {i}")));
        }
        let mut b = Tally::default();
        b.record(ms, Ok("answer 0".into()));
        b.record(ms, Ok("new".into()));
        a.merge(b);
        assert_eq!(a.errors["Unavailable"], 2);
        assert_eq!(a.error_examples["Unavailable"], "down");
        assert_eq!(a.answers.len(), MAX_ANSWERS + 1);
        assert_eq!(a.answers["answer 0"], 2);
        assert_eq!(a.answers[OTHER_ANSWERS], 4);
        let r = Report::new(
            vec![GroupReport::new("predict", 2, a, Duration::from_secs(2))],
            Duration::from_secs(2),
        );
        assert_eq!((r.requests, r.errors), (MAX_ANSWERS as u64 + 7, 2));
        assert!(
            r.table().contains("predict Unavailable x2: down"),
            "{}",
            r.table()
        );
    }
}
