//! Fuzz bodies: the cargo-fuzz targets in agent/fuzz call these, and the
//! unit tests run them over random bytes too. Each parses, and whatever
//! parses must re-emit to bytes that parse back to the same value. Each
//! says whether the input went the whole way (parsed and checked), so a
//! test over known-good captures fails when they stop parsing.

use std::net::{IpAddr, Ipv6Addr};

use super::{arp, ethernet, icmpv6, ip, vrrp};

/// First byte picks the family; the rest is a VRRP message. True when it
/// parsed and went through the emit/parse round trip.
pub fn vrrp(data: &[u8]) -> bool {
    let Some((&sel, msg)) = data.split_first() else {
        return false;
    };
    let (family, ep) = if sel & 1 == 0 {
        (vrrp::Family::V4, endpoints("10.0.0.1", "224.0.0.18"))
    } else {
        (vrrp::Family::V6, endpoints("fe80::1", "ff02::12"))
    };
    let Ok(packet) = vrrp::Packet::new_checked(msg, family) else {
        return false;
    };
    let verified = packet.verify_checksum(&ep);
    let Ok(repr) = vrrp::Repr::parse(&packet) else {
        return false;
    };
    if repr.addresses.is_empty()
        || (repr.version == vrrp::Version::V2 && repr.interval_cs % 100 != 0)
    {
        return false;
    }
    let mode = verified.unwrap_or(vrrp::ChecksumMode::PseudoHeader);
    let bytes = repr.to_bytes(mode, &ep);
    let again = vrrp::Packet::new_checked(&bytes[..], family).expect("emitted advert parses");
    assert!(
        again.verify_checksum(&ep).is_ok(),
        "emitted checksum verifies"
    );
    assert_eq!(vrrp::Repr::parse(&again).expect("parses"), repr);
    true
}

/// A whole frame, dispatched like the agent's receive path. True when it
/// was an ARP, VRRP or ND message that parsed with a valid checksum.
pub fn frame(data: &[u8]) -> bool {
    let Ok((eth, payload)) = ethernet::split(data) else {
        return false;
    };
    match eth.ethertype {
        ethernet::ethertype::ARP => {
            if let Ok(p) = arp::Packet::new_checked(payload) {
                if let Ok(r) = arp::Repr::parse(&p) {
                    let b = r.to_bytes();
                    let back =
                        arp::Repr::parse(&arp::Packet::new_checked(&b[..]).expect("emitted ARP"));
                    assert_eq!(back.expect("parses"), r);
                    return true;
                }
            }
            false
        }
        ethernet::ethertype::IPV4 | ethernet::ethertype::IPV6 => {
            let Ok((iph, body)) = ip::Repr::parse(payload) else {
                return false;
            };
            match iph.protocol {
                vrrp::PROTOCOL => {
                    let fam = vrrp::Family::of(&iph.src);
                    let Ok(p) = vrrp::Packet::new_checked(body, fam) else {
                        return false;
                    };
                    let verified = p.verify_checksum(&vrrp::Endpoints {
                        src: iph.src,
                        dst: iph.dst,
                    });
                    verified.is_ok() && vrrp::Repr::parse(&p).is_ok()
                }
                icmpv6::NEXT_HEADER => {
                    let verified = match (iph.src, iph.dst) {
                        (IpAddr::V6(s), IpAddr::V6(d)) => icmpv6::verify_checksum(body, s, d),
                        _ => false,
                    };
                    icmpv6::Repr::parse(body).is_ok() && verified
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// An ND message; true when it parsed and round-tripped.
pub fn icmpv6(data: &[u8]) -> bool {
    let Ok(repr) = icmpv6::Repr::parse(data) else {
        return false;
    };
    let (s, d): (Ipv6Addr, Ipv6Addr) = ("fe80::1".parse().unwrap(), icmpv6::ALL_NODES);
    let bytes = repr.to_bytes(s, d);
    assert!(icmpv6::verify_checksum(&bytes, s, d));
    assert_eq!(
        icmpv6::Repr::parse(&bytes).expect("emitted ND parses"),
        repr
    );
    true
}

fn endpoints(src: &str, dst: &str) -> vrrp::Endpoints {
    vrrp::Endpoints {
        src: src.parse().expect("literal"),
        dst: dst.parse().expect("literal"),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        #[test]
        fn fuzz_bodies_hold_on_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..120)) {
            // Random bytes need not parse: what counts is no panic.
            let _ = (super::vrrp(&data), super::frame(&data), super::icmpv6(&data));
        }
    }

    #[test]
    fn fuzz_bodies_hold_on_the_keepalived_captures() {
        for f in [
            &include_bytes!("fixtures/keepalived_v2_noauth.bin")[..],
            include_bytes!("fixtures/keepalived_v2_pass.bin"),
            include_bytes!("fixtures/keepalived_v3_ipv4.bin"),
            include_bytes!("fixtures/keepalived_v3_ipv6.bin"),
        ] {
            assert!(
                super::frame(f),
                "a keepalived capture no longer parses as a frame"
            );
            let mut sel = vec![if f[12] == 0x86 { 1 } else { 0 }];
            let l3 = if f[12] == 0x86 { 54 } else { 34 };
            sel.extend_from_slice(&f[l3..]);
            assert!(
                super::vrrp(&sel),
                "a keepalived advert no longer round-trips"
            );
        }
    }
}
