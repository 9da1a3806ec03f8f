//! Fail silent wherever the agent runs (docs/design.md rule 4), hitless restarts
//! at 100 ms adverts, and supervised tasks, as a client sees them: it asks
//! ARP for the VIP every 2 ms and the capture says who answered each time.
//!
//! Every agent here runs under `ip netns exec`, whose private mount
//! namespace has no bpffs: fail silent must not depend on one.

use std::{net::Ipv4Addr, time::Duration};

use xvrrp_tests::{capture::now_ns, lan::Lan, require_root};

const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 100);
const SETTLE: Duration = Duration::from_secs(15);
const PROBE_EVERY: Duration = Duration::from_millis(2);

/// v3 at 100 ms: Active_Down_Interval about 340 ms, lease 300 ms.
fn fast(prio: u8) -> String {
    format!(
        "vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  version 3\n  priority {prio}\n  advert_int 0.1\n  virtual_ipaddress {{\n    10.77.0.100/24\n  }}\n}}\n"
    )
}

/// The agent's mount namespace has no bpffs mounted anywhere.
fn has_bpffs(pid: u32) -> bool {
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mounts")).unwrap_or_default();
    mounts
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("bpf"))
}

#[test]
fn a_killed_or_crashed_agent_falls_silent_without_any_bpffs() {
    require_root();
    let lan = Lan::new("silent", 3).unwrap();
    let r2 = lan.xvrrp(1, "r2", &fast(100)).unwrap();
    for (sig, name) in [
        (libc::SIGKILL, "kill9"),
        (libc::SIGABRT, "abort"),
        (libc::SIGSEGV, "segv"),
    ] {
        let mut r1 = lan.xvrrp(0, &format!("r1-{name}"), &fast(150)).unwrap();
        assert!(
            r1.wait_state("VI_1", "Active", SETTLE),
            "{}",
            r1.proc.log_text()
        );
        assert!(r2.wait_state("VI_1", "Backup", SETTLE));
        let pid = r1.proc.pid();
        assert_eq!(
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .unwrap()
                .trim(),
            "xvrrp"
        );
        assert!(
            !has_bpffs(pid),
            "the agent should run without a bpffs (ip netns exec)"
        );
        let status = r1.status().unwrap();
        assert!(
            status.fail_silent.iter().all(|f| f.on) && !status.fail_silent.is_empty(),
            "{:?}",
            status.fail_silent
        );

        let watch = lan.host(2).watch(VIP, PROBE_EVERY).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let killed_at = now_ns();
        r1.proc.signal(sig);
        let mut exit = r1.proc.wait_exit(Duration::from_millis(300));
        if exit.is_none() && sig == libc::SIGSEGV {
            // Rust's runtime catches SIGSEGV (its stack-overflow check) and
            // re-raises only a fault it did not cause: a SIGSEGV sent with
            // kill() is absorbed once. A real fault faults again at once.
            r1.proc.signal(sig);
            exit = r1.proc.wait_exit(Duration::from_secs(5));
        }
        assert!(exit.is_some_and(|c| c != 0), "{name}: exit {exit:?}");
        assert!(
            r2.wait_state("VI_1", "Active", SETTLE),
            "{}",
            r2.proc.log_text()
        );
        std::thread::sleep(Duration::from_millis(1000));
        let report = watch.stop(Duration::from_millis(100));

        // The dead host keeps the VIP on its interface (nobody removed it)...
        let addrs = lan.host(0).ns.ip(&["addr", "show", "dev", "eth0"]).unwrap();
        assert!(addrs.contains("10.77.0.100/24"), "{name}: {addrs}");
        // ...yet never answers beside the new Active.
        let (dead, new) = (lan.host(0).mac, lan.host(1).mac);
        let took_over = report
            .first_answer_from(new)
            .unwrap_or_else(|| panic!("{name}: r2 never answered: {}", report.summary()));
        assert!(took_over > killed_at);
        assert_eq!(
            report.answers_from_after(dead, took_over),
            0,
            "{name}: the dead host answered after the takeover: {}",
            report.summary()
        );
        assert_eq!(report.answered_twice(), 0, "{name}: {}", report.summary());
        assert_eq!(report.mac_changes(), 1, "{name}: {}", report.summary());
    }
}

