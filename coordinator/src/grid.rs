//! Expansion of a sweep spec into its trials: the grid over every knob that applies to
//! each task (L-type knobs to covid, KL-type to vae), with each task's defaults for the
//! knobs left empty, every configuration validated, and the sweep's id derived from its
//! trial ids and data so that resubmitting the same sweep names the same trials.
//!
//! Hidden units and epochs come per task (`covid_hidden`, `vae_hidden`, `covid_epochs`,
//! `vae_epochs`): a mixed sweep never sizes one task with a knob meant for the other. The
//! shared `hidden` and `epochs` lists still apply to every task that has no list of its
//! own, which is what they meant in the specs stored before the per-task lists existed.

use std::collections::HashSet;

use chrono::NaiveDate;
use wick_common::ids;

use crate::records::DataDoc;
use wick_common::trial::{Cell, CovidConfig, DEFAULT_VAL, TrialConfig, VaeConfig};
use wick_proto::v1::SweepSpec;

use crate::error::{Error, Result};

mod search;

/// Most trials one sweep may hold: a larger grid is almost always a typo in a list. The
/// coordinator holds 100,000 trials in a few hundred MB and recovers them in seconds
/// (`bench/scale.sh`).
pub const MAX_TRIALS: u64 = 100_000;
/// Longest sweep name, in characters: it is shown on one line of `client list`.
pub const MAX_NAME: usize = 200;

/// Defaults of the knobs a sweep spec leaves empty or cannot carry; they match
/// `worker train`'s.
const COVID_BATCH: usize = 64;
const COVID_EPOCHS: u32 = 500;
const COVID_THRESHOLD: f64 = 0.7;
const COVID_START: &str = "2020-03-01";
const VAE_BATCH: usize = 128;
const VAE_EPOCHS: u32 = 30;
const VAE_HIDDEN: u32 = 400;
const VAE_LATENT: u32 = 50;

fn invalid(msg: String) -> Error {
    Error::InvalidArgument(format!("invalid sweep: {msg}"))
}

/// The list given, or the default when it is empty.
fn or<T: Clone>(given: &[T], default: &[T]) -> Vec<T> {
    if given.is_empty() {
        default.to_vec()
    } else {
        given.to_vec()
    }
}

/// A task's own list when it has one, else the list shared by both tasks.
fn own<'a, T>(own: &'a [T], shared: &'a [T]) -> &'a [T] {
    if own.is_empty() { shared } else { own }
}

/// Which tasks the spec runs: those named, else those a task-specific knob was given
/// for, else both.
fn tasks(spec: &SweepSpec) -> Result<(bool, bool)> {
    if !spec.tasks.is_empty() {
        let (mut covid, mut vae) = (false, false);
        for t in &spec.tasks {
            match t.trim().to_ascii_lowercase().as_str() {
                "covid" => covid = true,
                "vae" => vae = true,
                "both" => (covid, vae) = (true, true),
                other => {
                    return Err(invalid(format!(
                        "unknown task '{other}'; use covid, vae or both"
                    )));
                }
            }
        }
        return Ok((covid, vae));
    }
    let covid_knob = !spec.l.is_empty()
        || !spec.cell.is_empty()
        || !spec.split.is_empty()
        || !spec.covid_hidden.is_empty()
        || !spec.covid_epochs.is_empty()
        || !spec.threshold.is_empty()
        || !spec.start.is_empty();
    let vae_knob = !spec.kl.is_empty()
        || !spec.size.is_empty()
        || spec.limit > 0
        || !spec.vae_hidden.is_empty()
        || !spec.latent.is_empty()
        || !spec.vae_epochs.is_empty();
    Ok(match (covid_knob, vae_knob) {
        (true, false) => (true, false),
        (false, true) => (false, true),
        _ => (true, true),
    })
}

/// Trials the grid would hold, computed before building it so a huge grid is refused
/// without allocating it.
fn count(spec: &SweepSpec, covid: bool, vae: bool) -> u64 {
    let n = |len: usize| (len.max(1)) as u64;
    let product = |lens: &[usize]| lens.iter().fold(1u64, |p, &l| p.saturating_mul(n(l)));
    let shared = [spec.lr.len(), spec.seed.len()];
    let c = if covid {
        product(&[
            spec.l.len(),
            spec.cell.len(),
            own(&spec.covid_hidden, &spec.hidden).len(),
            own(&spec.covid_epochs, &spec.epochs).len(),
            spec.threshold.len(),
            spec.start.len(),
        ])
        .saturating_mul(product(&shared))
    } else {
        0
    };
    let v = if vae {
        product(&[
            spec.kl.len(),
            spec.size.len(),
            own(&spec.vae_hidden, &spec.hidden).len(),
            spec.latent.len(),
            own(&spec.vae_epochs, &spec.epochs).len(),
        ])
        .saturating_mul(product(&shared))
    } else {
        0
    };
    c.saturating_add(v)
}

