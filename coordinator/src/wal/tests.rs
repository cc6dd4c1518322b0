//! The log against the state machine: a seeded random history of submissions, leases,
//! epochs, hand-backs, completions and expiries is logged in segments of random sizes;
//! replaying any prefix, snapshotting it and replaying the rest gives the live state, and
//! a torn segment is skipped whole (last) or refused (before the last).

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wick_proto::v1::{
    CompleteParams, DataRef, FailParams, ProgressParams, RegisterParams, SweepSpec,
};

use super::*;
use crate::grid;
use crate::state::{Change, EventKind};

const TTL: Duration = Duration::from_secs(5);

/// The live state after a random history, and the entries it made, in order.
fn history(seed: u64, steps: usize) -> (State, Vec<Entry>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let t0 = Instant::now();
    let mut st = State::new(TTL, 2);
    let mut log = Vec::new();
    st.register("w", &RegisterParams::default(), t0);
    let mut leases: Vec<(String, String, u32)> = Vec::new();
    let apply = |st: &mut State, log: &mut Vec<Entry>, c: Change| {
        log.push(Entry::of_change(&c));
        st.apply(vec![c]);
    };
    for step in 0..steps {
        let now = t0 + Duration::from_millis(step as u64 * 10);
        match rng.random_range(0..10) {
            0 => {
                let spec = SweepSpec {
                    l: vec![rng.random_range(2..6) * 4],
                    seed: vec![rng.random_range(0..3)],
                    epochs: vec![4],
                    tasks: vec!["covid".into()],
                    data: Some(DataRef {
                        covid_csv: "c".into(),
                        faces: "f".into(),
                    }),
                    ..Default::default()
                };
                let configs = grid::expand(&spec).unwrap();
                let sid = grid::sweep_id(&configs, &spec);
                let plan = st.submit(&spec, configs, &sid, step as i64);
                log.push(Entry::of_submit(&plan));
                st.apply_submit(plan);
            }
            1 | 2 => {
                let lease = format!("l{step}");
                if let Some(c) = st.lease("w", &lease, now).unwrap() {
                    leases.push((lease, c.trial.id().to_string(), 0));
                    apply(&mut st, &mut log, c);
                }
            }
            3..=6 if !leases.is_empty() => {
                let i = rng.random_range(0..leases.len());
                let (lease, trial, epoch) = &mut leases[i];
                *epoch += 1;
                let p = ProgressParams {
                    lease_id: lease.clone(),
                    trial_id: trial.clone(),
                    epoch: *epoch,
                    metrics_json: format!(r#"{{"test_acc":0.{step}}}"#),
                    checkpoint_key: if rng.random_bool(0.5) {
                        format!("trials/{trial}/ckpt/{lease}/e{epoch}")
                    } else {
                        String::new()
                    },
                    ..Default::default()
                };
                match st.progress(&p, now) {
                    Ok((c, _)) => apply(&mut st, &mut log, c),
                    Err(_) => {
                        leases.remove(i);
                    }
                }
            }
            7 if !leases.is_empty() => {
                let (lease, trial, _) = leases.remove(rng.random_range(0..leases.len()));
                let done = if rng.random_bool(0.5) {
                    st.complete(
                        &CompleteParams {
                            staging_prefix: format!("trials/{trial}/staging/{lease}/"),
                            staged: Vec::new(),
                            lease_id: lease,
                            trial_id: trial,
                            summary_json: "{}".into(),
                        },
                        now,
                    )
                    .map(|(c, _)| c)
                } else {
                    st.fail(
                        &FailParams {
                            lease_id: lease,
                            trial_id: trial,
                            message: "x".into(),
                            retryable: rng.random_bool(0.5),
                        },
                        now,
                    )
                };
                if let Ok(c) = done {
                    apply(&mut st, &mut log, c);
                }
            }
            8 => {
                for c in st.expired(now + TTL * 2) {
                    leases.retain(|(_, t, _)| t != c.trial.id());
                    apply(&mut st, &mut log, c);
                }
            }
            _ => {}
        }
    }
    (st, log)
}

/// A snapshot as text, so a failed comparison shows JSON rather than bytes.
fn text(st: &State) -> String {
    String::from_utf8(st.snapshot()).unwrap()
}

fn replayed(entries: &[Entry]) -> State {
    let mut st = State::new(TTL, 2);
    for e in entries {
        st.replay(e.clone(), Instant::now());
    }
    st
}

/// Equal texts, or a panic showing where they part.
fn similar_eq(got: &str, want: &str, what: &str) {
    if got != want {
        let at = got
            .bytes()
            .zip(want.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        let from = at.saturating_sub(300);
        panic!(
            "{what}: differs at byte {at}\n got: …{}\nwant: …{}",
            &got[from..(at + 200).min(got.len())],
            &want[from..(at + 200).min(want.len())]
        );
    }
}

#[test]
fn any_prefix_then_the_rest_gives_the_live_state() {
    for seed in 0..8 {
        let (live, log) = history(seed, 300);
        assert!(
            log.len() > 50,
            "seed {seed}: a short history ({})",
            log.len()
        );
        let want = text(&live);
        similar_eq(
            &text(&replayed(&log)),
            &want,
            &format!("seed {seed}: full replay"),
        );
        assert!(
            log.iter().any(
                |e| matches!(e, Entry::Trial { kind, .. } if kind == EventKind::Epoch.as_str())
            ),
            "seed {seed}: no epoch logged"
        );
        for cut in (0..=log.len()).step_by(7) {
            // A crash after `cut` entries, a snapshot of that, then the later segments.
            let prefix = replayed(&log[..cut]);
            let mut resumed = State::new(TTL, 2);
            resumed.restore(&prefix.snapshot(), Instant::now()).unwrap();
            for e in &log[cut..] {
                resumed.replay(e.clone(), Instant::now());
            }
            similar_eq(
                &text(&resumed),
                &want,
                &format!("seed {seed}, cut at {cut}"),
            );
        }
    }
}

#[tokio::test]
async fn a_torn_last_segment_is_skipped_whole_and_one_before_it_is_refused() {
    let (_, log) = history(3, 200);
    let store = Store::open("memory://").unwrap();
    let chunks: Vec<&[Entry]> = log.chunks(9).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let refs: Vec<&Entry> = chunk.iter().collect();
        store
            .put(
                &segment_key(i as u64 + 1),
                encode_segment(i as u64 + 1, &refs),
            )
            .await
            .unwrap();
    }
    let n = chunks.len() as u64;
    // The last segment cut short: everything before it, nothing of it.
    let last = store.get(&segment_key(n)).await.unwrap().unwrap();
    store
        .put(&segment_key(n), last.slice(..last.len() - 40))
        .await
        .unwrap();
    let mut st = State::new(TTL, 2);
    let pos = recover(&store, &mut st, Instant::now()).await.unwrap();
    let kept = log.len() - chunks[chunks.len() - 1].len();
    assert_eq!(st.snapshot(), replayed(&log[..kept]).snapshot());
    assert_eq!((pos.next_segment, pos.entries), (n, kept));
    assert!(
        !store.exists(&segment_key(n)).await.unwrap(),
        "torn segment left"
    );

    // A damaged segment followed by others is an error naming it.
    let second = store.get(&segment_key(2)).await.unwrap().unwrap();
    let mut bad = second.to_vec();
    bad[30] ^= 1;
    store.put(&segment_key(2), bad).await.unwrap();
    let e = recover(&store, &mut State::new(TTL, 2), Instant::now())
        .await
        .unwrap_err();
    assert!(e.to_string().contains(&segment_key(2)), "{e}");

    // A snapshot covers the segments up to its number.
    store.put(&segment_key(2), second).await.unwrap();
    let covered: usize = chunks[..2].iter().map(|c| c.len()).sum();
    store
        .put(&snapshot_key(2), replayed(&log[..covered]).snapshot())
        .await
        .unwrap();
    assert_eq!(prune(&store, 2).await.unwrap(), 2);
    let mut st = State::new(TTL, 2);
    let pos = recover(&store, &mut st, Instant::now()).await.unwrap();
    assert_eq!(st.snapshot(), replayed(&log[..kept]).snapshot());
    assert_eq!((pos.snapshot, pos.entries), (2, kept - covered));
}

#[test]
fn a_segment_round_trips_and_names_what_is_wrong() {
    let (_, log) = history(1, 60);
    let refs: Vec<&Entry> = log.iter().collect();
    let bytes = encode_segment(7, &refs);
    assert_eq!(decode_segment(7, &bytes).unwrap(), log);
    assert!(decode_segment(8, &bytes).unwrap_err().contains("footer"));
    let torn = &bytes[..bytes.len() / 2];
    assert!(decode_segment(7, torn).is_err());
}
