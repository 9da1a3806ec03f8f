//! VRRP adverts checked in the kernel (BPF_PROG_TEST_RUN): real keepalived
//! captures are valid; every invalid reason is counted and dropped, with one
//! record per source a second; a valid advert produces a ring record only
//! when it changes what the election knows (new source, priority, interval,
//! priority 0, conflicting address set), else it is only noted in the LAST
//! map and re-arms the kernel's Active_Down timer.

use std::net::{IpAddr, Ipv4Addr};

use aya::{
    maps::HashMap,
    programs::{TestRun, TestRunOptions},
};
use xvrrp::{
    dataplane,
    wire::{build, vrrp},
};
use xvrrp_common::{
    counter, reason, AdvertRecord, LastAdvert, VrConfig, VrKey, FAMILY_V4, FAMILY_V6, VR_AUTH_PASS,
    VR_DOWN_TIMER, VR_PREEMPT,
};
use xvrrp_tests::require_root;

const KA_V2: &[u8] = include_bytes!("../../agent/src/wire/fixtures/keepalived_v2_noauth.bin");
const KA_V2_PASS: &[u8] = include_bytes!("../../agent/src/wire/fixtures/keepalived_v2_pass.bin");
const KA_V3_V4: &[u8] = include_bytes!("../../agent/src/wire/fixtures/keepalived_v3_ipv4.bin");
const KA_V3_V6: &[u8] = include_bytes!("../../agent/src/wire/fixtures/keepalived_v3_ipv6.bin");

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

/// BPF_PROG_TEST_RUN delivers on loopback: ifindex 1.
fn vr(family: u8, vrid: u8) -> VrKey {
    VrKey {
        ifindex: 1,
        family,
        vrid,
        _pad: [0; 2],
    }
}

/// The program's advert records, and the runtime they are registered with
/// (kept alive by the caller).
fn events_of(ebpf: &mut aya::Ebpf) -> (tokio::runtime::Runtime, dataplane::AdvertEvents) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let events = rt.block_on(async { dataplane::take_events(ebpf) }).unwrap();
    (rt, events)
}

/// One frame through the program: its verdict.
fn verdict(ebpf: &mut aya::Ebpf, frame: &[u8]) -> u32 {
    let prog = dataplane::program_mut(ebpf).unwrap();
    prog.test_run(TestRunOptions {
        data_in: Some(frame),
        ..Default::default()
    })
    .unwrap()
    .return_value
}

fn cfg(addrs: &[&str], pass: Option<&str>) -> VrConfig {
    let a: Vec<IpAddr> = addrs.iter().map(|s| s.parse().unwrap()).collect();
    let mut auth = [0u8; 8];
    if let Some(p) = pass {
        auth[..p.len()].copy_from_slice(p.as_bytes());
    }
    VrConfig {
        auth,
        flags: if pass.is_some() { VR_AUTH_PASS } else { 0 },
        addr_count: a.len() as u8,
        priority: 100,
        down_adverts: 3,
        addr_sum: dataplane::addr_sum(&a),
        version: 0,
        _pad: 0,
        interval_cs: 0,
    }
}

