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
pub const MAP_VIPS: &str = "VIPS";
pub const MAP_LEASE: &str = "LEASE";
pub const MAP_VRS: &str = "VRS";
pub const MAP_LAST: &str = "LAST";
pub const MAP_TIMERS: &str = "TIMERS";
pub const MAP_TAKEOVER: &str = "TAKEOVER";
pub const MAP_REPORTED: &str = "REPORTED";
pub const MAP_LB_SERVICES: &str = "LB_SERVICES";
pub const MAP_LB_MAGLEV: &str = "LB_MAGLEV";
pub const MAP_LB_REALS: &str = "LB_REALS";
pub const MAP_LB_TX: &str = "LB_TX";
pub const MAP_LB_REAL_STATS: &str = "LB_REAL_STATS";

/// Virtual servers forwarded in XDP (lb_kind DR) per program.
pub const MAX_LB_SERVICES: u32 = 16;
/// Slots of one Maglev table: a prime, Katran's size. Each virtual server
/// has two (`LB_MAGLEV` slots index*2*SIZE and (index*2+1)*SIZE): the
/// primary over every configured real at its weight, dead or alive, so
/// load balancers whose checkers disagree still agree on it; and the
/// fallback over the live reals, for slots whose primary real is not alive
/// here (a stateless second chance, as GitHub's GLB has).
pub const LB_MAGLEV_SIZE: u32 = 65537;
/// Real servers known to the XDP forwarder (indexes into `LB_REALS`).
pub const MAX_LB_REALS: u32 = 4096;
/// Established flows remembered per CPU (an LRU: the oldest go first).
pub const LB_FLOWS: u32 = 65536;

/// A virtual server as the XDP program matches it: key of `LB_SERVICES`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LbServiceKey {
    /// IPv4 in the first 4 bytes, the rest zero; or IPv6.
    pub addr: [u8; 16],
    pub port: u16,
    /// IPPROTO_TCP or IPPROTO_UDP.
    pub proto: u8,
    /// FAMILY_V4 or FAMILY_V6.
    pub family: u8,
}

/// How the program forwards one virtual server.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LbService {
    /// Which pair of Maglev tables (0..MAX_LB_SERVICES).
    pub index: u32,
    /// LB_* flags.
    pub flags: u32,
    /// LB_TUN_GUE: the outer UDP header's destination port.
    pub tun_port: u16,
    pub _pad: u16,
}

/// Forward now (this host is Active for the address, or none holds it).
pub const LB_ACTIVE: u32 = 1;
/// persistence_timeout / lb_algo sh: the real is chosen from the client
/// address alone, so all of a client's connections go to one real.
pub const LB_BY_CLIENT: u32 = 2;
/// lb_kind TUN: the packet goes to the real inside an outer IPv4 header
/// (IPIP, protocol 4) from `LbReal::local` to `LbReal::addr`.
pub const LB_TUN: u32 = 4;
/// With LB_TUN, `tun_type gue`: IPv4 / UDP to `tun_port` / GUE (variant 0,
/// proto 4) / the packet, as IPVS's GUE tunnels (no UDP checksum).
pub const LB_TUN_GUE: u32 = 8;
/// With LB_TUN, `tun_type gre`: IPv4 / GRE (RFC 2784, no checksum, type
/// 0x0800) / the packet, as IPVS's GRE tunnels.
pub const LB_TUN_GRE: u32 = 16;

/// Bytes a TUN packet grows by, by its LB_* flags and family: the outer
/// IPv4 (20) or IPv6 (40) header, plus GRE's 4 or UDP's 8 and GUE's 4.
pub const fn lb_tun_overhead(flags: u32, v6: bool) -> u32 {
    let ip = if v6 { 40 } else { 20 };
    if flags & LB_TUN_GUE != 0 {
        ip + 8 + 4
    } else if flags & LB_TUN_GRE != 0 {
        ip + 4
    } else {
        ip
    }
}

/// One real server: where its frames go.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LbReal {
    /// The real's MAC (the destination of a rewritten frame).
    pub mac: [u8; 6],
    /// The MAC of the interface the frame leaves from (its new source).
    pub src_mac: [u8; 6],
    /// That interface (XDP_TX when it is the one the frame came in on,
    /// else XDP_REDIRECT through `LB_TX`, slot = the real's index).
    pub ifindex: u32,
    /// LB_REAL_* flags.
    pub flags: u32,
    /// TUN: the interface's MTU; a packet that would not fit once
    /// encapsulated is answered with ICMP "fragmentation needed" / ICMPv6
    /// "packet too big".
    pub mtu: u32,
    /// TUN: the real's address (the outer destination; IPv4 in the first
    /// four bytes).
    pub addr: [u8; 16],
    /// TUN: this load balancer's address of the same family on that
    /// interface (the outer source).
    pub local: [u8; 16],
}

