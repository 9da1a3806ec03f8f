//! The XDP program in a two-namespace topology: frames sent from one side
//! are classified and counted on the other, adverts produce ring records
//! (valid ones, and invalid ones rate limited per source).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use xvrrp::{
    dataplane::{self, AdvertEvents, AttachMode, Dataplane},
    net::packet::PacketSocket,
    wire::{build, vrrp},
};
use xvrrp_common::{counter, FAMILY_V4};
use xvrrp_tests::{require_root, veth, wait_until, Netns};

fn v3_advert() -> vrrp::Repr {
    vrrp::Repr {
        version: vrrp::Version::V3,
        vrid: 42,
        priority: 150,
        interval_cs: 100,
        auth: vrrp::Auth::None,
        addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100))],
    }
}

/// The program attached (skb mode) to `ifname` in `ns`, and its advert
/// records (the runtime they were registered with is returned to keep).
fn attach_skb(ns: &Netns, ifname: &str) -> (tokio::runtime::Runtime, Dataplane, AdvertEvents) {
    let ifname = ifname.to_owned();
    let mut dp = ns
        .run(move || Dataplane::attach(&ifname, AttachMode::Skb, false))
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let events = rt.block_on(async { dp.take_events() }).unwrap();
    (rt, dp, events)
}

#[test]
fn counts_arp_ns_and_adverts_and_records_only_valid_adverts() {
    require_root();
    let a = Netns::new("xa").unwrap();
    let b = Netns::new("xb").unwrap();
    let (ea, eb) = veth(
        &a,
        &["10.99.0.1/24", "fd99::1/64"],
        &b,
        &["10.99.0.2/24", "fd99::2/64"],
    )
    .unwrap();
    let b_mac = b.mac(&eb).unwrap();
    let (_rt, dp, mut events) = attach_skb(&a, &ea);
    let before = dp.counters().unwrap();

    let src = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 2));
    let good = build::advert(
        b_mac,
        src,
        255,
        &v3_advert(),
        vrrp::ChecksumMode::PseudoHeader,
    );
    let mut truncated = good.clone();
    truncated.truncate(good.len() - 2); // the address cut short
    let mut bad_version = good.clone();
    bad_version[14 + 20] = 0x41; // version 4, type 1
    let low_ttl = build::advert(
        b_mac,
        src,
        64,
        &v3_advert(),
        vrrp::ChecksumMode::PseudoHeader,
    );
    let frames = vec![
        build::arp_request(
            b_mac,
            Ipv4Addr::new(10, 99, 0, 2),
            Ipv4Addr::new(10, 99, 0, 1),
        ),
        build::neighbor_solicit(
            b_mac,
            "fd99::2".parse().unwrap(),
            "fd99::1".parse::<Ipv6Addr>().unwrap(),
        ),
        good,
        truncated,
        bad_version,
        low_ttl,
    ];
    let eb2 = eb.clone();
    b.run(move || {
        let sock = PacketSocket::open(&eb2, false)?;
        for f in &frames {
            sock.send(f)?;
        }
        Ok(())
    })
    .unwrap();

    let mut records = Vec::new();
    assert!(
        wait_until(Duration::from_secs(5), || {
            records.extend(events.try_drain());
            !records.is_empty()
                && dp.counters().unwrap().get(counter::VRRP_INVALID)
                    >= before.get(counter::VRRP_INVALID) + 3
        }),
        "no advert record / invalid counts within 5 s: {:?}",
        dp.counters().unwrap()
    );
    // The program writes a frame's record in the same run that counts it:
    // with every frame counted, the ring already holds every record.
    records.extend(events.try_drain());
    let after = dp.counters().unwrap();
    let delta = |i| after.get(i) - before.get(i);

    // One record for the valid advert, and one for the first invalid one
    // from that source (the rest are only counted: one report a second).
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[1].reason, xvrrp_common::reason::INVALID);
    assert_eq!(dataplane::record_source(&records[1]), src);
    assert_eq!(delta(counter::INVALID_REPORTED), 1);
    let r = records[0];
    assert_eq!(r.family, FAMILY_V4);
    assert_eq!(dataplane::record_source(&r), src);
    assert_eq!(
        (
            r.version,
            r.vrid,
            r.priority,
            r.interval_cs,
            r.addr_count,
            r.ttl
        ),
        (3, 42, 150, 100, 1, 255)
    );
    assert_eq!(
        r.ifindex,
        a.run({
            let ea = ea.clone();
            move || xvrrp::net::iface::ifindex(&ea)
        })
        .unwrap()
    );
    assert!(r.ts_ns > 0);

    assert_eq!(delta(counter::VRRP_ADVERT), 1);
    assert_eq!(delta(counter::VRRP_INVALID), 3);
    assert_eq!(delta(counter::INVALID_LENGTH), 1);
    assert_eq!(delta(counter::INVALID_VERSION), 1);
    assert_eq!(delta(counter::INVALID_TTL), 1);
    // The kernel in b may send ARP/ND of its own: at least ours arrived.
    assert!(delta(counter::ARP_REQUEST) >= 1, "{after:?}");
    assert!(delta(counter::ND_NS) >= 1, "{after:?}");
    assert!(delta(counter::FRAMES) >= 6);
    assert_eq!(delta(counter::RINGBUF_FULL), 0);

    // Dropping the dataplane leaves the program attached (a crashed agent's
    // host must fall silent); the next one re-adopts it and its maps from
    // the program's id; detach (a clean stop) takes it off.
    drop(events);
    let prog_id = dp.prog_id();
    drop(dp);
    let link = a.ip(&["link", "show", &ea]).unwrap();
    assert!(link.contains("xdp"), "detached on drop: {link}");
    let ifname = ea.clone();
    let (readopted, id) = a
        .run(move || {
            let mut dp = Dataplane::attach(&ifname, AttachMode::Skb, true)?;
            let seen = dp.counters()?.get(counter::FRAMES);
            let got = (dp.resumed() && seen > 0, dp.prog_id());
            dp.detach()?;
            Ok(got)
        })
        .unwrap();
    assert!(
        readopted,
        "the program and its counters were not re-adopted"
    );
    assert_eq!(id, prog_id);
    let link = a.ip(&["link", "show", &ea]).unwrap();
    assert!(!link.contains("xdp"), "still attached: {link}");
}

