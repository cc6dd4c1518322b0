//! Running one case and judging it: the answer against the case's expectation, what it
//! left in the store and in the output folder, and whether the cluster still serves.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use tonic::Code;
use wick_proto::v1::{GetSweepParams, ListSweepsParams, PredictParams};

use crate::harness::{Act, Case, Ctx, Seen, Want, Writes};

/// Every key of the cluster's store.
fn keys(ctx: &Ctx) -> BTreeSet<String> {
    ctx.c.s3.keys("cluster/").into_iter().collect()
}

/// Runs a detached sweep and waits for its one trial to end.
fn sweep(ctx: &Ctx, args: &[String]) -> Seen {
    let log_before = ctx.worker_log().len();
    let mut all: Vec<&str> = vec!["sweep"];
    all.extend(args.iter().map(String::as_str));
    all.push("--detach");
    let out = ctx.c.client_raw(&all);
    if !out.status.success() {
        return Seen::from_output(&out);
    }
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("sweep --json");
    let id = doc["sweep"].as_str().expect("a sweep id").to_string();
    let trials = ctx.c.wait_done(&id, Duration::from_secs(60));
    assert_eq!(trials.len(), 1, "one trial per catalogue sweep: {trials:?}");
    let t = &trials[0];
    let trial = t["id"].as_str().unwrap_or_default().to_string();
    if t["state"] == "failed" {
        *ctx.last_failed.borrow_mut() = trial.clone();
    }
    // The documents follow the status from the settler; without the wait they could
    // land during the next case and be blamed on it.
    ctx.c
        .wait_settled([trial.as_str()], &["config.json", "data.json"]);
    *ctx.last_trial.borrow_mut() = trial;
    let log = ctx.worker_log();
    let state = match t["state"].as_str().unwrap_or("") {
        "succeeded" => "succeeded",
        "failed" => "failed",
        "cancelled" => "cancelled",
        _ => "stopped_early",
    };
    Seen {
        got: Want::Trial(state),
        text: format!("{}\n{}", t["message"].as_str().unwrap_or(""), t["metrics"]),
        log: log.get(log_before..).unwrap_or("").to_string(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        attempts: t["attempts"].as_u64(),
    }
}

/// Carries out `act`.
fn act(ctx: &Ctx, act: &Act) -> Seen {
    match act {
        Act::Cli(args) => {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Seen::from_output(&ctx.c.client_raw(&args))
        }
        Act::Bare(args) => Seen::from_output(&ctx.bare_client(args)),
        Act::Sweep(args) => sweep(ctx, args),
        Act::Custom(f) => f(ctx),
    }
}

/// Problems with the cluster after a case: the coordinator must list sweeps and answer
/// for the good sweep, and the worker must still forecast from the good covid trial.
fn liveness(ctx: &Ctx) -> Vec<String> {
    let mut problems = Vec::new();
    let mut s = ctx.sweeps();
    let (list, status, predict) = ctx.rt.block_on(async {
        let list = s.list_sweeps(ListSweepsParams {}).await;
        let status = s
            .get_sweep(GetSweepParams {
                sweep_id: ctx.good_sweep.clone(),
            })
            .await;
        let predict = s
            .predict(PredictParams {
                trial_id: ctx.covid.clone(),
                country: "TW".into(),
                all: false,
            })
            .await;
        (list, status, predict)
    });
    if let Err(e) = list {
        problems.push(format!("ListSweeps failed afterwards: {e}"));
    }
    match status {
        Ok(st) => {
            let st = st.into_inner();
            if !st.trials.iter().all(|t| t.state == "succeeded") {
                problems.push(format!("the good sweep changed: {st:?}"));
            }
        }
        Err(e) => problems.push(format!("GetSweep of the good sweep failed afterwards: {e}")),
    }
    match predict {
        Ok(p) if p.get_ref().forecasts.first().map(|f| f.iso2.as_str()) == Some("TW") => {}
        Ok(p) => problems.push(format!("Predict answered oddly afterwards: {p:?}")),
        Err(e) => problems.push(format!("Predict on the good trial failed afterwards: {e}")),
    }
    problems
}

/// What `case` left in the store, judged against `before`.
fn writes(ctx: &Ctx, case: &Case, before: &BTreeSet<String>) -> Vec<String> {
    let after = keys(ctx);
    let mut problems: Vec<String> = after
        .iter()
        .filter(|k| k.contains("/staging/"))
        .map(|k| format!("staging key left behind: {k}"))
        .collect();
    let new: Vec<&String> = after.difference(before).collect();
    match case.writes {
        Writes::Nothing if !new.is_empty() => {
            problems.push(format!("a refused input wrote to the store: {new:?}"))
        }
        Writes::FailedTrial => {
            let trial = ctx.last_trial.borrow().clone();
            let dir = format!("cluster/trials/{trial}/");
            let promoted: Vec<&String> = after
                .iter()
                .filter(|k| k.starts_with(&dir))
                .filter(|k| {
                    k.ends_with("model.safetensors")
                        || k.ends_with("summary.json")
                        || k.contains("/plots/")
                })
                .collect();
            if trial.is_empty() || !promoted.is_empty() {
                problems.push(format!(
                    "failed trial '{trial}' has promoted artifacts: {promoted:?}"
                ));
            }
        }
        _ => {}
    }
    let outputs: Vec<_> = std::fs::read_dir(&ctx.inputs.out)
        .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<PathBuf>>())
        .unwrap_or_default();
    if !matches!(case.want, Want::Exit(0) | Want::Code(Code::Ok)) && !outputs.is_empty() {
        problems.push(format!("a refused command wrote output files: {outputs:?}"));
    }
    problems
}