/// The real is in its pool: a remembered flow to it is kept. A flow to a
/// real without it is chosen again.
pub const LB_REAL_ALIVE: u32 = 1;

/// Per real's index and CPU: what the program forwarded to it (IPVS's
/// per-destination packets and bytes; bytes are the IP packets' lengths
/// before any tunnel header).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LbRealStats {
    pub packets: u64,
    pub bytes: u64,
}

/// An established flow: key of the per-CPU flow LRU (value: the real's
/// index + 1; 0 where another CPU inserted the key).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LbFlowKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub family: u8,
    pub _pad: [u8; 2],
}

/// The hash both the program and the agent's tests use to pick a Maglev
/// slot: FNV-1a over the words, then a murmur3 finaliser. Fixed, so every
/// load balancer with the same table picks the same real for a flow.
#[inline(always)]
pub fn lb_hash(words: &[u32; 10]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < 10 {
        h ^= words[i];
        h = h.wrapping_mul(0x0100_0193);
        i += 1;
    }
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The words `lb_hash` takes for a flow: source, destination, ports and
/// protocol; with `by_client`, the source address alone.
#[inline(always)]
pub fn lb_flow_words(k: &LbFlowKey, by_client: bool) -> [u32; 10] {
    let w = |b: &[u8; 16], i: usize| {
        u32::from_be_bytes([b[i * 4], b[i * 4 + 1], b[i * 4 + 2], b[i * 4 + 3]])
    };
    if by_client {
        return [
            w(&k.src, 0),
            w(&k.src, 1),
            w(&k.src, 2),
            w(&k.src, 3),
            0,
            0,
            0,
            0,
            0,
            0,
        ];
    }
    [
        w(&k.src, 0),
        w(&k.src, 1),
        w(&k.src, 2),
        w(&k.src, 3),
        w(&k.dst, 0),
        w(&k.dst, 1),
        w(&k.dst, 2),
        w(&k.dst, 3),
        ((k.sport as u32) << 16) | k.dport as u32,
        k.proto as u32,
    ]
}

/// Capacity of the VRS and LAST maps (virtual routers per host).
pub const MAX_VRS: u32 = 2048;

/// One virtual router on one interface: key of `VRS` and `LAST`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VrKey {
    pub ifindex: u32,
    /// FAMILY_V4 or FAMILY_V6.
    pub family: u8,
    pub vrid: u8,
    pub _pad: [u8; 2],
}

/// What the program checks adverts for this virtual router against.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VrConfig {
    /// v2 PASS password, zero-padded (VR_AUTH_PASS).
    pub auth: [u8; 8],
    /// VR_* flags.
    pub flags: u8,
    /// Our address count and the wrapping sum of their 32-bit words: an
    /// advert with another set is a conflict (the seed's Q1).
    pub addr_count: u8,
    /// Our effective priority (for the kernel's Active_Down timer).
    pub priority: u8,
    /// keepalived's down_timer_adverts (the 3 in Active_Down_Interval).
    pub down_adverts: u8,
    pub addr_sum: u32,
    /// The VRRP version adverts must carry (2 or 3), as the election
    /// discards the other (0: either, never set for a kernel-judged router).
    pub version: u8,
    pub _pad: u8,
    /// v2: the Adver Int (centiseconds, whole seconds) adverts must carry
    /// (RFC 3768 §7.1); 0: not checked (v3 learns the Active's).
    pub interval_cs: u16,
}

/// v2 adverts must carry auth type 1 with this password.
pub const VR_AUTH_PASS: u8 = 1;
/// Preemption is on: lower-priority adverts do not reset the down timer.
pub const VR_PREEMPT: u8 = 2;
/// The kernel keeps this router's Active_Down timer (docs/design.md rule 3).
pub const VR_DOWN_TIMER: u8 = 4;
/// This host is Active for the router: every advert heard is recorded
/// (another Active is news: preemption or a healed split brain), reason 0.
pub const VR_ACTIVE: u8 = 8;

/// The agent judges this router's adverts itself, on its socket (unicast
/// peers, RFC 9568 §8.4 mixed v2/v3): the program checks them for validity
/// and passes them on, with no LAST, timer or record, so the kernel never
/// accepts an advert the election would discard.
pub const VR_SOCKET: u8 = 16;

