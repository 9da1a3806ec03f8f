//! Ethernet II frames with at most one 802.1Q / 802.1ad tag.

use super::{be16, need, put_be16, Result};

pub const HEADER_LEN: usize = 14;
pub const VLAN_TAG_LEN: usize = 4;
pub const BROADCAST: [u8; 6] = [0xff; 6];

pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const IPV6: u16 = 0x86dd;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
}

/// The VRRP virtual MAC: 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID}
/// for IPv6 (RFC 9568 §7.3).
pub fn virtual_mac(ipv6: bool, vrid: u8) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, if ipv6 { 0x02 } else { 0x01 }, vrid]
}

/// The multicast MAC for an IPv6 multicast address (RFC 2464 §7).
pub fn ipv6_multicast_mac(addr: &std::net::Ipv6Addr) -> [u8; 6] {
    let o = addr.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// The multicast MAC for an IPv4 multicast address (RFC 1112 §6.4).
pub fn ipv4_multicast_mac(addr: &std::net::Ipv4Addr) -> [u8; 6] {
    let o = addr.octets();
    [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
}

/// A view over a frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Checks the header and, when tagged, the tag are present.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let frame = Frame::new_unchecked(buffer);
        need("Ethernet header", frame.buffer.as_ref(), HEADER_LEN)?;
        need("802.1Q tag", frame.buffer.as_ref(), frame.header_len())?;
        Ok(frame)
    }

    pub fn dst(&self) -> [u8; 6] {
        self.buffer.as_ref()[0..6].try_into().expect("checked")
    }

    pub fn src(&self) -> [u8; 6] {
        self.buffer.as_ref()[6..12].try_into().expect("checked")
    }

    fn outer_type(&self) -> u16 {
        be16(self.buffer.as_ref(), 12..14)
    }

    fn tagged(&self) -> bool {
        matches!(self.outer_type(), ethertype::VLAN | ethertype::QINQ)
    }

    /// The tag control information (PCP, DEI, VLAN ID) when tagged.
    pub fn vlan_tci(&self) -> Option<u16> {
        self.tagged().then(|| be16(self.buffer.as_ref(), 14..16))
    }

    /// The ethertype of the payload (inside the tag when tagged).
    pub fn ethertype(&self) -> u16 {
        if self.tagged() {
            be16(self.buffer.as_ref(), 16..18)
        } else {
            self.outer_type()
        }
    }

    pub fn header_len(&self) -> usize {
        if self.tagged() {
            HEADER_LEN + VLAN_TAG_LEN
        } else {
            HEADER_LEN
        }
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

/// An Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    /// 802.1Q tag control information, when tagged.
    pub vlan: Option<u16>,
    pub ethertype: u16,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Repr {
        Repr {
            dst: frame.dst(),
            src: frame.src(),
            vlan: frame.vlan_tci(),
            ethertype: frame.ethertype(),
        }
    }

    pub fn header_len(&self) -> usize {
        HEADER_LEN + if self.vlan.is_some() { VLAN_TAG_LEN } else { 0 }
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        need("Ethernet buffer", buf, self.header_len())?;
        buf[0..6].copy_from_slice(&self.dst);
        buf[6..12].copy_from_slice(&self.src);
        match self.vlan {
            Some(tci) => {
                put_be16(buf, 12..14, ethertype::VLAN);
                put_be16(buf, 14..16, tci);
                put_be16(buf, 16..18, self.ethertype);
            }
            None => put_be16(buf, 12..14, self.ethertype),
        }
        Ok(())
    }
}

/// Splits a frame into its header and payload, checking the header.
pub fn split(frame: &[u8]) -> Result<(Repr, &[u8])> {
    let f = Frame::new_checked(frame)?;
    let repr = Repr::parse(&f);
    let at = f.header_len();
    Ok((repr, &frame[at..]))
}

/// Builds a frame from a header and payload.
pub fn frame(repr: &Repr, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; repr.header_len() + payload.len()];
    repr.emit(&mut buf).expect("sized above");
    buf[repr.header_len()..].copy_from_slice(payload);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untagged_golden() {
        let bytes = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x08, 0x06, 0xaa,
        ];
        let (repr, payload) = split(&bytes).unwrap();
        assert_eq!(repr.dst, BROADCAST);
        assert_eq!(repr.src, [2, 0, 0, 0, 0, 1]);
        assert_eq!(repr.vlan, None);
        assert_eq!(repr.ethertype, ethertype::ARP);
        assert_eq!(payload, &[0xaa]);
        assert_eq!(frame(&repr, payload), bytes);
    }

    #[test]
    fn one_vlan_tag_golden() {
        let bytes = [
            1, 0, 0x5e, 0, 0, 0x12, 0x02, 0, 0, 0, 0, 1, 0x81, 0x00, 0x00, 0x2a, 0x08, 0x00, 0x45,
        ];
        let (repr, payload) = split(&bytes).unwrap();
        assert_eq!(repr.vlan, Some(42));
        assert_eq!(repr.ethertype, ethertype::IPV4);
        assert_eq!(payload, &[0x45]);
        assert_eq!(frame(&repr, payload), bytes);
    }

    #[test]
    fn truncated_tag_is_an_error() {
        let bytes = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0x00, 0x00];
        assert!(matches!(
            split(&bytes),
            Err(super::super::Error::Truncated { .. })
        ));
        assert!(split(&bytes[..13]).is_err());
    }

    #[test]
    fn virtual_macs() {
        assert_eq!(virtual_mac(false, 51), [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(virtual_mac(true, 7), [0, 0, 0x5e, 0, 2, 7]);
        assert_eq!(
            ipv4_multicast_mac(&super::super::vrrp::MCAST_V4),
            [1, 0, 0x5e, 0, 0, 18]
        );
        assert_eq!(
            ipv6_multicast_mac(&super::super::vrrp::MCAST_V6),
            [0x33, 0x33, 0, 0, 0, 0x12]
        );
    }
}
