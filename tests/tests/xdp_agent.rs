//! The agent with its XDP program: ARP/ND for Active VIPs answered in the
//! kernel, and fail silent (docs/design.md rule 4) after kill -9.

use std::{net::Ipv4Addr, time::Duration};

use xvrrp_tests::{lan::Lan, require_root, wait_until};

const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 100);
const SETTLE: Duration = Duration::from_secs(15);

fn conf(prio: u8) -> String {
    format!(
        "vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority {prio}\n  advert_int 1\n  virtual_ipaddress {{\n    10.77.0.100/24\n    fd77::100/64\n  }}\n  virtual_ipaddress_excluded {{\n    fd77::100/64\n  }}\n}}\n"
    )
    .replace("    fd77::100/64\n  }\n  virtual_ipaddress_excluded", "  }\n  virtual_ipaddress_excluded")
}

#[test]
fn xdp_answers_for_the_active_and_falls_silent_after_kill9() {
    require_root();
    let lan = Lan::new("failsilent", 3).unwrap();
    let mut r1 = lan.xvrrp(0, "r1", &conf(150)).unwrap();
    let r2 = lan.xvrrp(1, "r2", &conf(100)).unwrap();
    assert!(
        r1.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    assert!(r2.wait_state("VI_1", "Backup", SETTLE));
    assert!(
        r1.proc.log_text().contains("XDP attached"),
        "{}",
        r1.proc.log_text()
    );
    // On the Backup, the Active's adverts are checked in the kernel; repeats
    // only update the LAST map.
    assert!(
        wait_until(Duration::from_secs(5), || r2
            .xdp_counter("advert_unchanged")
            >= 2),
        "{:?}",
        r2.status().map(|s| s.xdp)
    );
    for bad in [
        "invalid_checksum",
        "invalid_auth",
        "invalid_ttl",
        "vrid_unconfigured",
    ] {
        assert_eq!(r2.xdp_counter(bad), 0, "{bad}");
    }

    // The client's ARP and ND are answered by XDP (its counters move).
    let before = r1.xdp_counter("arp_replied");
    assert_eq!(
        lan.host(2).arp_who_has(VIP).into_iter().collect::<Vec<_>>(),
        vec![lan.host(0).mac]
    );
    assert!(
        wait_until(Duration::from_secs(2), || r1.xdp_counter("arp_replied")
            > before),
        "the reply did not come from XDP"
    );
    let v6: std::net::Ipv6Addr = "fd77::100".parse().unwrap();
    assert_eq!(
        lan.host(2).nd_who_has(v6).into_iter().collect::<Vec<_>>(),
        vec![lan.host(0).mac]
    );
    assert!(
        r1.xdp_counter("na_sent") > 0,
        "{:?}",
        r1.status().map(|s| s.xdp)
    );
    assert!(lan
        .host(0)
        .ns
        .ip(&["link", "show", "eth0"])
        .unwrap()
        .contains("xdp"));

    // kill -9: the VIP stays on r1's interface and its program (attached through rtnetlink) stays
    // attached; once the lease runs out it drops requests for the VIP.
    r1.proc.signal(libc::SIGKILL);
    r1.proc.wait_exit(Duration::from_secs(5));
    assert!(r2.wait_state("VI_1", "Active", SETTLE));
    // The kernel timed the takeover; its aya-log line reached the agent's log.
    assert!(
        r2.proc.wait_log(
            "Active_Down timer expired in the kernel: VRID 51",
            Duration::from_secs(2)
        ),
        "{}",
        r2.proc.log_text()
    );
    let addrs = lan.host(0).ns.ip(&["addr", "show", "dev", "eth0"]).unwrap();
    assert!(
        addrs.contains("10.77.0.100/24"),
        "the dead router still holds the VIP:\n{addrs}"
    );
    assert!(
        lan.host(0)
            .ns
            .ip(&["link", "show", "eth0"])
            .unwrap()
            .contains("xdp"),
        "program left attached"
    );
    for _ in 0..5 {
        assert_eq!(
            lan.host(2).arp_who_has(VIP).into_iter().collect::<Vec<_>>(),
            vec![lan.host(1).mac],
            "only the new Active answers (fail silent)"
        );
    }
    assert_eq!(
        lan.host(2).nd_who_has(v6).into_iter().collect::<Vec<_>>(),
        vec![lan.host(1).mac]
    );

    // A restarted agent re-adopts the program; a clean stop detaches it.
    let mut r1 = lan.xvrrp(0, "r1b", &conf(50)).unwrap();
    assert!(r1.wait_state("VI_1", "Backup", SETTLE));
    r1.proc.signal(libc::SIGTERM);
    assert_eq!(r1.proc.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(
        !lan.host(0)
            .ns
            .ip(&["link", "show", "eth0"])
            .unwrap()
            .contains("xdp"),
        "clean stop must detach"
    );
}

#[test]
fn xdp_mode_off_and_fallback_are_said_once() {
    require_root();
    let lan = Lan::new("xdpoff", 3).unwrap();
    let r1 = lan
        .xvrrp_with(0, "r1", &conf(150), &["--xdp-mode", "off"])
        .unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE));
    assert!(!lan
        .host(0)
        .ns
        .ip(&["link", "show", "eth0"])
        .unwrap()
        .contains("xdp"));
    assert_eq!(r1.proc.log_text().matches("XDP off").count(), 1);
    // The kernel answers on the socket path.
    assert_eq!(
        lan.host(2).arp_who_has(VIP).into_iter().collect::<Vec<_>>(),
        vec![lan.host(0).mac]
    );
}

