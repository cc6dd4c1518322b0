//! Random search: `spec.random` configurations per task, drawn from a generator seeded by
//! `spec.search_seed`, so the same spec draws the same trials (and, ids being derived from
//! configurations, the same trial ids). Each knob is drawn from its range when the spec
//! gives one (uniform, or log-uniform for `log`; whole numbers for integer knobs), else
//! picked uniformly from its list, else left at the task's default.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wick_common::trial::{CovidConfig, TrialConfig, VaeConfig};
use wick_proto::v1::{Range, SweepSpec};

use super::{
    COVID_BATCH, COVID_START, COVID_THRESHOLD, MAX_TRIALS, VAE_BATCH, VAE_LATENT, invalid,
};
use crate::error::Result;

/// Knobs that take ranges, and whether they are whole numbers.
const KNOBS: [(&str, bool); 4] = [("hidden", true), ("l", true), ("lr", false), ("kl", false)];

/// Checks the ranges: known knobs, once each, lo <= hi, positive ends for log ranges, and
/// no list given for the same knob.
fn check(spec: &SweepSpec) -> Result<()> {
    for (i, r) in spec.ranges.iter().enumerate() {
        let Some((_, integer)) = KNOBS.iter().find(|(k, _)| *k == r.name) else {
            return Err(invalid(format!(
                "no range can be given for '{}'; ranges work for hidden, l, lr and kl",
                r.name
            )));
        };
        if spec.ranges[..i].iter().any(|o| o.name == r.name) {
            return Err(invalid(format!("two ranges for --{}", r.name)));
        }
        if !(r.lo.is_finite() && r.hi.is_finite() && r.lo <= r.hi) {
            return Err(invalid(format!(
                "--{} {}..{} is not a range (the low end must not be above the high end)",
                r.name, r.lo, r.hi
            )));
        }
        if r.log && r.lo <= 0.0 {
            return Err(invalid(format!(
                "--{} {}..{}:log needs both ends above 0",
                r.name, r.lo, r.hi
            )));
        }
        if *integer && r.lo < 1.0 {
            return Err(invalid(format!("--{} ranges start at 1 or more", r.name)));
        }
        let listed = match r.name.as_str() {
            "hidden" => !spec.hidden.is_empty(),
            "l" => !spec.l.is_empty(),
            "lr" => !spec.lr.is_empty(),
            _ => !spec.kl.is_empty(),
        };
        if listed {
            return Err(invalid(format!(
                "--{} has both a list and a range; give one",
                r.name
            )));
        }
    }
    Ok(())
}

/// A draw from `r`.
fn from_range(rng: &mut ChaCha8Rng, r: &Range, integer: bool) -> f64 {
    let x = if r.log {
        (rng.random_range(r.lo.ln()..=r.hi.ln())).exp()
    } else {
        rng.random_range(r.lo..=r.hi)
    };
    if integer { x.round() } else { x }
}

/// A value of `knob`: from its range if any, else one of `list`, else `default`.
fn pick<T: Copy>(
    rng: &mut ChaCha8Rng,
    spec: &SweepSpec,
    knob: &str,
    list: &[T],
    default: T,
    from_f64: impl Fn(f64) -> T,
) -> T {
    if let Some(r) = spec.ranges.iter().find(|r| r.name == knob) {
        let integer = KNOBS.iter().any(|(k, i)| *k == knob && *i);
        return from_f64(from_range(rng, r, integer));
    }
    match list.len() {
        0 => default,
        n => list[rng.random_range(0..n)],
    }
}

