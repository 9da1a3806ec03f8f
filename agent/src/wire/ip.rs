//! The IPv4 and IPv6 headers around VRRP adverts and neighbour discovery.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{be16, checksum, need, put_be16, Error, Result};

pub const IPV4_HEADER_LEN: usize = 20;
pub const IPV6_HEADER_LEN: usize = 40;

/// The IP header fields xvrrp looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 protocol / IPv6 next header.
    pub protocol: u8,
    /// IPv4 TTL / IPv6 hop limit.
    pub ttl: u8,
    pub payload_len: usize,
}

impl Repr {
    pub fn header_len(&self) -> usize {
        match self.src {
            IpAddr::V4(_) => IPV4_HEADER_LEN,
            IpAddr::V6(_) => IPV6_HEADER_LEN,
        }
    }

    /// Parses an IPv4 or IPv6 header (by its version nibble), returning it and
    /// the payload it announces. IPv6 extension headers are not followed.
    pub fn parse(packet: &[u8]) -> Result<(Repr, &[u8])> {
        need("IP header", packet, 1)?;
        match packet[0] >> 4 {
            4 => parse_v4(packet),
            6 => parse_v6(packet),
            v => Err(Error::Field {
                what: "IP",
                field: "version",
                value: v as u32,
            }),
        }
    }

    /// Writes the header into `buf`, followed by nothing: the caller appends
    /// `payload_len` bytes. IPv4 gets DSCP CS6 (as keepalived sends) and its
    /// header checksum.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        need("IP buffer", buf, self.header_len())?;
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let b = &mut buf[..IPV4_HEADER_LEN];
                b.fill(0);
                b[0] = 0x45;
                b[1] = 0xc0;
                put_be16(b, 2..4, (IPV4_HEADER_LEN + self.payload_len) as u16);
                b[8] = self.ttl;
                b[9] = self.protocol;
                b[12..16].copy_from_slice(&s.octets());
                b[16..20].copy_from_slice(&d.octets());
                let c = checksum::finish(checksum::sum(b));
                put_be16(b, 10..12, c);
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let b = &mut buf[..IPV6_HEADER_LEN];
                b.fill(0);
                b[0] = 0x6c; // version 6, traffic class CS6
                put_be16(b, 4..6, self.payload_len as u16);
                b[6] = self.protocol;
                b[7] = self.ttl;
                b[8..24].copy_from_slice(&s.octets());
                b[24..40].copy_from_slice(&d.octets());
            }
            _ => {
                return Err(Error::Field {
                    what: "IP",
                    field: "address family",
                    value: 0,
                })
            }
        }
        Ok(())
    }

    /// Header + payload as one packet.
    pub fn packet(&self, payload: &[u8]) -> Vec<u8> {
        let repr = Repr {
            payload_len: payload.len(),
            ..*self
        };
        let mut buf = vec![0u8; repr.header_len() + payload.len()];
        repr.emit(&mut buf).expect("sized above");
        buf[repr.header_len()..].copy_from_slice(payload);
        buf
    }
}

fn parse_v4(p: &[u8]) -> Result<(Repr, &[u8])> {
    need("IPv4 header", p, IPV4_HEADER_LEN)?;
    let ihl = (p[0] & 0x0f) as usize * 4;
    if ihl < IPV4_HEADER_LEN {
        return Err(Error::Field {
            what: "IPv4",
            field: "ihl",
            value: ihl as u32,
        });
    }
    let total = be16(p, 2..4) as usize;
    need("IPv4 packet", p, total.max(ihl))?;
    if total < ihl {
        return Err(Error::Field {
            what: "IPv4",
            field: "total_length",
            value: total as u32,
        });
    }
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    Ok((
        Repr {
            src: src.into(),
            dst: dst.into(),
            protocol: p[9],
            ttl: p[8],
            payload_len: total - ihl,
        },
        &p[ihl..total],
    ))
}

fn parse_v6(p: &[u8]) -> Result<(Repr, &[u8])> {
    need("IPv6 header", p, IPV6_HEADER_LEN)?;
    let len = be16(p, 4..6) as usize;
    need("IPv6 packet", p, IPV6_HEADER_LEN + len)?;
    let mut s = [0u8; 16];
    let mut d = [0u8; 16];
    s.copy_from_slice(&p[8..24]);
    d.copy_from_slice(&p[24..40]);
    Ok((
        Repr {
            src: Ipv6Addr::from(s).into(),
            dst: Ipv6Addr::from(d).into(),
            protocol: p[6],
            ttl: p[7],
            payload_len: len,
        },
        &p[IPV6_HEADER_LEN..IPV6_HEADER_LEN + len],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_roundtrip_and_header_checksum() {
        let repr = Repr {
            src: Ipv4Addr::new(10, 0, 0, 1).into(),
            dst: Ipv4Addr::new(224, 0, 0, 18).into(),
            protocol: 112,
            ttl: 255,
            payload_len: 3,
        };
        let bytes = repr.packet(&[1, 2, 3]);
        assert_eq!(checksum::finish(checksum::sum(&bytes[..20])), 0);
        let (back, payload) = Repr::parse(&bytes).unwrap();
        assert_eq!(back, repr);
        assert_eq!(payload, &[1, 2, 3]);
    }

    #[test]
    fn v6_roundtrip() {
        let repr = Repr {
            src: "fe80::1".parse().unwrap(),
            dst: "ff02::12".parse().unwrap(),
            protocol: 112,
            ttl: 255,
            payload_len: 2,
        };
        let bytes = repr.packet(&[9, 9]);
        assert_eq!(Repr::parse(&bytes).unwrap(), (repr, &[9u8, 9][..]));
    }

    #[test]
    fn lies_about_length_are_errors() {
        let mut bytes = Repr {
            src: Ipv4Addr::new(10, 0, 0, 1).into(),
            dst: Ipv4Addr::new(10, 0, 0, 2).into(),
            protocol: 112,
            ttl: 255,
            payload_len: 0,
        }
        .packet(&[]);
        bytes[3] = 40; // total length beyond the buffer
        assert!(matches!(Repr::parse(&bytes), Err(Error::Truncated { .. })));
        bytes[3] = 20;
        bytes[0] = 0x44; // ihl 16 bytes
        assert!(matches!(
            Repr::parse(&bytes),
            Err(Error::Field { field: "ihl", .. })
        ));
        assert!(Repr::parse(&[]).is_err());
        assert!(Repr::parse(&[0x70]).is_err());
    }
}