/// The seed's Q2: "keepalived ping不通" (the VIP does not answer ping) comes
/// from vrrp_strict. By default the VIP answers ping; with vrrp_strict the
/// non-owner Active drops traffic to it in XDP (no iptables), while ARP
/// keeps working.
#[test]
fn seed_q2_ping_works_by_default_and_vrrp_strict_refuses_it() {
    require_root();
    for (strict, ping_ok) in [(false, true), (true, false)] {
        let lan = Lan::new(if strict { "strict" } else { "nostrict" }, 3).unwrap();
        let global = if strict {
            "global_defs {\n  vrrp_strict\n}\n"
        } else {
            ""
        };
        let c = format!(
            "{global}vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 150\n  advert_int 1\n  virtual_ipaddress {{\n    10.77.0.100/24\n  }}\n}}\n"
        );
        let r1 = lan.xvrrp(0, "r1", &c).unwrap();
        assert!(
            r1.wait_state("VI_1", "Active", SETTLE),
            "{}",
            r1.proc.log_text()
        );
        let ping = lan
            .host(2)
            .ns
            .exec("ping", &["-c", "2", "-W", "1", "10.77.0.100"]);
        assert_eq!(ping.is_ok(), ping_ok, "strict={strict}: {ping:?}");
        assert_eq!(
            lan.host(2).arp_who_has(VIP).into_iter().collect::<Vec<_>>(),
            vec![lan.host(0).mac]
        );
        if strict {
            assert!(r1.xdp_counter("no_accept_drop") >= 2);
        }
    }
}

