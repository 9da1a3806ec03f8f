//! The advert fan-out (docs/design.md rule 3): a steady Active's round of
//! IPv4 adverts leaves from one frame the agent sends, copied by a tc
//! program on the interface's egress into every other advert of the round.
//! On the wire each advert is whole and as the socket would send it;
//! netfilter sees the round's frame, so a rule dropping VRRP in OUTPUT
//! still silences the host, as it does keepalived.

use std::{collections::BTreeMap, net::IpAddr, time::Duration};

use xvrrp::wire::{checksum, vrrp};
use xvrrp_tests::{lan::Lan, require_root, wait_until};

/// `n` IPv4 routers at 100 ms, VRID 1..=n; VRID v carries v % 4 + 1
/// addresses (adverts of four lengths in one round).
fn routers(n: u8, prio: u8) -> String {
    (1..=n)
        .map(|v| {
            let vips: String = (0..=v % 4)
                .map(|k| format!("    10.77.{}.{v}/32\n", 10 + k))
                .collect();
            format!(
                "vrrp_instance VI_{v} {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {v}\n  priority {prio}\n  version 3\n  advert_int 0.1\n  virtual_ipaddress {{\n{vips}  }}\n}}\n"
            )
        })
        .collect()
}

/// 24 Actives of four advert lengths: every advert on the wire is a valid
/// VRRP message (its checksum over the pseudo-header, the addresses its
/// router has) in a valid IPv4 header, each router's about ten a second,
/// and the rounds went out as fan-outs (one frame sent, the rest copied
/// by the kernel), none failed.
#[test]
fn a_round_leaves_from_one_frame_and_every_advert_is_whole() {
    require_root();
    const N: u8 = 24;
    let lan = Lan::new("fanout", 2).unwrap();
    let a = lan.xvrrp(0, "a", &routers(N, 150)).unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || a.all_in(N.into(), "Active")),
        "{}",
        a.proc.log_text()
    );
    std::thread::sleep(Duration::from_millis(500));
    let calls0 = a.counter("advert_send_calls");
    let rounds0 = a.counter("fanout_rounds");
    let seen =
        xvrrp_tests::capture::vrrp_received(&lan.host(1).ns.name, Duration::from_secs(2)).unwrap();
    let calls = a.counter("advert_send_calls") - calls0;
    let rounds = a.counter("fanout_rounds") - rounds0;
    let src = IpAddr::V4(lan.host(0).v4);
    let group = IpAddr::V4(vrrp::MCAST_V4);
    let mut per_vrid: BTreeMap<u8, usize> = BTreeMap::new();
    for p in &seen {
        assert_eq!(
            checksum::finish(checksum::sum(&p.ip_header)),
            0,
            "IPv4 header checksum: {p:?}"
        );
        assert_eq!((p.ip.src, p.ip.dst, p.ip.ttl), (src, group, vrrp::TTL));
        assert_eq!(p.eth.src, lan.host(0).mac);
        let packet = vrrp::Packet::new_checked(&p.vrrp[..], vrrp::Family::V4)
            .unwrap_or_else(|e| panic!("not a VRRP message ({e}): {p:?}"));
        packet
            .verify_checksum(&vrrp::Endpoints { src, dst: group })
            .unwrap_or_else(|e| panic!("VRRP checksum ({e}): {p:?}"));
        let advert = vrrp::Repr::parse(&packet).unwrap();
        let v = advert.vrid;
        let want: Vec<IpAddr> = (0..=v % 4)
            .map(|k| IpAddr::V4(std::net::Ipv4Addr::new(10, 77, 10 + k, v)))
            .collect();
        assert_eq!(advert.addresses, want, "VRID {v}'s addresses");
        assert_eq!((advert.priority, advert.interval_cs), (150, 10));
        *per_vrid.entry(v).or_default() += 1;
    }
    for v in 1..=N {
        let n = per_vrid.get(&v).copied().unwrap_or(0);
        assert!(
            (14..=26).contains(&n),
            "VRID {v}: {n} adverts in 2 s at 100 ms (all: {per_vrid:?})"
        );
    }
    // The 24 routers went Active together: about 20 rounds in 2 s, each one
    // system call for 24 adverts.
    assert!(
        rounds >= 14 && calls <= rounds + 6,
        "{rounds} fan-out rounds, {calls} send calls in 2 s\n{}",
        a.proc.log_text()
    );
    for name in [
        "fanout_clone_failed",
        "fanout_write_failed",
        "fanout_fallbacks",
    ] {
        assert_eq!(a.counter(name), 0, "{name}\n{}", a.proc.log_text());
    }
    assert!(a.counter("fanout_clones") >= rounds * u64::from(N - 1));
}

/// keepalived's adverts pass netfilter's OUTPUT hook, and operators drop
/// them there to take a host out: a fanned-out round must go too. With
/// a rule dropping VRRP in OUTPUT the Backup hears nothing and takes over
/// every router; without it the Active (higher priority, preempting)
/// takes them back.
#[test]
fn a_rule_dropping_vrrp_in_output_silences_the_whole_round() {
    require_root();
    const N: u8 = 8;
    let lan = Lan::new("fanout-nf", 2).unwrap();
    let a = lan.xvrrp(0, "a", &routers(N, 150)).unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || a.all_in(N.into(), "Active")),
        "{}",
        a.proc.log_text()
    );
    let b = lan.xvrrp(1, "b", &routers(N, 100)).unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || b.all_in(N.into(), "Backup")),
        "{}",
        b.proc.log_text()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(a.counter("fanout_rounds") > 0, "{}", a.proc.log_text());
    let ns = &lan.host(0).ns;
    ns.exec(
        "nft",
        &["add table ip xvrrp_test; \
             add chain ip xvrrp_test out { type filter hook output priority 0; }; \
             add rule ip xvrrp_test out ip protocol vrrp drop"],
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || b.all_in(N.into(), "Active")),
        "the Backup still hears the Active with VRRP dropped in OUTPUT\nb: {}",
        b.proc.log_text()
    );
    assert!(a.counter("fanout_fallbacks") > 0, "{}", a.proc.log_text());
    ns.exec("nft", &["delete table ip xvrrp_test"]).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || b.all_in(N.into(), "Backup")),
        "the Active did not take its routers back\na: {}\nb: {}",
        a.proc.log_text(),
        b.proc.log_text()
    );
}
