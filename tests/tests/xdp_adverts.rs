//! VRRP adverts checked in the kernel (BPF_PROG_TEST_RUN): real keepalived
//! captures are valid; every invalid reason is counted and produces no
//! record; a valid advert produces a ring record only when it changes what
//! the election knows (new source, priority, interval, priority 0,
//! conflicting address set), else it is only noted in the LAST map.

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
};
use xvrrp_tests::require_root;

const KA_V2: &[u8] = include_bytes!("../../agent/src/wire/fixtures/keepalived_v2_noauth.bin");
const KA_V2_PASS: &[u8] = include_bytes!("../../agent/src/wire/fixtures/keepalived_v2_pass.bin");
const KA_V3_V4: &[u8] = include_bytes!("../../agent/src/wire/fixtures/keepalived_v3_ipv4.bin");
const KA_V3_V6: &[u8] = include_bytes!("../../agent/src/wire/fixtures/keepalived_v3_ipv6.bin");

/// BPF_PROG_TEST_RUN delivers on loopback: ifindex 1.
fn vr(family: u8, vrid: u8) -> VrKey {
    VrKey {
        ifindex: 1,
        family,
        vrid,
        _pad: [0; 2],
    }
}

fn sum(addrs: &[IpAddr]) -> u32 {
    let mut s = 0u32;
    for a in addrs {
        let bytes = match a {
            IpAddr::V4(v) => v.octets().to_vec(),
            IpAddr::V6(v) => v.octets().to_vec(),
        };
        for w in bytes.chunks(4) {
            s = s.wrapping_add(u32::from_be_bytes(w.try_into().unwrap()));
        }
    }
    s
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
        _pad: [0; 2],
        addr_sum: sum(&a),
    }
}

#[test]
fn adverts_are_checked_and_only_changes_wake_the_agent() {
    require_root();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
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
    let mut events = rt
        .block_on(async { dataplane::take_events(&mut ebpf) })
        .unwrap();
    let mut run = |ebpf: &mut aya::Ebpf, frame: &[u8]| -> (u32, Vec<AdvertRecord>) {
        let prog = dataplane::program_mut(ebpf).unwrap();
        let r = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                ..Default::default()
            })
            .unwrap();
        (r.return_value, events.try_drain())
    };
    let before = dataplane::read_counters(&ebpf).unwrap();

    // The four keepalived captures: valid, a record each (a new source).
    for f in [KA_V2, KA_V2_PASS, KA_V3_V4, KA_V3_V6] {
        let (verdict, recs) = run(&mut ebpf, f);
        assert_eq!(verdict, 2, "XDP_PASS");
        assert_eq!(recs.len(), 1, "one record for {:02x?}", &f[..20]);
        assert_eq!(recs[0].reason, reason::NEW_SOURCE);
    }
    // The same adverts again: no record, only LAST moves.
    for f in [KA_V2, KA_V2_PASS, KA_V3_V4, KA_V3_V6] {
        assert!(
            run(&mut ebpf, f).1.is_empty(),
            "unchanged advert woke the agent"
        );
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
    let cases: Vec<(&str, Vec<u8>, Option<u8>)> = vec![
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
        ),
        (
            "back to 150, same as before the 0",
            frame(&base, plain),
            Some(reason::PRIORITY),
        ),
        ("unchanged", frame(&base, plain), None),
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
        ),
    ];
    for (what, f, want) in cases {
        let (_, recs) = run(&mut ebpf, &f);
        match want {
            Some(r) => {
                assert_eq!(recs.len(), 1, "{what}: records {recs:?}");
                assert_eq!(recs[0].reason, r, "{what}");
            }
            None => assert!(recs.is_empty(), "{what}: {recs:?}"),
        }
    }

    // Invalid: counted per reason, no record.
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
    for (f, which) in &invalid {
        let b = dataplane::read_counters(&ebpf).unwrap().get(*which);
        let (_, recs) = run(&mut ebpf, f);
        assert!(recs.is_empty());
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
}