/// Hitless restart after a crash (systemd's Restart=on-failure): the new
/// agent re-adopts the attached program and its maps, resumes as Active at once, and
/// nobody transitions; the client is answered by the same router throughout.
/// With --clean it starts fresh instead.
#[test]
fn restart_after_a_crash_or_sigquit_resumes_without_a_transition() {
    require_root();
    let lan = Lan::new("hitless", 3).unwrap();
    let mut r1 = lan.xvrrp(0, "r1", &conf(150)).unwrap();
    let r2 = lan.xvrrp(1, "r2", &conf(100)).unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE));
    assert!(r2.wait_state("VI_1", "Backup", SETTLE));
    let r2_before = r2.transitions("VI_1");

    // A crash (kill -9), then a planned restart (SIGQUIT: exit 75, state left
    // in place; what `systemctl kill -s QUIT xvrrp` does under the unit).
    for (signal, code, name) in [
        (libc::SIGKILL, None, "r1-after-kill9"),
        (libc::SIGQUIT, Some(75), "r1-after-sigquit"),
    ] {
        r1.proc.signal(signal);
        let exit = r1.proc.wait_exit(Duration::from_secs(5));
        if code.is_some() {
            assert_eq!(exit, code, "{}", r1.proc.log_text());
        }
        r1 = lan.xvrrp(0, name, &conf(150)).unwrap();
        assert!(
            r1.wait_state("VI_1", "Active", Duration::from_secs(2)),
            "{}",
            r1.proc.log_text()
        );
        assert!(
            r1.proc
                .log_text()
                .contains("resuming as Active from the re-adopted dataplane"),
            "{}",
            r1.proc.log_text()
        );
        assert!(
            !r1.proc.log_text().contains("Initialize -> Backup"),
            "went through Backup:\n{}",
            r1.proc.log_text()
        );
        for _ in 0..5 {
            assert_eq!(
                lan.host(2).arp_who_has(VIP).into_iter().collect::<Vec<_>>(),
                vec![lan.host(0).mac]
            );
            std::thread::sleep(Duration::from_millis(400));
        }
        assert_eq!(
            r2.transitions("VI_1"),
            r2_before,
            "the Backup saw a transition:\n{}",
            r2.proc.log_text()
        );
        assert_eq!(r2.state("VI_1"), "Backup");
    }

    // A changed config (one more VIP): the re-adopted state is not its own, so
    // it starts fresh, as a Backup.
    let changed = conf(150).replace(
        "    10.77.0.100/24\n",
        "    10.77.0.100/24\n    10.77.0.101/24\n",
    );
    assert_ne!(changed, conf(150));
    r1.proc.signal(libc::SIGKILL);
    r1.proc.wait_exit(Duration::from_secs(5));
    let r1 = lan.xvrrp(0, "r1-changed", &changed).unwrap();
    assert!(
        r1.proc
            .wait_log("Initialize -> Backup", Duration::from_secs(5)),
        "{}",
        r1.proc.log_text()
    );
    assert!(
        !r1.proc.log_text().contains("resuming"),
        "{}",
        r1.proc.log_text()
    );
    let mut r1 = r1;
    assert!(
        r1.wait_state("VI_1", "Active", Duration::from_secs(15)),
        "{}",
        r1.proc.log_text()
    );

    // --clean: no re-adoption of a fresh Active; it starts as a Backup like
    // any fresh start.
    r1.proc.signal(libc::SIGKILL);
    r1.proc.wait_exit(Duration::from_secs(5));
    let r1 = lan
        .xvrrp_with(0, "r1-clean", &changed, &["--clean"])
        .unwrap();
    assert!(
        r1.proc
            .wait_log("Initialize -> Backup", Duration::from_secs(5)),
        "{}",
        r1.proc.log_text()
    );
    assert!(!r1.proc.log_text().contains("resuming"));
}

