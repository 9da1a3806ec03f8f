//! lb_kind DR in the XDP program, through BPF_PROG_TEST_RUN: exact output
//! frames for a forwarded packet, pass-through for everything else, and the
//! per-CPU flow table keeping a flow on its real when the Maglev table
//! changes (the test pins itself to one CPU: the table is per CPU).

use xvrrp::dataplane;
use xvrrp_common::{counter, LB_ACTIVE};
use xvrrp_tests::{
    lbpkt::{
        fill, frame, pin_to_cpu, run, set_real, set_service, to_real, ACK, IPPROTO_TCP,
        IPPROTO_UDP, SYN,
    },
    require_root,
};

const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

/// Every slot of service 0's primary table to real `r` (None: to no real).
fn fill_table(ebpf: &mut aya::Ebpf, r: Option<usize>) {
    fill(ebpf, 0, r)
}

fn counter(ebpf: &aya::Ebpf, index: u32) -> u64 {
    dataplane::read_counters(ebpf).unwrap().get(index)
}

#[test]
fn dr_rewrites_the_macs_of_a_forwarded_packet_and_passes_the_rest() {
    require_root();
    let mut ebpf = dataplane::load().unwrap();
    set_real(&mut ebpf, 0, true);
    fill_table(&mut ebpf, Some(0));
    set_service(&mut ebpf, 0);
    let syn = frame(IPPROTO_TCP, 40000, 80, SYN);
    assert_eq!(
        run(&mut ebpf, &syn),
        (XDP_PASS, syn.clone()),
        "a virtual server not forwarded here (Backup) passes"
    );
    set_service(&mut ebpf, LB_ACTIVE);
    struct Case {
        what: &'static str,
        input: Vec<u8>,
        verdict: u32,
        output: Vec<u8>,
    }
    let ack = frame(IPPROTO_TCP, 40001, 80, ACK);
    let other_port = frame(IPPROTO_TCP, 40000, 81, SYN);
    let udp = frame(IPPROTO_UDP, 40000, 80, 0);
    let mut fragment = syn.clone();
    fragment[14 + 6] = 0x20; // more fragments
    let mut options = syn.clone();
    options[14] = 0x46;
    let cases = vec![
        Case {
            what: "SYN to VIP:80/tcp: to the real, MACs rewritten, nothing else",
            output: to_real(&syn, 0),
            input: syn,
            verdict: XDP_TX,
        },
        Case {
            what: "a segment of a flow never seen: its Maglev slot's real",
            output: to_real(&ack, 0),
            input: ack,
            verdict: XDP_TX,
        },
        Case {
            what: "another port: not a virtual server",
            output: other_port.clone(),
            input: other_port,
            verdict: XDP_PASS,
        },
        Case {
            what: "UDP to a TCP virtual server's port",
            output: udp.clone(),
            input: udp,
            verdict: XDP_PASS,
        },
        Case {
            what: "a fragment: no ports to look at, the kernel's",
            output: fragment.clone(),
            input: fragment,
            verdict: XDP_PASS,
        },
        Case {
            what: "IP options: the kernel's",
            output: options.clone(),
            input: options,
            verdict: XDP_PASS,
        },
    ];
    let before = counter(&ebpf, counter::LB_FORWARDED);
    for c in &cases {
        assert_eq!(
            run(&mut ebpf, &c.input),
            (c.verdict, c.output.clone()),
            "{}",
            c.what
        );
    }
    assert_eq!(counter(&ebpf, counter::LB_FORWARDED) - before, 2);
    // An empty table (no live real): passed, counted.
    fill_table(&mut ebpf, None);
    let syn = frame(IPPROTO_TCP, 40100, 80, SYN);
    assert_eq!(run(&mut ebpf, &syn), (XDP_PASS, syn.clone()));
    assert!(counter(&ebpf, counter::LB_NO_REAL) >= 1);
}