#[test]
fn adverts_are_checked_and_only_changes_wake_the_agent() {
    require_root();
    let mut ebpf = dataplane::load().unwrap();
    {
        let mut vrs: HashMap<_, VrKey, VrConfig> =
            HashMap::try_from(ebpf.map_mut(xvrrp_common::MAP_VRS).unwrap()).unwrap();
        vrs.insert(vr(FAMILY_V4, 51), cfg(&["10.77.0.100"], None), 0)
            .unwrap();
        vrs.insert(
            vr(FAMILY_V4, 52),
            cfg(&["10.77.0.101", "10.77.0.102"], Some("admin")),
            0,
        )
        .unwrap();
        vrs.insert(vr(FAMILY_V4, 53), cfg(&["10.77.0.103"], None), 0)
            .unwrap();
        vrs.insert(vr(FAMILY_V6, 54), cfg(&["fd77::54"], None), 0)
            .unwrap();
    }
    let (_rt, mut events) = events_of(&mut ebpf);
    let mut run = |ebpf: &mut aya::Ebpf, frame: &[u8]| -> (u32, Vec<AdvertRecord>) {
        (verdict(ebpf, frame), events.try_drain())
    };
    let before = dataplane::read_counters(&ebpf).unwrap();

    // The four keepalived captures: valid, a record each (a new source),
    // and dropped: the record is all the agent needs.
    for f in [KA_V2, KA_V2_PASS, KA_V3_V4, KA_V3_V6] {
        let (verdict, recs) = run(&mut ebpf, f);
        assert_eq!(verdict, XDP_DROP);
        assert_eq!(recs.len(), 1, "one record for {:02x?}", &f[..20]);
        assert_eq!(recs[0].reason, reason::NEW_SOURCE);
    }
    // The same adverts again: no record, only LAST moves; dropped, so no
    // socket wakes the agent either.
    for f in [KA_V2, KA_V2_PASS, KA_V3_V4, KA_V3_V6] {
        let (verdict, recs) = run(&mut ebpf, f);
        assert!(recs.is_empty(), "unchanged advert woke the agent");
        assert_eq!(verdict, XDP_DROP);
    }
    let last: HashMap<_, VrKey, LastAdvert> =
        HashMap::try_from(ebpf.map(xvrrp_common::MAP_LAST).unwrap()).unwrap();
    let l = last.get(&vr(FAMILY_V4, 51), 0).unwrap();
    assert_eq!((l.count, l.priority, l.interval_cs), (2, 150, 100));
    assert!(l.ts_ns > 0);

    // Built adverts from the same source (10.77.0.1) for VRID 51.
    let src = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));
    let base = vrrp::Repr {
        version: vrrp::Version::V2,
        vrid: 51,
        priority: 150,
        interval_cs: 100,
        auth: vrrp::Auth::None,
        addresses: vec!["10.77.0.100".parse().unwrap()],
    };
    let frame = |r: &vrrp::Repr, mode| build::advert([2, 0, 0, 0, 0, 1], src, 255, r, mode);
    let plain = vrrp::ChecksumMode::Plain;
    // (what, frame, record reason, verdict): conflicts and unconfigured VRIDs
    // also go on to the socket (the agent logs the address lists / monitor).
    let cases: Vec<(&str, Vec<u8>, Option<u8>, u32)> = vec![
        (
            "priority change",
            frame(
                &vrrp::Repr {
                    priority: 120,
                    ..base.clone()
                },
                plain,
            ),
            Some(reason::PRIORITY),
            XDP_DROP,
        ),
        (
            "priority 0",
            frame(
                &vrrp::Repr {
                    priority: 0,
                    ..base.clone()
                },
                plain,
            ),
            Some(reason::PRIORITY | reason::PRIORITY_ZERO),
            XDP_DROP,
        ),
        (
            "back to 150, same as before the 0",
            frame(&base, plain),
            Some(reason::PRIORITY),
            XDP_DROP,
        ),
        ("unchanged", frame(&base, plain), None, XDP_DROP),
        (
            "another address set (the seed's Q1)",
            frame(
                &vrrp::Repr {
                    addresses: vec!["10.1.7.58".parse().unwrap()],
                    ..base.clone()
                },
                plain,
            ),
            Some(reason::CONFLICT),
            XDP_PASS,
        ),
        (
            "another source",
            build::advert(
                [2, 0, 0, 0, 0, 2],
                "10.77.0.2".parse().unwrap(),
                255,
                &base,
                plain,
            ),
            Some(reason::NEW_SOURCE),
            XDP_DROP,
        ),
        (
            "unconfigured VRID",
            frame(
                &vrrp::Repr {
                    vrid: 99,
                    ..base.clone()
                },
                plain,
            ),
            Some(reason::UNCONFIGURED),
            XDP_PASS,
        ),
        (
            "v3/IPv4 in RFC 9568's form (no pseudo-header)",
            frame(
                &vrrp::Repr {
                    version: vrrp::Version::V3,
                    vrid: 53,
                    addresses: vec!["10.77.0.103".parse().unwrap()],
                    ..base.clone()
                },
                plain,
            ),
            // The captured VRID 53 advert came from 10.77.0.1 too, at 0.5 s and priority 200.
            Some(reason::PRIORITY | reason::INTERVAL),
            XDP_DROP,
        ),
    ];
    for (what, f, want, verdict) in cases {
        let (got, recs) = run(&mut ebpf, &f);
        assert_eq!(got, verdict, "{what}: verdict");
        match want {
            Some(r) => {
                assert_eq!(recs.len(), 1, "{what}: records {recs:?}");
                assert_eq!(recs[0].reason, r, "{what}");
            }
            None => assert!(recs.is_empty(), "{what}: {recs:?}"),
        }
    }

    // Invalid: dropped, counted per reason; one record per source a second
    // (the first here), so a flood cannot flood the agent.
    let mut bad_sum = frame(&base, plain);
    let n = bad_sum.len();
    bad_sum[n - 3] ^= 0x40;
    let wrong_pass = build::advert(
        [2, 0, 0, 0, 0, 1],
        src,
        255,
        &vrrp::Repr {
            vrid: 52,
            auth: vrrp::Auth::pass("wrong"),
            addresses: vec![
                "10.77.0.101".parse().unwrap(),
                "10.77.0.102".parse().unwrap(),
            ],
            ..base.clone()
        },
        plain,
    );
    let mut zero_int = frame(&base, plain);
    zero_int[14 + 20 + 5] = 0; // v2 Adver Int 0 (checksum now wrong too: the interval is checked first)
    let invalid = [
        (bad_sum, counter::INVALID_CHECKSUM),
        (wrong_pass, counter::INVALID_AUTH),
        (zero_int, counter::INVALID_INTERVAL),
    ];
    for (i, (f, which)) in invalid.iter().enumerate() {
        let b = dataplane::read_counters(&ebpf).unwrap().get(*which);
        let (verdict, recs) = run(&mut ebpf, f);
        assert_eq!(verdict, XDP_DROP);
        if i == 0 {
            assert_eq!(recs.len(), 1, "{recs:?}");
            assert_eq!(recs[0].reason, reason::INVALID);
            assert_eq!(u32::from(recs[0].detail), *which);
            assert_eq!(&recs[0].src[..4], &[10, 77, 0, 1]);
        } else {
            assert!(recs.is_empty(), "rate limited per source: {recs:?}");
        }
        assert_eq!(
            dataplane::read_counters(&ebpf).unwrap().get(*which),
            b + 1,
            "counter {which}"
        );
    }
    let after = dataplane::read_counters(&ebpf).unwrap();
    assert_eq!(
        after.get(counter::ADVERT_UNCHANGED) - before.get(counter::ADVERT_UNCHANGED),
        5
    );
    assert_eq!(after.get(counter::RINGBUF_FULL), 0);
    assert_eq!(
        after.get(counter::INVALID_REPORTED) - before.get(counter::INVALID_REPORTED),
        1
    );
}