/// `--xdp-mode auto` on a veth: driver mode when the peer runs an XDP
/// program (veth delivers driver-mode XDP_TX frames only then), skb mode
/// when it does not; the client's ARP requests are answered either way.
#[test]
fn auto_picks_driver_mode_on_a_veth_whose_peer_runs_xdp() {
    use xvrrp_tests::xdpasm::{self, XDP_PASS};
    require_root();
    let lan = Lan::new("automode", 3).unwrap();
    // Host 0's port on the switch passes every frame through XDP.
    xdpasm::attach(
        &lan.switch,
        &lan.host(0).port,
        xdpasm::load("pass", &xdpasm::verdict(XDP_PASS)).unwrap(),
        xvrrp::dataplane::AttachMode::Driver,
    )
    .unwrap();
    let r1 = lan
        .xvrrp_with(0, "r1", &conf(150), &["--xdp-mode", "auto"])
        .unwrap();
    let r2 = lan
        .xvrrp_with(1, "r2", &conf(100), &["--xdp-mode", "auto"])
        .unwrap();
    assert!(
        r1.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    assert!(r2.wait_state("VI_1", "Backup", SETTLE));
    let mode = |a: &xvrrp_tests::lan::Agent| {
        a.status()
            .ok()
            .and_then(|s| s.xdp.first().map(|x| x.mode.clone()))
            .unwrap_or_default()
    };
    assert_eq!(mode(&r1), "driver", "{}", r1.proc.log_text());
    assert_eq!(mode(&r2), "skb", "{}", r2.proc.log_text());
    let before = r1.xdp_counter("arp_replied");
    assert_eq!(
        lan.host(2).arp_who_has(VIP).into_iter().collect::<Vec<_>>(),
        vec![lan.host(0).mac],
        "answered in driver mode"
    );
    assert!(r1.xdp_counter("arp_replied") > before);
}

/// The kernel-side takeover (docs/design.md rule 3) with real agents: the
/// Backup's agent is stopped (SIGSTOP) before the Active is killed, so only
/// its XDP program can answer. For VI_1, eligible, the program answers the
/// client's ARP for the VIP from the moment the Active_Down timer fires;
/// for VI_2, in Fault (a track_file says so), it stays silent. Once the
/// agent runs again it follows: VI_1 Active, VI_2 still Fault.
#[test]
fn the_program_takes_over_for_an_eligible_backup_while_its_agent_is_stopped() {
    require_root();
    let lan = Lan::new("ktakeover", 3).unwrap();
    let fault_file = lan.logs.join("vi2-fault");
    std::fs::write(&fault_file, "1\n").unwrap();
    let vi2_vip = Ipv4Addr::new(10, 77, 0, 101);
    let conf = |prio: u8, track: &str| {
        format!(
            "vrrp_track_file fault {{\n  file {}\n  weight 0\n}}\n\
             vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority {prio}\n  advert_int 1\n  virtual_ipaddress {{\n    10.77.0.100/24\n  }}\n}}\n\
             vrrp_instance VI_2 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 52\n  priority {prio}\n  advert_int 1\n  virtual_ipaddress {{\n    10.77.0.101/24\n  }}\n{track}}}\n",
            fault_file.display()
        )
    };
    let mut r1 = lan.xvrrp(0, "r1", &conf(150, "")).unwrap();
    let r2 = lan
        .xvrrp(1, "r2", &conf(100, "  track_file {\n    fault\n  }\n"))
        .unwrap();
    assert!(
        r1.wait_state("VI_1", "Active", SETTLE) && r1.wait_state("VI_2", "Active", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    assert!(r2.wait_state("VI_1", "Backup", SETTLE));
    assert!(
        r2.wait_state("VI_2", "Fault", SETTLE),
        "{}",
        r2.proc.log_text()
    );
    // The kernel times r2's Active_Down interval once it has heard r1.
    assert!(
        wait_until(Duration::from_secs(5), || r2
            .xdp_counter("advert_unchanged")
            >= 2),
        "{:?}",
        r2.status().map(|s| s.xdp)
    );

    r2.proc.signal(libc::SIGSTOP);
    r1.proc.signal(libc::SIGKILL);
    r1.proc.wait_exit(Duration::from_secs(5));
    // r1's program answers until its lease runs out, 3 s after its last
    // advert; r2's timer fires 3.6 s after it, and r2's program answers
    // for one lease length (3 s) from then. Asked every 300 ms: r1, then
    // nobody, then r2, never both.
    let client = lan.host(2);
    let (r1_mac, r2_mac) = (lan.host(0).mac, lan.host(1).mac);
    let mut r2_answered = false;
    let until = std::time::Instant::now() + Duration::from_secs(8);
    while !r2_answered && std::time::Instant::now() < until {
        let who: Vec<[u8; 6]> = client.arp_who_has(VIP).into_iter().collect();
        assert!(
            who.is_empty() || who == vec![r1_mac] || who == vec![r2_mac],
            "answered by {who:02x?}: one host at a time"
        );
        r2_answered = who == vec![r2_mac];
    }
    assert!(r2_answered, "r2's program never answered for VI_1");
    assert!(
        client.arp_who_has(vi2_vip).is_empty(),
        "VI_2 is in Fault: its timer fired, but nobody may answer"
    );

    r2.proc.signal(libc::SIGCONT);
    assert!(
        r2.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r2.proc.log_text()
    );
    assert_eq!(r2.state("VI_2"), "Fault");
    assert_eq!(r2.xdp_counter("kernel_takeover"), 1);
    assert!(r2.xdp_counter("takeover_answered") >= 1);
    assert_eq!(r2.xdp_counter("down_expired"), 2);
    // The agent followed: the VIP is on r2 and answered as an Active's.
    let before = r2.xdp_counter("arp_replied");
    assert_eq!(
        client.arp_who_has(VIP).into_iter().collect::<Vec<_>>(),
        vec![lan.host(1).mac]
    );
    assert!(r2.xdp_counter("arp_replied") > before);
    assert!(client.arp_who_has(vi2_vip).is_empty());
}
