//! VRRP advertisements: version 3 (RFC 9568 §5) over IPv4 and IPv6, and
//! version 2 (RFC 3768 §5) over IPv4 with authentication type 0 or 1.
//!
//! ```text
//!  0                   1                   2                   3
//!  v3: |Ver=3|Type=1| VRID | Priority | Count IPvX |
//!      |(rsvd)|  Max Adver Int (12 bits, cs) |     Checksum     |
//!  v2: |Ver=2|Type=1| VRID | Priority | Count IP Addrs |
//!      | Auth Type | Adver Int (s) |          Checksum          |
//!      IPvX addresses ...   (v2: + 8 bytes of authentication data)
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{be16, checksum, need, put_be16, Error, Field, Result};

/// IP protocol number of VRRP (RFC 9568 §5.2.4).
pub const PROTOCOL: u8 = 112;
/// IPv4 multicast group (RFC 9568 §5.1.1.2).
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group (RFC 9568 §5.1.2.2).
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// TTL / hop limit of every advert (RFC 9568 §5.1.1.3).
pub const TTL: u8 = 255;
/// Fixed header length.
pub const HEADER_LEN: usize = 8;
/// RFC 3768 §5.3.10: v2 adverts end with 8 bytes of authentication data.
pub const V2_AUTH_LEN: usize = 8;

mod field {
    use super::Field;
    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT: usize = 3;
    /// v3: 4 reserved bits and the 12-bit Max Adver Int.
    pub const V3_INTERVAL: Field = 4..6;
    /// v2: authentication type.
    pub const V2_AUTH_TYPE: usize = 4;
    /// v2: Adver Int in seconds.
    pub const V2_INTERVAL: usize = 5;
    pub const CHECKSUM: Field = 6..8;
    pub const ADDRS: usize = 8;
}

/// VRRP protocol version.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Version {
    V2,
    V3,
}

impl Version {
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// Address family of the advert (which IP it rides on).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    pub fn addr_len(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }

    pub fn multicast(self) -> IpAddr {
        match self {
            Family::V4 => MCAST_V4.into(),
            Family::V6 => MCAST_V6.into(),
        }
    }
}

/// v2 authentication (RFC 3768 §5.3.6; type 2, IP AH, is not supported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Auth {
    None,
    /// Type 1: a plain-text password, zero-padded to 8 bytes.
    Pass([u8; 8]),
}

impl Auth {
    /// keepalived's `auth_pass`: the first 8 bytes, zero-padded.
    pub fn pass(password: &str) -> Auth {
        let mut bytes = [0u8; 8];
        for (slot, b) in bytes.iter_mut().zip(password.bytes()) {
            *slot = b;
        }
        Auth::Pass(bytes)
    }

    fn type_code(&self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::Pass(_) => 1,
        }
    }
}

/// How a v3 checksum over IPv4 was (or is to be) computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ChecksumMode {
    /// Over the VRRP message alone (v2; v3/IPv4 as RFC 9568 §5.2.8 says).
    Plain,
    /// With the IP pseudo-header (v3/IPv6 always; keepalived and FRR's v3/IPv4 default).
    PseudoHeader,
}

/// The IP addresses an advert travels between, for pseudo-header checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    pub src: IpAddr,
    pub dst: IpAddr,
}

