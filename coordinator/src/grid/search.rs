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
    COVID_EPOCHS, MAX_TRIALS, VAE_EPOCHS, VAE_HIDDEN, VAE_LATENT, covid_default, invalid, own,
    vae_default,
};
use crate::error::Result;

/// Knobs that take ranges, and whether they are whole numbers. `hidden` is the range of
/// both tasks that older clients sent; `covid_hidden` and `vae_hidden` are each task's.
const KNOBS: [(&str, bool); 6] = [
    ("covid_hidden", true),
    ("vae_hidden", true),
    ("hidden", true),
    ("l", true),
    ("lr", false),
    ("kl", false),
];

/// The client flag of a knob, for messages.
fn flag(knob: &str) -> &str {
    match knob {
        "covid_hidden" => "hidden",
        "vae_hidden" => "vae-hidden",
        other => other,
    }
}

/// Checks the ranges: known knobs, once each, lo <= hi, positive ends for log ranges, and
/// no list given for the same knob.
fn check(spec: &SweepSpec) -> Result<()> {
    for (i, r) in spec.ranges.iter().enumerate() {
        let Some((_, integer)) = KNOBS.iter().find(|(k, _)| *k == r.name) else {
            return Err(invalid(format!(
                "no range can be given for '{}'; ranges work for --hidden, --vae-hidden, --l, --lr and --kl",
                r.name
            )));
        };
        let name = flag(&r.name);
        if spec.ranges[..i].iter().any(|o| o.name == r.name) {
            return Err(invalid(format!("two ranges for --{name}")));
        }
        if !(r.lo.is_finite() && r.hi.is_finite() && r.lo <= r.hi) {
            return Err(invalid(format!(
                "--{name} {}..{} is not a range (the low end must not be above the high end)",
                r.lo, r.hi
            )));
        }
        if r.log && r.lo <= 0.0 {
            return Err(invalid(format!(
                "--{name} {}..{}:log needs both ends above 0",
                r.lo, r.hi
            )));
        }
        if *integer && r.lo < 1.0 {
            return Err(invalid(format!("--{name} ranges start at 1 or more")));
        }
        let listed = match r.name.as_str() {
            "covid_hidden" => !spec.covid_hidden.is_empty(),
            "vae_hidden" => !spec.vae_hidden.is_empty(),
            "hidden" => !spec.hidden.is_empty(),
            "l" => !spec.l.is_empty(),
            "lr" => !spec.lr.is_empty(),
            _ => !spec.kl.is_empty(),
        };
        if listed {
            return Err(invalid(format!(
                "--{name} has both a list and a range; give one"
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

/// A value of `knob`: from its range if any, else one of `list`, else `default`. An
/// empty list draws nothing, so knobs added to the spec later leave the draws of specs
/// without them as they were.
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

/// A task's hidden size: its own range or list (`knob`, `list`) when given, else the
/// shared `hidden` range or list, else `default`.
fn pick_hidden(
    rng: &mut ChaCha8Rng,
    spec: &SweepSpec,
    knob: &str,
    list: &[u32],
    default: u32,
) -> usize {
    let whole = |x: f64| x as u32;
    let given = !list.is_empty() || spec.ranges.iter().any(|r| r.name == knob);
    let h = if given {
        pick(rng, spec, knob, list, default, whole)
    } else {
        pick(rng, spec, "hidden", &spec.hidden, default, whole)
    };
    h as usize
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
    let (cells, starts) = (super::cells(spec)?, super::starts(spec)?);
    let whole = |x: f64| x as u32;
    let same = |x: f64| x;
    // The order of the draws is part of what a seed means: new knobs go last.
    for _ in 0..if covid { spec.random } else { 0 } {
        let cell = cells[rng.random_range(0..cells.len())];
        let base = covid_default(spec);
        let hidden = pick_hidden(
            &mut rng,
            spec,
            "covid_hidden",
            &spec.covid_hidden,
            cell.default_hidden() as u32,
        );
        let l = pick(&mut rng, spec, "l", &spec.l, 40, whole) as usize;
        let epochs = own(&spec.covid_epochs, &spec.epochs);
        let epochs = pick(&mut rng, spec, "epochs", epochs, COVID_EPOCHS, whole) as usize;
        let lr = pick(&mut rng, spec, "lr", &spec.lr, base.lr, same);
        let seed = pick(&mut rng, spec, "seed", &spec.seed, 0, |x| x as u64);
        let threshold = pick(
            &mut rng,
            spec,
            "threshold",
            &spec.threshold,
            base.threshold,
            same,
        );
        let start = match starts.len() {
            0 => base.start.clone(),
            n => starts[rng.random_range(0..n)].clone(),
        };
        out.push(TrialConfig::Covid(CovidConfig {
            cell,
            hidden,
            l,
            epochs,
            lr,
            seed,
            threshold,
            start,
            ..base
        }));
    }
    for _ in 0..if vae { spec.random } else { 0 } {
        let base = vae_default(spec);
        let kl_weight = pick(&mut rng, spec, "kl", &spec.kl, 1.0, same);
        let size = pick(&mut rng, spec, "size", &spec.size, 28, whole);
        let epochs = own(&spec.vae_epochs, &spec.epochs);
        let epochs = pick(&mut rng, spec, "epochs", epochs, VAE_EPOCHS, whole) as usize;
        let lr = pick(&mut rng, spec, "lr", &spec.lr, base.lr, same);
        let seed = pick(&mut rng, spec, "seed", &spec.seed, 0, |x| x as u64);
        let hidden = pick_hidden(&mut rng, spec, "vae_hidden", &spec.vae_hidden, VAE_HIDDEN);
        let latent = pick(&mut rng, spec, "latent", &spec.latent, VAE_LATENT, whole) as usize;
        out.push(TrialConfig::Vae(VaeConfig {
            kl_weight,
            size,
            epochs,
            lr,
            seed,
            hidden,
            latent,
            ..base
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
    fn hidden_ranges_apply_to_their_own_task() {
        let mut s = spec(6, 1);
        s.tasks = vec!["both".into()];
        s.ranges[0].name = "covid_hidden".into();
        s.ranges.push(Range {
            name: "vae_hidden".into(),
            lo: 200.0,
            hi: 300.0,
            log: false,
        });
        s.data.as_mut().unwrap().faces = "data/y/faces.tar".into();
        for c in super::super::expand(&s).unwrap() {
            match c {
                TrialConfig::Covid(c) => assert!((16..=128).contains(&c.hidden), "{c:?}"),
                TrialConfig::Vae(v) => assert!((200..=300).contains(&v.hidden), "{v:?}"),
            }
        }
        // Older clients' `hidden` range sized both tasks, and still does.
        s.ranges.pop();
        s.ranges[0].name = "hidden".into();
        for c in super::super::expand(&s).unwrap() {
            let h = match c {
                TrialConfig::Covid(c) => c.hidden,
                TrialConfig::Vae(v) => v.hidden,
            };
            assert!((16..=128).contains(&h), "{h}");
        }
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
