//! The agent end to end in namespaces: two xvrrp routers and a client on a
//! bridge. What counts is what the client sees: who answers ARP for the VIP.

use std::{net::Ipv4Addr, time::Duration};

use xvrrp_tests::{lan::Lan, require_root, wait_until};

const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 100);
const SETTLE: Duration = Duration::from_secs(15);

fn conf(prio: u8, extra: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority {prio}\n  advert_int 1\n{extra}\n  virtual_ipaddress {{\n    10.77.0.100/24\n  }}\n}}\n"
    )
}

/// The client (host 2) gets exactly one answer for the VIP, from `mac`.
fn only_answer_from(lan: &Lan, mac: [u8; 6]) {
    let who = lan.host(2).arp_who_has(VIP);
    assert_eq!(
        who.into_iter().collect::<Vec<_>>(),
        vec![mac],
        "answers for the VIP"
    );
}

#[test]
fn election_then_kill9_failover() {
    require_root();
    let lan = Lan::new("kill9", 3).unwrap();
    let r1 = lan.xvrrp(0, "r1", &conf(150, "")).unwrap();
    let r2 = lan.xvrrp(1, "r2", &conf(100, "")).unwrap();
    assert!(
        r1.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    assert!(r2.wait_state("VI_1", "Backup", SETTLE));
    only_answer_from(&lan, lan.host(0).mac);
    let st = r2.status().unwrap();
    assert_eq!(st.instances[0].active.as_deref(), Some("10.77.0.1 (150)"));

    // The client talks to the VIP, so its kernel holds a neighbour entry
    // (Linux ignores gratuitous ARP for addresses it has no entry for).
    lan.host(2)
        .ns
        .exec("ping", &["-c", "1", "-W", "1", "10.77.0.100"])
        .unwrap();
    assert_eq!(lan.host(2).neighbour("10.77.0.100"), Some(lan.host(0).mac));

    let mut r1 = r1;
    r1.proc.signal(libc::SIGKILL);
    r1.proc.wait_exit(Duration::from_secs(5));
    assert!(
        r2.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r2.proc.log_text()
    );
    assert!(r2
        .proc
        .log_text()
        .contains("Backup -> Active: master down timer expired"));
    // The new Active's GARP moved the client's neighbour entry over.
    assert!(
        wait_until(Duration::from_secs(3), || lan
            .host(2)
            .neighbour("10.77.0.100")
            == Some(lan.host(1).mac)),
        "client still resolves the VIP to {:?}",
        lan.host(2).neighbour("10.77.0.100")
    );
    assert!(lan.host(2).arp_who_has(VIP).contains(&lan.host(1).mac));
}

#[test]
fn sigterm_hands_over_after_skew_time_and_cleans_up() {
    require_root();
    let lan = Lan::new("sigterm", 3).unwrap();
    // advert_int 3: Active_Down_Interval is over 9 s, Skew_Time about 1.2 s,
    // so a takeover well under 9 s can only come from the priority-0 advert.
    let slow = |p| conf(p, "").replace("advert_int 1", "advert_int 3");
    let mut r1 = lan.xvrrp(0, "r1", &slow(150)).unwrap();
    let r2 = lan.xvrrp(1, "r2", &slow(100)).unwrap();
    assert!(r1.wait_state("VI_1", "Active", Duration::from_secs(25)));
    assert!(r2.wait_state("VI_1", "Backup", SETTLE));
    let started = std::time::Instant::now();
    r1.proc.signal(libc::SIGTERM);
    assert_eq!(
        r1.proc.wait_exit(Duration::from_secs(5)),
        Some(0),
        "{}",
        r1.proc.log_text()
    );
    assert!(
        r2.wait_state("VI_1", "Active", Duration::from_secs(6)),
        "no takeover before the down timer"
    );
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "took {:?}: the priority-0 advert was not used",
        started.elapsed()
    );
    let addrs = lan.host(0).ns.ip(&["addr", "show", "dev", "eth0"]).unwrap();
    assert!(
        !addrs.contains("10.77.0.100"),
        "VIP left on the stopped router:\n{addrs}"
    );
    only_answer_from(&lan, lan.host(1).mac);
}

#[test]
fn preempt_and_nopreempt() {
    require_root();
    let lan = Lan::new("preempt", 3).unwrap();
    // preempt (default): the higher priority takes the VIP back when it returns.
    let mut r1 = lan.xvrrp(0, "r1", &conf(150, "")).unwrap();
    let r2 = lan.xvrrp(1, "r2", &conf(100, "")).unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE));
    r1.proc.signal(libc::SIGTERM);
    r1.proc.wait_exit(Duration::from_secs(5));
    assert!(r2.wait_state("VI_1", "Active", SETTLE));
    let r1 = lan.xvrrp(0, "r1b", &conf(150, "")).unwrap();
    assert!(
        r1.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    assert!(r2.wait_state("VI_1", "Backup", SETTLE));
    only_answer_from(&lan, lan.host(0).mac);
    drop(r1);
    drop(r2);

    // nopreempt: the returning higher priority stays Backup.
    let lan = Lan::new("nopreempt", 3).unwrap();
    let mut r1 = lan.xvrrp(0, "r1", &conf(150, "  nopreempt")).unwrap();
    let r2 = lan.xvrrp(1, "r2", &conf(100, "  nopreempt")).unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE));
    r1.proc.signal(libc::SIGTERM);
    r1.proc.wait_exit(Duration::from_secs(5));
    assert!(r2.wait_state("VI_1", "Active", SETTLE));
    let r1 = lan.xvrrp(0, "r1b", &conf(150, "  nopreempt")).unwrap();
    assert!(r1.wait_state("VI_1", "Backup", SETTLE));
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(r1.state("VI_1"), "Backup", "nopreempt: must not take over");
    assert_eq!(r2.state("VI_1"), "Active");
    only_answer_from(&lan, lan.host(1).mac);
}