#[test]
fn the_flow_table_keeps_a_flow_on_its_real_when_the_table_changes() {
    require_root();
    pin_to_cpu(0);
    let mut ebpf = dataplane::load().unwrap();
    set_real(&mut ebpf, 0, true);
    set_real(&mut ebpf, 1, true);
    fill_table(&mut ebpf, Some(0));
    set_service(&mut ebpf, LB_ACTIVE);
    let syn = frame(IPPROTO_TCP, 41000, 80, SYN);
    let ack = frame(IPPROTO_TCP, 41000, 80, ACK);
    assert_eq!(run(&mut ebpf, &syn), (XDP_TX, to_real(&syn, 0)));
    // A weight change moves every slot to real 1.
    fill_table(&mut ebpf, Some(1));
    let kept = counter(&ebpf, counter::LB_FLOW_KEPT);
    assert_eq!(
        run(&mut ebpf, &ack),
        (XDP_TX, to_real(&ack, 0)),
        "the established flow stays on its real"
    );
    assert_eq!(counter(&ebpf, counter::LB_FLOW_KEPT), kept + 1);
    let other = frame(IPPROTO_TCP, 41001, 80, ACK);
    assert_eq!(
        run(&mut ebpf, &other),
        (XDP_TX, to_real(&other, 1)),
        "a flow not seen here takes the new table's real"
    );
    assert_eq!(
        run(&mut ebpf, &syn),
        (XDP_TX, to_real(&syn, 1)),
        "a SYN always chooses again"
    );
    // The remembered real leaves the pool: its flows choose again.
    let syn2 = frame(IPPROTO_TCP, 41002, 80, SYN);
    let ack2 = frame(IPPROTO_TCP, 41002, 80, ACK);
    fill_table(&mut ebpf, Some(0));
    assert_eq!(run(&mut ebpf, &syn2), (XDP_TX, to_real(&syn2, 0)));
    fill_table(&mut ebpf, Some(1));
    set_real(&mut ebpf, 0, false);
    assert_eq!(run(&mut ebpf, &ack2), (XDP_TX, to_real(&ack2, 1)));
}

/// A flow remembered on one CPU reads as a zeroed slot on another: there it
/// must be chosen again from the table (the same real), not sent to real 0.
#[test]
fn a_flow_seen_on_another_cpu_is_chosen_again_not_sent_to_real_zero() {
    require_root();
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        eprintln!("one CPU: nothing to show");
        return;
    }
    pin_to_cpu(0);
    let mut ebpf = dataplane::load().unwrap();
    set_real(&mut ebpf, 0, true);
    set_real(&mut ebpf, 1, true);
    fill_table(&mut ebpf, Some(1));
    set_service(&mut ebpf, LB_ACTIVE);
    let syn = frame(IPPROTO_TCP, 42000, 80, SYN);
    let ack = frame(IPPROTO_TCP, 42000, 80, ACK);
    assert_eq!(run(&mut ebpf, &syn), (XDP_TX, to_real(&syn, 1)));
    pin_to_cpu(1);
    assert_eq!(
        run(&mut ebpf, &ack),
        (XDP_TX, to_real(&ack, 1)),
        "the other CPU's zeroed slot taken for real 0"
    );
}

/// The primary table (every configured real, the same on every load
/// balancer) decides while its real is alive here; a slot whose real is not
/// takes the fallback table of the live reals.
#[test]
fn a_slot_whose_primary_real_is_not_alive_takes_the_fallback() {
    require_root();
    let mut ebpf = dataplane::load().unwrap();
    set_real(&mut ebpf, 0, true);
    set_real(&mut ebpf, 1, true);
    fill(&mut ebpf, 0, Some(0));
    fill(&mut ebpf, 1, Some(1));
    set_service(&mut ebpf, LB_ACTIVE);
    let syn = frame(IPPROTO_TCP, 43000, 80, SYN);
    assert_eq!(
        run(&mut ebpf, &syn),
        (XDP_TX, to_real(&syn, 0)),
        "primary alive"
    );
    set_real(&mut ebpf, 0, false);
    assert_eq!(
        run(&mut ebpf, &syn),
        (XDP_TX, to_real(&syn, 1)),
        "primary not alive"
    );
    fill(&mut ebpf, 1, None);
    assert_eq!(
        run(&mut ebpf, &syn),
        (XDP_PASS, syn.clone()),
        "no live real at all"
    );
}

/// An IPv4 header as RFC 791 lays it out, checksum by the project's own
/// checksum code: what the encapsulated and the ICMP frames must carry.
fn ipv4(tos: u8, total: u16, proto: u8, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut h = vec![0x45, tos];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let sum = xvrrp::wire::checksum::finish(xvrrp::wire::checksum::sum(&h));
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h
}

