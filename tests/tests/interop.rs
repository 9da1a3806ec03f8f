//! Interop with Debian's keepalived 2.2.7: the same keepalived.conf text for
//! both, keepalived on host 0, xvrrp on host 1, the client on host 2. Each
//! mode covers both roles and both directions of failover, and at every
//! steady state exactly one router answers the client for the VIP.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use xvrrp_tests::{lan::Lan, require_root};

const SETTLE: Duration = Duration::from_secs(15);

struct Mode {
    name: &'static str,
    global: &'static str,
    extra: &'static str,
    vip: &'static str,
    unicast: bool,
}

fn conf(m: &Mode, prio: u8, me: usize) -> String {
    let unicast = if m.unicast {
        let peer = if me == 0 { 2 } else { 1 };
        format!(
            "  unicast_src_ip 10.77.0.{}\n  unicast_peer {{\n    10.77.0.{peer}\n  }}\n",
            me + 1
        )
    } else {
        String::new()
    };
    format!(
        "global_defs {{\n{}\n}}\nvrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority {prio}\n  advert_int 1\n{}{unicast}  virtual_ipaddress {{\n    {}\n  }}\n}}\n",
        m.global, m.extra, m.vip
    )
}

/// Exactly one MAC answers the client for the VIP, and it is `mac`.
fn answered_only_by(lan: &Lan, vip: IpAddr, mac: [u8; 6]) {
    let who = match vip {
        IpAddr::V4(v) => lan.host(2).arp_who_has(v),
        IpAddr::V6(v) => lan.host(2).nd_who_has(v),
    };
    assert_eq!(
        who.into_iter().collect::<Vec<_>>(),
        vec![mac],
        "who answers for {vip}"
    );
}

