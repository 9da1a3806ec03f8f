//! Records and map layouts shared by the xvrrp XDP program and the agent.
//!
//! Everything here is `#[repr(C)]` and plain old data: the program writes
//! these bytes into maps and the ring buffer, the agent reads them back.
#![no_std]

/// Size of the advert-event ring buffer in bytes (a power of two, page multiple).
pub const EVENTS_BYTES: u32 = 256 * 1024;

/// Name of the XDP program inside the object file.
pub const PROGRAM_NAME: &str = "xvrrp";
/// Map names, as the agent looks them up.
pub const MAP_COUNTERS: &str = "COUNTERS";
pub const MAP_EVENTS: &str = "EVENTS";

/// Indexes into the per-CPU `COUNTERS` array: one per branch of the program.
pub mod counter {
    /// Every frame the program saw.
    pub const FRAMES: u32 = 0;
    /// Frames cut short before a header we needed (Ethernet, VLAN, IP, ARP).
    pub const TRUNCATED: u32 = 1;
    /// Frames carrying one 802.1Q / 802.1ad tag.
    pub const VLAN: u32 = 2;
    /// ARP requests (Ethernet/IPv4, op 1).
    pub const ARP_REQUEST: u32 = 3;
    /// Other ARP frames (replies, non-Ethernet/IPv4).
    pub const ARP_OTHER: u32 = 4;
    /// IPv6 Neighbor Solicitations (ICMPv6 type 135).
    pub const ND_NS: u32 = 5;
    /// Well-formed VRRP adverts (IP protocol 112) that produced a record.
    pub const VRRP_ADVERT: u32 = 6;
    /// VRRP packets rejected by the program (see the `INVALID_*` below too).
    pub const VRRP_INVALID: u32 = 7;
    /// Invalid: version not 2/3, or 2 over IPv6.
    pub const INVALID_VERSION: u32 = 8;
    /// Invalid: type not 1 (advertisement).
    pub const INVALID_TYPE: u32 = 9;
    /// Invalid: shorter than its header + addresses (+ v2 auth data).
    pub const INVALID_LENGTH: u32 = 10;
    /// Invalid: TTL / hop limit not 255 (RFC 9568 §7.1).
    pub const INVALID_TTL: u32 = 11;
    /// Invalid: address count 0 or IPv4 header with options.
    pub const INVALID_FIELD: u32 = 12;
    /// Ring buffer full: a record was lost (the agent is not draining).
    pub const RINGBUF_FULL: u32 = 13;
    /// Number of counters.
    pub const COUNT: u32 = 14;

    /// Names for status output and metrics, indexed by counter.
    pub const NAMES: [&str; COUNT as usize] = [
        "frames",
        "truncated",
        "vlan",
        "arp_request",
        "arp_other",
        "nd_ns",
        "vrrp_advert",
        "vrrp_invalid",
        "invalid_version",
        "invalid_type",
        "invalid_length",
        "invalid_ttl",
        "invalid_field",
        "ringbuf_full",
    ];
}

/// Address family of a record, as the `family` byte.
pub const FAMILY_V4: u8 = 4;
pub const FAMILY_V6: u8 = 6;

/// One VRRP advert as the XDP program saw it, pushed to the `EVENTS` ring.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdvertRecord {
    /// bpf_ktime_get_ns() at reception (CLOCK_MONOTONIC).
    pub ts_ns: u64,
    /// Interface the frame arrived on.
    pub ifindex: u32,
    /// IP source: IPv4 in the first 4 bytes, the rest zero; or IPv6.
    pub src: [u8; 16],
    /// FAMILY_V4 or FAMILY_V6.
    pub family: u8,
    /// VRRP version, 2 or 3.
    pub version: u8,
    pub vrid: u8,
    pub priority: u8,
    /// Advertisement interval in centiseconds (v2: seconds × 100).
    pub interval_cs: u16,
    /// Number of addresses the advert carries.
    pub addr_count: u8,
    /// IP TTL / hop limit of the packet.
    pub ttl: u8,
    pub _pad: [u8; 4],
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for AdvertRecord {}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn record_layout_is_fixed() {
        assert_eq!(core::mem::size_of::<AdvertRecord>(), 40);
        assert_eq!(core::mem::align_of::<AdvertRecord>(), 8);
    }

    #[test]
    fn every_counter_has_a_name() {
        assert_eq!(counter::NAMES.len(), counter::COUNT as usize);
    }
}