/// The cells the spec names (default LSTM).
fn cells(spec: &SweepSpec) -> Result<Vec<Cell>> {
    or(&spec.cell, &["lstm".to_string()])
        .iter()
        .map(|c| c.parse::<Cell>().map_err(|e| invalid(format!("cell: {e}"))))
        .collect()
}

/// The covid split the spec names (default random).
fn split(spec: &SweepSpec) -> String {
    if spec.split.is_empty() {
        "random".to_string()
    } else {
        spec.split.clone()
    }
}

/// The validation fraction the spec names (default [`DEFAULT_VAL`]).
fn val(spec: &SweepSpec) -> f64 {
    spec.val.unwrap_or(DEFAULT_VAL)
}

/// The start dates the spec names, written YYYY-MM-DD so that one day is one trial id
/// however it was typed (default [`COVID_START`]).
fn starts(spec: &SweepSpec) -> Result<Vec<String>> {
    spec.start
        .iter()
        .map(|s| {
            NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .map(|d| d.format("%Y-%m-%d").to_string())
                .map_err(|_| {
                    invalid(format!(
                        "start date '{s}' is not a date; write it YYYY-MM-DD, as in --start-date 2020-03-01"
                    ))
                })
        })
        .collect()
}

/// Every configuration of `configs` once per value of `values`, in order (so the knobs
/// varied first vary slowest); `configs` as they are when `values` is empty, keeping the
/// default they were built with.
fn vary<C: Clone, T: Clone>(configs: Vec<C>, values: &[T], set: impl Fn(&mut C, T)) -> Vec<C> {
    if values.is_empty() {
        return configs;
    }
    let mut out = Vec::with_capacity(configs.len() * values.len());
    for c in configs {
        for v in values {
            let mut c = c.clone();
            set(&mut c, v.clone());
            out.push(c);
        }
    }
    out
}

/// The covid configuration every knob left empty falls back to.
fn covid_default(spec: &SweepSpec) -> CovidConfig {
    CovidConfig {
        cell: Cell::Lstm,
        hidden: Cell::Lstm.default_hidden(),
        l: 40,
        epochs: COVID_EPOCHS as usize,
        lr: 1e-3,
        batch: COVID_BATCH,
        seed: 0,
        threshold: COVID_THRESHOLD,
        start: COVID_START.into(),
        split: split(spec),
        val: val(spec),
    }
}

/// The VAE configuration every knob left empty falls back to.
fn vae_default(spec: &SweepSpec) -> VaeConfig {
    VaeConfig {
        kl_weight: 1.0,
        size: 28,
        epochs: VAE_EPOCHS as usize,
        lr: 1e-3,
        batch: VAE_BATCH,
        seed: 0,
        hidden: VAE_HIDDEN as usize,
        latent: VAE_LATENT as usize,
        limit: spec.limit as usize,
        val: val(spec),
    }
}

fn covid_trials(spec: &SweepSpec, out: &mut Vec<TrialConfig>) -> Result<()> {
    let mut all = vec![covid_default(spec)];
    all = vary(all, &spec.l, |c, l| c.l = l as usize);
    // A cell brings its own default size, which a hidden list then replaces.
    all = vary(all, &cells(spec)?, |c, cell| {
        c.cell = cell;
        c.hidden = cell.default_hidden();
    });
    all = vary(all, own(&spec.covid_hidden, &spec.hidden), |c, h| {
        c.hidden = h as usize
    });
    all = vary(all, own(&spec.covid_epochs, &spec.epochs), |c, e| {
        c.epochs = e as usize
    });
    all = vary(all, &spec.lr, |c, lr| c.lr = lr);
    all = vary(all, &spec.seed, |c, seed| c.seed = seed);
    all = vary(all, &spec.threshold, |c, t| c.threshold = t);
    all = vary(all, &starts(spec)?, |c, start| c.start = start);
    out.extend(all.into_iter().map(TrialConfig::Covid));
    Ok(())
}