/// The agent would go Active when this router's Active_Down timer fires (a
/// Backup, not Fault, no preempt_delay, its sync group agreeing): the
/// program starts answering ARP/ND for its VIPs the moment the timer fires
/// (`TAKEOVER`), and the agent follows with the advert, the addresses and
/// the GARP. Takes the agent's wake-up out of the takeover's critical path.
pub const VR_TAKEOVER: u8 = 32;

/// The last valid advert seen for a virtual router.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LastAdvert {
    /// bpf_ktime_get_ns() of the last one (CLOCK_MONOTONIC).
    pub ts_ns: u64,
    /// How many valid adverts so far.
    pub count: u64,
    pub src: [u8; 16],
    pub interval_cs: u16,
    pub priority: u8,
    pub version: u8,
    pub _pad: [u8; 4],
}

/// Why an advert record was sent (`AdvertRecord::reason` bits).
pub mod reason {
    pub const NEW_SOURCE: u8 = 1;
    pub const PRIORITY: u8 = 2;
    pub const INTERVAL: u8 = 4;
    pub const PRIORITY_ZERO: u8 = 8;
    pub const CONFLICT: u8 = 16;
    /// The VRID is not configured here (monitor mode records everything).
    pub const UNCONFIGURED: u8 = 32;
    /// An invalid advert (rate limited per source); `detail` is its counter.
    pub const INVALID: u8 = 64;
    /// The kernel's Active_Down timer fired (only ifindex/family/vrid set;
    /// `detail` 1: the program took over, VR_TAKEOVER).
    pub const DOWN_EXPIRED: u8 = 128;
    /// The kernel could not arm the down timer: the agent times it instead
    /// until TIMER_ARMED_AGAIN; `detail` is the helper's errno. Sent once
    /// per failing streak, not per advert.
    pub const TIMER_FAILED: u8 = 128 | 64;
    /// An arm succeeded after TIMER_FAILED: the kernel times it again.
    pub const TIMER_ARMED_AGAIN: u8 = 128 | 32;
}

/// Capacity of the VIPS map.
pub const MAX_VIPS: u32 = 4096;

/// A virtual address on one interface: key of the `VIPS` hash map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VipKey {
    /// The interface requests arrive on.
    pub ifindex: u32,
    /// FAMILY_V4 or FAMILY_V6 (as u32 for alignment).
    pub family: u32,
    /// IPv4 in the first 4 bytes, the rest zero; or IPv6.
    pub addr: [u8; 16],
}

/// What the program does for that address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VipValue {
    /// The MAC the answers carry (the virtual MAC with use_vmac).
    pub mac: [u8; 6],
    /// VIP_* flags.
    pub flags: u8,
    pub vrid: u8,
}

/// This host is Active for the VIP: answer (while the lease is fresh).
pub const VIP_ACTIVE: u8 = 1;
/// Accept_Mode (RFC 9568 §6.1): traffic to the VIP is let in. Without it
/// (vrrp_strict, no_accept) a non-owner drops all but neighbour discovery.
pub const VIP_ACCEPT: u8 = 2;
/// Neighbor Advertisements carry R=1 (the host forwards IPv6).
pub const VIP_ROUTER: u8 = 4;
/// The virtual router the VIP belongs to runs over IPv6 (its `VrKey` is
/// the VIP key's ifindex, this family and `VipValue::vrid`).
pub const VIP_VR_V6: u8 = 8;