/// docs/design.md rule 3: a Backup's Active_Down timer runs in the kernel. Adverts
/// it accepts re-arm it; when they stop, it fires once and a record says so.
#[test]
fn the_kernel_times_the_active_down_interval() {
    require_root();
    let mut ebpf = dataplane::load().unwrap();
    let key = vr(FAMILY_V4, 61);
    let mut c = cfg(&["10.77.0.161"], None);
    c.flags |= VR_DOWN_TIMER | VR_PREEMPT;
    c.priority = 100;
    {
        let mut vrs: HashMap<_, VrKey, VrConfig> =
            HashMap::try_from(ebpf.map_mut(xvrrp_common::MAP_VRS).unwrap()).unwrap();
        vrs.insert(key, c, 0).unwrap();
    }
    let (_rt, mut events) = events_of(&mut ebpf);
    // 100 ms adverts: Active_Down_Interval = 300 ms + skew (61 ms at
    // priority 100), so sending every 10 ms leaves a 350 ms margin for a
    // stalled test thread, and the test can demand that it never fires.
    let advert = |priority: u8| {
        build::advert(
            [2, 0, 0, 0, 0, 1],
            "10.77.0.1".parse().unwrap(),
            255,
            &vrrp::Repr {
                version: vrrp::Version::V3,
                vrid: 61,
                priority,
                interval_cs: 10,
                auth: vrrp::Auth::None,
                addresses: vec!["10.77.0.161".parse().unwrap()],
            },
            vrrp::ChecksumMode::PseudoHeader,
        )
    };
    let send = |ebpf: &mut aya::Ebpf, frame: &[u8]| {
        assert_eq!(verdict(ebpf, frame), XDP_DROP);
    };
    let expired = |ebpf: &aya::Ebpf| {
        dataplane::read_counters(ebpf)
            .unwrap()
            .get(counter::DOWN_EXPIRED)
    };
    // Wait (bounded) until the count of fired timers reaches `n`.
    let wait_fired = |ebpf: &aya::Ebpf, n: u64| {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while expired(ebpf) < n && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        expired(ebpf)
    };

    // A higher-priority Active: each advert re-arms; adverts every 10 ms for
    // 1.2 s (more than three down intervals) keep it from firing.
    for _ in 0..120 {
        send(&mut ebpf, &advert(200));
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(expired(&ebpf), 0, "fired while adverts flowed");
    // Then silence: it fires, once, with a record naming the router.
    assert_eq!(wait_fired(&ebpf, 1), 1);
    // Longer than another down interval: still once.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(expired(&ebpf), 1, "fires once per silence");
    let recs = events.try_drain();
    let down: Vec<_> = recs
        .iter()
        .filter(|r| r.reason == reason::DOWN_EXPIRED)
        .collect();
    assert_eq!(down.len(), 1, "{recs:?}");
    assert_eq!(
        (down[0].ifindex, down[0].family, down[0].vrid),
        (1, FAMILY_V4, 61)
    );

    // Priority 0 (the Active leaves): Skew_Time only, then it fires.
    send(&mut ebpf, &advert(0));
    assert_eq!(wait_fired(&ebpf, 2), 2);

    // A lower priority with preemption on does not arm it (we preempt at
    // the end of the interval the last accepted advert started).
    send(&mut ebpf, &advert(50));
    // Longer than the down interval it would have armed (361 ms).
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(expired(&ebpf), 2, "lower priority re-armed the timer");
    assert_eq!(
        dataplane::read_counters(&ebpf)
            .unwrap()
            .get(counter::TIMER_FAILED),
        0
    );
}

/// The kernel-side takeover (docs/design.md rule 3): when the Active_Down
/// timer of a Backup the agent marked eligible (VR_TAKEOVER) fires, the
/// program answers ARP/ND for its VIPs at once, before the agent wakes; an
/// advert that re-arms the timer ends it, and so does one lease length
/// without the agent. A router not marked eligible (Fault, sync group
/// waiting, preempt_delay) stays silent until the agent decides.
#[test]
fn the_kernel_takes_over_an_eligible_backup_when_its_timer_fires() {
    use aya::maps::Array;
    use xvrrp::wire::{arp, ethernet};
    use xvrrp_common::{VipKey, VipValue, VIP_ACCEPT, VIP_VR_V6, VR_TAKEOVER};
    use xvrrp_tests::lbpkt::run;
    const XDP_TX: u32 = 3;
    const VMAC: [u8; 6] = [0, 0, 0x5e, 0, 1, 62];
    const CLIENT: [u8; 6] = [2, 0, 0, 0, 0, 0x0c];
    require_root();
    let mut ebpf = dataplane::load().unwrap();
    // (vrid, VIP, eligible): IPv4 62 eligible, 63 not; IPv6 64 eligible.
    let routers: [(u8, IpAddr, bool); 3] = [
        (62, "10.77.0.162".parse().unwrap(), true),
        (63, "10.77.0.163".parse().unwrap(), false),
        (64, "fd77::164".parse().unwrap(), true),
    ];
    let family = |a: &IpAddr| if a.is_ipv6() { FAMILY_V6 } else { FAMILY_V4 };
    {
        let mut vrs: HashMap<_, VrKey, VrConfig> =
            HashMap::try_from(ebpf.map_mut(xvrrp_common::MAP_VRS).unwrap()).unwrap();
        for (vrid, vip, eligible) in &routers {
            let mut c = cfg(&[&vip.to_string()], None);
            c.priority = 254;
            c.flags |= VR_DOWN_TIMER;
            if *eligible {
                c.flags |= VR_TAKEOVER;
            }
            vrs.insert(vr(family(vip), *vrid), c, 0).unwrap();
        }
    }
    {
        let mut vips: HashMap<_, VipKey, VipValue> =
            HashMap::try_from(ebpf.map_mut(xvrrp_common::MAP_VIPS).unwrap()).unwrap();
        for (vrid, vip, _) in &routers {
            let (fam, addr) = dataplane::map_address(*vip);
            let vr_v6 = if vip.is_ipv6() { VIP_VR_V6 } else { 0 };
            vips.insert(
                VipKey {
                    ifindex: 1,
                    family: fam as u32,
                    addr,
                },
                // A Backup's entry: not VIP_ACTIVE.
                VipValue {
                    mac: VMAC,
                    flags: VIP_ACCEPT | vr_v6,
                    vrid: *vrid,
                },
                0,
            )
            .unwrap();
        }
    }
    // The lease of the interface: long, and never renewed (a Backup host
    // sends no adverts): the takeover's answers do not depend on it.
    let set_lease_length = |ebpf: &mut aya::Ebpf, ns: u64| {
        let mut lease: Array<_, u64> =
            Array::try_from(ebpf.map_mut(xvrrp_common::MAP_LEASE).unwrap()).unwrap();
        lease.set(xvrrp_common::LEASE_LENGTH, ns, 0).unwrap();
    };
    set_lease_length(&mut ebpf, 60_000_000_000);
    let (_rt, mut events) = events_of(&mut ebpf);
    let advert = |vip: IpAddr, vrid: u8, priority: u8| {
        let src: IpAddr = if vip.is_ipv6() {
            "fe80::1".parse().unwrap()
        } else {
            "10.77.0.1".parse().unwrap()
        };
        build::advert(
            [2, 0, 0, 0, 0, 1],
            src,
            255,
            &vrrp::Repr {
                version: vrrp::Version::V3,
                vrid,
                priority,
                interval_cs: 10,
                auth: vrrp::Auth::None,
                addresses: vec![vip],
            },
            vrrp::ChecksumMode::PseudoHeader,
        )
    };
    let client4: std::net::Ipv4Addr = "10.77.0.3".parse().unwrap();
    let client6: std::net::Ipv6Addr = "fd77::3".parse().unwrap();
    let request = |vip: IpAddr| match vip {
        IpAddr::V4(v) => build::arp_request(CLIENT, client4, v),
        IpAddr::V6(v) => build::neighbor_solicit(CLIENT, client6, v),
    };
    let fired = |ebpf: &aya::Ebpf| {
        dataplane::read_counters(ebpf)
            .unwrap()
            .get(counter::DOWN_EXPIRED)
    };
    let wait_fired = |ebpf: &aya::Ebpf, n: u64| {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while fired(ebpf) < n && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        fired(ebpf)
    };

    // Backups before any timer fired: requests for the VIPs dropped.
    for (_, vip, _) in &routers {
        assert_eq!(run(&mut ebpf, &request(*vip)).0, XDP_DROP, "{vip} before");
    }
    // The Active leaves (priority 0): Skew_Time at priority 254 is 0.8 ms.
    for (vrid, vip, _) in &routers {
        assert_eq!(verdict(&mut ebpf, &advert(*vip, *vrid, 0)), XDP_DROP);
    }
    assert_eq!(wait_fired(&ebpf, 3), 3);
    for (vrid, vip, eligible) in &routers {
        let (v, out) = run(&mut ebpf, &request(*vip));
        if !eligible {
            assert_eq!(v, XDP_DROP, "VRID {vrid} is not eligible: still silent");
            continue;
        }
        assert_eq!(v, XDP_TX, "VRID {vrid}: answered from the timer's expiry");
        let (eth, payload) = ethernet::split(&out).unwrap();
        assert_eq!((eth.src, eth.dst), (VMAC, CLIENT));
        if let IpAddr::V4(v4) = vip {
            let a = arp::Repr::parse(&arp::Packet::new_checked(payload).unwrap()).unwrap();
            assert_eq!(
                (a.operation, a.sender_ip, a.sender_mac),
                (arp::Operation::Reply, *v4, VMAC)
            );
        }
    }
    let c = dataplane::read_counters(&ebpf).unwrap();
    assert_eq!(c.get(counter::KERNEL_TAKEOVER), 2);
    assert_eq!(c.get(counter::TAKEOVER_ANSWERED), 2);
    assert_eq!(c.get(counter::ARP_REPLIED), 1);
    assert_eq!(c.get(counter::NA_SENT), 1);
    // The records tell the agent which ones the kernel took over.
    let mut took: Vec<(u8, u8)> = events
        .try_drain()
        .iter()
        .filter(|r| r.reason == reason::DOWN_EXPIRED)
        .map(|r| (r.vrid, r.detail))
        .collect();
    took.sort();
    assert_eq!(took, vec![(62, 1), (63, 0), (64, 1)]);

    // Another Active's advert (one that re-arms the timer) ends it.
    let (vrid, vip, _) = routers[0];
    assert_eq!(verdict(&mut ebpf, &advert(vip, vrid, 200)), XDP_DROP);
    assert_eq!(
        run(&mut ebpf, &request(vip)).0,
        XDP_DROP,
        "an Active is heard again: the takeover ended"
    );
    // The IPv6 one keeps answering while the agent has not decided ...
    let (vrid6, vip6, _) = routers[2];
    assert_eq!(run(&mut ebpf, &request(vip6)).0, XDP_TX);
    // ... but for one lease length only (a stalled agent's host falls
    // silent, as an Active's does when its lease runs out).
    set_lease_length(&mut ebpf, 1_000_000);
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert_eq!(
        run(&mut ebpf, &request(vip6)).0,
        XDP_DROP,
        "VRID {vrid6}: past the lease length"
    );
}

/// What the kernel made of an advert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// Judged valid: noted in LAST (and the timer re-armed by its rules).
    Accepted,
    /// Dropped as invalid.
    Rejected,
    /// Passed on for the agent's socket path to judge (the same `proto`).
    Deferred,
}

