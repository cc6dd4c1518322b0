//! Transitions of the state machine, with time passed in.

use std::time::{Duration, Instant};

use wick_proto::v1::{
    CompleteParams, DataRef, FailParams, ProgressParams, RegisterParams, SweepSpec,
};

use super::*;
use crate::grid;

const TTL: Duration = Duration::from_millis(1000);

fn spec(l: &[u32], kl: &[f64]) -> SweepSpec {
    SweepSpec {
        l: l.to_vec(),
        kl: kl.to_vec(),
        epochs: vec![5],
        data: Some(DataRef {
            covid_csv: "data/c.csv".into(),
            faces: "data/f.tar".into(),
        }),
        ..Default::default()
    }
}

/// A state with one registered worker `w1` and the sweep of `s` submitted at `ms`.
fn setup(s: &SweepSpec, now: Instant) -> (State, String, Vec<String>) {
    let mut st = State::new(TTL, 3);
    st.register(
        "w1",
        &RegisterParams {
            name: "gpu-a".into(),
            inference_addr: "127.0.0.1:1".into(),
            ..Default::default()
        },
        now,
    );
    let sid = submit(&mut st, s, 1);
    let ids = st.sweep(&sid).unwrap().record.trial_ids.clone();
    (st, sid, ids)
}

fn submit(st: &mut State, s: &SweepSpec, ms: i64) -> String {
    let configs = grid::expand(s).unwrap();
    let sid = grid::sweep_id(&configs, s);
    let plan = st.submit(s, configs, &sid, ms);
    st.apply_submit(plan);
    sid
}

/// Leases the next trial to `w1` under `lease` and applies it.
fn lease(st: &mut State, lease: &str, now: Instant) -> Trial {
    let c = st.lease("w1", lease, now).unwrap().expect("a queued trial");
    st.apply(vec![c.clone()]);
    c.trial
}

fn progress(lease: &str, trial: &str, epoch: u32, ckpt: bool) -> ProgressParams {
    ProgressParams {
        lease_id: lease.into(),
        trial_id: trial.into(),
        epoch,
        metrics_json: format!(r#"{{"epoch":{epoch}}}"#),
        resumed_from_epoch: 0,
        checkpoint_key: if ckpt {
            format!("trials/{trial}/ckpt/{lease}/epoch-{epoch}.safetensors")
        } else {
            String::new()
        },
        earlier: Vec::new(),
    }
}

fn complete(lease: &str, trial: &str, summary: &str) -> CompleteParams {
    CompleteParams {
        lease_id: lease.into(),
        trial_id: trial.into(),
        summary_json: summary.into(),
        staging_prefix: format!("trials/{trial}/staging/{lease}/"),
        staged: Vec::new(),
    }
}

fn fail(lease: &str, trial: &str, retryable: bool) -> FailParams {
    FailParams {
        lease_id: lease.into(),
        trial_id: trial.into(),
        message: "boom".into(),
        retryable,
    }
}

fn state_of(st: &State, id: &str) -> TrialState {
    st.trial(id).unwrap().record.state
}

fn is_fenced<T: std::fmt::Debug>(r: Result<T>) -> bool {
    matches!(r, Err(Error::FailedPrecondition(_)))
}

#[test]
fn lease_heartbeat_expiry_retry_then_failure() {
    let t0 = Instant::now();
    let (mut st, _, ids) = setup(&spec(&[12], &[]), t0);
    assert_eq!(ids.len(), 1);
    let t = lease(&mut st, "L1", t0);
    assert_eq!((t.record.attempts, t.record.worker.as_str()), (1, "gpu-a"));
    assert!(
        st.lease("w1", "Lx", t0).unwrap().is_none(),
        "nothing else is queued"
    );

    // Heartbeats keep the lease past its first TTL.
    let t1 = t0 + Duration::from_millis(800);
    assert!(st.heartbeat("w1", &["L1".into()], t1).is_empty());
    let (c, _) = st.progress(&progress("L1", &ids[0], 2, true), t1).unwrap();
    st.apply(vec![c]);
    let t2 = t0 + Duration::from_millis(1500);
    assert!(
        st.expired(t2).is_empty(),
        "renewed at 800 ms, so alive at 1500 ms"
    );
    assert!(st.heartbeat("w1", &["L1".into(), "nope".into()], t2) == vec!["nope".to_string()]);

    // Silence for a TTL: the trial is queued again, resuming from its checkpoint.
    let t3 = t2 + TTL;
    assert!(
        st.heartbeat("w1", &["L1".into()], t3) == vec!["L1".to_string()],
        "expired leases are revoked"
    );
    let ex = st.expired(t3);
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].kind, EventKind::Retrying);
    st.apply(ex);
    assert_eq!(state_of(&st, &ids[0]), TrialState::Queued);
    assert!(st.trial(&ids[0]).unwrap().record.message.contains("gpu-a"));
    let t = lease(&mut st, "L2", t3);
    assert_eq!(t.record.attempts, 2);
    assert_eq!(
        t.record.checkpoint.as_deref(),
        Some(format!("trials/{}/ckpt/L1/epoch-2.safetensors", ids[0]).as_str())
    );
    assert_eq!((t.record.epoch, t.record.resumed_from_epoch), (2, 2));

    // Two more lost leases exhaust the budget of 3.
    let t4 = t3 + TTL;
    st.apply(st.expired(t4));
    lease(&mut st, "L3", t4);
    let t5 = t4 + TTL;
    let ex = st.expired(t5);
    assert_eq!(ex[0].kind, EventKind::Failed);
    st.apply(ex);
    let r = &st.trial(&ids[0]).unwrap().record;
    assert_eq!(
        (r.state, r.attempts, r.lost_leases),
        (TrialState::Failed, 3, 3)
    );
    assert!(r.message.contains("--max-attempts 3"), "{}", r.message);
    assert!(
        st.lease("w1", "L4", t5).unwrap().is_none(),
        "a failed trial is not leased"
    );
}