/// `LEASE` array slots: the agent's last renewal and the lease length, in
/// CLOCK_MONOTONIC ns (the clock of bpf_ktime_get_ns).
pub const LEASE_RENEWED: u32 = 0;
pub const LEASE_LENGTH: u32 = 1;
/// A fingerprint of the object the attached program was loaded from,
/// written by the agent that loaded it: a restarted agent re-adopts the
/// attached program and its maps (found from the program's id) only when
/// it carries the same object, so it never drives maps of another layout.
pub const LEASE_OBJECT: u32 = 2;
/// Slots in `LEASE`.
pub const LEASE_SLOTS: u32 = 3;

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
    /// ARP requests for an Active VIP answered in place (XDP_TX).
    pub const ARP_REPLIED: u32 = 14;
    /// ARP requests for a VIP dropped: this host is Backup for it.
    pub const ARP_DROP_BACKUP: u32 = 15;
    /// ARP requests for a VIP dropped: the agent's lease is stale (fail silent).
    pub const ARP_DROP_STALE: u32 = 16;
    /// Neighbor Solicitations for an Active VIP answered with an NA.
    pub const NA_SENT: u32 = 17;
    /// Neighbor Solicitations for a VIP dropped while Backup.
    pub const NS_DROP_BACKUP: u32 = 18;
    /// Neighbor Solicitations for a VIP dropped: lease stale.
    pub const NS_DROP_STALE: u32 = 19;
    /// Packets to a VIP dropped because Accept_Mode is off (vrrp_strict).
    pub const NO_ACCEPT_DROP: u32 = 20;
    /// Invalid: checksum matches neither form.
    pub const INVALID_CHECKSUM: u32 = 21;
    /// Invalid: v2 authentication type or password differs.
    pub const INVALID_AUTH: u32 = 22;
    /// Invalid: advert interval 0.
    pub const INVALID_INTERVAL: u32 = 23;
    /// Adverts for a VRID not configured on the interface (recorded for monitor mode only).
    pub const VRID_UNCONFIGURED: u32 = 24;
    /// Valid adverts that changed nothing: recorded in LAST, no wake-up.
    pub const ADVERT_UNCHANGED: u32 = 25;
    /// Adverts too long to check in the kernel (left to userspace).
    pub const ADVERT_TOO_LONG: u32 = 26;
    /// Invalid adverts reported to the agent (at most 1/s per source).
    pub const INVALID_REPORTED: u32 = 27;
    /// Active_Down timers that fired in the kernel.
    pub const DOWN_EXPIRED: u32 = 28;
    /// Down timers the kernel could not arm (the agent times those).
    pub const TIMER_FAILED: u32 = 29;
    /// Frames to the virtual MAC of a router this host is Backup for.
    pub const VMAC_DROP_BACKUP: u32 = 30;
    /// Valid adverts of a router the agent judges on its socket (VR_SOCKET).
    pub const ADVERT_TO_SOCKET: u32 = 31;
    /// Records of adverts for VRIDs not configured here, sent at most once
    /// a second per source (monitor mode logs them).
    pub const UNCONFIGURED_REPORTED: u32 = 32;
    /// Invalid: sent to a unicast address for a multicast instance.
    pub const INVALID_DESTINATION: u32 = 33;
    /// Frames to a DR virtual server sent on to a real (XDP_TX/REDIRECT).
    pub const LB_FORWARDED: u32 = 34;
    /// Of those, frames of a remembered flow (its real kept).
    pub const LB_FLOW_KEPT: u32 = 35;
    /// Frames to a DR virtual server with no real in its table: passed to
    /// the kernel.
    pub const LB_NO_REAL: u32 = 36;
    /// TUN: packets encapsulated (IPIP) to a real.
    pub const LB_ENCAPSULATED: u32 = 37;
    /// TUN: too big once encapsulated, DF set: answered with ICMP
    /// "fragmentation needed".
    pub const LB_ICMP_TOO_BIG: u32 = 38;
    /// TUN: too big once encapsulated, DF clear: XDP cannot fragment, so
    /// the kernel gets it (counted, never dropped silently).
    pub const LB_TOO_BIG_PASSED: u32 = 39;
    /// Active_Down timers that fired for an eligible Backup (VR_TAKEOVER):
    /// the program answers for its VIPs until the agent follows.
    pub const KERNEL_TAKEOVER: u32 = 40;
    /// ARP requests / Neighbor Solicitations answered for a VIP whose
    /// router the kernel took over, before the agent made it Active.
    pub const TAKEOVER_ANSWERED: u32 = 41;
    /// Number of counters.
    pub const COUNT: u32 = 42;

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
        "arp_replied",
        "arp_drop_backup",
        "arp_drop_stale",
        "na_sent",
        "ns_drop_backup",
        "ns_drop_stale",
        "no_accept_drop",
        "invalid_checksum",
        "invalid_auth",
        "invalid_interval",
        "vrid_unconfigured",
        "advert_unchanged",
        "advert_too_long",
        "invalid_reported",
        "down_expired",
        "timer_failed",
        "vmac_drop_backup",
        "advert_to_socket",
        "unconfigured_reported",
        "invalid_destination",
        "lb_forwarded",
        "lb_flow_kept",
        "lb_no_real",
        "lb_encapsulated",
        "lb_icmp_too_big",
        "lb_too_big_passed",
        "kernel_takeover",
        "takeover_answered",
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
    /// Why it was sent (`reason` bits; 0: heard while Active, VR_ACTIVE).
    pub reason: u8,
    /// With `reason::INVALID`: the counter index of the reason; with
    /// `reason::TIMER_FAILED`: the errno of the bpf_timer helper that failed.
    pub detail: u8,
    /// Sent to a unicast address (not the VRRP group).
    pub unicast: u8,
    pub _pad: u8,
}