/// docs/design.md rule 3: the kernel and the election follow one table of
/// rules. The same frames go through the XDP program (BPF_PROG_TEST_RUN,
/// VRS provisioned by `dataplane::rules::vr_config`) and through the agent's
/// socket-path checks and a Backup `Router`; the kernel never accepts what
/// the election discards, nor rejects what it accepts. (The lower-priority
/// rule with preemption is a timing rule, not a verdict: see
/// `the_kernel_times_the_active_down_interval`.) Both drop a forged advert
/// routed to the router's own address from off-link (TTL 64) for a
/// multicast instance.
#[test]
fn the_kernel_and_the_election_accept_the_same_adverts() {
    use std::time::Instant;
    use xvrrp::{
        net::advert::is_group,
        proto::{self, Action, Discard, Input, Received, Router},
    };
    require_root();
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    let base = proto::Config::new("VI_1", 51, ip("10.0.0.1"), vec![ip("10.0.0.100")]);
    let configs: Vec<(&str, proto::Config)> = vec![
        ("v3", base.clone()),
        ("v2", {
            let mut c = base.clone();
            c.version = vrrp::Version::V2;
            c
        }),
        ("v2 PASS", {
            let mut c = base.clone();
            c.version = vrrp::Version::V2;
            c.auth = vrrp::Auth::Pass(*b"secret\0\0");
            c
        }),
        ("v3 unicast, another peer", {
            let mut c = base.clone();
            c.unicast_peers = vec![ip("10.0.0.9")];
            c
        }),
        ("v3 unicast, this peer", {
            let mut c = base.clone();
            c.unicast_peers = vec![ip("10.0.0.2")];
            c
        }),
        ("v3 mixed v2", {
            let mut c = base.clone();
            c.mixed_v2 = true;
            c
        }),
    ];
    let advert = |version, interval_cs, auth, priority, addrs: &[&str]| vrrp::Repr {
        version,
        vrid: 51,
        priority,
        interval_cs,
        auth,
        addresses: addrs.iter().map(|a| ip(a)).collect(),
    };
    let (v2, v3) = (vrrp::Version::V2, vrrp::Version::V3);
    let pass = vrrp::Auth::Pass(*b"secret\0\0");
    let wrong = vrrp::Auth::Pass(*b"guess\0\0\0");
    let none = vrrp::Auth::None;
    let frames: Vec<(&str, u8, vrrp::Repr)> = vec![
        // Sent to our own address (10.0.0.1), not the group: a unicast
        // peer's, or a forgery routed in from off-link (TTL 64).
        (
            "v3 to us TTL 255",
            255,
            advert(v3, 100, none, 150, &["10.0.0.100"]),
        ),
        (
            "v3 to us TTL 64",
            64,
            advert(v3, 100, none, 255, &["10.0.0.100"]),
        ),
        ("v3 1 s", 255, advert(v3, 100, none, 150, &["10.0.0.100"])),
        ("v3 2 s", 255, advert(v3, 200, none, 150, &["10.0.0.100"])),
        (
            "v3 priority 0",
            255,
            advert(v3, 100, none, 0, &["10.0.0.100"]),
        ),
        ("v3 TTL 64", 64, advert(v3, 100, none, 150, &["10.0.0.100"])),
        (
            "v3 other addresses",
            255,
            advert(v3, 100, none, 150, &["10.0.0.200"]),
        ),
        ("v2 1 s", 255, advert(v2, 100, none, 150, &["10.0.0.100"])),
        ("v2 2 s", 255, advert(v2, 200, none, 150, &["10.0.0.100"])),
        ("v2 PASS", 255, advert(v2, 100, pass, 150, &["10.0.0.100"])),
        (
            "v2 wrong PASS",
            255,
            advert(v2, 100, wrong, 150, &["10.0.0.100"]),
        ),
    ];
    let src = ip("10.0.0.2");
    let mac = [2, 0, 0, 0, 0, 2];
    let mut compared = 0;
    for (cname, cfg) in &configs {
        let mut ebpf = dataplane::load().unwrap();
        {
            let mut vrs: HashMap<_, VrKey, VrConfig> =
                HashMap::try_from(ebpf.map_mut(xvrrp_common::MAP_VRS).unwrap()).unwrap();
            vrs.insert(
                vr(FAMILY_V4, 51),
                dataplane::rules::vr_config(cfg, cfg.priority, false, false),
                0,
            )
            .unwrap();
        }
        for (fname, ttl, repr) in &frames {
            let dst = if fname.contains("to us") {
                ip("10.0.0.1")
            } else {
                IpAddr::from(vrrp::MCAST_V4)
            };
            let frame = if fname.contains("group in the checksum") {
                let msg = repr.to_bytes(
                    vrrp::ChecksumMode::PseudoHeader,
                    &vrrp::Endpoints {
                        src,
                        dst: IpAddr::from(vrrp::MCAST_V4),
                    },
                );
                build::vrrp_frame(mac, src, dst, [2, 0, 0, 0, 0, 1], *ttl, &msg)
            } else if fname.contains("to us") {
                build::advert_to(
                    mac,
                    src,
                    dst,
                    [2, 0, 0, 0, 0, 1],
                    *ttl,
                    repr,
                    vrrp::ChecksumMode::PseudoHeader,
                )
            } else {
                build::advert(mac, src, *ttl, repr, vrrp::ChecksumMode::PseudoHeader)
            };
            // The kernel.
            let count = |ebpf: &aya::Ebpf| {
                let last: HashMap<_, VrKey, LastAdvert> =
                    HashMap::try_from(ebpf.map(xvrrp_common::MAP_LAST).unwrap()).unwrap();
                last.get(&vr(FAMILY_V4, 51), 0).map_or(0, |l| l.count)
            };
            let before = count(&ebpf);
            let v = verdict(&mut ebpf, &frame);
            let kernel = if count(&ebpf) > before {
                Kernel::Accepted
            } else if v == XDP_PASS {
                Kernel::Deferred
            } else {
                Kernel::Rejected
            };
            // The election, as the socket path feeds it.
            let payload = &frame[14 + 20..];
            let packet = vrrp::Packet::new_checked(payload, vrrp::Family::V4).unwrap();
            packet
                .verify_checksum(&vrrp::Endpoints { src, dst })
                .unwrap();
            let parsed = vrrp::Repr::parse(&packet).unwrap();
            let mut router = Router::new(cfg.clone());
            let t0 = Instant::now();
            let _ = router.handle(t0, Input::Startup);
            let actions = router.handle(
                t0,
                Input::Advert(Received {
                    src,
                    ttl: *ttl,
                    unicast: !is_group(&dst),
                    advert: parsed,
                }),
            );
            let discarded = actions.iter().find_map(|a| match a {
                Action::Discarded { reason, .. } if *reason != Discard::LowerPriority => {
                    Some(*reason)
                }
                _ => None,
            });
            let agrees = matches!(
                (kernel, discarded),
                (Kernel::Deferred, _) | (Kernel::Accepted, None) | (Kernel::Rejected, Some(_))
            );
            assert!(
                agrees,
                "{cname} / {fname}: kernel {kernel:?}, election discards {discarded:?}"
            );
            // What the kernel cannot judge (peers, mixed versions), it never
            // accepts: it rejects only what is invalid for any router.
            if xvrrp::dataplane::rules::judged_on_socket(cfg) {
                assert_ne!(kernel, Kernel::Accepted, "{cname} / {fname}");
            }
            compared += 1;
        }
    }
    assert_eq!(compared, configs.len() * frames.len());
}