/// `spec.random` configurations of each task the spec runs (covid first).
pub fn draw(spec: &SweepSpec, covid: bool, vae: bool) -> Result<Vec<TrialConfig>> {
    check(spec)?;
    let n = spec.random as u64 * (covid as u64 + vae as u64);
    if n > MAX_TRIALS {
        return Err(invalid(format!(
            "--random {} draws {n} trials, above the limit of {MAX_TRIALS}",
            spec.random
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(spec.search_seed);
    let mut out = Vec::with_capacity(n as usize);
    let (cells, split) = (super::cells(spec)?, super::split(spec));
    let whole = |x: f64| x as u32;
    let same = |x: f64| x;
    for _ in 0..if covid { spec.random } else { 0 } {
        let cell = cells[rng.random_range(0..cells.len())];
        out.push(TrialConfig::Covid(CovidConfig {
            cell,
            hidden: pick(
                &mut rng,
                spec,
                "hidden",
                &spec.hidden,
                cell.default_hidden() as u32,
                whole,
            ) as usize,
            l: pick(&mut rng, spec, "l", &spec.l, 40, whole) as usize,
            epochs: pick(&mut rng, spec, "epochs", &spec.epochs, 500, whole) as usize,
            lr: pick(&mut rng, spec, "lr", &spec.lr, 1e-3, same),
            batch: COVID_BATCH,
            seed: pick(&mut rng, spec, "seed", &spec.seed, 0, |x| x as u64),
            threshold: COVID_THRESHOLD,
            start: COVID_START.into(),
            split: split.clone(),
            val: super::val(spec),
        }));
    }
    for _ in 0..if vae { spec.random } else { 0 } {
        out.push(TrialConfig::Vae(VaeConfig {
            kl_weight: pick(&mut rng, spec, "kl", &spec.kl, 1.0, same),
            size: pick(&mut rng, spec, "size", &spec.size, 28, whole),
            epochs: pick(&mut rng, spec, "epochs", &spec.epochs, 30, whole) as usize,
            lr: pick(&mut rng, spec, "lr", &spec.lr, 1e-3, same),
            batch: VAE_BATCH,
            seed: pick(&mut rng, spec, "seed", &spec.seed, 0, |x| x as u64),
            hidden: pick(&mut rng, spec, "hidden", &spec.hidden, 400, whole) as usize,
            latent: VAE_LATENT,
            limit: spec.limit as usize,
            val: super::val(spec),
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wick_proto::v1::DataRef;

    fn spec(random: u32, seed: u64) -> SweepSpec {
        SweepSpec {
            tasks: vec!["covid".into()],
            random,
            search_seed: seed,
            cell: vec!["rnn".into(), "gru".into()],
            ranges: vec![
                Range {
                    name: "hidden".into(),
                    lo: 16.0,
                    hi: 128.0,
                    log: false,
                },
                Range {
                    name: "lr".into(),
                    lo: 1e-4,
                    hi: 1e-2,
                    log: true,
                },
            ],
            data: Some(DataRef {
                covid_csv: "data/x/covid.csv".into(),
                faces: String::new(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn draws_are_seeded_within_their_ranges_and_choices() {
        let a = super::super::expand(&spec(20, 7)).unwrap();
        assert_eq!(
            a,
            super::super::expand(&spec(20, 7)).unwrap(),
            "same seed, same draws"
        );
        assert_ne!(
            a,
            super::super::expand(&spec(20, 8)).unwrap(),
            "another seed draws others"
        );
        assert!(
            a.len() >= 19,
            "20 draws of two continuous knobs barely repeat: {}",
            a.len()
        );
        let mut cells = std::collections::HashSet::new();
        for c in &a {
            let TrialConfig::Covid(c) = c else {
                panic!("only covid asked for")
            };
            assert!((16..=128).contains(&c.hidden), "{c:?}");
            assert!((1e-4..=1e-2).contains(&c.lr), "{c:?}");
            assert_eq!(c.l, 40);
            cells.insert(c.cell);
        }
        assert_eq!(cells.len(), 2, "both cells drawn");
        // Log-uniform: about half the draws below the geometric middle 1e-3.
        let low = a
            .iter()
            .filter(|c| matches!(c, TrialConfig::Covid(c) if c.lr < 1e-3))
            .count();
        assert!((4..=16).contains(&low), "{low} of {} below 1e-3", a.len());
    }

    #[test]
    fn bad_ranges_name_the_knob() {
        let err = |s: SweepSpec| match super::super::expand(&s) {
            Err(crate::error::Error::InvalidArgument(m)) => m,
            other => panic!("expected InvalidArgument, got {other:?}"),
        };
        let mut s = spec(5, 0);
        s.ranges[1].lo = 0.0;
        assert!(err(s).contains("--lr"), "log range from 0");
        let mut s = spec(5, 0);
        s.ranges.push(Range {
            name: "size".into(),
            lo: 1.0,
            hi: 2.0,
            log: false,
        });
        assert!(err(s).contains("'size'"));
        let mut s = spec(5, 0);
        s.hidden = vec![8];
        assert!(err(s).contains("both a list and a range"));
        let mut s = spec(0, 0);
        s.random = 0;
        assert!(err(s).contains("--random"), "ranges without random search");
    }
}
