//! The XDP program packet-in / packet-out through BPF_PROG_TEST_RUN (aya's
//! TestRun), Katran's tester as the model: maps provisioned first, then a
//! table of {description, input frame, expected verdict, expected output},
//! exact bytes compared. BPF_PROG_TEST_RUN delivers XDP frames on the
//! loopback device, so the VIP keys use ifindex 1.

use std::net::{Ipv4Addr, Ipv6Addr};

use aya::maps::{Array, HashMap};
use xvrrp::{
    dataplane,
    wire::{arp, build, ethernet, icmpv6, ip},
};
use xvrrp_common::{
    counter, VipKey, VipValue, VrConfig, VrKey, FAMILY_V4, FAMILY_V6, VIP_ACTIVE, VIP_ROUTER,
    VR_ACTIVE,
};
use xvrrp_tests::{lbpkt::run, require_root};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0c];
const VMAC: [u8; 6] = [0, 0, 0x5e, 0, 1, 51];
const VIP4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 100);
const BACKUP4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 101);
const CLIENT4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 3);

fn vip6() -> Ipv6Addr {
    "fd77::100".parse().unwrap()
}

fn key(family: u8, addr: &[u8]) -> VipKey {
    let mut a = [0u8; 16];
    a[..addr.len()].copy_from_slice(addr);
    VipKey {
        ifindex: 1,
        family: family as u32,
        addr: a,
    }
}

struct Fixture {
    what: &'static str,
    input: Vec<u8>,
    verdict: u32,
    /// Expected output frame (None: unchanged input).
    output: Option<Vec<u8>>,
}

fn tag(frame: &[u8], vlan: u16) -> Vec<u8> {
    let mut t = frame[..12].to_vec();
    t.extend_from_slice(&[0x81, 0x00]);
    t.extend_from_slice(&vlan.to_be_bytes());
    t.extend_from_slice(&frame[12..]);
    t
}

fn arp_reply(vip: Ipv4Addr) -> Vec<u8> {
    let r = arp::Repr {
        operation: arp::Operation::Reply,
        sender_mac: VMAC,
        sender_ip: vip,
        target_mac: CLIENT_MAC,
        target_ip: CLIENT4,
    };
    ethernet::frame(
        &ethernet::Repr {
            dst: CLIENT_MAC,
            src: VMAC,
            vlan: None,
            ethertype: ethernet::ethertype::ARP,
        },
        &r.to_bytes(),
    )
}

fn na(dst_mac: [u8; 6], dst: Ipv6Addr, solicited: bool, router: bool) -> Vec<u8> {
    let msg = icmpv6::Repr::Advert {
        router,
        solicited,
        override_: true,
        target: vip6(),
        target_lladdr: Some(VMAC),
    }
    .to_bytes(vip6(), dst);
    let iph = ip::Repr {
        src: vip6().into(),
        dst: dst.into(),
        protocol: icmpv6::NEXT_HEADER,
        ttl: 255,
        payload_len: msg.len(),
    };
    let mut f = ethernet::frame(
        &ethernet::Repr {
            dst: dst_mac,
            src: VMAC,
            vlan: None,
            ethertype: ethernet::ethertype::IPV6,
        },
        &iph.packet(&msg),
    );
    // Keep the traffic class the NS had (our builder's CS6): the program leaves it.
    f[14] = 0x6c;
    f
}

