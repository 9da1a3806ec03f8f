//! Whole Ethernet frames assembled from the reprs: what the agent sends
//! through a packet socket (GARP, unsolicited NA) and what tests inject.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{arp, ethernet, icmpv6, ip, vrrp};

fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    ethernet::frame(
        &ethernet::Repr {
            dst,
            src,
            vlan: None,
            ethertype,
        },
        payload,
    )
}

/// A gratuitous ARP (request form by default, RFC 5227 §3) to broadcast.
pub fn garp(mac: [u8; 6], vip: Ipv4Addr, reply: bool) -> Vec<u8> {
    let repr = if reply {
        arp::Repr::gratuitous_reply(mac, vip)
    } else {
        arp::Repr::gratuitous(mac, vip)
    };
    eth(
        ethernet::BROADCAST,
        mac,
        ethernet::ethertype::ARP,
        &repr.to_bytes(),
    )
}

/// An ARP request from (`mac`, `sender`) for `target`, to broadcast.
pub fn arp_request(mac: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let repr = arp::Repr {
        operation: arp::Operation::Request,
        sender_mac: mac,
        sender_ip: sender,
        target_mac: [0; 6],
        target_ip: target,
    };
    eth(
        ethernet::BROADCAST,
        mac,
        ethernet::ethertype::ARP,
        &repr.to_bytes(),
    )
}

fn ipv6_frame(src_mac: [u8; 6], dst_mac: [u8; 6], iph: ip::Repr, payload: &[u8]) -> Vec<u8> {
    eth(
        dst_mac,
        src_mac,
        ethernet::ethertype::IPV6,
        &iph.packet(payload),
    )
}

/// An unsolicited NA for `vip` to all-nodes (RFC 4861 §7.2.6), source the VIP.
pub fn unsolicited_na(mac: [u8; 6], vip: Ipv6Addr, router: bool) -> Vec<u8> {
    let msg = icmpv6::Repr::unsolicited_advert(vip, mac, router).to_bytes(vip, icmpv6::ALL_NODES);
    let iph = ip::Repr {
        src: vip.into(),
        dst: icmpv6::ALL_NODES.into(),
        protocol: icmpv6::NEXT_HEADER,
        ttl: 255,
        payload_len: msg.len(),
    };
    ipv6_frame(
        mac,
        ethernet::ipv6_multicast_mac(&icmpv6::ALL_NODES),
        iph,
        &msg,
    )
}

/// A Neighbor Solicitation from (`mac`, `src`) for `target`, to its
/// solicited-node group (`src` = :: for duplicate address detection).
pub fn neighbor_solicit(mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let dst = icmpv6::solicited_node(&target);
    let ns = icmpv6::Repr::Solicit {
        target,
        source_lladdr: (!src.is_unspecified()).then_some(mac),
    };
    let msg = ns.to_bytes(src, dst);
    let iph = ip::Repr {
        src: src.into(),
        dst: dst.into(),
        protocol: icmpv6::NEXT_HEADER,
        ttl: 255,
        payload_len: msg.len(),
    };
    ipv6_frame(mac, ethernet::ipv6_multicast_mac(&dst), iph, &msg)
}

/// A VRRP advert as a whole multicast frame from `src`, with `ttl`.
pub fn advert(
    mac: [u8; 6],
    src: IpAddr,
    ttl: u8,
    repr: &vrrp::Repr,
    mode: vrrp::ChecksumMode,
) -> Vec<u8> {
    let dst = repr.family().multicast();
    let msg = repr.to_bytes(mode, &vrrp::Endpoints { src, dst });
    advert_bytes(mac, src, ttl, &msg)
}

/// An advert frame sent to one unicast address (`dst`, at `dst_mac`), as
/// unicast peers send them.
pub fn advert_to(
    mac: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    dst_mac: [u8; 6],
    ttl: u8,
    repr: &vrrp::Repr,
    mode: vrrp::ChecksumMode,
) -> Vec<u8> {
    let msg = repr.to_bytes(mode, &vrrp::Endpoints { src, dst });
    vrrp_frame(mac, src, dst, dst_mac, ttl, &msg)
}