/// Adverts for a VRID this host does not run go on to the socket (which
/// reports them once per source) and wake the agent through the ring at
/// most once a second per source, like invalid ones.
#[test]
fn records_for_unconfigured_vrids_are_rate_limited() {
    require_root();
    let mut ebpf = dataplane::load().unwrap();
    let (_rt, mut events) = events_of(&mut ebpf);
    let repr = vrrp::Repr {
        version: vrrp::Version::V3,
        vrid: 99,
        priority: 100,
        interval_cs: 100,
        auth: vrrp::Auth::None,
        addresses: vec!["10.77.0.199".parse().unwrap()],
    };
    let frame = build::advert(
        [2, 0, 0, 0, 0, 9],
        "10.77.0.9".parse().unwrap(),
        255,
        &repr,
        vrrp::ChecksumMode::PseudoHeader,
    );
    let before = dataplane::read_counters(&ebpf).unwrap();
    let mut records = 0;
    for _ in 0..20 {
        assert_eq!(verdict(&mut ebpf, &frame), XDP_PASS);
        records += events.try_drain().len();
    }
    let after = dataplane::read_counters(&ebpf).unwrap();
    assert_eq!(records, 1);
    let delta = |c| after.get(c) - before.get(c);
    assert_eq!(delta(counter::VRID_UNCONFIGURED), 20);
    assert_eq!(delta(counter::UNCONFIGURED_REPORTED), 1);
}

