//! Golden bytes: adverts captured from Debian's keepalived 2.2.7 in a network
//! namespace (tcpdump -w), committed as whole Ethernet frames.

use super::*;
use crate::wire::{ethernet, ip};

const KA_V2_NOAUTH: &[u8] = include_bytes!("../fixtures/keepalived_v2_noauth.bin");
const KA_V2_PASS: &[u8] = include_bytes!("../fixtures/keepalived_v2_pass.bin");
const KA_V3_V4: &[u8] = include_bytes!("../fixtures/keepalived_v3_ipv4.bin");
const KA_V3_V6: &[u8] = include_bytes!("../fixtures/keepalived_v3_ipv6.bin");

/// Splits a captured frame into the IP header and the VRRP message.
fn open(frame: &[u8]) -> (ip::Repr, Vec<u8>) {
    let (_eth, payload) = ethernet::split(frame).unwrap();
    let (iph, vrrp) = ip::Repr::parse(payload).unwrap();
    (iph, vrrp.to_vec())
}

fn endpoints(iph: &ip::Repr) -> Endpoints {
    Endpoints {
        src: iph.src,
        dst: iph.dst,
    }
}

fn v4(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn keepalived_v2_without_auth() {
    let (iph, msg) = open(KA_V2_NOAUTH);
    assert_eq!(iph.ttl, 255);
    assert_eq!(iph.dst, IpAddr::from(MCAST_V4));
    let p = Packet::new_checked(&msg[..], Family::V4).unwrap();
    let repr = Repr::parse(&p).unwrap();
    assert_eq!(
        repr,
        Repr {
            version: Version::V2,
            vrid: 51,
            priority: 150,
            interval_cs: 100,
            auth: Auth::None,
            addresses: vec![v4("10.77.0.100")],
        }
    );
    assert_eq!(p.verify_checksum(&endpoints(&iph)), Ok(ChecksumMode::Plain));
    // Emitting the same repr reproduces keepalived's bytes exactly.
    assert_eq!(repr.to_bytes(ChecksumMode::Plain, &endpoints(&iph)), msg);
}

#[test]
fn keepalived_v2_with_pass() {
    let (iph, msg) = open(KA_V2_PASS);
    let p = Packet::new_checked(&msg[..], Family::V4).unwrap();
    let repr = Repr::parse(&p).unwrap();
    assert_eq!(repr.auth, Auth::pass("admin"));
    assert_eq!(repr.addresses, vec![v4("10.77.0.101"), v4("10.77.0.102")]);
    assert_eq!(repr.priority, 100);
    assert_eq!(p.verify_checksum(&endpoints(&iph)), Ok(ChecksumMode::Plain));
    assert_eq!(repr.to_bytes(ChecksumMode::Plain, &endpoints(&iph)), msg);
}

#[test]
fn keepalived_v3_ipv4_uses_the_pseudo_header() {
    let (iph, msg) = open(KA_V3_V4);
    let p = Packet::new_checked(&msg[..], Family::V4).unwrap();
    let repr = Repr::parse(&p).unwrap();
    assert_eq!(repr.version, Version::V3);
    assert_eq!(repr.vrid, 53);
    assert_eq!(repr.priority, 200);
    assert_eq!(repr.interval_cs, 50, "advert_int 0.5");
    assert_eq!(
        p.verify_checksum(&endpoints(&iph)),
        Ok(ChecksumMode::PseudoHeader),
        "keepalived's default for v3/IPv4"
    );
    assert_eq!(
        repr.to_bytes(ChecksumMode::PseudoHeader, &endpoints(&iph)),
        msg
    );
    // The RFC 9568 form differs, and verifies as Plain.
    let rfc = repr.to_bytes(ChecksumMode::Plain, &endpoints(&iph));
    assert_ne!(rfc, msg);
    let rp = Packet::new_checked(&rfc[..], Family::V4).unwrap();
    assert_eq!(
        rp.verify_checksum(&endpoints(&iph)),
        Ok(ChecksumMode::Plain)
    );
}

#[test]
fn keepalived_v3_ipv6() {
    let (iph, msg) = open(KA_V3_V6);
    assert_eq!(iph.dst, IpAddr::from(MCAST_V6));
    assert!(
        matches!(iph.src, IpAddr::V6(a) if a.segments()[0] == 0xfe80),
        "from the link-local"
    );
    let p = Packet::new_checked(&msg[..], Family::V6).unwrap();
    let repr = Repr::parse(&p).unwrap();
    assert_eq!(repr.vrid, 54);
    assert_eq!(repr.addresses, vec!["fd77::54".parse::<IpAddr>().unwrap()]);
    assert_eq!(
        p.verify_checksum(&endpoints(&iph)),
        Ok(ChecksumMode::PseudoHeader)
    );
    assert_eq!(
        repr.to_bytes(ChecksumMode::PseudoHeader, &endpoints(&iph)),
        msg
    );
}

#[test]
fn rfc9568_5_2_5_an_advert_without_addresses_is_refused_as_in_xdp() {
    let (_, mut msg) = open(KA_V3_V4);
    msg[3] = 0; // Count IPvX Addr
    let p = Packet::new_checked(&msg[..], Family::V4).unwrap();
    assert_eq!(
        Repr::parse(&p),
        Err(Error::Field {
            what: "VRRP",
            field: "count",
            value: 0
        })
    );
}

#[test]
fn an_ipv6_advert_without_addresses_is_checksummed_as_ipv6() {
    let repr = Repr {
        version: Version::V3,
        vrid: 7,
        priority: 100,
        interval_cs: 100,
        auth: Auth::None,
        addresses: vec![],
    };
    let ep = Endpoints {
        src: "fe80::1".parse().unwrap(),
        dst: IpAddr::from(MCAST_V6),
    };
    let bytes = repr.to_bytes(ChecksumMode::PseudoHeader, &ep);
    let p = Packet::new_checked(&bytes[..], Family::V6).unwrap();
    assert_eq!(p.verify_checksum(&ep), Ok(ChecksumMode::PseudoHeader));
}

#[test]
fn keepalived_an_old_unicast_peers_group_pseudo_header_is_accepted() {
    let repr = Repr {
        version: Version::V3,
        vrid: 7,
        priority: 100,
        interval_cs: 100,
        auth: Auth::None,
        addresses: vec![v4("10.0.0.100")],
    };
    let src = v4("10.0.0.2");
    let group = Endpoints {
        src,
        dst: IpAddr::from(MCAST_V4),
    };
    let bytes = repr.to_bytes(ChecksumMode::PseudoHeader, &group);
    let p = Packet::new_checked(&bytes[..], Family::V4).unwrap();
    let to_us = Endpoints {
        src,
        dst: v4("10.0.0.1"),
    };
    assert_eq!(p.verify_checksum(&to_us), Ok(ChecksumMode::PseudoHeader));
    // Only for unicast-addressed adverts, and only with the group.
    let mut bad = bytes.clone();
    bad[2] ^= 1;
    let p = Packet::new_checked(&bad[..], Family::V4).unwrap();
    assert!(p.verify_checksum(&to_us).is_err());
}

#[test]
fn a_flipped_bit_fails_the_checksum() {
    let (iph, mut msg) = open(KA_V3_V4);
    msg[2] ^= 0x01;
    let p = Packet::new_checked(&msg[..], Family::V4).unwrap();
    assert_eq!(
        p.verify_checksum(&endpoints(&iph)),
        Err(Error::Checksum { what: "VRRP" })
    );
}

#[test]
fn truncated_at_every_length_is_an_error_not_a_panic() {
    for frame in [KA_V2_NOAUTH, KA_V2_PASS, KA_V3_V4] {
        let (_, msg) = open(frame);
        for len in 0..msg.len() {
            assert!(
                Packet::new_checked(&msg[..len], Family::V4).is_err(),
                "len {len} accepted"
            );
        }
    }
    let (_, msg) = open(KA_V3_V6);
    for len in 0..msg.len() {
        assert!(Packet::new_checked(&msg[..len], Family::V6).is_err());
    }
}

#[test]
fn wrong_version_and_type_are_named() {
    let (_, mut msg) = open(KA_V3_V4);
    msg[0] = 0x41;
    assert!(matches!(
        Packet::new_checked(&msg[..], Family::V4),
        Err(Error::Field {
            field: "version",
            value: 4,
            ..
        })
    ));
    let (_, mut msg) = open(KA_V3_V6);
    msg[0] = 0x21; // v2 over IPv6 does not exist
    assert!(Packet::new_checked(&msg[..], Family::V6).is_err());
    let (_, mut msg) = open(KA_V3_V4);
    msg[0] = 0x32;
    let p = Packet::new_checked(&msg[..], Family::V4).unwrap();
    assert!(matches!(
        Repr::parse(&p),
        Err(Error::Field { field: "type", .. })
    ));
    let (_, mut msg) = open(KA_V2_NOAUTH);
    msg[4] = 2; // IP AH
    let p = Packet::new_checked(&msg[..], Family::V4).unwrap();
    assert!(matches!(
        Repr::parse(&p),
        Err(Error::Field {
            field: "auth_type",
            ..
        })
    ));
}

#[test]
fn interval_zero_is_refused() {
    // Found by cargo-fuzz: a v2 advert with Adver Int 0 parsed, then
    // re-emitted as 1 s.
    let crash = [
        0x21, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x32, 0x00, 0x32, 0x32,
        0xff, 0xf9, 0x00, 0x00, 0x0c, 0x00,
    ];
    let p = Packet::new_checked(&crash[..], Family::V4).unwrap();
    assert!(matches!(
        Repr::parse(&p),
        Err(Error::Field {
            field: "interval",
            ..
        })
    ));
    assert!(
        !crate::wire::fuzz::vrrp(&[&[0u8][..], &crash[..]].concat()),
        "refused, not re-emitted"
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn repr_strategy() -> impl Strategy<Value = Repr> {
        (
            any::<bool>(),
            any::<bool>(),
            1u8..=255,
            any::<u8>(),
            1u16..=4095,
            1usize..20,
            any::<[u8; 8]>(),
            any::<bool>(),
        )
            .prop_flat_map(|(v3, v6, vrid, prio, int, n, pass, with_pass)| {
                let v6 = v3 && v6;
                let addrs = if v6 {
                    proptest::collection::vec(any::<[u8; 16]>().prop_map(IpAddr::from), n).boxed()
                } else {
                    proptest::collection::vec(any::<[u8; 4]>().prop_map(IpAddr::from), n).boxed()
                };
                addrs.prop_map(move |addresses| Repr {
                    version: if v3 { Version::V3 } else { Version::V2 },
                    vrid,
                    priority: prio,
                    interval_cs: if v3 { int } else { (int % 255 + 1) * 100 },
                    auth: if !v3 && with_pass {
                        Auth::Pass(pass)
                    } else {
                        Auth::None
                    },
                    addresses,
                })
            })
    }

    proptest! {
        #[test]
        fn emit_then_parse_is_identity(repr in repr_strategy(), pseudo in any::<bool>()) {
            let ep = if repr.family() == Family::V6 {
                Endpoints { src: "fe80::1".parse().unwrap(), dst: MCAST_V6.into() }
            } else {
                Endpoints { src: "10.0.0.1".parse().unwrap(), dst: MCAST_V4.into() }
            };
            let mode = if pseudo { ChecksumMode::PseudoHeader } else { ChecksumMode::Plain };
            let bytes = repr.to_bytes(mode, &ep);
            prop_assert_eq!(bytes.len(), repr.buffer_len());
            let p = Packet::new_checked(&bytes[..], repr.family()).unwrap();
            prop_assert!(p.verify_checksum(&ep).is_ok());
            prop_assert_eq!(Repr::parse(&p).unwrap(), repr);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), v6 in any::<bool>()) {
            let fam = if v6 { Family::V6 } else { Family::V4 };
            if let Ok(p) = Packet::new_checked(&bytes[..], fam) {
                let _ = Repr::parse(&p);
                let _ = p.verify_checksum(&Endpoints { src: "10.0.0.1".parse().unwrap(), dst: "10.0.0.2".parse().unwrap() });
            }
        }
    }
}