/// A frame carrying `msg` (any bytes) as a VRRP payload from `src`, to the
/// VRRP group of `src`'s family: for malformed adverts in tests.
pub fn advert_bytes(mac: [u8; 6], src: IpAddr, ttl: u8, msg: &[u8]) -> Vec<u8> {
    let (dst, dst_mac) = match src {
        IpAddr::V4(_) => (
            IpAddr::from(vrrp::MCAST_V4),
            ethernet::ipv4_multicast_mac(&vrrp::MCAST_V4),
        ),
        IpAddr::V6(_) => (
            IpAddr::from(vrrp::MCAST_V6),
            ethernet::ipv6_multicast_mac(&vrrp::MCAST_V6),
        ),
    };
    vrrp_frame(mac, src, dst, dst_mac, ttl, msg)
}

/// `msg` (any bytes) as the VRRP payload of an IP packet from `src` to
/// `dst`, in an Ethernet frame to `dst_mac`.
pub fn vrrp_frame(
    mac: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    dst_mac: [u8; 6],
    ttl: u8,
    msg: &[u8],
) -> Vec<u8> {
    let ethertype = match src {
        IpAddr::V4(_) => ethernet::ethertype::IPV4,
        IpAddr::V6(_) => ethernet::ethertype::IPV6,
    };
    let iph = ip::Repr {
        src,
        dst,
        protocol: vrrp::PROTOCOL,
        ttl,
        payload_len: msg.len(),
    };
    eth(dst_mac, mac, ethertype, &iph.packet(msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garp_frame_golden() {
        let f = garp([2, 0, 0, 0, 0, 1], Ipv4Addr::new(192, 168, 1, 8), false);
        assert_eq!(f.len(), 14 + 28);
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        let reply = garp([2, 0, 0, 0, 0, 1], Ipv4Addr::new(192, 168, 1, 8), true);
        assert_eq!(reply[14 + 7], 2);
    }

    #[test]
    fn advert_frames_have_a_valid_ipv4_header_checksum() {
        use super::super::checksum;
        for (vrid, prio, a) in [
            (99u8, 100u8, [10, 9, 9, 9]),
            (51, 50, [10, 1, 7, 58]),
            (1, 255, [255, 255, 255, 255]),
        ] {
            let repr = vrrp::Repr {
                version: vrrp::Version::V2,
                vrid,
                priority: prio,
                interval_cs: 100,
                auth: vrrp::Auth::None,
                addresses: vec![IpAddr::V4(Ipv4Addr::from(a))],
            };
            let f = advert(
                [2, 0, 0, 0, 0, 3],
                "10.77.0.3".parse().unwrap(),
                255,
                &repr,
                vrrp::ChecksumMode::Plain,
            );
            assert_eq!(
                checksum::finish(checksum::sum(&f[14..34])),
                0,
                "IPv4 header checksum, vrid {vrid}"
            );
        }
    }

    #[test]
    fn unsolicited_na_frame_parses_back() {
        let vip: Ipv6Addr = "fd00::8".parse().unwrap();
        let f = unsolicited_na([2, 0, 0, 0, 0, 1], vip, false);
        let (e, payload) = ethernet::split(&f).unwrap();
        assert_eq!(e.dst, [0x33, 0x33, 0, 0, 0, 1]);
        let (iph, msg) = ip::Repr::parse(payload).unwrap();
        assert_eq!(iph.ttl, 255, "RFC 4861 §7.1.2: hop limit 255");
        assert!(icmpv6::verify_checksum(msg, vip, icmpv6::ALL_NODES));
        assert!(matches!(
            icmpv6::Repr::parse(msg).unwrap(),
            icmpv6::Repr::Advert {
                solicited: false,
                override_: true,
                router: false,
                ..
            }
        ));
    }
}