/// The advert fan-out: a tc program on an interface's egress that sends a
/// round of an Active's adverts from one frame (docs/design.md rule 3).
/// The agent keeps each advert's bytes (IPv4 header and VRRP message) in
/// `FANOUT_FRAMES`, writes the round's frame numbers to `FANOUT_ROUND` with
/// a nonce, and sends the first advert with the nonce as its IPv4
/// identification: the program sends that frame, then, for each further
/// number, writes that frame's bytes into it and sends it again.
pub const FANOUT_PROGRAM_NAME: &str = "xvrrp_fanout";
pub const MAP_FANOUT_ROUND: &str = "FANOUT_ROUND";
pub const MAP_FANOUT_FRAMES: &str = "FANOUT_FRAMES";
pub const MAP_FANOUT_COUNTERS: &str = "FANOUT_COUNTERS";
/// Advert frames one interface's fan-out holds.
pub const FANOUT_FRAMES: u32 = 1024;
/// Adverts shorter than this are fanned out, IPv4 header included (a v3
/// advert of up to 120 addresses); longer ones go through the socket one
/// by one. A power of two: the program masks lengths with it.
pub const FANOUT_FRAME_MAX: usize = 512;
/// Most frames one round (one sent frame) carries.
pub const FANOUT_ROUND_MAX: usize = 256;

/// One advert as the fan-out writes it: IPv4 header and VRRP message.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FanoutFrame {
    /// Bytes used in `bytes` (20..FANOUT_FRAME_MAX).
    pub len: u32,
    pub bytes: [u8; FANOUT_FRAME_MAX],
}

/// The round the next frame with IPv4 identification `nonce` carries.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FanoutRound {
    /// 0: none armed. The program disarms a round as it sends it.
    pub nonce: u32,
    /// Frames in the round, the sent one (`frames[0]`) included.
    pub count: u32,
    /// `FANOUT_FRAMES` indexes, in sending order.
    pub frames: [u16; FANOUT_ROUND_MAX],
}

/// `FANOUT_COUNTERS` indexes.
pub mod fanout_counter {
    /// Rounds fanned out.
    pub const ROUNDS: u32 = 0;
    /// Frames sent again with another advert's bytes (clones).
    pub const CLONES: u32 = 1;
    /// Clones the kernel refused (bpf_clone_redirect failed).
    pub const CLONE_FAILED: u32 = 2;
    /// Frames not written: a bad frame number or length, or a failed
    /// resize or store (the round's next clone repeats the last advert).
    pub const WRITE_FAILED: u32 = 3;
    pub const COUNT: u32 = 4;
    pub const NAMES: [&str; COUNT as usize] = [
        "fanout_rounds",
        "fanout_clones",
        "fanout_clone_failed",
        "fanout_write_failed",
    ];
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for FanoutFrame {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for FanoutRound {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for AdvertRecord {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for LbRealStats {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for VipKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for VipValue {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for VrKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for VrConfig {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for LastAdvert {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for LbServiceKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for LbService {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for LbReal {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for LbFlowKey {}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn record_layout_is_fixed() {
        assert_eq!(core::mem::size_of::<AdvertRecord>(), 40);
        assert_eq!(core::mem::align_of::<AdvertRecord>(), 8);
        assert_eq!(core::mem::size_of::<VipKey>(), 24);
        assert_eq!(core::mem::size_of::<VipValue>(), 8);
        assert_eq!(core::mem::size_of::<VrKey>(), 8);
        assert_eq!(core::mem::size_of::<VrConfig>(), 20);
        assert_eq!(core::mem::size_of::<LastAdvert>(), 40);
        assert_eq!(core::mem::size_of::<LbServiceKey>(), 20);
        assert_eq!(core::mem::size_of::<LbService>(), 12);
        assert_eq!(core::mem::size_of::<LbReal>(), 56);
        assert_eq!(core::mem::size_of::<LbRealStats>(), 16);
        assert_eq!(core::mem::size_of::<LbFlowKey>(), 40);
        assert_eq!(core::mem::size_of::<FanoutFrame>(), 4 + FANOUT_FRAME_MAX);
        assert_eq!(
            core::mem::size_of::<FanoutRound>(),
            8 + 2 * FANOUT_ROUND_MAX
        );
    }

    #[test]
    fn every_counter_has_a_name() {
        assert_eq!(counter::NAMES.len(), counter::COUNT as usize);
        assert_eq!(fanout_counter::NAMES.len(), fanout_counter::COUNT as usize);
    }
}