#[test]
fn sighup_reload_keeps_state_and_refuses_a_bad_config() {
    require_root();
    let lan = Lan::new("reload", 3).unwrap();
    let two = |prio: u8, second_vip: &str| {
        format!(
            "{}\nvrrp_instance VI_2 {{\n  interface eth0\n  virtual_router_id 52\n  priority {prio}\n  virtual_ipaddress {{\n    {second_vip}\n  }}\n}}\n",
            conf(prio, "")
        )
    };
    let r1 = lan.xvrrp(0, "r1", &two(150, "10.77.0.101/24")).unwrap();
    let r2 = lan.xvrrp(1, "r2", &two(100, "10.77.0.101/24")).unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE) && r1.wait_state("VI_2", "Active", SETTLE));
    assert!(r2.wait_state("VI_2", "Backup", SETTLE));
    let before = r1.transitions("VI_1");

    // Same config with a comment added and VI_2 changed: VI_1 keeps its state.
    std::fs::write(
        &r1.conf,
        format!("# edited\n{}", two(150, "10.77.0.102/24")),
    )
    .unwrap();
    r1.proc.signal(libc::SIGHUP);
    assert!(
        r1.proc.wait_log("reload done", Duration::from_secs(5)),
        "{}",
        r1.proc.log_text()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        r1.transitions("VI_1"),
        before,
        "VI_1 moved during the reload:\n{}",
        r1.proc.log_text()
    );
    assert_eq!(r1.state("VI_1"), "Active");
    assert_eq!(
        r2.state("VI_1"),
        "Backup",
        "the peer saw no transition either"
    );
    let st = r1.status().unwrap();
    let vi2 = st.instances.iter().find(|i| i.name == "VI_2").unwrap();
    assert_eq!(
        vi2.vips,
        ["10.77.0.102/24"],
        "the changed instance took its new VIP in place"
    );

    // A broken config is refused; the running one stays.
    std::fs::write(
        &r1.conf,
        "vrrp_instance VI_1 {\n  interface eth0\n  priority 500\n",
    )
    .unwrap();
    r1.proc.signal(libc::SIGHUP);
    assert!(
        r1.proc.wait_log("reload refused", Duration::from_secs(5)),
        "{}",
        r1.proc.log_text()
    );
    assert_eq!(r1.state("VI_1"), "Active");
    assert_eq!(r1.transitions("VI_1"), before);
    only_answer_from(&lan, lan.host(0).mac);
}

#[test]
fn unicast_peers() {
    require_root();
    let lan = Lan::new("unicast", 3).unwrap();
    let uni = |prio, me: &str, peer: &str| {
        conf(
            prio,
            &format!("  unicast_src_ip {me}\n  unicast_peer {{\n    {peer}\n  }}"),
        )
    };
    let r1 = lan
        .xvrrp(0, "r1", &uni(150, "10.77.0.1", "10.77.0.2"))
        .unwrap();
    let r2 = lan
        .xvrrp(1, "r2", &uni(100, "10.77.0.2", "10.77.0.1"))
        .unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE));
    assert!(r2.wait_state("VI_1", "Backup", SETTLE));
    only_answer_from(&lan, lan.host(0).mac);
    // The Backup hears its peer's unicast adverts (what keeps it Backup).
    let st = r2.status().unwrap();
    assert!(st.instances[0].adverts_received > 0);
    // A stranger (the client, not a listed peer) sends a priority-255 advert
    // for our VRID to r2: keepalived without check_unicast_src hears it, so
    // r2 still follows the real Active and reports the stranger once; r1
    // stays Active (r2 never takes over).
    let stranger = lan.host(2).v4;
    let r1_transitions = r1.transitions("VI_1");
    let frame = xvrrp::wire::build::advert_to(
        lan.host(2).mac,
        stranger.into(),
        lan.host(1).v4.into(),
        lan.host(1).mac,
        xvrrp::wire::vrrp::TTL,
        &xvrrp::wire::vrrp::Repr {
            version: xvrrp::wire::vrrp::Version::V2,
            vrid: 51,
            priority: 100,
            interval_cs: 100,
            auth: xvrrp::wire::vrrp::Auth::None,
            addresses: vec![VIP.into()],
        },
        xvrrp::wire::vrrp::ChecksumMode::Plain,
    );
    xvrrp_tests::capture::flood(
        &lan.host(2).ns.name,
        vec![frame],
        Duration::from_secs(1),
        Some(20),
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || r2
            .proc
            .log_text()
            .contains(&stranger.to_string())),
        "the stranger's advert was not reported:\n{}",
        r2.proc.log_text()
    );
    assert!(r1.wait_state("VI_1", "Active", Duration::from_secs(1)));
    assert!(r2.wait_state("VI_1", "Backup", Duration::from_secs(1)));
    assert_eq!(r1.transitions("VI_1"), r1_transitions);
}