/// A TCP frame to the VIP of `total` IP bytes, DF set or not, its header
/// checksum right.
fn big_frame(sport: u16, total: usize, df: bool) -> Vec<u8> {
    let mut f = frame(IPPROTO_TCP, sport, 80, ACK);
    f.resize(14 + total, 0xab);
    f[16..18].copy_from_slice(&(total as u16).to_be_bytes());
    f[20] = if df { 0x40 } else { 0 };
    f[24..26].copy_from_slice(&[0, 0]);
    let sum = xvrrp::wire::checksum::finish(xvrrp::wire::checksum::sum(&f[14..34]));
    f[24..26].copy_from_slice(&sum.to_be_bytes());
    f
}

/// The ICMP "fragmentation needed" frame the load balancer sends the
/// client for `df` (RFC 792 type 3 code 4 with RFC 1191's next-hop MTU,
/// quoting the IP header and 8 bytes).
fn frag_needed(df: &[u8], mtu: u16) -> Vec<u8> {
    use xvrrp_tests::lbpkt::{CLIENT, CLIENT_MAC, LB_ADDR, LB_MAC};
    let mut icmp = vec![3, 4, 0, 0, 0, 0];
    icmp.extend_from_slice(&mtu.to_be_bytes());
    icmp.extend_from_slice(&df[14..14 + 28]);
    let sum = xvrrp::wire::checksum::finish(xvrrp::wire::checksum::sum(&icmp));
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut want = CLIENT_MAC.to_vec();
    want.extend_from_slice(&LB_MAC);
    want.extend_from_slice(&[0x08, 0x00]);
    want.extend_from_slice(&ipv4(0, 56, 1, LB_ADDR.octets(), CLIENT.octets()));
    want.extend_from_slice(&icmp);
    want
}

/// lb_kind TUN: the frame grows by an outer IPv4 header (IPIP) from the
/// load balancer to the real, the inner packet byte for byte as it came; a
/// DF packet that would exceed the MTU once encapsulated is answered with
/// ICMP "fragmentation needed" (next-hop MTU 1480) quoting its header, one
/// without DF goes to the kernel (counted), never dropped silently.
#[test]
fn tun_encapsulates_in_ipip_and_answers_too_big_with_icmp() {
    use xvrrp_tests::lbpkt::{LB_ADDR, LB_MAC, MTU, REAL_ADDRS, REAL_MACS};
    require_root();
    let mut ebpf = dataplane::load().unwrap();
    set_real(&mut ebpf, 0, true);
    fill_table(&mut ebpf, Some(0));
    set_service(&mut ebpf, LB_ACTIVE | xvrrp_common::LB_TUN);
    let mut syn = frame(IPPROTO_TCP, 44000, 80, SYN);
    syn[15] = 0x10; // a TOS the outer header copies
    let inner = &syn[14..];
    let mut want = REAL_MACS[0].to_vec();
    want.extend_from_slice(&LB_MAC);
    want.extend_from_slice(&[0x08, 0x00]);
    want.extend_from_slice(&ipv4(
        0x10,
        inner.len() as u16 + 20,
        4,
        LB_ADDR.octets(),
        REAL_ADDRS[0].octets(),
    ));
    want.extend_from_slice(inner);
    let before = counter(&ebpf, counter::LB_ENCAPSULATED);
    assert_eq!(run(&mut ebpf, &syn), (XDP_TX, want));
    assert_eq!(counter(&ebpf, counter::LB_ENCAPSULATED), before + 1);

    // Too big once encapsulated: total length MTU - 19.
    let big = |df: bool| big_frame(44001, (MTU - 19) as usize, df);
    let df = big(true);
    let want = frag_needed(&df, (MTU - 20) as u16);
    assert_eq!(
        run(&mut ebpf, &df),
        (XDP_TX, want),
        "ICMP fragmentation needed"
    );
    assert_eq!(counter(&ebpf, counter::LB_ICMP_TOO_BIG), 1);
    let no_df = big(false);
    assert_eq!(run(&mut ebpf, &no_df), (XDP_PASS, no_df.clone()));
    assert_eq!(counter(&ebpf, counter::LB_TOO_BIG_PASSED), 1);
}