fn scenario(m: Mode) {
    require_root();
    let lan = Lan::new(m.name, 3).unwrap();
    let vip: IpAddr = m.vip.split('/').next().unwrap().parse().unwrap();
    let ka = lan.keepalived(0, "ka", &conf(&m, 200, 0)).unwrap();
    let xv = lan.xvrrp(1, "xv", &conf(&m, 100, 1)).unwrap();
    // keepalived Active, xvrrp Backup.
    assert!(
        ka.wait_state("VI_1", "MASTER", SETTLE),
        "keepalived:\n{}",
        ka.proc.log_text()
    );
    assert!(
        xv.wait_state("VI_1", "Backup", SETTLE),
        "xvrrp:\n{}",
        xv.proc.log_text()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        xv.state("VI_1"),
        "Backup",
        "xvrrp must follow keepalived:\n{}",
        xv.proc.log_text()
    );
    assert_eq!(
        xv.transitions("VI_1"),
        1,
        "no flapping:\n{}",
        xv.proc.log_text()
    );
    answered_only_by(&lan, vip, lan.host(0).mac);

    // keepalived -> xvrrp: keepalived stops (priority 0), xvrrp takes over.
    let mut ka = ka;
    ka.proc.signal(libc::SIGTERM);
    ka.proc.wait_exit(Duration::from_secs(10));
    assert!(
        xv.wait_state("VI_1", "Active", SETTLE),
        "xvrrp did not take over:\n{}",
        xv.proc.log_text()
    );
    std::thread::sleep(Duration::from_secs(1));
    answered_only_by(&lan, vip, lan.host(1).mac);

    // xvrrp -> keepalived: keepalived returns with the higher priority and preempts.
    let ka2 = lan.keepalived(0, "ka2", &conf(&m, 200, 0)).unwrap();
    assert!(
        ka2.wait_state("VI_1", "MASTER", SETTLE),
        "keepalived:\n{}",
        ka2.proc.log_text()
    );
    assert!(
        xv.wait_state("VI_1", "Backup", SETTLE),
        "xvrrp:\n{}",
        xv.proc.log_text()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(xv.state("VI_1"), "Backup");
    answered_only_by(&lan, vip, lan.host(0).mac);
    // With XDP, keepalived's adverts pass the kernel's checks too.
    for x in xv.status().unwrap().xdp {
        let bad: Vec<_> = x
            .counters
            .iter()
            .filter(|(k, v)| k.starts_with("invalid_") && **v > 0)
            .collect();
        assert!(bad.is_empty(), "XDP rejected keepalived's adverts: {bad:?}");
        assert!(x.counters.get("vrrp_advert").is_some_and(|n| *n > 0));
    }
    let counters = xv.status().unwrap().counters;
    assert!(
        !counters.keys().any(|k| k.starts_with("invalid_")),
        "xvrrp rejected keepalived's adverts: {counters:?}"
    );
}

#[test]
fn keepalived_v2_without_auth() {
    scenario(Mode {
        name: "ka-v2",
        global: "  vrrp_version 2",
        extra: "",
        vip: "10.77.0.100/24",
        unicast: false,
    });
}

#[test]
fn keepalived_v2_with_pass() {
    scenario(Mode {
        name: "ka-v2pass",
        global: "  vrrp_version 2",
        extra: "  authentication {\n    auth_type PASS\n    auth_pass s3cret\n  }\n",
        vip: "10.77.0.100/24",
        unicast: false,
    });
}

#[test]
fn keepalived_v3_ipv4() {
    scenario(Mode {
        name: "ka-v3",
        global: "  vrrp_version 3",
        extra: "",
        vip: "10.77.0.100/24",
        unicast: false,
    });
}

#[test]
fn keepalived_v3_ipv6() {
    scenario(Mode {
        name: "ka-v3v6",
        global: "  vrrp_version 3",
        extra: "",
        vip: "fd77::100/64",
        unicast: false,
    });
}

#[test]
fn keepalived_unicast() {
    scenario(Mode {
        name: "ka-uni",
        global: "  vrrp_version 2",
        extra: "",
        vip: "10.77.0.100/24",
        unicast: true,
    });
}

/// RFC 9568 §7.1 with a keepalived peer: a host off the segment's VRRP
/// speakers routes a forged advert (priority 255, TTL 64) to the Active's
/// own address. The Active (xvrrp) ignores it and counts it; keepalived,
/// the Backup, never sees a transition either.
#[test]
fn keepalived_forged_off_link_advert_to_our_address_is_ignored_and_counted() {
    require_root();
    let m = Mode {
        name: "ka-forged",
        global: "",
        extra: "  version 3\n",
        vip: "10.77.0.100/24",
        unicast: false,
    };
    let lan = Lan::new(m.name, 3).unwrap();
    let ka = lan.keepalived(0, "ka", &conf(&m, 100, 0)).unwrap();
    let xv = lan.xvrrp(1, "xv", &conf(&m, 200, 1)).unwrap();
    assert!(
        xv.wait_state("VI_1", "Active", SETTLE),
        "{}",
        xv.proc.log_text()
    );
    assert!(
        ka.wait_state("VI_1", "BACKUP", SETTLE),
        "{}",
        ka.proc.log_text()
    );
    let before = xv.transitions("VI_1");
    let forged = xvrrp::wire::build::advert_to(
        lan.host(2).mac,
        "10.77.0.99".parse().unwrap(),
        "10.77.0.2".parse().unwrap(),
        lan.host(1).mac,
        64,
        &xvrrp::wire::vrrp::Repr {
            version: xvrrp::wire::vrrp::Version::V3,
            vrid: 51,
            priority: 255,
            interval_cs: 100,
            auth: xvrrp::wire::vrrp::Auth::None,
            addresses: vec!["10.77.0.100".parse().unwrap()],
        },
        xvrrp::wire::vrrp::ChecksumMode::PseudoHeader,
    );
    let ns = lan.host(2).ns.name.clone();
    xvrrp_tests::capture::flood(&ns, vec![forged], Duration::from_secs(2), Some(50)).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(xv.state("VI_1"), "Active");
    assert_eq!(xv.transitions("VI_1"), before, "{}", xv.proc.log_text());
    let st = xv.status().unwrap();
    let counted = if xvrrp_tests::socket_path() {
        st.instances[0]
            .discarded
            .get("destination")
            .copied()
            .unwrap_or(0)
    } else {
        xv.xdp_counter("invalid_destination")
    };
    assert!(counted >= 50, "counted {counted}: {st:?}");
    assert_eq!(ka.state("VI_1"), "BACKUP");
    answered_only_by(&lan, "10.77.0.100".parse().unwrap(), lan.host(1).mac);
}

/// RFC 9568 §6.1: an address owner (priority 255) owns the VIP as its own
/// address and may send its adverts from it (FRR and routers do; here
/// keepalived as the owner with `mcast_src_ip` the VIP). xvrrp must hear it
/// (not take the adverts for its own because they come from one of its
/// VIPs) and stay Backup: one Active, the owner.
#[test]
fn keepalived_address_owner_sending_from_the_vip_is_followed() {
    require_root();
    let m = Mode {
        name: "ka-owner",
        global: "",
        extra: "  version 3\n",
        vip: "10.77.0.100/24",
        unicast: false,
    };
    let lan = Lan::new(m.name, 3).unwrap();
    let owner =
        conf(&m, 255, 0).replace("  version 3\n", "  version 3\n  mcast_src_ip 10.77.0.100\n");
    lan.host(0)
        .ns
        .ip(&["addr", "add", "10.77.0.100/24", "dev", "eth0"])
        .unwrap();
    let ka = lan.keepalived(0, "ka", &owner).unwrap();
    assert!(
        ka.wait_state("VI_1", "MASTER", SETTLE),
        "{}",
        ka.proc.log_text()
    );
    let xv = lan.xvrrp(1, "xv", &conf(&m, 100, 1)).unwrap();
    assert!(
        xv.wait_state("VI_1", "Backup", SETTLE),
        "{}",
        xv.proc.log_text()
    );
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(xv.state("VI_1"), "Backup", "{}", xv.proc.log_text());
    assert_eq!(xv.transitions("VI_1"), 1, "{}", xv.proc.log_text());
    let st = xv.status().unwrap();
    assert_eq!(
        st.instances[0].active.as_deref(),
        Some("10.77.0.100 (255)"),
        "{st:?}"
    );
    answered_only_by(&lan, "10.77.0.100".parse().unwrap(), lan.host(0).mac);
}

/// A sync group of two instances where one member hears a higher-priority
/// keepalived Active and the other hears nobody: as keepalived does, the
/// group stays Backup (the lone member is not let go Active, which would
/// drag the other Active and cycle every interval with GARPs and notifies).
#[test]
fn keepalived_sync_group_member_hearing_a_higher_active_keeps_the_group_backup() {
    require_root();
    let lan = Lan::new("ka-sync", 3).unwrap();
    let inst = |name: &str, vrid: u8, prio: u8, vip: &str| {
        format!(
            "vrrp_instance {name} {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {vrid}\n  version 3\n  priority {prio}\n  advert_int 1\n  virtual_ipaddress {{\n    {vip}\n  }}\n}}\n"
        )
    };
    let ka = lan
        .keepalived(0, "ka", &inst("VI_2", 52, 200, "10.77.0.102/24"))
        .unwrap();
    assert!(
        ka.wait_state("VI_2", "MASTER", SETTLE),
        "{}",
        ka.proc.log_text()
    );
    let group = format!(
        "vrrp_sync_group G {{\n  group {{\n    VI_1\n    VI_2\n  }}\n}}\n{}{}",
        inst("VI_1", 51, 100, "10.77.0.101/24"),
        inst("VI_2", 52, 100, "10.77.0.102/24")
    );
    let xv = lan.xvrrp(1, "xv", &group).unwrap();
    assert!(
        xv.wait_state("VI_1", "Backup", SETTLE),
        "{}",
        xv.proc.log_text()
    );
    // Several Active_Down_Intervals (3.6 s each) of VI_1 hearing nobody.
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(xv.state("VI_1"), "Backup", "{}", xv.proc.log_text());
    assert_eq!(xv.state("VI_2"), "Backup", "{}", xv.proc.log_text());
    assert_eq!(
        xv.transitions("VI_1") + xv.transitions("VI_2"),
        2,
        "only the startup transitions:\n{}",
        xv.proc.log_text()
    );
    assert_eq!(ka.state("VI_2"), "MASTER");
    answered_only_by(&lan, "10.77.0.102".parse().unwrap(), lan.host(0).mac);
    assert!(lan
        .host(2)
        .arp_who_has(Ipv4Addr::new(10, 77, 0, 101))
        .is_empty());
}

/// RFC 3768 §6.1 in a mixed cluster at advert_int 3: keepalived Active
/// (200), xvrrp (150) and keepalived (100) as Backups. When the Active dies
/// the takeover follows priority: xvrrp's Skew_Time is (256 - 150)/256 s as
/// keepalived's is, not scaled by the interval (which would let the
/// priority-100 keepalived time out first).
#[test]
fn keepalived_v2_advert_int_3_takeover_follows_priority() {
    require_root();
    let lan = Lan::new("ka-v2-int3", 4).unwrap();
    let conf = |prio: u8| {
        format!(
            "vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  version 2\n  priority {prio}\n  advert_int 3\n  virtual_ipaddress {{\n    10.77.0.100/24\n  }}\n}}\n"
        )
    };
    let mut k1 = lan.keepalived(0, "k1", &conf(200)).unwrap();
    assert!(
        k1.wait_state("VI_1", "MASTER", Duration::from_secs(30)),
        "{}",
        k1.proc.log_text()
    );
    let xv = lan.xvrrp(1, "xv", &conf(150)).unwrap();
    let k2 = lan.keepalived(2, "k2", &conf(100)).unwrap();
    assert!(xv.wait_state("VI_1", "Backup", SETTLE));
    assert!(k2.wait_state("VI_1", "BACKUP", SETTLE));
    std::thread::sleep(Duration::from_secs(4));
    kill_the_keepalived_active_and_xvrrp_takes_over_alone(
        &lan,
        &mut k1,
        &xv,
        &k2,
        Duration::from_secs(4),
        "the priority-100 keepalived took over before xvrrp (150)",
    );
}

/// keepalived `k1` (Active on host 0) is killed: xvrrp (host 1) takes over,
/// keepalived `k2` never goes MASTER within `watch`, and the client (host 3)
/// gets one answer for the VIP, from xvrrp.
fn kill_the_keepalived_active_and_xvrrp_takes_over_alone(
    lan: &Lan,
    k1: &mut xvrrp_tests::lan::Keepalived,
    xv: &xvrrp_tests::lan::Agent,
    k2: &xvrrp_tests::lan::Keepalived,
    watch: Duration,
    why_k2_would_take_over: &str,
) {
    k1.proc.signal(libc::SIGKILL);
    k1.proc.wait_exit(Duration::from_secs(5));
    assert!(
        xv.wait_state("VI_1", "Active", Duration::from_secs(20)),
        "{}",
        xv.proc.log_text()
    );
    std::thread::sleep(watch);
    assert_eq!(
        k2.proc.log_text().matches("Entering MASTER STATE").count(),
        0,
        "{why_k2_would_take_over}:\n{}",
        k2.proc.log_text()
    );
    assert_eq!(
        lan.host(3)
            .arp_who_has(Ipv4Addr::new(10, 77, 0, 100))
            .into_iter()
            .collect::<Vec<_>>(),
        [lan.host(1).mac]
    );
}

/// RFC 9568 §8.4: an xvrrp v3 router with `mixed_v2_v3` in a v2 keepalived
/// cluster (a migration): it does not preempt the v2 Active though its
/// priority is higher, takes over when it dies, and the remaining v2
/// keepalived hears its v2 adverts and stays BACKUP (without the v2 copies
/// it would go MASTER too: two Actives).
#[test]
fn keepalived_v2_cluster_with_a_mixed_v3_router() {
    require_root();
    let lan = Lan::new("ka-mixed", 4).unwrap();
    let conf = |prio: u8, version: &str| {
        format!(
            "vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 52\n  {version}\n  priority {prio}\n  advert_int 1\n  virtual_ipaddress {{\n    10.77.0.100/24\n  }}\n}}\n"
        )
    };
    let mut k1 = lan.keepalived(0, "k1", &conf(200, "version 2")).unwrap();
    assert!(
        k1.wait_state("VI_1", "MASTER", Duration::from_secs(30)),
        "{}",
        k1.proc.log_text()
    );
    let xv = lan
        .xvrrp(1, "xv", &conf(250, "version 3\n  mixed_v2_v3"))
        .unwrap();
    let k2 = lan.keepalived(2, "k2", &conf(100, "version 2")).unwrap();
    assert!(xv.wait_state("VI_1", "Backup", SETTLE));
    assert!(k2.wait_state("VI_1", "BACKUP", SETTLE));
    // Several Active_Down_Intervals: the v3 router follows the v2 Active.
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        xv.wait_state("VI_1", "Backup", Duration::from_secs(1)),
        "the mixed v3 router preempted the v2 Active:\n{}",
        xv.proc.log_text()
    );
    kill_the_keepalived_active_and_xvrrp_takes_over_alone(
        &lan,
        &mut k1,
        &xv,
        &k2,
        Duration::from_secs(5),
        "the v2 keepalived did not hear the mixed router's v2 adverts",
    );
}