#[test]
fn arp_and_nd_answers_follow_state_and_lease() {
    require_root();
    let mut ebpf = dataplane::load().unwrap();
    {
        let mut vips: HashMap<_, VipKey, VipValue> =
            HashMap::try_from(ebpf.map_mut(xvrrp_common::MAP_VIPS).unwrap()).unwrap();
        vips.insert(
            key(FAMILY_V4, &VIP4.octets()),
            VipValue {
                mac: VMAC,
                flags: VIP_ACTIVE,
                vrid: 51,
            },
            0,
        )
        .unwrap();
        vips.insert(
            key(FAMILY_V4, &BACKUP4.octets()),
            VipValue {
                mac: VMAC,
                flags: 0,
                vrid: 52,
            },
            0,
        )
        .unwrap();
        vips.insert(
            key(FAMILY_V6, &vip6().octets()),
            VipValue {
                mac: VMAC,
                flags: VIP_ACTIVE | VIP_ROUTER,
                vrid: 51,
            },
            0,
        )
        .unwrap();
    }
    let set_lease = |ebpf: &mut aya::Ebpf, renewed: u64, length: u64| {
        let mut lease: Array<_, u64> =
            Array::try_from(ebpf.map_mut(xvrrp_common::MAP_LEASE).unwrap()).unwrap();
        lease.set(0, renewed, 0).unwrap();
        lease.set(1, length, 0).unwrap();
    };
    set_lease(&mut ebpf, dataplane::monotonic_ns(), 60_000_000_000);

    let req = |target: Ipv4Addr| build::arp_request(CLIENT_MAC, CLIENT4, target);
    let client6: Ipv6Addr = "fd77::3".parse().unwrap();
    let ns = build::neighbor_solicit(CLIENT_MAC, client6, vip6());
    let dad = build::neighbor_solicit(CLIENT_MAC, Ipv6Addr::UNSPECIFIED, vip6());
    let mut bare_ns = ns.clone();
    {
        // An NS without the source link-layer option (24-byte ICMPv6 part).
        bare_ns.truncate(bare_ns.len() - 8);
        bare_ns[14 + 5] = 24;
        let len = bare_ns.len();
        icmpv6::fill_checksum(
            &mut bare_ns[54..len],
            client6,
            icmpv6::solicited_node(&vip6()),
        );
    }
    let fixtures = vec![
        Fixture {
            what: "ARP request for an Active VIP: reply in place",
            input: req(VIP4),
            verdict: XDP_TX,
            output: Some(arp_reply(VIP4)),
        },
        Fixture {
            what: "VLAN-tagged ARP request: reply keeps the tag",
            input: tag(&req(VIP4), 7),
            verdict: XDP_TX,
            output: Some(tag(&arp_reply(VIP4), 7)),
        },
        Fixture {
            what: "ARP request for a Backup VIP: dropped (kernel must not answer)",
            input: req(BACKUP4),
            verdict: XDP_DROP,
            output: None,
        },
        Fixture {
            what: "ARP request for another address: passed",
            input: req(Ipv4Addr::new(10, 77, 0, 1)),
            verdict: XDP_PASS,
            output: None,
        },
        Fixture {
            what: "gratuitous ARP for our VIP: passed",
            input: build::garp(CLIENT_MAC, VIP4, false),
            verdict: XDP_PASS,
            output: None,
        },
        Fixture {
            what: "NS for an Active VIP: solicited NA (R, S, O, TLLA)",
            input: ns.clone(),
            verdict: XDP_TX,
            output: Some(na(CLIENT_MAC, client6, true, true)),
        },
        Fixture {
            what: "NS without options: grown to a full NA",
            input: bare_ns,
            verdict: XDP_TX,
            output: Some(na(CLIENT_MAC, client6, true, true)),
        },
        Fixture {
            what: "DAD NS from ::: NA to ff02::1 with S=0",
            input: dad,
            verdict: XDP_TX,
            output: Some(na([0x33, 0x33, 0, 0, 0, 1], icmpv6::ALL_NODES, false, true)),
        },
    ];
    let mut failures = Vec::new();
    for f in &fixtures {
        let (verdict, out) = run(&mut ebpf, &f.input);
        let want = f.output.clone().unwrap_or_else(|| f.input.clone());
        if verdict != f.verdict || (verdict != XDP_DROP && out != want) {
            failures.push(format!(
                "{}: verdict {verdict} (want {})\n  got  {:02x?}\n  want {:02x?}",
                f.what, f.verdict, out, want
            ));
        }
        if f.verdict == XDP_TX && f.input[12] == 0x86 {
            // The NA verifies with the agent's own ICMPv6 code.
            let (_, payload) = ethernet::split(&out).unwrap();
            let (iph, body) = ip::Repr::parse(payload).unwrap();
            let (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) = (iph.src, iph.dst) else {
                unreachable!()
            };
            assert!(
                icmpv6::verify_checksum(body, s, d),
                "{}: NA checksum",
                f.what
            );
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    // Fail silent: the same requests once the lease has run out.
    set_lease(
        &mut ebpf,
        dataplane::monotonic_ns() - 2_000_000_000,
        1_000_000_000,
    );
    assert_eq!(
        run(&mut ebpf, &req(VIP4)).0,
        XDP_DROP,
        "stale lease: ARP dropped"
    );
    assert_eq!(run(&mut ebpf, &ns).0, XDP_DROP, "stale lease: NS dropped");
    let c = dataplane::read_counters(&ebpf).unwrap();
    assert_eq!(c.get(counter::ARP_REPLIED), 2);
    assert_eq!(c.get(counter::NA_SENT), 3);
    assert_eq!(c.get(counter::ARP_DROP_BACKUP), 1);
    assert_eq!(c.get(counter::ARP_DROP_STALE), 1);
    assert_eq!(c.get(counter::NS_DROP_STALE), 1);
}

#[test]
fn accept_mode_off_drops_traffic_to_the_vip_but_not_neighbour_discovery() {
    require_root();
    let mut ebpf = dataplane::load().unwrap();
    let strict = Ipv4Addr::new(10, 77, 0, 102);
    {
        let mut vips: HashMap<_, VipKey, VipValue> =
            HashMap::try_from(ebpf.map_mut(xvrrp_common::MAP_VIPS).unwrap()).unwrap();
        vips.insert(
            key(FAMILY_V4, &VIP4.octets()),
            VipValue {
                mac: VMAC,
                flags: VIP_ACTIVE | xvrrp_common::VIP_ACCEPT,
                vrid: 51,
            },
            0,
        )
        .unwrap();
        vips.insert(
            key(FAMILY_V4, &strict.octets()),
            VipValue {
                mac: VMAC,
                flags: VIP_ACTIVE,
                vrid: 53,
            },
            0,
        )
        .unwrap();
        vips.insert(
            key(FAMILY_V6, &vip6().octets()),
            VipValue {
                mac: VMAC,
                flags: VIP_ACTIVE,
                vrid: 53,
            },
            0,
        )
        .unwrap();
        let mut lease: Array<_, u64> =
            Array::try_from(ebpf.map_mut(xvrrp_common::MAP_LEASE).unwrap()).unwrap();
        lease.set(0, dataplane::monotonic_ns(), 0).unwrap();
        lease.set(1, 60_000_000_000, 0).unwrap();
    }
    let echo = |dst: std::net::IpAddr| {
        let (proto, msg) = if dst.is_ipv4() {
            (1u8, vec![8u8, 0, 0, 0, 0, 1, 0, 1])
        } else {
            (58u8, vec![128u8, 0, 0, 0, 0, 1, 0, 1])
        };
        let src: std::net::IpAddr = if dst.is_ipv4() {
            CLIENT4.into()
        } else {
            "fd77::3".parse::<Ipv6Addr>().unwrap().into()
        };
        let iph = ip::Repr {
            src,
            dst,
            protocol: proto,
            ttl: 64,
            payload_len: msg.len(),
        };
        let et = if dst.is_ipv4() {
            ethernet::ethertype::IPV4
        } else {
            ethernet::ethertype::IPV6
        };
        ethernet::frame(
            &ethernet::Repr {
                dst: VMAC,
                src: CLIENT_MAC,
                vlan: None,
                ethertype: et,
            },
            &iph.packet(&msg),
        )
    };
    assert_eq!(
        run(&mut ebpf, &echo(VIP4.into())).0,
        XDP_PASS,
        "accept mode: ping passes"
    );
    assert_eq!(
        run(&mut ebpf, &echo(strict.into())).0,
        XDP_DROP,
        "no accept: ping to the VIP dropped"
    );
    assert_eq!(
        run(&mut ebpf, &echo(vip6().into())).0,
        XDP_DROP,
        "no accept: ICMPv6 echo dropped"
    );
    assert_eq!(
        run(&mut ebpf, &build::arp_request(CLIENT_MAC, CLIENT4, strict)).0,
        XDP_TX,
        "ARP still answered"
    );
    let ns = build::neighbor_solicit(CLIENT_MAC, "fd77::3".parse().unwrap(), vip6());
    assert_eq!(run(&mut ebpf, &ns).0, XDP_TX, "ND still answered");
    assert_eq!(
        dataplane::read_counters(&ebpf)
            .unwrap()
            .get(counter::NO_ACCEPT_DROP),
        2
    );
}

#[test]
fn truncated_frames_at_every_length_pass_untouched() {
    require_root();
    let mut ebpf = dataplane::load().unwrap();
    let frames = [
        build::arp_request(CLIENT_MAC, CLIENT4, VIP4),
        build::neighbor_solicit(CLIENT_MAC, "fd77::3".parse().unwrap(), vip6()),
        tag(&build::arp_request(CLIENT_MAC, CLIENT4, VIP4), 7),
    ];
    for f in &frames {
        // The kernel refuses test frames shorter than an Ethernet header.
        for len in 14..f.len() {
            let (verdict, out) = run(&mut ebpf, &f[..len]);
            assert_eq!(verdict, XDP_PASS, "len {len}");
            assert_eq!(out, &f[..len]);
        }
    }
    assert!(
        dataplane::read_counters(&ebpf)
            .unwrap()
            .get(counter::TRUNCATED)
            > 0
    );
}

/// RFC 9568 §7.3: while Backup, frames to the router's virtual MAC are
/// dropped; once Active (VR_ACTIVE) they pass; other VRIDs are untouched.
#[test]
fn frames_to_the_virtual_mac_are_dropped_while_backup() {
    require_root();
    let mut ebpf = dataplane::load().unwrap();
    let frame = |dst: [u8; 6]| {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&CLIENT_MAC);
        f.extend_from_slice(&[0x08, 0x00]);
        // IPv4/UDP, client -> VIP, no checksum needed for the program.
        f.extend_from_slice(&[0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]);
        f.extend_from_slice(&CLIENT4.octets());
        f.extend_from_slice(&VIP4.octets());
        f.extend_from_slice(&[0x30, 0x39, 0x30, 0x39, 0, 8, 0, 0]);
        f
    };
    let set = |ebpf: &mut aya::Ebpf, flags: u8| {
        let mut vrs: HashMap<_, VrKey, VrConfig> =
            HashMap::try_from(ebpf.map_mut(xvrrp_common::MAP_VRS).unwrap()).unwrap();
        let key = VrKey {
            ifindex: 1,
            family: FAMILY_V4,
            vrid: 51,
            _pad: [0; 2],
        };
        vrs.insert(
            key,
            VrConfig {
                flags,
                ..Default::default()
            },
            0,
        )
        .unwrap();
    };
    let dropped = |ebpf: &aya::Ebpf| {
        dataplane::read_counters(ebpf)
            .unwrap()
            .get(counter::VMAC_DROP_BACKUP)
    };
    let v6_vmac = [0, 0, 0x5e, 0, 2, 51];
    let other_vrid = [0, 0, 0x5e, 0, 1, 52];
    // Not configured here: untouched.
    assert_eq!(run(&mut ebpf, &frame(VMAC)).0, XDP_PASS);
    set(&mut ebpf, 0);
    let (verdict, out) = run(&mut ebpf, &frame(VMAC));
    assert_eq!(verdict, XDP_DROP);
    assert_eq!(out, frame(VMAC), "dropped, not rewritten");
    assert_eq!(dropped(&ebpf), 1);
    assert_eq!(run(&mut ebpf, &frame(other_vrid)).0, XDP_PASS);
    assert_eq!(
        run(&mut ebpf, &frame(v6_vmac)).0,
        XDP_PASS,
        "IPv6 VRID 51 is not configured"
    );
    set(&mut ebpf, VR_ACTIVE);
    assert_eq!(run(&mut ebpf, &frame(VMAC)).0, XDP_PASS);
    assert_eq!(dropped(&ebpf), 1);
}