/// `lb_kind TUN type gre` and `type gue port N`: the outer IPv4 header
/// carries GRE (protocol 47; RFC 2784's 4 bytes, no checksum, payload type
/// 0x0800) or UDP to the port (source port from the flow's hash, no
/// checksum) and GUE (variant 0, proto 4: IPIP), as IPVS's tunnels; the
/// ICMP next-hop MTU leaves room for the larger header.
#[test]
fn tun_gre_and_gue_wrap_the_packet_as_ipvs_does() {
    use xvrrp_common::{lb_flow_words, lb_hash, LbFlowKey, LB_TUN, LB_TUN_GRE, LB_TUN_GUE};
    use xvrrp_tests::lbpkt::{
        set_tun_service, CLIENT, LB_ADDR, LB_MAC, MTU, REAL_ADDRS, REAL_MACS, VIP,
    };
    require_root();
    let mut ebpf = dataplane::load().unwrap();
    set_real(&mut ebpf, 0, true);
    fill_table(&mut ebpf, Some(0));
    let syn = frame(IPPROTO_TCP, 44000, 80, SYN);
    let inner = syn[14..].to_vec();
    let outer = |total: usize, proto: u8| {
        let mut f = REAL_MACS[0].to_vec();
        f.extend_from_slice(&LB_MAC);
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&ipv4(
            inner[1], // the TOS, copied
            total as u16,
            proto,
            LB_ADDR.octets(),
            REAL_ADDRS[0].octets(),
        ));
        f
    };

    set_tun_service(&mut ebpf, LB_ACTIVE | LB_TUN | LB_TUN_GRE, 0);
    let mut want = outer(inner.len() + 24, 47);
    want.extend_from_slice(&[0, 0, 0x08, 0x00]);
    want.extend_from_slice(&inner);
    assert_eq!(run(&mut ebpf, &syn), (XDP_TX, want), "GRE");

    set_tun_service(&mut ebpf, LB_ACTIVE | LB_TUN | LB_TUN_GUE, 6080);
    let mut flow = LbFlowKey {
        sport: 44000,
        dport: 80,
        proto: IPPROTO_TCP,
        family: xvrrp_common::FAMILY_V4,
        ..Default::default()
    };
    flow.src[..4].copy_from_slice(&CLIENT.octets());
    flow.dst[..4].copy_from_slice(&VIP.octets());
    let sport = 0xc000 | (lb_hash(&lb_flow_words(&flow, false)) & 0x3fff) as u16;
    let mut want = outer(inner.len() + 32, 17);
    want.extend_from_slice(&sport.to_be_bytes());
    want.extend_from_slice(&6080u16.to_be_bytes());
    want.extend_from_slice(&((inner.len() + 12) as u16).to_be_bytes());
    want.extend_from_slice(&[0, 0, 0, 4, 0, 0]);
    want.extend_from_slice(&inner);
    assert_eq!(run(&mut ebpf, &syn), (XDP_TX, want), "GUE");

    // Fits with IPIP's 20 bytes, not with GUE's 32: ICMP, next-hop MTU 1468.
    let df = big_frame(44001, (MTU - 31) as usize, true);
    let want = frag_needed(&df, (MTU - 32) as u16);
    assert_eq!(run(&mut ebpf, &df), (XDP_TX, want), "GUE: too big");
}

/// A real behind another interface than the one the frame came in on:
/// XDP_REDIRECT through the devmap slot of the real's index, the MACs
/// rewritten as for XDP_TX (in a namespace of its own, with a veth there).
#[test]
fn a_real_behind_another_interface_is_reached_by_redirect() {
    require_root();
    let ns = xvrrp_tests::Netns::new("lbredir").unwrap();
    ns.ip(&["link", "add", "r0", "type", "veth", "peer", "name", "r1"])
        .unwrap();
    ns.ip(&["link", "set", "r0", "up"]).unwrap();
    let got = ns
        .run(|| {
            let index = xvrrp::net::iface::ifindex("r0")?;
            let mut ebpf = dataplane::load()?;
            xvrrp_tests::lbpkt::set_real_on(&mut ebpf, 0, true, index);
            let mut tx = aya::maps::DevMap::try_from(
                ebpf.map_mut(xvrrp_common::MAP_LB_TX)
                    .ok_or_else(|| anyhow::anyhow!("no LB_TX"))?,
            )?;
            tx.set(0, index, None, 0)?;
            fill_table(&mut ebpf, Some(0));
            set_service(&mut ebpf, LB_ACTIVE);
            let syn = frame(IPPROTO_TCP, 45000, 80, SYN);
            let (verdict, out) = run(&mut ebpf, &syn);
            Ok((verdict, out == to_real(&syn, 0)))
        })
        .unwrap();
    assert_eq!(got, (4, true), "XDP_REDIRECT with the real's MACs");
}

