//! 255 virtual routers at 10 ms adverts: a steady Backup barely wakes, and
//! the Active sends each round of adverts in one system call (a fan-out).
//! In its own test binary, so no other namespace test competes for the
//! CPU while the Active sends 25,500 adverts a second.

use std::time::Duration;

use xvrrp_tests::{lan::Lan, require_root, wait_until};

/// 255 virtual routers, VRID 1..=255, 10 ms adverts, one VIP each.
fn many(prio: u8) -> String {
    (1..=255u32)
        .map(|v| {
            format!(
                "vrrp_instance VI_{v} {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {v}\n  priority {prio}\n  version 3\n  advert_int 0.01\n  virtual_ipaddress {{\n    10.77.1.{v}/32\n  }}\n}}\n"
            )
        })
        .collect()
}

/// docs/design.md rule 3, shown: a steady Backup of 255 virtual routers at 10 ms
/// adverts (25,500 adverts a second) barely wakes. The kernel checks each
/// advert, notes it in LAST and re-arms the router's Active_Down timer; the
/// agent hears only of changes, and no timer fires while adverts arrive.
#[test]
fn a_steady_backup_of_255_routers_at_10ms_barely_wakes() {
    require_root();
    let lan = Lan::new("wakeups", 2).unwrap();
    let r1 = lan.xvrrp(0, "r1", &many(150)).unwrap();
    let r2 = lan.xvrrp(1, "r2", &many(100)).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || r1.all_in(255, "Active")
            && r2.all_in(255, "Backup")),
        "r1: {}\nr2: {}",
        r1.proc.log_text(),
        r2.proc.log_text()
    );
    // Let the start-up records drain.
    std::thread::sleep(Duration::from_secs(1));
    let transitions = |a: &xvrrp_tests::lan::Agent| -> u64 {
        a.status()
            .map(|s| s.instances.iter().map(|i| i.transitions).sum())
            .unwrap_or(0)
    };
    let t0 = transitions(&r2);
    let active = |name| r1.counter(name);
    let (w0, a0) = (r2.counter("wakeups"), r2.xdp_counter("advert_unchanged"));
    let active0 = [
        active("wakeups"),
        active("advert_send_calls"),
        active("adverts_sent"),
        active("fanout_rounds"),
        active("fanout_clones"),
    ];
    std::thread::sleep(Duration::from_secs(5));
    let (w1, a1) = (r2.counter("wakeups"), r2.xdp_counter("advert_unchanged"));
    let active1 = [
        active("wakeups"),
        active("advert_send_calls"),
        active("adverts_sent"),
        active("fanout_rounds"),
        active("fanout_clones"),
    ];
    let adverts = a1 - a0;
    let wakeups = w1 - w0;
    eprintln!("steady Backup, 255 VRs at 10 ms, 5 s: {adverts} adverts checked in XDP, {wakeups} agent wake-ups");
    // The Active: the 255 adverts due each 10 ms leave together, one
    // wake-up and one sendmmsg per round (500 of each in 5 s), not one
    // system call per advert (25,500 a second).
    let [aw, calls, sent, rounds, clones] = [0, 1, 2, 3, 4].map(|k| active1[k] - active0[k]);
    eprintln!(
        "Active, 255 VRs at 10 ms, 5 s: {sent} adverts sent in {calls} system calls, {aw} wake-ups"
    );
    assert!(sent > 255 * 100, "only {sent} adverts sent in 5 s");
    // Each round left as a fan-out (docs/design.md rule 3): one frame
    // through the socket, the kernel sending it again with each of the
    // other 254 adverts; none failed.
    assert!(
        rounds * 10 >= calls * 9 && clones >= rounds * 250,
        "{calls} send calls, {rounds} fan-out rounds, {clones} clones\n{}",
        r1.proc.log_text()
    );
    for name in [
        "fanout_clone_failed",
        "fanout_write_failed",
        "fanout_fallbacks",
    ] {
        assert_eq!(r1.counter(name), 0, "{name}");
    }
    assert!(
        calls * 50 < sent && aw * 50 < sent,
        "{sent} adverts took {calls} system calls and {aw} wake-ups (want near one per 10 ms round)"
    );
    // Thousands of adverts went by (the Active sends 25,500/s; a loaded
    // machine sends fewer) ...
    assert!(adverts > 255 * 100, "only {adverts} adverts in 5 s");
    // ... and the agent woke about never: its own status query, the one-a-second
    // guard sweep, and a handful of down timers on a loaded machine.
    // On failure, say why the agent woke: down timers that fired (late
    // adverts) or timers the kernel could not arm (the agent times those).
    let why = |a: &xvrrp_tests::lan::Agent| {
        format!(
            "agent counters {:?}, kernel down_expired {}, timer_failed {}",
            a.status().map(|s| s.counters).unwrap_or_default(),
            a.xdp_counter("down_expired"),
            a.xdp_counter("timer_failed")
        )
    };
    assert!(
        wakeups * 1000 < adverts,
        "{wakeups} wake-ups for {adverts} adverts\nr2: {}\nr1: {}\nr2: {}",
        why(&r2),
        r1.proc.log_text(),
        r2.proc.log_text()
    );
    assert_eq!(
        transitions(&r2),
        t0,
        "a Backup changed state: {}",
        r2.proc.log_text()
    );
    // The event loop's wake index (one entry per group, kept where the
    // groups change) matched the instances' own timers at every safety
    // sweep, on the Active and on the Backup.
    for (who, a) in [("Active", &r1), ("Backup", &r2)] {
        assert_eq!(
            a.counter("wake_index_stale"),
            0,
            "the {who}'s wake index went stale: {}",
            a.proc.log_text()
        );
    }
    drop(r1);
}