/// SIGQUIT (the planned restart, exit 75), kill -9 and SIGABRT, each
/// followed at once by a start with the same config, at 100 ms adverts:
/// the same host answers every request, the Backup never moves.
#[test]
fn restart_at_100ms_adverts_is_hitless() {
    require_root();
    let lan = Lan::new("restart100", 3).unwrap();
    let mut r1 = lan.xvrrp(0, "r1", &fast(150)).unwrap();
    let r2 = lan.xvrrp(1, "r2", &fast(100)).unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE));
    assert!(r2.wait_state("VI_1", "Backup", SETTLE));
    let r2_before = r2.transitions("VI_1");
    for (sig, name) in [
        (libc::SIGQUIT, "quit"),
        (libc::SIGKILL, "kill9"),
        (libc::SIGABRT, "abort"),
    ] {
        let watch = lan.host(2).watch(VIP, PROBE_EVERY).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        r1.proc.signal(sig);
        let code = r1.proc.wait_exit(Duration::from_secs(5));
        if sig == libc::SIGQUIT {
            assert_eq!(code, Some(75), "{}", r1.proc.log_text());
        }
        r1 = lan
            .xvrrp(0, &format!("r1-after-{name}"), &fast(150))
            .unwrap();
        assert!(
            r1.proc.log_text().contains("resuming as Active"),
            "{name}: {}",
            r1.proc.log_text()
        );
        std::thread::sleep(Duration::from_millis(800));
        let report = watch.stop(Duration::from_millis(50));
        assert_eq!(report.mac_changes(), 0, "{name}: {}", report.summary());
        assert_eq!(
            report.by_mac().keys().copied().collect::<Vec<_>>(),
            vec![lan.host(0).mac],
            "{name}: {}",
            report.summary()
        );
        assert_eq!(
            r2.transitions("VI_1"),
            r2_before,
            "{name}: the Backup moved:\n{}",
            r2.proc.log_text()
        );
        assert_eq!(r1.state("VI_1"), "Active");
        let log = r1.proc.log_text();
        let took = log
            .split("started in ")
            .nth(1)
            .and_then(|s| s.split(" ms").next())
            .and_then(|s| s.parse::<f64>().ok());
        assert!(took.is_some(), "the restart time is logged: {log}");
    }
}

/// A supervised task that fails takes the agent down with status 70 (the
/// unit restarts it), leaving the dataplane and VIPs in place, and the
/// restart resumes without a transition.
#[test]
fn a_failed_task_ends_the_agent_and_the_restart_is_hitless() {
    require_root();
    let lan = Lan::new("taskfail", 3).unwrap();
    let r2 = lan.xvrrp(1, "r2", &fast(100)).unwrap();
    for task in [
        "XDP record reader",
        "control server",
        "advert receiver",
        "link monitor",
    ] {
        let mut r1 = lan
            .xvrrp_env(
                0,
                "r1-failing",
                &fast(150),
                &[],
                &[("XVRRP_FAIL_TASK", task)],
            )
            .unwrap();
        assert!(
            r1.wait_state("VI_1", "Active", SETTLE),
            "{}",
            r1.proc.log_text()
        );
        // Wait for the injected failure (a second after the task started).
        let code = r1.proc.wait_exit(Duration::from_secs(10));
        assert_eq!(code, Some(70), "{task}: {}", r1.proc.log_text());
        assert!(
            r1.proc.log_text().contains(task) && r1.proc.log_text().contains("failed"),
            "{task}: {}",
            r1.proc.log_text()
        );
        let before = r2.transitions("VI_1");
        let r1 = lan.xvrrp(0, "r1", &fast(150)).unwrap();
        assert!(
            r1.proc.log_text().contains("resuming as Active"),
            "{task}: {}",
            r1.proc.log_text()
        );
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(r1.state("VI_1"), "Active");
        assert_eq!(r2.state("VI_1"), "Backup");
        assert_eq!(
            r2.transitions("VI_1"),
            before,
            "{task}: {}",
            r2.proc.log_text()
        );
        drop(r1);
    }
}