/// IPv6: DR rewrites only the MACs; TUN wraps the packet in an outer IPv6
/// header (next header 41, traffic class copied, the flow's hash as flow
/// label, hop limit 64) from the load balancer to the real; a packet too
/// big once wrapped is answered with ICMPv6 Packet Too Big (MTU - 40),
/// quoting the first 1,232 bytes of the packet (RFC 4443 §2.4: as much as
/// fits in 1,280), its checksum checked here independently.
#[test]
fn ipv6_dr_and_tun_and_packet_too_big() {
    use xvrrp::wire::checksum;
    use xvrrp_common::{lb_flow_words, lb_hash, LbFlowKey, FAMILY_V6, LB_TUN};
    use xvrrp_tests::lbpkt::{
        frame6, set_real6, set_service6, CLIENT6, CLIENT_MAC, LB_ADDR6, LB_MAC, MTU, REAL_ADDRS6,
        REAL_MACS, VIP6,
    };
    require_root();
    let mut ebpf = dataplane::load().unwrap();
    set_real6(&mut ebpf, 0, true);
    fill_table(&mut ebpf, Some(0));
    set_service6(&mut ebpf, LB_ACTIVE);
    let syn = frame6(IPPROTO_TCP, 44000, 80, SYN);
    assert_eq!(run(&mut ebpf, &syn), (XDP_TX, to_real(&syn, 0)), "DR");
    let other = frame6(IPPROTO_TCP, 44000, 81, SYN);
    assert_eq!(
        run(&mut ebpf, &other),
        (XDP_PASS, other.clone()),
        "not a service"
    );

    set_service6(&mut ebpf, LB_ACTIVE | LB_TUN);
    let inner = syn[14..].to_vec();
    let flow = LbFlowKey {
        src: CLIENT6.octets(),
        dst: VIP6.octets(),
        sport: 44000,
        dport: 80,
        proto: IPPROTO_TCP,
        family: FAMILY_V6,
        ..Default::default()
    };
    let label = lb_hash(&lb_flow_words(&flow, false)) & 0xfffff;
    let tclass = (inner[0] << 4) | (inner[1] >> 4);
    let mut want = REAL_MACS[0].to_vec();
    want.extend_from_slice(&LB_MAC);
    want.extend_from_slice(&[0x86, 0xdd]);
    want.extend_from_slice(&((6u32 << 28) | (u32::from(tclass) << 20) | label).to_be_bytes());
    want.extend_from_slice(&(inner.len() as u16).to_be_bytes());
    want.extend_from_slice(&[41, 64]);
    want.extend_from_slice(&LB_ADDR6.octets());
    want.extend_from_slice(&REAL_ADDRS6[0].octets());
    want.extend_from_slice(&inner);
    assert_eq!(run(&mut ebpf, &syn), (XDP_TX, want), "TUN: IPv6 in IPv6");

    // 1,461 bytes of IPv6 + 40 of tunnel > 1,500.
    let mut big = frame6(IPPROTO_TCP, 44001, 80, ACK);
    let total = (MTU - 39) as usize;
    big.resize(14 + total, 0xab);
    for (i, b) in big[14 + 60..].iter_mut().enumerate() {
        *b = i as u8; // a quote whose bytes differ
    }
    big[18..20].copy_from_slice(&((total - 40) as u16).to_be_bytes());
    let quote = &big[14..14 + 1232];
    let mut icmp = vec![2, 0, 0, 0];
    icmp.extend_from_slice(&(MTU - 40).to_be_bytes());
    icmp.extend_from_slice(quote);
    let sum = checksum::finish(checksum::combine(
        checksum::pseudo_v6(LB_ADDR6, CLIENT6, 58, icmp.len() as u32),
        checksum::sum(&icmp),
    ));
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut want = CLIENT_MAC.to_vec();
    want.extend_from_slice(&LB_MAC);
    want.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    want.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    want.extend_from_slice(&[58, 64]);
    want.extend_from_slice(&LB_ADDR6.octets());
    want.extend_from_slice(&CLIENT6.octets());
    want.extend_from_slice(&icmp);
    assert_eq!(want.len(), 14 + 1280);
    let before = counter(&ebpf, counter::LB_ICMP_TOO_BIG);
    let (verdict, out) = run(&mut ebpf, &big);
    assert_eq!(verdict, XDP_TX);
    assert_eq!(out.len(), want.len());
    assert_eq!(out[..62], want[..62], "headers");
    assert_eq!(out, want, "quote");
    assert_eq!(counter(&ebpf, counter::LB_ICMP_TOO_BIG), before + 1);
}