#[test]
fn status_metrics_and_bad_packets() {
    require_root();
    let lan = Lan::new("status", 3).unwrap();
    let r1 = lan.xvrrp(0, "r1", &conf(150, "")).unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE));
    // Garbage and a foreign VRID from the client: counted, no crash.
    let (mac, src) = (lan.host(2).mac, lan.host(2).v4);
    lan.host(2)
        .ns
        .run(move || {
            let s = xvrrp::net::packet::PacketSocket::open("eth0", false)?;
            for len in 0..12u8 {
                s.send(&xvrrp::wire::build::advert_bytes(
                    mac,
                    src.into(),
                    255,
                    &vec![0x31; len as usize],
                ))?;
            }
            let foreign = xvrrp::wire::vrrp::Repr {
                version: xvrrp::wire::vrrp::Version::V2,
                vrid: 99,
                priority: 100,
                interval_cs: 100,
                auth: xvrrp::wire::vrrp::Auth::None,
                addresses: vec![std::net::IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9))],
            };
            s.send(&xvrrp::wire::build::advert(
                mac,
                src.into(),
                255,
                &foreign,
                xvrrp::wire::vrrp::ChecksumMode::Plain,
            ))?;
            // Another cluster on VRID 51 with other addresses (the seed's Q1).
            let clash = xvrrp::wire::vrrp::Repr {
                vrid: 51,
                priority: 50,
                addresses: vec![std::net::IpAddr::V4(Ipv4Addr::new(10, 1, 7, 58))],
                ..foreign
            };
            s.send(&xvrrp::wire::build::advert(
                mac,
                src.into(),
                255,
                &clash,
                xvrrp::wire::vrrp::ChecksumMode::Plain,
            ))?;
            Ok(())
        })
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || {
            r1.status().is_ok_and(|s| {
                s.counters.get("unknown_vrid") == Some(&1)
                    && s.counters.keys().any(|k| k.starts_with("invalid_"))
            })
        }),
        "{:?}",
        r1.status().map(|s| s.counters)
    );
    assert_eq!(r1.state("VI_1"), "Active");
    assert!(
        r1.proc.wait_log("ip address associated with VRID 51 not present in MASTER advert: 10.77.0.3 advertises [10.1.7.58]", Duration::from_secs(3)),
        "{}\n{:?}",
        r1.proc.log_text(),
        r1.status().map(|s| (s.counters, s.instances[0].discarded.clone(), s.instances[0].adverts_received))
    );
    let bin = xvrrp_tests::xvrrp_bin();
    let rt = r1.runtime.to_str().unwrap();
    let table = lan
        .host(0)
        .ns
        .exec(bin.to_str().unwrap(), &["status", "--runtime-dir", rt])
        .unwrap();
    assert!(
        table.contains("VI_1") && table.contains("Active") && table.contains("10.77.0.100/24"),
        "{table}"
    );
    let metrics = lan
        .host(0)
        .ns
        .exec(
            bin.to_str().unwrap(),
            &["status", "--metrics", "--runtime-dir", rt],
        )
        .unwrap();
    assert!(
        metrics.contains("xvrrp_state{instance=\"VI_1\",state=\"Active\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("xvrrp_events_total{event=\"unknown_vrid\"} 1"),
        "{metrics}"
    );
    let sock = r1.runtime.join("xvrrp.sock");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600,
        "root-only socket"
    );
    // One agent per runtime directory: a second one on r1's is refused,
    // naming the lock, and r1 carries on.
    let again = lan.conf(
        "r1-again",
        &conf(150, "").replace("virtual_router_id 51", "virtual_router_id 52"),
    );
    let bin = std::env::var("XVRRP_BIN").expect("XVRRP_BIN");
    let second = lan.host(0).ns.exec(
        &bin,
        &[
            "run",
            "--config",
            again.to_str().unwrap(),
            "--runtime-dir",
            r1.runtime.to_str().unwrap(),
        ],
    );
    let said = format!(
        "{:#}",
        second.expect_err("a second agent ran on the same runtime directory")
    );
    assert!(
        said.contains("another xvrrp runs") && said.contains("lock"),
        "{said}"
    );
    assert!(r1.wait_state("VI_1", "Active", Duration::from_secs(1)));
}

#[test]
fn restart_after_kill9_removes_the_stale_vip() {
    require_root();
    let lan = Lan::new("stale", 3).unwrap();
    // The socket path (no XDP): nothing stops the dead router's kernel.
    let mut r1 = lan
        .xvrrp_with(0, "r1", &conf(150, ""), &["--xdp-mode", "off"])
        .unwrap();
    let r2 = lan.xvrrp(1, "r2", &conf(100, "")).unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE));
    r1.proc.signal(libc::SIGKILL);
    r1.proc.wait_exit(Duration::from_secs(5));
    assert!(r2.wait_state("VI_1", "Active", SETTLE));
    // The dead router's VIP is still there, so its kernel answers too.
    assert_eq!(
        lan.host(2).arp_who_has(VIP).len(),
        2,
        "kill -9 leaves the VIP behind"
    );
    // A restarted agent (now Backup with a lower priority) removes it first.
    let r1 = lan
        .xvrrp_with(0, "r1b", &conf(50, ""), &["--xdp-mode", "off"])
        .unwrap();
    assert!(r1.wait_state("VI_1", "Backup", SETTLE));
    assert!(r1
        .proc
        .log_text()
        .contains("removing VIP left on eth0 by a previous run"));
    only_answer_from(&lan, lan.host(1).mac);
}