/// Runs `case`; returns every way its answer or its aftermath was wrong, and the first
/// line of the answer (for the log of the run).
pub fn check(ctx: &Ctx, case: &Case) -> (Vec<String>, String) {
    let before = keys(ctx);
    let seen = act(ctx, &case.act);
    let mut problems = Vec::new();
    if seen.got != case.want {
        problems.push(format!("answered {:?}, expected {:?}", seen.got, case.want));
    }
    for frag in &case.says {
        if !seen.text.contains(frag.as_str()) {
            problems.push(format!("message lacks '{frag}'"));
        }
    }
    for frag in &case.logs {
        if !seen.log.contains(frag.as_str()) {
            problems.push(format!("the worker's log lacks '{frag}'"));
        }
    }
    if seen.text.contains("panicked") {
        problems.push("something panicked".into());
    }
    if matches!(case.want, Want::Exit(c) if c != 0) && !seen.stdout.trim().is_empty() {
        problems.push(format!(
            "a failed --json command printed on stdout: {}",
            seen.stdout
        ));
    }
    if matches!(case.want, Want::Trial(_)) && seen.attempts != Some(1) {
        problems.push(format!(
            "the trial took {:?} attempts; its own fault must not be retried",
            seen.attempts
        ));
    }
    problems.extend(writes(ctx, case, &before));
    problems.extend(liveness(ctx));
    if !problems.is_empty() {
        let text: String = seen.text.chars().take(1500).collect();
        problems.push(format!("its message was: {text}"));
        if !case.logs.is_empty() {
            problems.push(format!("the worker logged: {}", seen.log));
        }
    }
    let first = seen
        .text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .chars()
        .take(160)
        .collect();
    (problems, first)
}

/// Runs every case and collects a report of those that went wrong (empty when all passed).
pub fn run_all(ctx: &Ctx, cases: &[Case]) -> Vec<String> {
    let mut report = Vec::new();
    for case in cases {
        let started = std::time::Instant::now();
        let (problems, answer) = check(ctx, case);
        eprintln!(
            "case {:<32} {:<5} {:>4.1} s  {answer}",
            case.name,
            if problems.is_empty() { "ok" } else { "WRONG" },
            started.elapsed().as_secs_f64()
        );
        if !problems.is_empty() {
            report.push(format!("{}:\n    {}", case.name, problems.join("\n    ")));
        }
        // Outputs of a case that was meant to write them must not count against the next.
        if let Ok(d) = std::fs::read_dir(&ctx.inputs.out) {
            for e in d.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    report
}
