//! Fencing between real processes: a worker frozen (SIGSTOP) past its lease, still
//! connected but silent, loses the lease on time (the coordinator records the expiry
//! within a TTL of the freeze), comes back (SIGCONT), its late reports are refused and the
//! trial's result stays the one written by the worker that took over.

mod common;

use std::time::Duration;

use common::{Cluster, LEASE_TTL_MS, wait_for};

/// How much later than one lease TTL after the freeze the expiry may be recorded: the
/// reaper's tick, the last heartbeat's timing and a machine busy with other work.
const EXPIRY_SLACK_MS: u64 = 5000;

#[test]
fn a_frozen_worker_is_fenced_off() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let data = data.to_string_lossy().to_string();
    let Some(mut c) = Cluster::start() else {
        return;
    };
    let frozen = c.start_worker("frozen");
    let args = [
        "sweep", "--task", "covid", "--data", &data, "--cell", "gru", "--hidden", "16", "--l",
        "12", "--epochs", "6", "--detach",
    ];
    let sweep = c.client(&args)["sweep"].as_str().unwrap().to_string();
    wait_for(
        Duration::from_secs(120),
        "an epoch on the first worker",
        || (c.trials(&sweep)[0]["epoch"].as_u64().unwrap_or(0) >= 1).then_some(()),
    );
    let frozen_ms = common::unix_ms();
    c.workers[frozen].signal(19); // SIGSTOP: alive, connected, silent
    c.start_worker("taker");
    let t = c.wait_done(&sweep, Duration::from_secs(180)).remove(0);
    assert_eq!(
        (t["state"].as_str(), t["worker"].as_str()),
        (Some("succeeded"), Some("taker")),
        "{t}"
    );
    let summary =
        c.s3.keys(&format!("cluster/trials/{}/", t["id"].as_str().unwrap()));

    // On time: the coordinator's own log stamps the expiry within a TTL of the freeze
    // (plus slack for the reaper's tick and a loaded machine), not whenever a later
    // request happened to notice.
    let coordinator = c.coordinator.as_ref().unwrap().log_text();
    let expired = coordinator
        .lines()
        .rfind(|l| l.contains("lease expired") && l.contains(t["id"].as_str().unwrap()))
        .unwrap_or_else(|| panic!("no lease expiry logged for the trial:\n{coordinator}"));
    let expired_ms = common::log_line_ms(expired)
        .unwrap_or_else(|| panic!("no timestamp at the start of {expired:?}"));
    // The stamps are read right: the coordinator started minutes before the freeze, not hours.
    let first_ms = coordinator.lines().find_map(common::log_line_ms).unwrap();
    assert!(
        (0..300_000).contains(&(frozen_ms - first_ms)),
        "coordinator's first log stamp {first_ms} vs freeze {frozen_ms}"
    );
    let late = expired_ms - frozen_ms;
    eprintln!("the lease expired {late} ms after the freeze");
    assert!(
        late <= (LEASE_TTL_MS + EXPIRY_SLACK_MS) as i64,
        "the lease expired {late} ms after the freeze, more than the {LEASE_TTL_MS} ms TTL + {EXPIRY_SLACK_MS} ms slack: {expired}"
    );

    c.workers[frozen].signal(18); // SIGCONT: it wakes up with a lease that has ended
    let log = wait_for(
        Duration::from_secs(30),
        "the frozen worker to learn its lease ended",
        || {
            let log = c.workers[frozen].log_text();
            (log.contains("refused") || log.contains("revoked")).then_some(log)
        },
    );
    assert!(
        log.contains(t["id"].as_str().unwrap()),
        "the log names the trial: {log}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let after = c.trials(&sweep).remove(0);
    assert_eq!(
        (after["state"].as_str(), after["worker"].as_str()),
        (Some("succeeded"), Some("taker"))
    );
    assert_eq!(
        after["metrics"], t["metrics"],
        "the fenced worker changed nothing"
    );
    let keys =
        c.s3.keys(&format!("cluster/trials/{}/", t["id"].as_str().unwrap()));
    assert_eq!(
        keys.iter()
            .filter(|k| !k.contains("/ckpt/") && !k.contains("/staging/"))
            .collect::<Vec<_>>(),
        summary
            .iter()
            .filter(|k| !k.contains("/ckpt/") && !k.contains("/staging/"))
            .collect::<Vec<_>>()
    );
}