#[test]
fn use_vmac_answers_with_the_virtual_mac_and_excluded_vips_follow() {
    require_root();
    let lan = Lan::new("vmac", 3).unwrap();
    let extra = "  use_vmac\n  virtual_ipaddress_excluded {\n    10.77.0.200/24\n  }";
    let mut r1 = lan.xvrrp(0, "r1", &conf(150, extra)).unwrap();
    let r2 = lan.xvrrp(1, "r2", &conf(100, extra)).unwrap();
    assert!(
        r1.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    assert!(r2.wait_state("VI_1", "Backup", SETTLE));
    let vmac = [0x00, 0x00, 0x5e, 0x00, 0x01, 51];
    let link = lan
        .host(0)
        .ns
        .ip(&["-d", "link", "show", "vrrp.51"])
        .unwrap();
    assert!(
        link.contains("macvlan") && link.contains("00:00:5e:00:01:33"),
        "{link}"
    );
    only_answer_from(&lan, vmac);
    // The excluded address is on the Active's vmac too, but not in the adverts.
    let addrs = lan
        .host(0)
        .ns
        .ip(&["addr", "show", "dev", "vrrp.51"])
        .unwrap();
    assert!(
        addrs.contains("10.77.0.100/24") && addrs.contains("10.77.0.200/24"),
        "{addrs}"
    );
    assert!(lan
        .host(2)
        .arp_who_has(Ipv4Addr::new(10, 77, 0, 200))
        .contains(&vmac));
    // The Backup heard adverts carrying only the VIP, not the excluded one:
    // no address-set conflict counted (the counter the daemon keeps for it).
    let st = r2.status().unwrap();
    assert!(
        st.instances[0].adverts_received > 0,
        "{st:?}\n{}\nr1: {:?}\n{}",
        r2.proc.log_text(),
        r1.status(),
        r1.proc.log_text()
    );
    assert_eq!(st.counters.get("vrid_conflict"), None, "{:?}", st.counters);
    assert!(
        !r2.proc.log_text().contains("not present in MASTER advert"),
        "excluded VIPs leaked into adverts"
    );

    // Failover: the same MAC answers from the other router; the client's
    // neighbour entry does not even change.
    r1.proc.signal(libc::SIGTERM);
    assert_eq!(r1.proc.wait_exit(Duration::from_secs(5)), Some(0));
    assert!(r2.wait_state("VI_1", "Active", SETTLE));
    assert!(
        lan.host(0).ns.ip(&["link", "show", "vrrp.51"]).is_err(),
        "vmac left behind on the stopped router"
    );
    let arp_ignore = lan
        .host(0)
        .ns
        .exec("cat", &["/proc/sys/net/ipv4/conf/eth0/arp_ignore"])
        .unwrap();
    assert_eq!(
        arp_ignore.trim(),
        "0",
        "the parent's arp_ignore was not restored"
    );
    only_answer_from(&lan, vmac);
}

/// keepalived's use_vmac_addr: the IPv6 address of an IPv4 instance goes on
/// a vmac of its own with the IPv6 virtual MAC, and `use_vmac` on an address
/// line gives that address one too; both named as keepalived names them
/// (vmac_addr_prefix), in their parent's interface group, answered from
/// their virtual MAC, and gone when the agent stops.
#[test]
fn use_vmac_addr_gives_other_addresses_vmacs_of_their_own() {
    use std::net::Ipv6Addr;
    require_root();
    let lan = Lan::new("vmacaddr", 3).unwrap();
    lan.host(0)
        .ns
        .ip(&["link", "set", "eth0", "group", "3"])
        .unwrap();
    let conf = "global_defs {\n  vmac_addr_prefix va\n}\n\
        vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  priority 200\n  advert_int 0.2\n  use_vmac_addr\n\
        virtual_ipaddress {\n    10.77.0.100/24\n    10.77.0.177/24 dev eth0 use_vmac\n  }\n\
        virtual_ipaddress_excluded {\n    fd77::100/64\n  }\n}\n";
    let mut r1 = lan.xvrrp(0, "r1", conf).unwrap();
    assert!(
        r1.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    let ns = &lan.host(0).ns;
    let link = |name: &str| ns.ip(&["-d", "addr", "show", "dev", name]);
    let v4 = link("va.51").unwrap_or_else(|e| panic!("{e:#}\n{}", r1.proc.log_text()));
    assert!(
        v4.contains("macvlan") && v4.contains("00:00:5e:00:01:33") && v4.contains("10.77.0.177/24"),
        "{v4}"
    );
    let v6 = link("va6.51").unwrap_or_else(|e| panic!("{e:#}\n{}", r1.proc.log_text()));
    assert!(
        v6.contains("macvlan") && v6.contains("00:00:5e:00:02:33") && v6.contains("fd77::100/64"),
        "{v6}"
    );
    assert!(
        v4.contains("group 3") && v6.contains("group 3"),
        "the parent's group: {v4}\n{v6}"
    );
    let base = link("eth0").unwrap();
    assert!(
        base.contains("10.77.0.100/24")
            && !base.contains("10.77.0.177")
            && !base.contains("fd77::100"),
        "{base}"
    );
    let client = lan.host(2);
    assert_eq!(
        client
            .arp_who_has(Ipv4Addr::new(10, 77, 0, 177))
            .into_iter()
            .collect::<Vec<_>>(),
        vec![[0, 0, 0x5e, 0, 1, 51]]
    );
    client
        .ns
        .ip(&["addr", "add", "fd77::2/64", "dev", "eth0", "nodad"])
        .unwrap();
    assert_eq!(
        client
            .nd_who_has("fd77::100".parse::<Ipv6Addr>().unwrap())
            .into_iter()
            .collect::<Vec<_>>(),
        vec![[0, 0, 0x5e, 0, 2, 51]]
    );
    assert_eq!(
        client.arp_who_has(VIP).into_iter().collect::<Vec<_>>(),
        vec![lan.host(0).mac],
        "the instance's own VIP stays on eth0"
    );
    // A reload keeps them: the new config's handles adopt the same links.
    r1.proc.signal(libc::SIGHUP);
    assert!(
        r1.proc.wait_log("reload done", Duration::from_secs(5)),
        "{}",
        r1.proc.log_text()
    );
    let after = link("va6.51").unwrap();
    assert!(after.contains("fd77::100/64"), "{after}");
    assert!(link("va.51").unwrap().contains("10.77.0.177/24"));
    r1.proc.signal(libc::SIGTERM);
    assert_eq!(r1.proc.wait_exit(Duration::from_secs(5)), Some(0));
    assert!(
        link("va.51").is_err() && link("va6.51").is_err(),
        "vmacs left behind"
    );
}

/// RFC 9568 §5.1.1 / §5.1.2 / §7.2 on the send side, as a host on the LAN
/// receives it: TTL / hop limit 255; a multicast instance sends to
/// 224.0.0.18 / ff02::12 (with their multicast MACs); an IPv6 advert leaves
/// from the interface's link-local address (not a VIP, even a link-local
/// one); a unicast instance sends to each peer and never to the group.
/// IPv4 adverts carry the header keepalived writes (vrrp_build_ip4, sent
/// with IP_HDRINCL as xvrrp does): TOS 0xc0, no fragment flags, a 20-byte
/// header whose checksum holds.
#[test]
fn sent_adverts_have_ttl_255_and_the_rfc_source_and_destination() {
    use std::net::IpAddr;
    use xvrrp::wire::vrrp;
    require_root();
    let lan = Lan::new("send-side", 3).unwrap();
    let (peer1, peer2) = (lan.host(1).v4, lan.host(2).v4);
    let conf = format!(
        "vrrp_instance MC4 {{\n  interface eth0\n  virtual_router_id 61\n  version 3\n  priority 200\n  advert_int 0.1\n  virtual_ipaddress {{\n    10.77.0.161/24\n  }}\n}}\n\
         vrrp_instance MC6 {{\n  interface eth0\n  virtual_router_id 62\n  priority 200\n  advert_int 0.1\n  virtual_ipaddress {{\n    fe80::62/64\n  }}\n}}\n\
         vrrp_instance UC {{\n  interface eth0\n  virtual_router_id 63\n  version 3\n  priority 200\n  advert_int 0.1\n  unicast_peer {{\n    {peer1}\n    {peer2}\n  }}\n  virtual_ipaddress {{\n    10.77.0.163/24\n  }}\n}}\n"
    );
    let r = lan.xvrrp(0, "r", &conf).unwrap();
    for name in ["MC4", "MC6", "UC"] {
        assert!(
            r.wait_state(name, "Active", SETTLE),
            "{name}: {}",
            r.proc.log_text()
        );
    }
    let seen =
        xvrrp_tests::capture::vrrp_received(&lan.host(2).ns.name, Duration::from_secs(1)).unwrap();
    let h0 = lan.host(0);
    let of = |vrid: u8| {
        seen.iter()
            .filter(move |p| p.vrrp.get(1) == Some(&vrid) && p.eth.src == h0.mac)
    };
    // 10 adverts a second each: allow for start-up of the capture.
    for vrid in [61, 62, 63] {
        assert!(
            of(vrid).count() >= 5,
            "VRID {vrid}: {} adverts in 1 s",
            of(vrid).count()
        );
    }
    for p in of(61) {
        assert_eq!(
            (p.ip.ttl, p.ip.src, p.ip.dst, p.eth.dst),
            (
                vrrp::TTL,
                IpAddr::V4(h0.v4),
                IpAddr::V4(vrrp::MCAST_V4),
                [1, 0, 0x5e, 0, 0, 0x12]
            ),
            "IPv4 multicast advert"
        );
    }
    for p in of(62) {
        let IpAddr::V6(src) = p.ip.src else {
            panic!("VRID 62 sent IPv4: {p:?}")
        };
        assert_eq!(
            src.segments()[0] & 0xffc0,
            0xfe80,
            "IPv6 source is not link-local: {src}"
        );
        assert_ne!(
            src,
            "fe80::62".parse::<std::net::Ipv6Addr>().unwrap(),
            "the advert left from the VIP"
        );
        assert_eq!(
            (p.ip.ttl, p.ip.dst, p.eth.dst),
            (
                vrrp::TTL,
                IpAddr::V6(vrrp::MCAST_V6),
                [0x33, 0x33, 0, 0, 0, 0x12]
            ),
            "IPv6 multicast advert"
        );
    }
    for p in of(63) {
        assert_eq!(
            (p.ip.ttl, p.ip.src, p.ip.dst, p.eth.dst),
            (
                vrrp::TTL,
                IpAddr::V4(h0.v4),
                IpAddr::V4(peer2),
                lan.host(2).mac
            ),
            "unicast advert: to this peer only, never to the group"
        );
    }
    for p in of(61).chain(of(63)) {
        let h = &p.ip_header;
        assert_eq!(
            (h[0], h[1], [h[6], h[7]]),
            (0x45, 0xc0, [0, 0]),
            "IPv4 advert header (version/IHL, TOS, flags/fragment): {h:02x?}"
        );
        assert_eq!(
            xvrrp::wire::checksum::finish(xvrrp::wire::checksum::sum(h)),
            0,
            "IPv4 header checksum: {h:02x?}"
        );
    }
}

/// keepalived's old default keepalived.conf (its VRRP part, as many hosts
/// carry it: vrrp_strict, PASS authentication, `state MASTER` at priority
/// 100) runs: the fix-ups keepalived makes are warnings, the instance comes
/// up and answers for its VIPs.
#[test]
fn keepalived_old_default_config_comes_up() {
    require_root();
    let lan = Lan::new("kadefault", 2).unwrap();
    let conf = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../agent/src/config/fixtures/ok/keepalived_old_default_vrrp.conf"
    ))
    .unwrap();
    let r = lan.xvrrp(0, "r", &conf).unwrap();
    assert!(
        r.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r.proc.log_text()
    );
    assert_eq!(
        lan.host(1)
            .arp_who_has(Ipv4Addr::new(192, 168, 200, 17))
            .into_iter()
            .collect::<Vec<_>>(),
        [lan.host(0).mac]
    );
}