#[test]
fn ended_or_unknown_leases_are_fenced_off() {
    let t0 = Instant::now();
    let (mut st, _, ids) = setup(&spec(&[12, 40], &[]), t0);
    let a = lease(&mut st, "LA", t0);
    let b = lease(&mut st, "LB", t0);
    assert_eq!(a.id(), ids[0], "grid order");
    // Unknown lease, a lease of another trial, bad keys.
    assert!(is_fenced(
        st.progress(&progress("zzz", a.id(), 1, false), t0)
    ));
    assert!(is_fenced(
        st.progress(&progress("LB", a.id(), 1, false), t0)
    ));
    let mut p = progress("LA", a.id(), 1, false);
    p.checkpoint_key = format!("trials/{}/ckpt/LB/epoch-1.safetensors", a.id());
    assert!(matches!(
        st.progress(&p, t0),
        Err(Error::InvalidArgument(_))
    ));
    p.checkpoint_key.clear();
    p.metrics_json = "{not json".into();
    assert!(matches!(
        st.progress(&p, t0),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        st.progress(&progress("LA", a.id(), 6, false), t0),
        Err(Error::InvalidArgument(_))
    ));
    let mut c = complete("LA", a.id(), "{}");
    c.staging_prefix = format!("trials/{}/staging/LB/", a.id());
    assert!(matches!(
        st.complete(&c, t0),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        st.complete(&complete("LA", a.id(), "[1]"), t0),
        Err(Error::InvalidArgument(_))
    ));

    // Lease A expires: everything it sends afterwards is refused, even before the reaper ran.
    let late = t0 + TTL;
    assert!(
        st.heartbeat("w1", &["LB".into()], t0 + Duration::from_millis(900))
            .is_empty()
    );
    assert!(is_fenced(
        st.progress(&progress("LA", a.id(), 1, true), late)
    ));
    assert!(is_fenced(st.complete(&complete("LA", a.id(), "{}"), late)));
    assert!(is_fenced(st.fail(&fail("LA", a.id(), false), late)));
    st.apply(st.expired(late));
    assert!(is_fenced(
        st.progress(&progress("LA", a.id(), 1, true), late)
    ));
    assert_eq!(
        st.trial(a.id()).unwrap().record.checkpoint,
        None,
        "a fenced checkpoint is never recorded"
    );

    // A finished lease is ended too.
    let (done, summary) = st
        .complete(&complete("LB", b.id(), r#"{"best_test_acc":0.5}"#), late)
        .unwrap();
    assert_eq!(summary["best_test_acc"], 0.5);
    st.apply(vec![done]);
    assert_eq!(state_of(&st, b.id()), TrialState::Succeeded);
    assert!(is_fenced(st.complete(&complete("LB", b.id(), "{}"), late)));
    assert_eq!(
        st.heartbeat("w1", &["LB".into()], late),
        vec!["LB".to_string()]
    );
}

#[test]
fn fail_retryable_hands_back_and_fatal_fails_for_good() {
    let t0 = Instant::now();
    let (mut st, _, ids) = setup(&spec(&[12, 40], &[]), t0);
    let a = lease(&mut st, "LA", t0);
    let c = st.fail(&fail("LA", a.id(), true), t0).unwrap();
    assert_eq!(c.kind, EventKind::Queued);
    st.apply(vec![c]);
    let r = &st.trial(a.id()).unwrap().record;
    assert_eq!((r.state, r.lost_leases), (TrialState::Queued, 0));
    // Handed back first, so leased again first.
    let again = lease(&mut st, "LA2", t0);
    assert_eq!((again.id(), again.record.attempts), (ids[0].as_str(), 2));
    let c = st.fail(&fail("LA2", a.id(), false), t0).unwrap();
    assert_eq!(c.kind, EventKind::Failed);
    st.apply(vec![c]);
    assert_eq!(state_of(&st, a.id()), TrialState::Failed);
    assert!(st.trial(a.id()).unwrap().record.message.contains("boom"));
    assert_eq!(lease(&mut st, "LB", t0).id(), ids[1]);
    assert!(st.lease("w1", "LC", t0).unwrap().is_none());
}

#[test]
fn cancel_ends_leases_and_leaves_finished_trials() {
    let t0 = Instant::now();
    let (mut st, sid, ids) = setup(&spec(&[12, 40], &[1.0]), t0);
    let a = lease(&mut st, "LA", t0);
    st.apply(vec![
        st.complete(&complete("LA", a.id(), "{}"), t0).unwrap().0,
    ]);
    let b = lease(&mut st, "LB", t0);
    let changes = st.cancel(&sid[..5]).unwrap();
    assert_eq!(changes.len(), 2, "the running and the queued trial");
    assert!(changes.iter().all(|c| c.kind == EventKind::Cancelled));
    st.apply(changes);
    assert_eq!(state_of(&st, &ids[0]), TrialState::Succeeded);
    assert_eq!(state_of(&st, &ids[2]), TrialState::Cancelled);
    assert_eq!(
        st.heartbeat("w1", &["LB".into()], t0),
        vec!["LB".to_string()]
    );
    assert!(is_fenced(
        st.progress(&progress("LB", b.id(), 1, false), t0)
    ));
    assert!(
        st.expired(t0 + TTL * 5).is_empty(),
        "cancelled trials do not expire"
    );
    assert!(st.cancel(&sid).unwrap().is_empty());
    assert!(matches!(st.cancel("s-nope"), Err(Error::NotFound(_))));
}

#[test]
fn resubmit_reuses_succeeded_and_requeues_failed_and_cancelled() {
    let t0 = Instant::now();
    let s = spec(&[12, 40], &[1.0]);
    let (mut st, sid, ids) = setup(&s, t0);
    let a = lease(&mut st, "LA", t0);
    st.apply(vec![
        st.complete(&complete("LA", a.id(), "{}"), t0).unwrap().0,
    ]);
    let b = lease(&mut st, "LB", t0);
    st.apply(vec![
        st.progress(&progress("LB", b.id(), 3, true), t0).unwrap().0,
    ]);
    st.apply(vec![st.fail(&fail("LB", b.id(), false), t0).unwrap()]);
    let c = lease(&mut st, "LC", t0);
    assert_eq!(c.id(), ids[2]);

    let configs = grid::expand(&s).unwrap();
    let plan = st.submit(&s, configs, &sid, 99);
    assert!(plan.new_trials.is_empty());
    assert_eq!(
        plan.changes.len(),
        1,
        "only the failed trial; the running one is left alone"
    );
    let r = &plan.changes[0].trial.record;
    assert_eq!(
        (r.trial_id.as_str(), r.state, r.epoch),
        (b.id(), TrialState::Queued, 3)
    );
    assert!(
        r.checkpoint.is_some(),
        "a requeued trial resumes from its checkpoint"
    );
    st.apply_submit(plan);
    assert_eq!(
        st.sweep(&sid).unwrap().record.created_ms,
        1,
        "the first submission's time stays"
    );
    assert_eq!(state_of(&st, &ids[0]), TrialState::Succeeded);
    assert_eq!(state_of(&st, &ids[2]), TrialState::Running);

    // A second sweep sharing a trial reuses it and holds it too.
    let sid2 = submit(&mut st, &spec(&[12], &[]), 50);
    assert_ne!(sid, sid2);
    assert_eq!(
        st.trial(&ids[0]).unwrap().sweeps,
        vec![sid.clone(), sid2.clone()]
    );
    assert_eq!(st.sweeps_newest_first()[0].record.sweep_id, sid2);
    assert_eq!(
        st.summary(st.sweep(&sid2).unwrap()).states.get("succeeded"),
        Some(&1)
    );
}

#[test]
fn best_trial_per_task_kl_and_newest_sweep() {
    let t0 = Instant::now();
    let (mut st, old, _) = setup(&spec(&[12, 40], &[1.0, 100.0]), t0);
    let summaries = [
        r#"{"best_test_acc":0.6}"#,
        r#"{"best_test_acc":0.8}"#,
        r#"{"final_neg_elbo":300.0}"#,
        r#"{"final_neg_elbo":200.0}"#,
    ];
    for (i, s) in summaries.iter().enumerate() {
        let lid = format!("L{i}");
        let t = lease(&mut st, &lid, t0);
        st.apply(vec![st.complete(&complete(&lid, t.id(), s), t0).unwrap().0]);
    }
    let ids = st.sweep(&old).unwrap().record.trial_ids.clone();
    assert_eq!(st.best("", "covid", None).unwrap().id(), ids[1]);
    assert_eq!(st.best("", "vae", None).unwrap().id(), ids[3]);
    assert_eq!(st.best(&old, "vae", Some(1.0)).unwrap().id(), ids[2]);
    assert!(matches!(
        st.best("", "vae", Some(0.0)),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        st.best("", "gan", None),
        Err(Error::InvalidArgument(_))
    ));

    // A newer sweep with no finished covid trial does not hide the older one; once it has
    // one, it is the default even if the older sweep's trial scored higher.
    let newer = submit(&mut st, &spec(&[20], &[]), 10);
    assert_eq!(st.best("", "covid", None).unwrap().id(), ids[1]);
    let m = match st.best(&newer, "covid", None) {
        Err(Error::NotFound(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(m.contains("client watch"), "{m}");
    let t = lease(&mut st, "LN", t0);
    st.apply(vec![
        st.complete(&complete("LN", t.id(), r#"{"best_test_acc":0.1}"#), t0)
            .unwrap()
            .0,
    ]);
    assert_eq!(st.best("", "covid", None).unwrap().id(), t.id());
}

#[test]
fn best_ranks_by_validation_not_test() {
    let t0 = Instant::now();
    let (mut st, sid, _) = setup(&spec(&[12, 40, 60], &[0.0, 1.0]), t0);
    // The first covid trial has the higher test accuracy, the second the higher validation
    // accuracy; the third has no validation set and ranks after both.
    let summaries = [
        r#"{"best_test_acc":0.9,"selected_test_acc":0.7,"selected_val_acc":0.6}"#,
        r#"{"best_test_acc":0.7,"selected_test_acc":0.65,"selected_val_acc":0.72}"#,
        r#"{"best_test_acc":0.95}"#,
        r#"{"final_neg_elbo":100.0,"selected_val_neg_elbo":300.0}"#,
        r#"{"final_neg_elbo":200.0,"selected_val_neg_elbo":250.0}"#,
    ];
    let mut done = Vec::new();
    for (i, s) in summaries.iter().enumerate() {
        let lid = format!("L{i}");
        let t = lease(&mut st, &lid, t0);
        st.apply(vec![st.complete(&complete(&lid, t.id(), s), t0).unwrap().0]);
        done.push(t.id().to_string());
    }
    assert_eq!(st.best(&sid, "covid", None).unwrap().id(), done[1]);
    assert_eq!(st.best(&sid, "vae", None).unwrap().id(), done[4]);
}

#[test]
fn restart_keeps_leases_and_queue_order() {
    let t0 = Instant::now();
    let (mut st, sid, ids) = setup(&spec(&[12, 40, 60], &[]), t0);
    let a = lease(&mut st, "LA", t0);
    let sweeps = vec![st.sweep(&sid).unwrap().clone()];
    let trials: Vec<_> = ids
        .iter()
        .map(|id| {
            let t = st.trial(id).unwrap();
            (t.config.clone(), t.record.clone())
        })
        .collect();

    let later = t0 + TTL * 3;
    let mut back = State::new(TTL, 3);
    back.load(sweeps, trials, later);
    assert!(
        back.valid_lease("LA", a.id(), later).is_ok(),
        "a recorded lease gets a fresh TTL"
    );
    assert!(
        back.heartbeat("unknown-worker", &["LA".into()], later)
            .is_empty()
    );
    assert!(
        matches!(back.lease("w1", "LB", later), Err(Error::NotFound(_))),
        "workers register again"
    );
    back.register("w2", &RegisterParams::default(), later);
    let next = back.lease("w2", "LB", later).unwrap().unwrap();
    assert_eq!(next.trial.id(), ids[1]);
    assert_eq!(
        next.trial.record.worker, "w2",
        "an unnamed worker is shown by id"
    );
}

#[test]
fn ids_resolve_by_unique_prefix_and_workers_go_stale() {
    let t0 = Instant::now();
    let (mut st, sid, ids) = setup(&spec(&[12], &[1.0]), t0);
    assert_eq!(st.sweep(&sid[..4]).unwrap().record.sweep_id, sid);
    assert_eq!(st.trial(&ids[1]).unwrap().id(), ids[1]);
    assert!(
        matches!(st.trial("t-"), Err(Error::InvalidArgument(_))),
        "ambiguous"
    );
    assert!(matches!(st.trial(""), Err(Error::InvalidArgument(_))));
    assert!(matches!(st.sweep("s-zz"), Err(Error::NotFound(_))));

    assert_eq!(st.inference_addrs(t0), vec!["127.0.0.1:1".to_string()]);
    st.register(
        "w2",
        &RegisterParams {
            name: "b".into(),
            inference_addr: "127.0.0.1:2".into(),
            ..Default::default()
        },
        t0 + TTL / 2,
    );
    assert_eq!(st.inference_addrs(t0 + TTL / 2).len(), 2);
    assert_eq!(
        st.inference_addrs(t0 + TTL),
        vec!["127.0.0.1:2".to_string()],
        "w1 fell silent"
    );
    st.prune_workers(t0 + TTL * 10);
    assert!(st.touch_worker("w1", t0 + TTL * 10).is_err());
    assert!(st.touch_worker("w2", t0 + TTL * 10).is_ok());
}

#[test]
fn time_the_coordinator_was_not_listening_does_not_count_against_leases() {
    let t0 = Instant::now();
    let (mut st, _, ids) = setup(&spec(&[12, 40], &[]), t0);
    st.catch_up(t0);
    lease(&mut st, "L1", t0);
    // A store write holds the lock for ten TTLs; the heartbeat waiting behind it is
    // heard only then, and keeps the lease.
    let t1 = t0 + TTL * 10;
    assert_eq!(st.catch_up(t1), Some(TTL * 10));
    assert!(st.heartbeat("w1", &["L1".into()], t1).is_empty());
    assert!(st.expired(t1 + TTL / 2).is_empty());

    // Short gaps, as between reaper ticks, change nothing: a silent worker still loses
    // its lease one TTL after its last heartbeat.
    let mut now = t1;
    while now < t1 + TTL {
        now += TTL / 5;
        assert_eq!(st.catch_up(now), None);
    }
    assert_eq!(st.expired(now).len(), 1);

    // A lease that had already ended before the gap is not revived by it.
    let t2 = now + TTL * 3;
    st.catch_up(t2);
    assert_eq!(st.expired(t2).len(), 1);
    assert_eq!(state_of(&st, &ids[1]), TrialState::Queued);
}

#[test]
fn a_grant_not_yet_durable_keeps_its_lease_and_one_never_answered_is_given_back() {
    let t0 = Instant::now();
    let (mut st, _, ids) = setup(&spec(&[12, 40], &[]), t0);
    // A grant waiting on a slow store: its worker cannot heartbeat it yet.
    let held = lease(&mut st, "l1", t0);
    st.hold("l1");
    assert!(st.expired(t0 + TTL * 5).is_empty(), "a held lease expired");
    // Durable and answered: the clock starts then, not at the grant.
    st.start_clock("l1", t0 + TTL * 5);
    assert!(st.expired(t0 + TTL * 5 + TTL / 2).is_empty());
    assert_eq!(
        st.expired(t0 + TTL * 7).len(),
        1,
        "a started lease never expired"
    );

    // A grant whose call ended unanswered goes back to the queue, its attempt uncounted.
    let other = lease(&mut st, "l2", t0);
    assert_ne!(other.id(), held.id());
    st.hold("l2");
    let back = st.unanswered("l2").expect("the trial given back");
    assert_eq!(back.trial.record.state, TrialState::Queued);
    assert_eq!(back.trial.record.attempts, 0);
    st.apply(vec![back]);
    assert!(ids.contains(&other.id().to_string()));
    assert_eq!(state_of(&st, other.id()), TrialState::Queued);
    assert!(is_fenced(st.valid_lease("l2", other.id(), t0)));
    assert!(st.unanswered("l2").is_none(), "given back twice");
    assert_eq!(lease(&mut st, "l3", t0).id(), other.id());
}