fn vae_trials(spec: &SweepSpec, out: &mut Vec<TrialConfig>) {
    let mut all = vec![vae_default(spec)];
    all = vary(all, &spec.kl, |c, kl| c.kl_weight = kl);
    all = vary(all, &spec.size, |c, size| c.size = size);
    all = vary(all, own(&spec.vae_hidden, &spec.hidden), |c, h| {
        c.hidden = h as usize
    });
    all = vary(all, &spec.latent, |c, z| c.latent = z as usize);
    all = vary(all, own(&spec.vae_epochs, &spec.epochs), |c, e| {
        c.epochs = e as usize
    });
    all = vary(all, &spec.lr, |c, lr| c.lr = lr);
    all = vary(all, &spec.seed, |c, seed| c.seed = seed);
    out.extend(all.into_iter().map(TrialConfig::Vae));
}

/// Every trial of `spec`, in grid order (covid first, then vae; the first knob varies
/// slowest) or, with `spec.random`, drawn at random; duplicates removed, each validated.
/// Refuses an empty grid, one above [`MAX_TRIALS`], a bad value (naming the knob), a task
/// without its data and an unknown early-stopping policy.
pub fn expand(spec: &SweepSpec) -> Result<Vec<TrialConfig>> {
    let (covid, vae) = tasks(spec)?;
    crate::state::Policy::of(spec)?;
    let name = spec.name.chars().count();
    if name > MAX_NAME {
        return Err(invalid(format!(
            "the sweep name is {name} characters, above the limit of {MAX_NAME}; give a shorter --name"
        )));
    }
    if spec.random > 0 {
        return finish(search::draw(spec, covid, vae)?, spec);
    }
    if !spec.ranges.is_empty() {
        return Err(invalid(
            "ranges (e.g. --lr 1e-4..1e-2) need random search: add --random N".into(),
        ));
    }
    let n = count(spec, covid, vae);
    if n == 0 {
        return Err(invalid(
            "the grid holds no trial; name a task (covid, vae or both)".into(),
        ));
    }
    if n > MAX_TRIALS {
        return Err(invalid(format!(
            "the grid holds {n} trials, above the limit of {MAX_TRIALS}; give fewer values per knob or split it into several sweeps"
        )));
    }
    let mut all = Vec::with_capacity(n as usize);
    if covid {
        covid_trials(spec, &mut all)?;
    }
    if vae {
        vae_trials(spec, &mut all);
    }
    finish(all, spec)
}