/// keepalived's `vrrp_mcast_group4` and `mcast_dst_ip` on the send side:
/// xvrrp (instance `mcast_dst_ip 224.0.0.19`) and keepalived (global
/// `vrrp_mcast_group4 224.0.0.19`) hear each other on that group, so the
/// lower-priority keepalived stays BACKUP; xvrrp's adverts go to the group,
/// never to 224.0.0.18.
#[test]
fn keepalived_on_another_multicast_group_hears_xvrrp_and_is_heard() {
    use std::net::IpAddr;
    require_root();
    let lan = Lan::new("ka-group", 3).unwrap();
    let conf = |prio: u8, global: &str, extra: &str| {
        format!(
            "global_defs {{\n{global}\n}}\nvrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 53\n  version 3\n  priority {prio}\n  advert_int 0.2\n{extra}\n  virtual_ipaddress {{\n    10.77.0.100/24\n  }}\n}}\n"
        )
    };
    let xv = lan
        .xvrrp(0, "xv", &conf(200, "", "  mcast_dst_ip 224.0.0.19"))
        .unwrap();
    assert!(
        xv.wait_state("VI_1", "Active", SETTLE),
        "{}",
        xv.proc.log_text()
    );
    let k = lan
        .keepalived(1, "k", &conf(100, "  vrrp_mcast_group4 224.0.0.19", ""))
        .unwrap();
    assert!(
        k.wait_state("VI_1", "BACKUP", SETTLE),
        "{}",
        k.proc.log_text()
    );
    let seen =
        xvrrp_tests::capture::vrrp_received(&lan.host(2).ns.name, Duration::from_secs(2)).unwrap();
    let from_xv: Vec<_> = seen
        .iter()
        .filter(|p| p.eth.src == lan.host(0).mac)
        .collect();
    assert!(
        from_xv.len() >= 5,
        "{} adverts from xvrrp in 2 s",
        from_xv.len()
    );
    assert!(from_xv
        .iter()
        .all(|p| p.ip.dst == IpAddr::V4(Ipv4Addr::new(224, 0, 0, 19))));
    // Over several of keepalived's down intervals: it never took over.
    assert_eq!(
        k.proc.log_text().matches("Entering MASTER STATE").count(),
        0,
        "keepalived did not hear xvrrp on 224.0.0.19:\n{}",
        k.proc.log_text()
    );
    // And xvrrp hears keepalived on the group: a higher-priority keepalived
    // takes over from it.
    drop(k);
    let k2 = lan
        .keepalived(1, "k2", &conf(250, "  vrrp_mcast_group4 224.0.0.19", ""))
        .unwrap();
    assert!(
        k2.wait_state("VI_1", "MASTER", SETTLE),
        "{}",
        k2.proc.log_text()
    );
    assert!(
        xv.wait_state("VI_1", "Backup", SETTLE),
        "{}",
        xv.proc.log_text()
    );
}