/// RFC 3768 §6.1: a v2 Backup's Skew_Time is (256 - Priority) / 256 s
/// whatever the advert interval, in the kernel as in `proto/timing.rs`: at
/// advert_int 2 and priority 100, a priority-0 advert fires the timer after
/// 0.61 s (the interval-scaled form would wait 1.22 s).
#[test]
fn the_kernels_v2_skew_is_whole_seconds_whatever_the_interval() {
    require_root();
    let mut ebpf = dataplane::load().unwrap();
    let key = vr(FAMILY_V4, 62);
    let mut c = cfg(&["10.77.0.162"], None);
    c.flags |= VR_DOWN_TIMER | VR_PREEMPT;
    c.priority = 100;
    c.version = 2;
    c.interval_cs = 200;
    {
        let mut vrs: HashMap<_, VrKey, VrConfig> =
            HashMap::try_from(ebpf.map_mut(xvrrp_common::MAP_VRS).unwrap()).unwrap();
        vrs.insert(key, c, 0).unwrap();
    }
    let leave = build::advert(
        [2, 0, 0, 0, 0, 1],
        "10.77.0.1".parse().unwrap(),
        255,
        &vrrp::Repr {
            version: vrrp::Version::V2,
            vrid: 62,
            priority: 0,
            interval_cs: 200,
            auth: vrrp::Auth::None,
            addresses: vec!["10.77.0.162".parse().unwrap()],
        },
        vrrp::ChecksumMode::Plain,
    );
    let expired = |ebpf: &aya::Ebpf| {
        dataplane::read_counters(ebpf)
            .unwrap()
            .get(counter::DOWN_EXPIRED)
    };
    let sent = std::time::Instant::now();
    assert_eq!(verdict(&mut ebpf, &leave), XDP_DROP);
    let skew = xvrrp::proto::timing::skew(100, 100);
    while expired(&ebpf) == 0 && sent.elapsed() < std::time::Duration::from_secs(3) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let fired = sent.elapsed();
    assert_eq!(expired(&ebpf), 1);
    assert!(
        fired >= skew,
        "fired after {fired:?}, before the skew {skew:?}"
    );
    assert!(
        fired < xvrrp::proto::timing::skew(100, 200),
        "fired after {fired:?}: the skew scaled with the interval"
    );
}