/// With `vrrp_startup_delay`, a restarted agent checks the lease again after
/// the delay: still fresh (1 s adverts, a 3 s lease, a 1 s delay), it
/// resumes as Active and announces the VIP once (neighbours may have aged it
/// out meanwhile); run out (a 4 s delay), it starts fresh as a Backup.
#[test]
fn resume_after_vrrp_startup_delay_rechecks_the_lease_and_announces() {
    use xvrrp_tests::capture::{Capture, Seen};
    require_root();
    let lan = Lan::new("startdelay", 3).unwrap();
    let slow = |prio: u8, delay: u32| {
        format!(
            "global_defs {{\n  vrrp_startup_delay {delay}\n}}\nvrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  version 3\n  priority {prio}\n  advert_int 1\n  virtual_ipaddress {{\n    10.77.0.100/24\n  }}\n}}\n"
        )
    };
    let mut r1 = lan.xvrrp(0, "r1", &slow(150, 0)).unwrap();
    let r2 = lan.xvrrp(1, "r2", &slow(100, 0)).unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE));
    assert!(r2.wait_state("VI_1", "Backup", SETTLE));
    let t2 = r2.transitions("VI_1");

    let capture = Capture::start(&lan.host(2).ns.name, VIP.into()).unwrap();
    r1.proc.signal(libc::SIGKILL);
    r1.proc.wait_exit(Duration::from_secs(5));
    let since = now_ns();
    let r1 = lan.xvrrp(0, "r1-delayed", &slow(150, 1)).unwrap();
    assert!(
        r1.proc
            .wait_log("resuming as Active", Duration::from_secs(5)),
        "{}",
        r1.proc.log_text()
    );
    std::thread::sleep(Duration::from_millis(300));
    let announced = capture
        .since(since)
        .iter()
        .filter(|e| {
            e.seen
                == Seen::Announce {
                    mac: lan.host(0).mac,
                }
        })
        .count();
    assert!(announced >= 1, "no GARP after the delayed resume");
    assert_eq!(r2.transitions("VI_1"), t2, "{}", r2.proc.log_text());
    drop(r1);

    // Killed again; a delay longer than the lease: fresh start, no resume.
    let r1 = lan.xvrrp(0, "r1-too-late", &slow(150, 4)).unwrap();
    assert!(
        r1.proc.wait_log("starting fresh", Duration::from_secs(10)),
        "{}",
        r1.proc.log_text()
    );
    assert!(!r1.proc.log_text().contains("resuming as Active"));
}

/// A restart with a config that dropped a VIP: the re-adopted maps are
/// reconciled with the new config, so the dropped VIP is neither answered
/// by the program nor left on the interface for the kernel to answer; the
/// VIP kept is answered again once the instance is Active.
#[test]
fn readoption_reconciles_the_maps_with_the_new_config() {
    require_root();
    let lan = Lan::new("reconcile", 3).unwrap();
    let two = fast(150).replace(
        "    10.77.0.100/24\n",
        "    10.77.0.100/24\n    10.77.0.101/24\n",
    );
    let mut r1 = lan.xvrrp(0, "r1", &two).unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE));
    let dropped = Ipv4Addr::new(10, 77, 0, 101);
    let me = lan.host(0).mac;
    assert_eq!(
        lan.host(2)
            .arp_who_has(dropped)
            .into_iter()
            .collect::<Vec<_>>(),
        [me]
    );
    r1.proc.signal(libc::SIGKILL);
    r1.proc.wait_exit(Duration::from_secs(5));
    let r1 = lan.xvrrp(0, "r1-one-vip", &fast(150)).unwrap();
    assert!(
        r1.proc
            .log_text()
            .contains("removing a VIP of the previous run's config"),
        "{}",
        r1.proc.log_text()
    );
    assert!(r1.wait_state("VI_1", "Active", SETTLE));
    let addrs = lan.host(0).ns.ip(&["addr", "show", "dev", "eth0"]).unwrap();
    assert!(!addrs.contains("10.77.0.101"), "{addrs}");
    assert!(lan.host(2).arp_who_has(dropped).is_empty());
    assert_eq!(
        lan.host(2).arp_who_has(VIP).into_iter().collect::<Vec<_>>(),
        [me]
    );
}