/// keepalived's unicast options on the wire, judged by keepalived itself:
/// an xvrrp instance with no `interface` (the one holding unicast_src_ip),
/// `unicast_ttl` and `track_src_ip`, against a keepalived peer that checks
/// the source (`check_unicast_src`) and its TTL range (`min_ttl`). TTL 200
/// is in keepalived's range: it follows xvrrp. TTL 100 is not: keepalived
/// drops the adverts and takes over. And xvrrp drops keepalived's adverts
/// when their TTL (255) is above its own peer's `max_ttl`.
#[test]
fn unicast_ttl_and_peer_ttl_ranges_as_keepalived_judges_them() {
    require_root();
    let lan = Lan::new("uttl", 3).unwrap();
    let ka_conf = "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  advert_int 1\n  \
                   check_unicast_src\n  unicast_src_ip 10.77.0.1\n  unicast_peer {\n    10.77.0.2 min_ttl 150 max_ttl 255\n  }\n  \
                   virtual_ipaddress {\n    10.77.0.100/24\n  }\n}\n";
    let xv_conf = |ttl: u8, max: u8| {
        format!(
            "vrrp_instance VI_1 {{\n  state BACKUP\n  virtual_router_id 51\n  priority 150\n  advert_int 1\n  \
             unicast_ttl {ttl}\n  track_src_ip\n  check_unicast_src\n  unicast_src_ip 10.77.0.2\n  \
             unicast_peer {{\n    10.77.0.1 min_ttl 0 max_ttl {max}\n  }}\n  virtual_ipaddress {{\n    10.77.0.100/24\n  }}\n}}\n"
        )
    };
    let ka = lan.keepalived(0, "ka", ka_conf).unwrap();
    let mut xv = lan.xvrrp(1, "xv", &xv_conf(200, 255)).unwrap();
    assert!(
        xv.wait_state("VI_1", "Active", SETTLE),
        "{}",
        xv.proc.log_text()
    );
    assert!(xv
        .proc
        .log_text()
        .contains("using the one holding unicast_src_ip"));
    assert!(
        ka.wait_state("VI_1", "BACKUP", SETTLE),
        "{}",
        ka.proc.log_text()
    );
    answered_only_by(&lan, "10.77.0.100".parse().unwrap(), lan.host(1).mac);
    // TTL 100: below keepalived's min_ttl, its adverts are dropped there.
    xv.proc.signal(libc::SIGKILL);
    let _ = xv.proc.wait_exit(Duration::from_secs(5));
    let xv = lan
        .xvrrp_with(1, "xv2", &xv_conf(100, 255), &["--clean"])
        .unwrap();
    // xvrrp (150) takes over from keepalived (100), whose adverts it hears...
    assert!(
        xv.wait_state("VI_1", "Active", SETTLE),
        "{}",
        xv.proc.log_text()
    );
    // ...but keepalived drops xvrrp's TTL-100 adverts and stays MASTER.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        ka.state("VI_1"),
        "MASTER",
        "keepalived followed adverts with TTL 100 below its min_ttl 150:\n{}",
        ka.proc.log_text()
    );
    drop(xv);
    // xvrrp's own max_ttl 254 drops keepalived's adverts (TTL 255): with a
    // lower priority it takes over all the same.
    let lower = xv_conf(200, 254).replace("priority 150", "priority 50");
    let xv = lan.xvrrp_with(1, "xv3", &lower, &["--clean"]).unwrap();
    assert!(
        xv.wait_state("VI_1", "Active", SETTLE),
        "xvrrp followed adverts above its peer's max_ttl:\n{}",
        xv.proc.log_text()
    );
}