/// A read-only (or mutable) view over a VRRP message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
    family: Family,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_unchecked(buffer: T, family: Family) -> Self {
        Packet { buffer, family }
    }

    /// Checks the version and that the buffer holds the header, every address
    /// it announces and (v2) the authentication data; accessors cannot panic after.
    pub fn new_checked(buffer: T, family: Family) -> Result<Self> {
        let packet = Self::new_unchecked(buffer, family);
        packet.check_len()?;
        Ok(packet)
    }

    fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        need("VRRP header", buf, HEADER_LEN)?;
        let version = buf[field::VER_TYPE] >> 4;
        match (version, self.family) {
            (3, _) | (2, Family::V4) => {}
            _ => {
                return Err(Error::Field {
                    what: "VRRP",
                    field: "version",
                    value: version as u32,
                })
            }
        }
        need("VRRP message", buf, self.total_len())
    }

    /// Length of header + addresses (+ v2 auth data) the header announces.
    pub fn total_len(&self) -> usize {
        let buf = self.buffer.as_ref();
        let mut len = HEADER_LEN + buf[field::COUNT] as usize * self.family.addr_len();
        if buf[field::VER_TYPE] >> 4 == 2 {
            len += V2_AUTH_LEN;
        }
        len
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn version_number(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] >> 4
    }

    pub fn version(&self) -> Version {
        if self.version_number() == 2 {
            Version::V2
        } else {
            Version::V3
        }
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] & 0x0f
    }

    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    pub fn addr_count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }

    /// Advert interval in centiseconds (v2: the seconds field × 100).
    pub fn interval_cs(&self) -> u16 {
        let buf = self.buffer.as_ref();
        match self.version() {
            Version::V3 => be16(buf, field::V3_INTERVAL) & 0x0fff,
            Version::V2 => buf[field::V2_INTERVAL] as u16 * 100,
        }
    }

    /// v2 authentication type byte (v3: reserved bits, 0).
    pub fn auth_type(&self) -> u8 {
        match self.version() {
            Version::V2 => self.buffer.as_ref()[field::V2_AUTH_TYPE],
            Version::V3 => 0,
        }
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The `index`-th address.
    pub fn address(&self, index: usize) -> IpAddr {
        let buf = self.buffer.as_ref();
        let at = field::ADDRS + index * self.family.addr_len();
        match self.family {
            Family::V4 => Ipv4Addr::new(buf[at], buf[at + 1], buf[at + 2], buf[at + 3]).into(),
            Family::V6 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(&buf[at..at + 16]);
                Ipv6Addr::from(o).into()
            }
        }
    }

    /// v2 authentication data (8 bytes after the addresses).
    pub fn auth_data(&self) -> [u8; 8] {
        let at = HEADER_LEN + self.addr_count() as usize * self.family.addr_len();
        let mut data = [0u8; 8];
        if self.version() == Version::V2 {
            data.copy_from_slice(&self.buffer.as_ref()[at..at + V2_AUTH_LEN]);
        }
        data
    }

    fn message(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.total_len()]
    }

    /// Verifies the checksum and says which way it was computed. v2 and
    /// v3/IPv6 have one form; v3/IPv4 is accepted with or without the
    /// pseudo-header (docs/design.md: keepalived/FRR vs RFC 9568).
    pub fn verify_checksum(&self, endpoints: &Endpoints) -> Result<ChecksumMode> {
        let msg = self.message();
        let plain = checksum::sum(msg);
        let ok = |acc: u32| checksum::finish(acc) == 0;
        match (self.version(), self.family) {
            (Version::V2, _) if ok(plain) => Ok(ChecksumMode::Plain),
            (Version::V3, Family::V6)
                if ok(checksum::combine(plain, pseudo(endpoints, msg.len()))) =>
            {
                Ok(ChecksumMode::PseudoHeader)
            }
            (Version::V3, Family::V4)
                if ok(checksum::combine(plain, pseudo(endpoints, msg.len()))) =>
            {
                Ok(ChecksumMode::PseudoHeader)
            }
            (Version::V3, Family::V4) if ok(plain) => Ok(ChecksumMode::Plain),
            // Older keepalived unicast peers put the group (224.0.0.18) in the
            // pseudo-header instead of our address; keepalived accepts it.
            (Version::V3, Family::V4)
                if !endpoints.dst.is_multicast()
                    && ok(checksum::combine(
                        plain,
                        pseudo(
                            &Endpoints {
                                src: endpoints.src,
                                dst: IpAddr::from(MCAST_V4),
                            },
                            msg.len(),
                        ),
                    )) =>
            {
                Ok(ChecksumMode::PseudoHeader)
            }
            _ => Err(Error::Checksum { what: "VRRP" }),
        }
    }
}

fn pseudo(endpoints: &Endpoints, len: usize) -> u32 {
    match (endpoints.src, endpoints.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => checksum::pseudo_v4(s, d, PROTOCOL, len as u16),
        (IpAddr::V6(s), IpAddr::V6(d)) => checksum::pseudo_v6(s, d, PROTOCOL, len as u32),
        _ => 0,
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Computes and writes the checksum. `mode` matters only for v3/IPv4;
    /// v2 is always plain and v3/IPv6 always uses the pseudo-header.
    pub fn fill_checksum(&mut self, mode: ChecksumMode, endpoints: &Endpoints) {
        let len = self.total_len();
        let with_pseudo = match (self.version(), self.family) {
            (Version::V2, _) => false,
            (Version::V3, Family::V6) => true,
            (Version::V3, Family::V4) => mode == ChecksumMode::PseudoHeader,
        };
        let buf = self.buffer.as_mut();
        put_be16(buf, field::CHECKSUM, 0);
        let mut acc = checksum::sum(&buf[..len]);
        if with_pseudo {
            acc = checksum::combine(acc, pseudo(endpoints, len));
        }
        put_be16(buf, field::CHECKSUM, checksum::finish(acc));
    }
}

/// A parsed advert, independent of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repr {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// Centiseconds; v2 carries whole seconds (must be a multiple of 100).
    pub interval_cs: u16,
    /// v2 only; v3 has none.
    pub auth: Auth,
    /// All of one family.
    pub addresses: Vec<IpAddr>,
}