/// Checks the data is there for the tasks of `all`, validates each configuration and
/// drops repeats (first kept).
fn finish(all: Vec<TrialConfig>, spec: &SweepSpec) -> Result<Vec<TrialConfig>> {
    let data = spec.data.clone().unwrap_or_default();
    let has = |task: &str| all.iter().any(|c| c.task() == task);
    if has("covid") && data.covid_csv.is_empty() {
        return Err(invalid("covid trials need data: set data.covid_csv (client: --data DIR or --covid-csv FILE|URL)".into()));
    }
    if has("vae") && data.faces.is_empty() {
        return Err(invalid(
            "vae trials need data: set data.faces (client: --data DIR or --faces DIR)".into(),
        ));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(all.len());
    for config in all {
        config
            .validate()
            .map_err(|e| invalid(format!("{} trial: {e}", config.task())))?;
        if seen.insert(serde_json::to_string(&config).expect("a config serialises")) {
            out.push(config);
        }
    }
    Ok(out)
}

/// The sweep id of these trials over this data: the same grid on the same data is the
/// same sweep, whatever order the values were given in.
pub fn sweep_id(configs: &[TrialConfig], spec: &SweepSpec) -> String {
    let data = spec.data.as_ref().map(DataDoc::from).unwrap_or_default();
    let mut trial_ids: Vec<String> = configs.iter().map(|c| data.trial_id(c)).collect();
    trial_ids.sort();
    let mut key = format!(
        "{}|covid_csv={}|faces={}",
        trial_ids.join(","),
        data.covid_csv,
        data.faces
    );
    // How the trials are run is part of the sweep too; left out when it is the default so
    // that plain grids keep the ids they always had.
    let policy = spec.early_stop.trim();
    if !matches!(policy, "" | "none") || spec.max_parallel > 0 {
        key.push_str(&format!(
            "|early_stop={policy}|min_epochs={}|eta={}|max_parallel={}",
            spec.min_epochs, spec.eta, spec.max_parallel
        ));
    }
    ids::sweep_id(&key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wick_proto::v1::DataRef;

    fn spec() -> SweepSpec {
        SweepSpec {
            data: Some(DataRef {
                covid_csv: "data/sha256-aa/covid.csv".into(),
                faces: "data/sha256-bb/faces.tar".into(),
            }),
            ..Default::default()
        }
    }

    fn err(s: &SweepSpec) -> String {
        match expand(s) {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn the_card_example_gives_two_covid_and_two_vae_trials() {
        let s = SweepSpec {
            l: vec![12, 40],
            kl: vec![1.0, 100.0],
            ..spec()
        };
        let t = expand(&s).unwrap();
        assert_eq!(t.iter().filter(|c| c.task() == "covid").count(), 2);
        assert_eq!(t.iter().filter(|c| c.task() == "vae").count(), 2);
        let data = DataDoc::default();
        let ids: HashSet<String> = t.iter().map(|c| data.trial_id(c)).collect();
        assert_eq!(ids.len(), 4);
        let other = DataDoc {
            covid_csv: "data/sha256-other/covid.csv".into(),
            ..DataDoc::default()
        };
        let covid = &t[0];
        assert_ne!(
            other.trial_id(covid),
            data.trial_id(covid),
            "other data, new trial"
        );
        assert_eq!(
            other.trial_id(&t[3]),
            data.trial_id(&t[3]),
            "a vae trial ignores the CSV"
        );
        let TrialConfig::Covid(c) = &t[0] else {
            panic!("covid first")
        };
        assert_eq!(
            (c.l, c.cell, c.hidden, c.epochs, c.seed),
            (12, Cell::Lstm, 64, 500, 0)
        );
        let TrialConfig::Vae(v) = &t[3] else {
            panic!("vae last")
        };
        assert_eq!(
            (v.kl_weight, v.size, v.hidden, v.epochs),
            (100.0, 28, 400, 30)
        );
        // The same grid in another order is the same sweep.
        let again = SweepSpec {
            l: vec![40, 12],
            kl: vec![100.0, 1.0],
            ..spec()
        };
        assert_eq!(sweep_id(&t, &s), sweep_id(&expand(&again).unwrap(), &again));
    }

    #[test]
    fn tasks_follow_the_knobs_given() {
        let only_covid = expand(&SweepSpec {
            l: vec![12],
            ..spec()
        })
        .unwrap();
        assert!(only_covid.iter().all(|c| c.task() == "covid") && only_covid.len() == 1);
        let only_vae = expand(&SweepSpec {
            kl: vec![0.0, 1.0, 100.0],
            ..spec()
        })
        .unwrap();
        assert!(only_vae.iter().all(|c| c.task() == "vae") && only_vae.len() == 3);
        let both = expand(&spec()).unwrap();
        assert_eq!(
            both.iter().map(|c| c.task()).collect::<Vec<_>>(),
            ["covid", "vae"]
        );
        let named = expand(&SweepSpec {
            tasks: vec!["vae".into()],
            l: vec![12],
            ..spec()
        })
        .unwrap();
        assert_eq!(named.len(), 1);
        assert_eq!(named[0].task(), "vae");
    }

    #[test]
    fn hidden_defaults_per_cell_and_duplicates_collapse() {
        let s = SweepSpec {
            cell: vec!["rnn".into(), "gru".into()],
            seed: vec![1, 1],
            ..spec()
        };
        let t = expand(&s).unwrap();
        let hidden: Vec<usize> = t
            .iter()
            .map(|c| match c {
                TrialConfig::Covid(c) => c.hidden,
                TrialConfig::Vae(_) => panic!("covid only"),
            })
            .collect();
        assert_eq!(hidden, [32, 64]);
        let s = SweepSpec {
            kl: vec![1.0],
            limit: 8,
            epochs: vec![2],
            ..spec()
        };
        let TrialConfig::Vae(v) = &expand(&s).unwrap()[0] else {
            panic!("vae")
        };
        assert_eq!((v.limit, v.epochs), (8, 2));
    }

    /// (hidden units, epochs) of each trial of one task.
    type Sizes = Vec<(usize, usize)>;

    /// The hidden sizes and epochs of the covid and the vae trials of `s`.
    fn sizes(s: &SweepSpec) -> (Sizes, Sizes) {
        let (mut covid, mut vae) = (vec![], vec![]);
        for c in expand(s).unwrap() {
            match c {
                TrialConfig::Covid(c) => covid.push((c.hidden, c.epochs)),
                TrialConfig::Vae(v) => vae.push((v.hidden, v.epochs)),
            }
        }
        (covid, vae)
    }

    #[test]
    fn each_task_takes_its_own_hidden_sizes_and_epochs() {
        // What `client sweep --l 12 --kl 1 --hidden 16` sends: a 16-unit cell, and the
        // VAE keeps its 400 units.
        let mixed = SweepSpec {
            l: vec![12],
            kl: vec![1.0],
            covid_hidden: vec![16],
            ..spec()
        };
        assert_eq!(sizes(&mixed), (vec![(16, 500)], vec![(400, 30)]));
        let vae_only = SweepSpec {
            vae_hidden: vec![32, 64],
            latent: vec![8],
            vae_epochs: vec![3],
            epochs: vec![2],
            ..mixed.clone()
        };
        assert_eq!(sizes(&vae_only), (vec![(16, 2)], vec![(32, 3), (64, 3)]));
        let t = expand(&vae_only).unwrap();
        assert!(
            t.iter()
                .all(|c| !matches!(c, TrialConfig::Vae(v) if v.latent != 8))
        );
        // A spec stored before the per-task lists: `hidden` and `epochs` size both.
        let stored = SweepSpec {
            l: vec![12],
            kl: vec![1.0],
            hidden: vec![8],
            epochs: vec![2],
            ..spec()
        };
        assert_eq!(sizes(&stored), (vec![(8, 2)], vec![(8, 2)]));
        let per_task = SweepSpec {
            covid_epochs: vec![200, 500],
            vae_epochs: vec![30],
            ..stored
        };
        assert_eq!(sizes(&per_task), (vec![(8, 200), (8, 500)], vec![(8, 30)]));
        // Per-task knobs pick their task when none is named.
        let only = expand(&SweepSpec {
            vae_hidden: vec![8],
            ..spec()
        })
        .unwrap();
        assert!(only.iter().all(|c| c.task() == "vae"), "{only:?}");
    }

    #[test]
    fn thresholds_and_start_dates_are_knobs_of_the_trial() {
        let s = SweepSpec {
            l: vec![12],
            threshold: vec![0.5, 0.7],
            start: vec!["2020-3-15".into(), "2020-03-01".into()],
            ..spec()
        };
        let t = expand(&s).unwrap();
        let got: Vec<(f64, String)> = t
            .iter()
            .map(|c| match c {
                TrialConfig::Covid(c) => (c.threshold, c.start.clone()),
                TrialConfig::Vae(_) => panic!("covid only"),
            })
            .collect();
        assert_eq!(
            got,
            [
                (0.5, "2020-03-15".to_string()),
                (0.5, "2020-03-01".to_string()),
                (0.7, "2020-03-15".to_string()),
                (0.7, "2020-03-01".to_string()),
            ]
        );
        let data = DataDoc::default();
        let ids: HashSet<String> = t.iter().map(|c| data.trial_id(c)).collect();
        assert_eq!(ids.len(), 4, "threshold and start are part of the trial id");
        let m = err(&SweepSpec {
            start: vec!["01/03/2020".into()],
            ..spec()
        });
        assert!(
            m.contains("'01/03/2020'") && m.contains("YYYY-MM-DD"),
            "{m}"
        );
        let m = err(&SweepSpec {
            threshold: vec![2.0],
            ..spec()
        });
        assert!(m.contains("threshold"), "{m}");
    }

    #[test]
    fn bad_values_name_the_knob() {
        assert!(
            err(&SweepSpec {
                l: vec![0],
                ..spec()
            })
            .contains("window length L")
        );
        assert!(
            err(&SweepSpec {
                cell: vec!["lstmx".into()],
                ..spec()
            })
            .contains("rnn, lstm or gru")
        );
        assert!(
            err(&SweepSpec {
                kl: vec![-1.0],
                ..spec()
            })
            .contains("KL weight")
        );
        assert!(
            err(&SweepSpec {
                size: vec![2],
                ..spec()
            })
            .contains("image size")
        );
        assert!(
            err(&SweepSpec {
                epochs: vec![0],
                ..spec()
            })
            .contains("epochs")
        );
        assert!(
            err(&SweepSpec {
                lr: vec![f64::NAN],
                ..spec()
            })
            .contains("learning rate")
        );
        assert!(
            err(&SweepSpec {
                split: "later".into(),
                ..spec()
            })
            .contains("split")
        );
        assert!(
            err(&SweepSpec {
                tasks: vec!["gan".into()],
                ..spec()
            })
            .contains("covid, vae or both")
        );
        let no_data = SweepSpec {
            kl: vec![1.0],
            data: None,
            ..spec()
        };
        assert!(err(&no_data).contains("data.faces"));
    }

    #[test]
    fn grids_above_the_limit_are_refused_with_the_limit() {
        let s = SweepSpec {
            l: (1..=101).collect(),
            seed: (0..1000).collect(),
            tasks: vec!["covid".into()],
            ..spec()
        };
        let m = err(&s);
        assert!(m.contains("101000") && m.contains("100000"), "{m}");
        let s = SweepSpec {
            l: (1..=100).collect(),
            seed: (0..1000).collect(),
            tasks: vec!["covid".into()],
            ..spec()
        };
        assert_eq!(expand(&s).unwrap().len(), 100_000);
    }
}