#[test]
fn vlan_tagged_advert_is_seen_through_the_tag() {
    require_root();
    let a = Netns::new("va").unwrap();
    let b = Netns::new("vb").unwrap();
    let (ea, eb) = veth(&a, &["10.98.0.1/24"], &b, &["10.98.0.2/24"]).unwrap();
    let b_mac = b.mac(&eb).unwrap();
    let (_rt, dp, mut events) = attach_skb(&a, &ea);

    let src = IpAddr::V4(Ipv4Addr::new(10, 98, 0, 2));
    let plain = build::advert(
        b_mac,
        src,
        255,
        &v3_advert(),
        vrrp::ChecksumMode::PseudoHeader,
    );
    // Insert an 802.1Q tag (VLAN 7) after the MAC addresses.
    let mut tagged = plain[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
    tagged.extend_from_slice(&plain[12..]);
    let eb2 = eb.clone();
    b.run(move || Ok(PacketSocket::open(&eb2, false)?.send(&tagged)?))
        .unwrap();

    let mut records = Vec::new();
    assert!(wait_until(Duration::from_secs(5), || {
        records.extend(events.try_drain());
        !records.is_empty()
    }));
    assert_eq!(records[0].vrid, 42);
    assert!(dp.counters().unwrap().get(counter::VLAN) >= 1);
}

#[test]
fn xvrrp_run_logs_adverts_and_detaches_on_sigterm() {
    require_root();
    let a = Netns::new("ra").unwrap();
    let b = Netns::new("rb").unwrap();
    let (ea, eb) = veth(&a, &["10.97.0.1/24"], &b, &["10.97.0.2/24"]).unwrap();
    let b_mac = b.mac(&eb).unwrap();
    let logs = xvrrp_tests::log_dir("run");
    let bin = xvrrp_tests::xvrrp_bin();
    let monitor = |log: &str| {
        a.spawn(
            bin.to_str().unwrap(),
            &["run", "--interface", &ea, "--xdp-mode", "skb"],
            &logs.join(log),
        )
        .unwrap()
    };
    let mut agent = monitor("xvrrp.log");
    assert!(
        agent.wait_log("XDP program attached", Duration::from_secs(10)),
        "{}",
        agent.log_text()
    );
    assert!(a.ip(&["link", "show", &ea]).unwrap().contains("xdp"));
    // A second monitor (or one beside a running agent) never replaces the
    // program already there.
    let mut second = monitor("second.log");
    assert_ne!(second.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(
        second.log_text().contains("already has an XDP program"),
        "{}",
        second.log_text()
    );

    let src = IpAddr::V4(Ipv4Addr::new(10, 97, 0, 2));
    let frame = build::advert(
        b_mac,
        src,
        255,
        &v3_advert(),
        vrrp::ChecksumMode::PseudoHeader,
    );
    let eb2 = eb.clone();
    b.run(move || Ok(PacketSocket::open(&eb2, false)?.send(&frame)?))
        .unwrap();
    assert!(
        agent.wait_log("vrid=42", Duration::from_secs(5)),
        "{}",
        agent.log_text()
    );
    assert!(agent.log_text().contains("src=10.97.0.2"));

    agent.signal(libc::SIGTERM);
    assert_eq!(
        agent.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        agent.log_text()
    );
    assert!(
        !a.ip(&["link", "show", &ea]).unwrap().contains("xdp"),
        "program left attached"
    );
}