/// keepalived's GARP burst after a lower-priority advert: the Active that
/// hears one (a split brain healing) answers with an advert and
/// garp_lower_prio_repeat gratuitous ARPs at once, and as many again after
/// garp_lower_prio_delay, as a client on the LAN sees them.
#[test]
fn a_lower_priority_advert_brings_keepalived_s_garp_burst() {
    use xvrrp_tests::capture::{Capture, Seen};
    require_root();
    let lan = Lan::new("lowgarp", 3).unwrap();
    let r = lan
        .xvrrp(
            0,
            "r",
            &conf(
                200,
                "  garp_master_delay 0\n  garp_lower_prio_repeat 3\n  garp_lower_prio_delay 1",
            ),
        )
        .unwrap();
    assert!(
        r.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r.proc.log_text()
    );
    // The transition's own burst is over (no second one: delay 0).
    std::thread::sleep(Duration::from_millis(500));
    let capture = Capture::start(&lan.host(2).ns.name, VIP.into()).unwrap();
    let announces = || {
        capture
            .events()
            .iter()
            .filter(|e| {
                e.seen
                    == Seen::Announce {
                        mac: lan.host(0).mac,
                    }
            })
            .count()
    };
    assert_eq!(announces(), 0);
    let (mac, src) = (lan.host(2).mac, lan.host(2).v4);
    let lower = xvrrp::wire::build::advert(
        mac,
        src.into(),
        255,
        &xvrrp::wire::vrrp::Repr {
            version: xvrrp::wire::vrrp::Version::V2,
            vrid: 51,
            priority: 50,
            interval_cs: 100,
            auth: xvrrp::wire::vrrp::Auth::None,
            addresses: vec![VIP.into()],
        },
        xvrrp::wire::vrrp::ChecksumMode::Plain,
    );
    lan.host(2)
        .ns
        .run(move || {
            xvrrp::net::packet::PacketSocket::open("eth0", false)?
                .send(&lower)
                .map_err(Into::into)
        })
        .unwrap();
    assert!(
        wait_until(Duration::from_millis(500), || announces() >= 3),
        "{} announces after the lower-priority advert\n{}",
        announces(),
        r.proc.log_text()
    );
    assert_eq!(announces(), 3, "the first burst");
    assert!(
        wait_until(Duration::from_secs(2), || announces() >= 6),
        "no second burst after garp_lower_prio_delay: {}",
        announces()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(announces(), 6);
    assert!(r.wait_state("VI_1", "Active", Duration::from_secs(1)));
}

/// keepalived's virtual_routes and virtual_rules: on the Active only
/// (gateway, blackhole, table and metric, `via A or B` multipath, a rule
/// to table 100), moving with the VIP.
#[test]
fn virtual_routes_follow_the_active() {
    require_root();
    let lan = Lan::new("vroutes", 3).unwrap();
    let routes = "  virtual_routes {\n    10.99.0.0/24 via 10.77.0.254\n    blackhole 10.98.0.0/24\n    10.97.0.0/24 dev eth0 table 100 metric 50\n    10.96.0.0/24 via 10.77.0.251 or 10.77.0.252\n  }\n  virtual_rules {\n    from 10.94.0.0/24 table 100 priority 1000\n  }";
    let mut r1 = lan.xvrrp(0, "r1", &conf(150, routes)).unwrap();
    let r2 = lan.xvrrp(1, "r2", &conf(100, routes)).unwrap();
    assert!(
        r1.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    assert!(r2.wait_state("VI_1", "Backup", SETTLE));
    let routes_of = |h: usize| {
        let ns = &lan.host(h).ns;
        let main = ns.ip(&["route", "show"]).unwrap() + &ns.ip(&["rule", "show"]).unwrap();
        // A table nobody put a route in does not exist: no routes.
        let t100 = match ns.ip(&["route", "show", "table", "100"]) {
            Ok(t) => t,
            Err(e) if format!("{e:#}").contains("table does not exist") => String::new(),
            Err(e) => panic!("{e:#}"),
        };
        format!("{main}{t100}")
    };
    let installed = |t: &str| {
        t.contains("10.99.0.0/24 via 10.77.0.254 dev eth0")
            && t.contains("blackhole 10.98.0.0/24")
            && t.contains("10.97.0.0/24 dev eth0")
            && t.contains("metric 50")
            && t.contains("nexthop via 10.77.0.251")
            && t.contains("nexthop via 10.77.0.252")
            && t.contains("1000:\tfrom 10.94.0.0/24 lookup 100")
    };
    let none = |t: &str| {
        ![
            "10.99.0.0",
            "10.98.0.0",
            "10.97.0.0",
            "10.96.0.0",
            "10.94.0.0",
        ]
        .iter()
        .any(|d| t.contains(d))
    };
    assert!(installed(&routes_of(0)), "{}", routes_of(0));
    assert!(
        none(&routes_of(1)),
        "routes on the Backup:\n{}",
        routes_of(1)
    );
    r1.proc.signal(libc::SIGTERM);
    assert_eq!(r1.proc.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(r2.wait_state("VI_1", "Active", SETTLE));
    assert!(
        wait_until(Duration::from_secs(2), || installed(&routes_of(1))),
        "{}",
        routes_of(1)
    );
    assert!(
        none(&routes_of(0)),
        "routes left on the stopped router:\n{}",
        routes_of(0)
    );
    // A reload with other routes: the difference is applied on the Active.
    lan.conf(
        "r2.conf",
        &conf(
            100,
            "  virtual_routes {\n    10.95.0.0/24 via 10.77.0.254\n  }",
        ),
    );
    r2.proc.signal(libc::SIGHUP);
    assert!(
        r2.proc.wait_log("reload done", Duration::from_secs(5)),
        "{}",
        r2.proc.log_text()
    );
    assert!(
        wait_until(Duration::from_secs(2), || {
            let t = routes_of(1);
            t.contains("10.95.0.0/24 via 10.77.0.254") && none(&t)
        }),
        "{}",
        routes_of(1)
    );
    assert_eq!(r2.state("VI_1"), "Active");
}

/// keepalived's static_ipaddress / static_routes / static_rules: set on
/// the Active and the Backup alike, set again after the interface bounces
/// (the kernel drops its routes), a reload's difference applied, removed by
/// a clean stop.
#[test]
fn static_entries_are_set_whatever_the_state() {
    require_root();
    let lan = Lan::new("statics", 2).unwrap();
    let statics = |h: usize, route: &str| {
        format!(
            "static_ipaddress {{\n  10.77.1.{}/32 dev eth0 scope link\n}}\nstatic_routes {{\n  {route} via 10.77.0.254 dev eth0\n}}\n\
             static_rules {{\n  from 10.92.0.0/24 table 200 priority 900\n}}\n",
            h + 1
        )
    };
    let mut r1 = lan
        .xvrrp(0, "r1", &(statics(0, "10.93.0.0/24") + &conf(150, "")))
        .unwrap();
    let r2 = lan
        .xvrrp(1, "r2", &(statics(1, "10.93.0.0/24") + &conf(100, "")))
        .unwrap();
    assert!(
        r1.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    assert!(r2.wait_state("VI_1", "Backup", SETTLE));
    let set_of = |h: usize| {
        let ns = &lan.host(h).ns;
        ns.ip(&["addr", "show", "dev", "eth0"]).unwrap()
            + &ns.ip(&["route", "show"]).unwrap()
            + &ns.ip(&["rule", "show"]).unwrap()
    };
    let has = |h: usize, route: &str| {
        let t = set_of(h);
        t.contains(&format!("inet 10.77.1.{}/32 scope link", h + 1))
            && t.contains(&format!("{route} via 10.77.0.254 dev eth0"))
            && t.contains("900:\tfrom 10.92.0.0/24 lookup 200")
    };
    for h in 0..2 {
        assert!(
            wait_until(Duration::from_secs(2), || has(h, "10.93.0.0/24")),
            "host {h}:\n{}",
            set_of(h)
        );
    }
    // The interface bounces: the kernel drops the route; it comes back.
    let ns = &lan.host(1).ns;
    ns.ip(&["link", "set", "eth0", "down"]).unwrap();
    assert!(
        wait_until(Duration::from_secs(2), || !set_of(1)
            .contains("10.93.0.0/24")),
        "the kernel keeps routes of a down interface?\n{}",
        set_of(1)
    );
    ns.ip(&["link", "set", "eth0", "up"]).unwrap();
    assert!(
        wait_until(Duration::from_secs(3), || has(1, "10.93.0.0/24")),
        "static route not set again after the bounce:\n{}\n{}",
        set_of(1),
        r2.proc.log_text()
    );
    // A reload: the old route goes, the new one comes, the rest stays.
    lan.conf("r2.conf", &(statics(1, "10.91.0.0/24") + &conf(100, "")));
    r2.proc.signal(libc::SIGHUP);
    assert!(
        r2.proc.wait_log("reload done", Duration::from_secs(5)),
        "{}",
        r2.proc.log_text()
    );
    assert!(
        wait_until(Duration::from_secs(2), || has(1, "10.91.0.0/24")
            && !set_of(1).contains("10.93.0.0/24")),
        "{}",
        set_of(1)
    );
    // A clean stop removes them.
    r1.proc.signal(libc::SIGTERM);
    assert_eq!(r1.proc.wait_exit(Duration::from_secs(10)), Some(0));
    let left = set_of(0);
    assert!(
        !left.contains("10.77.1.1") && !left.contains("10.93.0.0") && !left.contains("10.92.0.0"),
        "static entries left after a clean stop:\n{left}"
    );
}

/// keepalived's `net_namespace NAME`: an agent started in another
/// namespace runs in the named one (its interfaces, its VIPs), as
/// `ip netns exec NAME` would run it.
#[test]
fn net_namespace_runs_the_agent_in_the_named_namespace() {
    require_root();
    let lan = Lan::new("netns", 3).unwrap();
    let target = lan.host(0).ns.name.clone();
    // Started in host 1's namespace, told to run in host 0's.
    let r = lan
        .xvrrp(
            1,
            "r",
            &(format!("net_namespace {target}\n") + &conf(150, "")),
        )
        .unwrap();
    assert!(
        r.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r.proc.log_text()
    );
    assert!(r
        .proc
        .log_text()
        .contains(&format!("net_namespace {target}")));
    let has_vip = |h: usize| {
        lan.host(h)
            .ns
            .ip(&["addr", "show", "dev", "eth0"])
            .unwrap()
            .contains("10.77.0.100/24")
    };
    assert!(wait_until(Duration::from_secs(2), || has_vip(0)));
    assert!(
        !has_vip(1),
        "the VIP went to the namespace it was started in"
    );
    only_answer_from(&lan, lan.host(0).mac);
}

/// keepalived's promote_secondaries: set on the instance's interface, so
/// removing a VIP that is an address's primary keeps the other addresses.
#[test]
fn promote_secondaries_is_set_on_the_interface() {
    require_root();
    let lan = Lan::new("promote", 2).unwrap();
    let read = || {
        lan.host(0)
            .ns
            .exec("cat", &["/proc/sys/net/ipv4/conf/eth0/promote_secondaries"])
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(read(), "0");
    let r = lan
        .xvrrp(0, "r", &conf(150, "  promote_secondaries"))
        .unwrap();
    assert!(
        r.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r.proc.log_text()
    );
    assert_eq!(read(), "1");
}

/// keepalived's startup_script and shutdown_script: the first runs before
/// the election starts and is waited for; the second runs at a clean stop,
/// after the VIPs are gone.
#[test]
fn startup_and_shutdown_scripts_run_around_the_agent() {
    require_root();
    let lan = Lan::new("startstop", 2).unwrap();
    let out = lan.logs.join("scripts.out");
    let write = |name: &str, body: &str| {
        let p = lan.logs.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    };
    // The startup script takes a moment: the election waits for it.
    let start = write(
        "start.sh",
        &format!("sleep 0.5; echo \"start $1\" >> {}", out.display()),
    );
    let stop = write(
        "stop.sh",
        &format!(
            "ip -br addr show dev eth0 | grep -q 10.77.0.100 && echo \"stop with the VIP\" >> {o} || echo \"stop $1\" >> {o}",
            o = out.display()
        ),
    );
    let global = format!(
        "global_defs {{\n  startup_script \"{} up\"\n  shutdown_script \"{} down\"\n  startup_script_timeout 5\n}}\n",
        start.display(),
        stop.display()
    );
    let mut r = lan.xvrrp(0, "r", &(global + &conf(150, ""))).unwrap();
    // "xvrrp running" is logged after the startup script finished.
    assert_eq!(
        std::fs::read_to_string(&out).unwrap_or_default(),
        "start up\n",
        "{}",
        r.proc.log_text()
    );
    assert!(
        r.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r.proc.log_text()
    );
    r.proc.signal(libc::SIGTERM);
    assert_eq!(r.proc.wait_exit(Duration::from_secs(15)), Some(0));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap_or_default(),
        "start up\nstop down\n",
        "{}",
        r.proc.log_text()
    );
}

/// keepalived's track_src_ip (FAULT while the source address is gone from
/// the interface) and unicast_fault_no_peer (FAULT, not multicast, when the
/// unicast peers are missing).
#[test]
fn track_src_ip_and_unicast_fault_no_peer_fault_the_instance() {
    require_root();
    let lan = Lan::new("srcip", 2).unwrap();
    let ns = &lan.host(0).ns;
    ns.ip(&["addr", "add", "10.77.0.51/24", "dev", "eth0"])
        .unwrap();
    let text = "vrrp_instance SRC {\n  interface eth0\n  virtual_router_id 61\n  priority 150\n  advert_int 1\n  \
                unicast_src_ip 10.77.0.51\n  track_src_ip\n  unicast_peer {\n    10.77.0.2\n  }\n  \
                virtual_ipaddress {\n    10.77.0.161/24\n  }\n}\n\
                vrrp_instance NOPEER {\n  interface eth0\n  virtual_router_id 62\n  priority 150\n  advert_int 1\n  \
                unicast_fault_no_peer\n  virtual_ipaddress {\n    10.77.0.162/24\n  }\n}\n";
    let r = lan.xvrrp(0, "r", text).unwrap();
    assert!(
        r.wait_state("SRC", "Active", SETTLE),
        "{}",
        r.proc.log_text()
    );
    assert!(
        r.wait_state("NOPEER", "Fault", SETTLE),
        "{}",
        r.proc.log_text()
    );
    ns.ip(&["addr", "del", "10.77.0.51/24", "dev", "eth0"])
        .unwrap();
    assert!(
        r.wait_state("SRC", "Fault", Duration::from_secs(5)),
        "{}",
        r.proc.log_text()
    );
    ns.ip(&["addr", "add", "10.77.0.51/24", "dev", "eth0"])
        .unwrap();
    assert!(
        r.wait_state("SRC", "Active", SETTLE),
        "{}",
        r.proc.log_text()
    );
    assert_eq!(r.state("NOPEER"), "Fault");
}

/// keepalived's garp_extra_if: with use_vmac, the Active sends a GARP
/// round for the vmac's VIPs every period, from the virtual MAC.
#[test]
fn garp_extra_if_keeps_announcing_the_vmac_vips() {
    use xvrrp_tests::capture::{Capture, Seen};
    require_root();
    let lan = Lan::new("garpextra", 3).unwrap();
    let r = lan
        .xvrrp(
            0,
            "r",
            &conf(200, "  use_vmac\n  garp_master_delay 0\n  garp_extra_if 1"),
        )
        .unwrap();
    assert!(
        r.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r.proc.log_text()
    );
    // The transition's own burst is over; then one round a second.
    std::thread::sleep(Duration::from_millis(300));
    let capture = Capture::start(&lan.host(2).ns.name, VIP.into()).unwrap();
    let vmac = [0x00, 0x00, 0x5e, 0x00, 0x01, 51];
    let announces = || {
        capture
            .events()
            .iter()
            .filter(|e| e.seen == Seen::Announce { mac: vmac })
            .count()
    };
    assert!(
        wait_until(Duration::from_millis(3500), || announces() >= 3),
        "{} announces in 3.5 s at garp_extra_if 1\n{}",
        announces(),
        r.proc.log_text()
    );
}

/// keepalived's vrrp_priority, vrrp_rt_priority, vrrp_rlimit_rttime and
/// vrrp_no_swap: every thread of the agent runs SCHED_RR at the priority
/// with the nice value, RLIMIT_RTTIME is set, and its memory is locked —
/// as the kernel reports them in /proc; the agent still wins the election.
#[test]
fn vrrp_priority_rt_priority_and_no_swap_are_applied() {
    require_root();
    let lan = Lan::new("sched", 3).unwrap();
    let text = format!(
        "global_defs {{\n  vrrp_priority -5\n  vrrp_rt_priority 20\n  vrrp_rlimit_rttime 500000\n  vrrp_no_swap\n}}\n{}",
        conf(150, "")
    );
    let r1 = lan.xvrrp(0, "r1", &text).unwrap();
    assert!(
        r1.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    let pid = r1.proc.pid();
    let tasks: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(tasks.len() > 1, "a multi-threaded agent: {tasks:?}");
    for t in &tasks {
        // /proc/PID/task/TID/stat: field 19 nice, 40 rt_priority, 41 policy
        // (after the command name in parentheses).
        let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{t}/stat")).unwrap();
        let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let (nice, rt, policy) = (f[16], f[37], f[38]);
        assert_eq!((rt, policy), ("20", "2"), "thread {t}: SCHED_RR 20: {stat}");
        // A real-time thread's nice value is kept for when it leaves SCHED_RR.
        assert_eq!(nice, "-5", "thread {t}: {stat}");
    }
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max realtime timeout") && l.contains("500000")),
        "{limits}"
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let locked: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0);
    assert!(locked > 1000, "vrrp_no_swap: VmLck {locked} kB\n{status}");
}