impl Repr {
    /// Parses a checked packet: type must be 1 (advertisement, RFC 9568 §5.2.2).
    /// The checksum is not looked at here: call `Packet::verify_checksum`.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        if packet.msg_type() != 1 {
            return Err(Error::Field {
                what: "VRRP",
                field: "type",
                value: packet.msg_type() as u32,
            });
        }
        // RFC 9568 §5.2.5: at least one address (the XDP program drops
        // count 0 too: one rule for both paths).
        if packet.addr_count() == 0 {
            return Err(Error::Field {
                what: "VRRP",
                field: "count",
                value: 0,
            });
        }
        // An interval of 0 would make the Backups' timers fire at once.
        if packet.interval_cs() == 0 {
            return Err(Error::Field {
                what: "VRRP",
                field: "interval",
                value: 0,
            });
        }
        let version = packet.version();
        let auth = match (version, packet.auth_type()) {
            (Version::V3, _) => Auth::None,
            (Version::V2, 0) => Auth::None,
            (Version::V2, 1) => Auth::Pass(packet.auth_data()),
            (Version::V2, other) => {
                return Err(Error::Field {
                    what: "VRRPv2",
                    field: "auth_type",
                    value: other as u32,
                })
            }
        };
        let addresses = (0..packet.addr_count() as usize)
            .map(|i| packet.address(i))
            .collect();
        Ok(Repr {
            version,
            vrid: packet.vrid(),
            priority: packet.priority(),
            interval_cs: packet.interval_cs(),
            auth,
            addresses,
        })
    }

    /// Family of the addresses (v4 when there are none).
    pub fn family(&self) -> Family {
        self.addresses.first().map(Family::of).unwrap_or(Family::V4)
    }

    pub fn buffer_len(&self) -> usize {
        let mut len = HEADER_LEN + self.addresses.len() * self.family().addr_len();
        if self.version == Version::V2 {
            len += V2_AUTH_LEN;
        }
        len
    }

    /// Writes the advert into `buf` (at least `buffer_len()` bytes) and fills
    /// its checksum.
    pub fn emit(&self, buf: &mut [u8], mode: ChecksumMode, endpoints: &Endpoints) {
        let len = self.buffer_len();
        let buf = &mut buf[..len];
        buf.fill(0);
        buf[field::VER_TYPE] = (self.version.number() << 4) | 1;
        buf[field::VRID] = self.vrid;
        buf[field::PRIORITY] = self.priority;
        buf[field::COUNT] = self.addresses.len() as u8;
        match self.version {
            Version::V3 => put_be16(buf, field::V3_INTERVAL, self.interval_cs & 0x0fff),
            Version::V2 => {
                buf[field::V2_AUTH_TYPE] = self.auth.type_code();
                buf[field::V2_INTERVAL] = (self.interval_cs / 100).clamp(1, 255) as u8;
            }
        }
        let mut at = field::ADDRS;
        for addr in &self.addresses {
            match addr {
                IpAddr::V4(a) => buf[at..at + 4].copy_from_slice(&a.octets()),
                IpAddr::V6(a) => buf[at..at + 16].copy_from_slice(&a.octets()),
            }
            at += Family::of(addr).addr_len();
        }
        if let (Version::V2, Auth::Pass(data)) = (self.version, self.auth) {
            buf[at..at + V2_AUTH_LEN].copy_from_slice(&data);
        }
        // The family of the endpoints, not of the address list: an IPv6
        // advert without addresses still needs IPv6's pseudo-header.
        Packet::new_unchecked(buf, Family::of(&endpoints.src)).fill_checksum(mode, endpoints);
    }

    /// Convenience: the advert as a new byte vector.
    pub fn to_bytes(&self, mode: ChecksumMode, endpoints: &Endpoints) -> Vec<u8> {
        let mut buf = vec![0u8; self.buffer_len()];
        self.emit(&mut buf, mode, endpoints);
        buf
    }
}

#[cfg(test)]
mod tests;
