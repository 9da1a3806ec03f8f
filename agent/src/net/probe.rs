//! Who answers ARP / Neighbor Solicitation for an address on this segment:
//! `xvrrp probe`, the lab's timeline, and the tests' client checks.

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::{Duration, Instant},
};

use super::packet::PacketSocket;
use crate::wire::{arp, build, ethernet, icmpv6, ip};

/// A packet socket on `interface` ready to probe from (`mac`, `ip`).
pub struct Prober {
    sock: PacketSocket,
    mac: [u8; 6],
    v4: Ipv4Addr,
    v6: Ipv6Addr,
}

impl Prober {
    pub fn open(interface: &str) -> anyhow::Result<Prober> {
        let sock = PacketSocket::open(interface, true)?;
        sock.set_read_timeout(Duration::from_millis(20))?;
        let v4 = match super::iface::primary(interface, false, &[]) {
            Some(IpAddr::V4(a)) => a,
            _ => Ipv4Addr::UNSPECIFIED, // an ARP probe (RFC 5227) still gets replies
        };
        let v6 = super::iface::addresses(interface)
            .into_iter()
            .find_map(|(a, _)| match a {
                IpAddr::V6(v) => Some(v),
                _ => None,
            })
            .unwrap_or(Ipv6Addr::UNSPECIFIED);
        Ok(Prober {
            sock,
            mac: super::iface::mac(interface)?,
            v4,
            v6,
        })
    }

    /// Asks once and returns every MAC that answered within `wait`.
    pub fn who_has(&self, target: IpAddr, wait: Duration) -> anyhow::Result<BTreeSet<[u8; 6]>> {
        let frame = match target {
            IpAddr::V4(t) => build::arp_request(self.mac, self.v4, t),
            IpAddr::V6(t) => build::neighbor_solicit(self.mac, self.v6, t),
        };
        self.sock.send(&frame)?;
        let mut seen = BTreeSet::new();
        let mut buf = [0u8; 2048];
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if let Ok(n) = self.sock.recv(&mut buf) {
                if let Some(mac) = answer(&buf[..n], target, self.mac) {
                    seen.insert(mac);
                }
            }
        }
        Ok(seen)
    }
}

/// The MAC an answer for `target` names, if `frame` is one.
fn answer(frame: &[u8], target: IpAddr, mine: [u8; 6]) -> Option<[u8; 6]> {
    let (e, payload) = ethernet::split(frame).ok()?;
    if e.src == mine {
        return None;
    }
    match (e.ethertype, target) {
        (ethernet::ethertype::ARP, IpAddr::V4(t)) => {
            let r = arp::Repr::parse(&arp::Packet::new_checked(payload).ok()?).ok()?;
            (r.operation == arp::Operation::Reply && r.sender_ip == t).then_some(r.sender_mac)
        }
        (ethernet::ethertype::IPV6, IpAddr::V6(t)) => {
            let (iph, body) = ip::Repr::parse(payload).ok()?;
            if iph.protocol != icmpv6::NEXT_HEADER {
                return None;
            }
            match icmpv6::Repr::parse(body).ok()? {
                icmpv6::Repr::Advert {
                    target,
                    target_lladdr,
                    solicited: true,
                    ..
                } if target == t => Some(target_lladdr.unwrap_or(e.src)),
                _ => None,
            }
        }
        _ => None,
    }
}

pub fn format_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
