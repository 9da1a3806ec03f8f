//! ARP for Ethernet / IPv4 (RFC 826), including gratuitous ARP (RFC 5227 §3).

use std::net::Ipv4Addr;

use super::{be16, need, put_be16, Error, Result};

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

mod field {
    use crate::wire::Field;
    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Request,
    Reply,
}

/// A checked view: Ethernet (1) / IPv4 (0x0800), lengths 6 and 4.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        need("ARP packet", b, PACKET_LEN)?;
        let bad = |field, value: u32| Error::Field {
            what: "ARP",
            field,
            value,
        };
        if be16(b, field::HTYPE) != 1 {
            return Err(bad("hardware type", be16(b, field::HTYPE) as u32));
        }
        if be16(b, field::PTYPE) != 0x0800 {
            return Err(bad("protocol type", be16(b, field::PTYPE) as u32));
        }
        if b[field::HLEN] != 6 || b[field::PLEN] != 4 {
            return Err(bad("address length", b[field::HLEN] as u32));
        }
        Ok(Packet { buffer })
    }

    pub fn oper(&self) -> u16 {
        be16(self.buffer.as_ref(), field::OPER)
    }

    fn mac(&self, f: crate::wire::Field) -> [u8; 6] {
        self.buffer.as_ref()[f].try_into().expect("checked")
    }

    fn ip(&self, f: crate::wire::Field) -> Ipv4Addr {
        let o: [u8; 4] = self.buffer.as_ref()[f].try_into().expect("checked");
        Ipv4Addr::from(o)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub operation: Operation,
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        let operation = match packet.oper() {
            1 => Operation::Request,
            2 => Operation::Reply,
            other => {
                return Err(Error::Field {
                    what: "ARP",
                    field: "operation",
                    value: other as u32,
                })
            }
        };
        Ok(Repr {
            operation,
            sender_mac: packet.mac(field::SHA),
            sender_ip: packet.ip(field::SPA),
            target_mac: packet.mac(field::THA),
            target_ip: packet.ip(field::TPA),
        })
    }

    /// The gratuitous ARP a new Active sends (keepalived's form, RFC 5227 §3
    /// "ARP Announcement"): a request with sender IP = target IP = the VIP,
    /// target MAC broadcast, sent to broadcast.
    pub fn gratuitous(mac: [u8; 6], vip: Ipv4Addr) -> Repr {
        Repr {
            operation: Operation::Request,
            sender_mac: mac,
            sender_ip: vip,
            target_mac: [0xff; 6],
            target_ip: vip,
        }
    }

    /// The reply form of a gratuitous ARP (some clients ignore requests).
    pub fn gratuitous_reply(mac: [u8; 6], vip: Ipv4Addr) -> Repr {
        Repr {
            operation: Operation::Reply,
            ..Repr::gratuitous(mac, vip)
        }
    }

    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip == self.target_ip
    }

    /// The reply to this request, answered by `mac`.
    pub fn reply_from(&self, mac: [u8; 6]) -> Repr {
        Repr {
            operation: Operation::Reply,
            sender_mac: mac,
            sender_ip: self.target_ip,
            target_mac: self.sender_mac,
            target_ip: self.sender_ip,
        }
    }

    pub fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    pub fn emit(&self, buf: &mut [u8]) {
        let b = &mut buf[..PACKET_LEN];
        put_be16(b, field::HTYPE, 1);
        put_be16(b, field::PTYPE, 0x0800);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
        put_be16(
            b,
            field::OPER,
            match self.operation {
                Operation::Request => 1,
                Operation::Reply => 2,
            },
        );
        b[field::SHA].copy_from_slice(&self.sender_mac);
        b[field::SPA].copy_from_slice(&self.sender_ip.octets());
        b[field::THA].copy_from_slice(&self.target_mac);
        b[field::TPA].copy_from_slice(&self.target_ip.octets());
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; PACKET_LEN];
        self.emit(&mut b);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gratuitous ARP for 192.168.1.8 from 02:00:00:00:00:01, byte by byte.
    const GARP: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype ptype hlen plen op=request
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 192, 168, 1, 8, // sender
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 192, 168, 1, 8, // target
    ];

    #[test]
    fn gratuitous_golden() {
        let repr = Repr::gratuitous([2, 0, 0, 0, 0, 1], Ipv4Addr::new(192, 168, 1, 8));
        assert_eq!(repr.to_bytes(), GARP);
        let back = Repr::parse(&Packet::new_checked(&GARP[..]).unwrap()).unwrap();
        assert_eq!(back, repr);
        assert!(back.is_gratuitous());
    }

    #[test]
    fn reply_swaps_sender_and_target() {
        let req = Repr {
            operation: Operation::Request,
            sender_mac: [2, 0, 0, 0, 0, 9],
            sender_ip: Ipv4Addr::new(10, 0, 0, 9),
            target_mac: [0; 6],
            target_ip: Ipv4Addr::new(10, 0, 0, 100),
        };
        let rep = req.reply_from([0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(rep.operation, Operation::Reply);
        assert_eq!(rep.sender_ip, Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(rep.target_mac, [2, 0, 0, 0, 0, 9]);
        assert_eq!(rep.to_bytes()[6..8], [0, 2]);
    }

    #[test]
    fn rejects_other_hardware_and_short() {
        let mut b = GARP;
        b[1] = 6;
        assert!(Packet::new_checked(&b[..]).is_err());
        assert!(Packet::new_checked(&GARP[..27]).is_err());
        let mut b = GARP;
        b[7] = 9;
        assert!(Repr::parse(&Packet::new_checked(&b[..]).unwrap()).is_err());
    }
}
