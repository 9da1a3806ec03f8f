//! SIGHUP on the Active, as a client sees it (docs/design.md rule 6): each kind
//! of change keeping the instance's identity is applied in place with no
//! answering-MAC change and no unanswered ARP request, and what changed is
//! really applied; only a new priority that loses to a peer moves the VIP,
//! by the protocol's own rules.

use std::{net::Ipv4Addr, time::Duration};

use xvrrp_tests::{
    lan::{Agent, Lan},
    require_root, wait_until,
};

const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 100);
const VIP2: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 101);
const SETTLE: Duration = Duration::from_secs(15);

/// v3 at 100 ms, so a move would show within the watch.
struct Conf {
    priority: u8,
    interval: &'static str,
    vips: Vec<&'static str>,
    notify: Option<String>,
    track_script: bool,
    peers: Option<(&'static str, &'static str)>,
}

impl Conf {
    fn new(priority: u8) -> Conf {
        Conf {
            priority,
            interval: "0.1",
            vips: vec!["10.77.0.100/24"],
            notify: None,
            track_script: false,
            peers: None,
        }
    }

    fn text(&self) -> String {
        let mut extra = String::new();
        if let Some(n) = &self.notify {
            extra.push_str(&format!("  notify \"{n}\"\n"));
        }
        if self.track_script {
            extra.push_str("  track_script {\n    chk_ok\n  }\n");
        }
        if let Some((me, peer)) = self.peers {
            extra.push_str(&format!(
                "  unicast_src_ip {me}\n  unicast_peer {{\n    {peer}\n  }}\n"
            ));
        }
        format!(
            "vrrp_script chk_ok {{\n  script \"/bin/true\"\n  interval 1\n}}\n\
             vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  version 3\n  priority {}\n  advert_int {}\n{extra}  virtual_ipaddress {{\n    {}\n  }}\n}}\n",
            self.priority,
            self.interval,
            self.vips.join("\n    ")
        )
    }
}

/// Writes `conf` for `agent`, sends SIGHUP and waits for the reload's end
/// (its `n`th "reload done").
fn reload(agent: &Agent, conf: &Conf, n: usize) {
    std::fs::write(&agent.conf, conf.text()).unwrap();
    agent.proc.signal(libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(5), || agent
            .proc
            .log_text()
            .matches("reload done")
            .count()
            >= n),
        "{}",
        agent.proc.log_text()
    );
}

#[test]
fn reload_on_the_active_moves_nothing_and_applies_every_change() {
    require_root();
    let lan = Lan::new("reload-ip", 3).unwrap();
    let notify_log = lan.logs.join("notify.log");
    let script = lan.logs.join("notify.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", notify_log.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut c1 = Conf::new(150);
    let r1 = lan.xvrrp(0, "r1", &c1.text()).unwrap();
    let r2 = lan.xvrrp(1, "r2", &Conf::new(100).text()).unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE));
    assert!(r2.wait_state("VI_1", "Backup", SETTLE));
    let (t1, t2) = (r1.transitions("VI_1"), r2.transitions("VI_1"));
    let (mac1, mac2) = (lan.host(0).mac, lan.host(1).mac);

    type Change = (&'static str, fn(&mut Conf, &std::path::Path));
    let changes: [Change; 6] = [
        ("priority 150 -> 160", |c, _| c.priority = 160),
        ("a notify script added", |c, s| {
            c.notify = Some(s.display().to_string())
        }),
        ("a VIP added", |c, _| c.vips.push("10.77.0.101/24")),
        ("a track_script added", |c, _| c.track_script = true),
        ("advert_int 0.1 -> 0.2", |c, _| c.interval = "0.2"),
        ("unicast peers", |c, _| {
            c.peers = Some(("10.77.0.1", "10.77.0.2"))
        }),
    ];
    for (n, (what, change)) in changes.iter().enumerate() {
        let watch = lan.host(2).watch(VIP, Duration::from_millis(2)).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        if what.starts_with("unicast") {
            // Both sides must agree on unicast: the Backup is reloaded first
            // (in place too), then the Active.
            let mut c2 = Conf::new(100);
            c2.interval = "0.2";
            c2.peers = Some(("10.77.0.2", "10.77.0.1"));
            reload(&r2, &c2, 1);
        }
        change(&mut c1, &script);
        reload(&r1, &c1, n + 1);
        std::thread::sleep(Duration::from_millis(800));
        let report = watch.stop(Duration::from_millis(50));
        assert_eq!(report.mac_changes(), 0, "{what}: {}", report.summary());
        assert_eq!(report.unanswered(), 0, "{what}: {}", report.summary());
        assert_eq!(
            report.by_mac().keys().copied().collect::<Vec<_>>(),
            [mac1],
            "{what}: {}",
            report.summary()
        );
        assert!(
            r1.proc.log_text().contains("applied in place"),
            "{what}: {}",
            r1.proc.log_text()
        );
        // What changed is applied.
        match *what {
            "priority 150 -> 160" => {
                assert_eq!(report.last_priority_from(mac1), Some(160), "{what}");
                assert_eq!(r1.status().unwrap().instances[0].priority, 160);
            }
            "a VIP added" => {
                assert_eq!(
                    lan.host(2)
                        .arp_who_has(VIP2)
                        .into_iter()
                        .collect::<Vec<_>>(),
                    [mac1],
                    "the new VIP is answered by the Active"
                );
            }
            "a track_script added" => {
                let st = r1.status().unwrap();
                assert!(
                    st.instances[0].checks.iter().any(|c| c.name == "chk_ok"),
                    "{:?}",
                    st.instances[0].checks
                );
            }
            _ => {}
        }
    }
    assert_eq!(r1.transitions("VI_1"), t1, "{}", r1.proc.log_text());
    assert_eq!(r2.transitions("VI_1"), t2, "{}", r2.proc.log_text());
    assert_eq!(r2.state("VI_1"), "Backup");

    // A priority that loses to the peer: the protocol moves the VIP, once,
    // and the notify script added by an earlier reload runs for it.
    let watch = lan.host(2).watch(VIP, Duration::from_millis(2)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    c1.priority = 90;
    reload(&r1, &c1, changes.len() + 1);
    assert!(
        r2.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r2.proc.log_text()
    );
    assert!(r1.wait_state("VI_1", "Backup", SETTLE));
    std::thread::sleep(Duration::from_millis(500));
    let report = watch.stop(Duration::from_millis(50));
    assert_eq!(report.mac_changes(), 1, "{}", report.summary());
    // This step is a preemption, not an in-place change: RFC 9568 §6.4.2
    // has r2 go Active when its down timer fires, and r1 stops answering
    // when r2's first advert reaches it (the agent's reaction, well under a
    // millisecond). A 2 ms probe can land in that window once on a loaded
    // machine; never more, and the in-place steps above allow none.
    assert!(report.answered_twice() <= 1, "{}", report.summary());
    assert_eq!(
        report.requests.iter().rev().find_map(|r| r.macs.first()),
        Some(&mac2),
        "{}",
        report.summary()
    );
    assert!(
        wait_until(Duration::from_secs(3), || std::fs::read_to_string(
            &notify_log
        )
        .unwrap_or_default()
        .contains("INSTANCE VI_1 BACKUP 90")),
        "notify log: {:?}",
        std::fs::read_to_string(&notify_log)
    );
    // The event loop's wake index followed every reload and transition
    // (it is checked against the instances on each one-a-second sweep).
    for a in [&r1, &r2] {
        let counters = a.status().unwrap().counters;
        assert_eq!(
            counters.get("wake_index_stale"),
            None,
            "{}",
            a.proc.log_text()
        );
    }
}
