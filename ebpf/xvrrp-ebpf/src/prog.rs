use core::ffi::c_void;

mod lb;

use aya_ebpf::{
    bindings::{bpf_timer, xdp_action},
    btf_maps::HashMap as BtfHashMap,
    helpers::{
        bpf_ktime_get_ns, bpf_timer_init, bpf_timer_set_callback, bpf_timer_start,
        bpf_xdp_adjust_tail,
    },
    macros::{btf_map, map, xdp},
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
    programs::XdpContext,
};
use xvrrp_common::{
    counter, reason, AdvertRecord, LastAdvert, VipKey, VipValue, VrConfig, VrKey, EVENTS_BYTES,
    FAMILY_V4, FAMILY_V6, LEASE_LENGTH, LEASE_RENEWED, LEASE_SLOTS, MAX_VIPS, MAX_VRS, VIP_ACCEPT,
    VIP_ACTIVE, VIP_ROUTER, VIP_VR_V6, VR_ACTIVE, VR_AUTH_PASS, VR_DOWN_TIMER, VR_PREEMPT,
    VR_SOCKET, VR_TAKEOVER,
};

#[map(name = "COUNTERS")]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

#[map(name = "EVENTS")]
static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

#[map(name = "VIPS")]
static VIPS: HashMap<VipKey, VipValue> = HashMap::with_max_entries(MAX_VIPS, 0);

#[map(name = "LEASE")]
static LEASE: Array<u64> = Array::with_max_entries(LEASE_SLOTS, 0);

#[map(name = "VRS")]
static VRS: HashMap<VrKey, VrConfig> = HashMap::with_max_entries(MAX_VRS, 0);

#[map(name = "LAST")]
static LAST: HashMap<VrKey, LastAdvert> = HashMap::with_max_entries(MAX_VRS, 0);

/// When each source last had an invalid advert reported (rate limit).
#[map(name = "REPORTED")]
static REPORTED: LruHashMap<[u8; 16], u64> = LruHashMap::with_max_entries(1024, 0);

/// When adverts for an unconfigured VRID from a source were last recorded.
#[map(name = "UNKNOWN_SEEN")]
static UNKNOWN_SEEN: LruHashMap<[u8; 16], u64> = LruHashMap::with_max_entries(1024, 0);

/// One Active_Down timer per virtual router (a BTF map: bpf_timer needs it).
#[repr(C)]
pub struct DownTimer {
    timer: bpf_timer,
    /// Arming failed at the last advert that tried: the agent was told
    /// once (TIMER_FAILED) and is told once more when an arm succeeds
    /// (TIMER_ARMED_AGAIN), never once per advert in between.
    failing: u32,
    _pad: u32,
}

/// Routers the kernel took over when their timer fired (VR_TAKEOVER): when
/// (bpf_ktime_get_ns). Their VIPs are answered for one lease length from
/// then, or until an advert re-arms the timer or the agent decides.
#[map(name = "TAKEOVER")]
static TAKEOVER: HashMap<VrKey, u64> = HashMap::with_max_entries(MAX_VRS, 0);

#[btf_map]
static TIMERS: BtfHashMap<VrKey, DownTimer, { MAX_VRS as usize }> = BtfHashMap::new();

/// Invalid adverts from one source are reported at most this often.
const INVALID_REPORT_NS: u64 = 1_000_000_000;
const CLOCK_MONOTONIC: u64 = 1;
const EBUSY: i64 = 16;
const BPF_NOEXIST: u64 = 1;

/// Adverts up to this many bytes are checksummed in the kernel (126 IPv4
/// or 31 IPv6 addresses); longer ones are left to userspace.
const MAX_CHECKED_WORDS: usize = 256;

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_VRRP: u8 = 112;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMP: u8 = 1;
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;
const IPPROTO_ICMPV6: u8 = 58;
const ICMPV6_NS: u8 = 135;
const ICMPV6_NA: u8 = 136;
const IPV4_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;
const VRRP_HLEN: usize = 8;
/// RFC 3768 §5.3.10: v2 adverts end with 8 bytes of authentication data.
const VRRP_V2_AUTH_LEN: usize = 8;

#[xdp]
pub fn xvrrp(ctx: XdpContext) -> u32 {
    count(counter::FRAMES);
    // Two BPF-to-BPF calls, each with its own stack: the verifier adds a
    // caller's frame to its callee's, and the VRRP path's alone is near the
    // 512-byte limit.
    for forward in [lb::lb_forward_ipv4, lb::lb_forward_ipv6] {
        match forward(ctx.ctx) {
            lb::NOT_FORWARDED => {}
            lb::TUNNEL => return lb::lb_tunnel(ctx.ctx),
            action => return action,
        }
    }
    classify_frame(ctx.ctx)
}

#[inline(never)]
fn classify_frame(raw: *mut aya_ebpf::bindings::xdp_md) -> u32 {
    classify(&XdpContext::new(raw))
}

/// What to do with a request for one of our VIPs.
enum Verdict {
    Answer(VipValue),
    Drop,
    NotOurs,
}

/// RFC 9568 §6.4.2: a Backup must not answer for the VIPs, so while Backup
/// the request is dropped (the kernel would answer: the address may still be
/// on the interface). docs/design.md rule 4, fail silent: an Active answers only
/// while the agent's lease is fresh.
#[inline(always)]
fn vip_verdict(ctx: &XdpContext, family: u32, addr: [u8; 16], backup: u32, stale: u32) -> Verdict {
    // SAFETY: reads the xdp_md context the kernel handed us.
    let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    let key = VipKey {
        ifindex,
        family,
        addr,
    };
    // SAFETY: the value is copied out at once.
    let Some(vip) = (unsafe { VIPS.get(&key) }).copied() else {
        return Verdict::NotOurs;
    };
    let length = LEASE.get(LEASE_LENGTH).copied().unwrap_or(0);
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    if vip.flags & VIP_ACTIVE == 0 {
        // The router's timer fired and the kernel took over: answer for
        // one lease length (the agent follows well within it; a dead
        // agent's host stops answering as an Active's does, rule 4).
        let vr = VrKey {
            ifindex,
            family: if vip.flags & VIP_VR_V6 != 0 {
                FAMILY_V6
            } else {
                FAMILY_V4
            },
            vrid: vip.vrid,
            _pad: [0; 2],
        };
        // SAFETY: copied out at once.
        let taken = unsafe { TAKEOVER.get(&vr) }.copied().unwrap_or(0);
        if taken != 0 && now <= taken.saturating_add(length) {
            count(counter::TAKEOVER_ANSWERED);
            return Verdict::Answer(vip);
        }
        count(backup);
        return Verdict::Drop;
    }
    let renewed = LEASE.get(LEASE_RENEWED).copied().unwrap_or(0);
    if now > renewed.saturating_add(length) {
        count(stale);
        return Verdict::Drop;
    }
    Verdict::Answer(vip)
}

/// RFC 9568 §6.4.3: without Accept_Mode a non-owner Active must not accept
/// packets addressed to the VIPs (keepalived's vrrp_strict firewall rules,
/// here in XDP). Neighbour discovery and VRRP itself still pass.
#[inline(always)]
fn refused(ctx: &XdpContext, family: u32, dst: [u8; 16]) -> bool {
    // SAFETY: reads the xdp_md context the kernel handed us.
    let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    let key = VipKey {
        ifindex,
        family,
        addr: dst,
    };
    // SAFETY: the value is copied out at once.
    match unsafe { VIPS.get(&key) } {
        Some(v) if v.flags & VIP_ACCEPT == 0 => {
            count(counter::NO_ACCEPT_DROP);
            true
        }
        _ => false,
    }
}

#[inline(always)]
fn ptr_mut<T>(ctx: &XdpContext, offset: usize) -> Option<*mut T> {
    ptr_at::<T>(ctx, offset).map(|p| p as *mut T)
}

#[inline(always)]
fn count(index: u32) {
    if let Some(slot) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *slot += 1 };
    }
}

/// A checked pointer to a `T` at `offset` bytes into the frame (the verifier's
/// bounds-check pattern: every access is proven below `data_end`).
#[inline(always)]
fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Option<*const T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *const T)
}

#[inline(always)]
fn u8_at(ctx: &XdpContext, offset: usize) -> Option<u8> {
    // SAFETY: ptr_at proved the byte is inside the frame.
    ptr_at::<u8>(ctx, offset).map(|p| unsafe { *p })
}

#[inline(always)]
fn be16_at(ctx: &XdpContext, offset: usize) -> Option<u16> {
    // SAFETY: ptr_at proved both bytes are inside the frame.
    ptr_at::<[u8; 2]>(ctx, offset).map(|p| u16::from_be_bytes(unsafe { *p }))
}

#[inline(always)]
fn classify(ctx: &XdpContext) -> u32 {
    let Some(mut ethertype) = be16_at(ctx, 12) else {
        count(counter::TRUNCATED);
        return xdp_action::XDP_PASS;
    };
    let tagged = ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD;
    if tagged {
        count(counter::VLAN);
        let Some(inner) = be16_at(ctx, 16) else {
            count(counter::TRUNCATED);
            return xdp_action::XDP_PASS;
        };
        ethertype = inner;
    }
    if to_backup_vmac(ctx) {
        count(counter::VMAC_DROP_BACKUP);
        return xdp_action::XDP_DROP;
    }
    // Constant offsets for each case keep the verifier's job simple.
    match (ethertype, tagged) {
        (ETH_P_ARP, false) => classify_arp(ctx, ETH_HLEN),
        (ETH_P_ARP, true) => classify_arp(ctx, ETH_HLEN + 4),
        (ETH_P_IP, false) => classify_ipv4(ctx, ETH_HLEN),
        (ETH_P_IP, true) => classify_ipv4(ctx, ETH_HLEN + 4),
        (ETH_P_IPV6, false) => classify_ipv6(ctx, ETH_HLEN),
        (ETH_P_IPV6, true) => classify_ipv6(ctx, ETH_HLEN + 4),
        _ => xdp_action::XDP_PASS,
    }
}

/// RFC 9568 §7.3 (and §6.4.2): a Backup must not accept frames addressed
/// to the virtual router MAC (00-00-5E-00-01-{VRID}, IPv6 00-00-5E-00-02-{VRID})
/// of a router configured here; with use_vmac the macvlan would take them.
#[inline(always)]
fn to_backup_vmac(ctx: &XdpContext) -> bool {
    let Some(dst) = ptr_at::<[u8; 6]>(ctx, 0) else {
        return false;
    };
    // SAFETY: checked by ptr_at.
    let d = unsafe { *dst };
    if d[0] != 0 || d[1] != 0 || d[2] != 0x5e || d[3] != 0 || !(d[4] == 1 || d[4] == 2) {
        return false;
    }
    let key = VrKey {
        // SAFETY: reads the xdp_md context the kernel handed us.
        ifindex: unsafe { (*ctx.ctx).ingress_ifindex },
        family: if d[4] == 1 { FAMILY_V4 } else { FAMILY_V6 },
        vrid: d[5],
        _pad: [0; 2],
    };
    // SAFETY: copied out at once.
    unsafe { VRS.get(&key) }.is_some_and(|c| c.flags & VR_ACTIVE == 0)
}

/// RFC 826: hrd(2) pro(2) hln(1) pln(1) op(2) sha(6) spa(4) tha(6) tpa(4).
/// A request for an Active VIP is answered in place (Cilium's arp.h).
#[inline(always)]
fn classify_arp(ctx: &XdpContext, l3: usize) -> u32 {
    let Some(arp) = ptr_mut::<[u8; 28]>(ctx, l3) else {
        count(counter::TRUNCATED);
        return xdp_action::XDP_PASS;
    };
    // SAFETY: checked by ptr_at.
    let a = unsafe { *arp };
    let ethernet_ipv4 = a[0..2] == [0, 1] && a[2..4] == [0x08, 0x00] && a[4] == 6 && a[5] == 4;
    if !(ethernet_ipv4 && a[6..8] == [0, 1]) {
        count(counter::ARP_OTHER);
        return xdp_action::XDP_PASS;
    }
    count(counter::ARP_REQUEST);
    // Gratuitous requests (sender IP = target IP) are announcements, not questions.
    if a[14..18] == a[24..28] {
        return xdp_action::XDP_PASS;
    }
    let mut target = [0u8; 16];
    target[..4].copy_from_slice(&a[24..28]);
    let vip = match vip_verdict(
        ctx,
        FAMILY_V4 as u32,
        target,
        counter::ARP_DROP_BACKUP,
        counter::ARP_DROP_STALE,
    ) {
        Verdict::NotOurs => return xdp_action::XDP_PASS,
        Verdict::Drop => return xdp_action::XDP_DROP,
        Verdict::Answer(v) => v,
    };
    let Some(eth) = ptr_mut::<[u8; 12]>(ctx, 0) else {
        return xdp_action::XDP_PASS;
    };
    let mut r = a;
    r[7] = 2; // reply
    r[8..14].copy_from_slice(&vip.mac);
    r[14..18].copy_from_slice(&a[24..28]);
    r[18..24].copy_from_slice(&a[8..14]);
    r[24..28].copy_from_slice(&a[14..18]);
    let mut e = [0u8; 12];
    e[..6].copy_from_slice(&a[8..14]);
    e[6..].copy_from_slice(&vip.mac);
    // SAFETY: both checked by ptr_at; same frame, disjoint ranges.
    unsafe {
        *arp = r;
        *eth = e;
    }
    count(counter::ARP_REPLIED);
    xdp_action::XDP_TX
}

#[inline(always)]
fn classify_ipv4(ctx: &XdpContext, l3: usize) -> u32 {
    let Some(hdr) = ptr_at::<[u8; IPV4_HLEN]>(ctx, l3) else {
        count(counter::TRUNCATED);
        return xdp_action::XDP_PASS;
    };
    // SAFETY: checked by ptr_at.
    let h = unsafe { *hdr };
    if h[9] != IPPROTO_VRRP {
        let mut dst = [0u8; 16];
        dst[..4].copy_from_slice(&h[16..20]);
        if refused(ctx, FAMILY_V4 as u32, dst) {
            return xdp_action::XDP_DROP;
        }
        return xdp_action::XDP_PASS;
    }
    // VRRP never uses IPv4 options; a header with them is not one of ours.
    if h[0] != 0x45 {
        invalid(counter::INVALID_FIELD);
        return xdp_action::XDP_PASS;
    }
    let total_len = u16::from_be_bytes([h[2], h[3]]) as usize;
    let payload_len = total_len.saturating_sub(IPV4_HLEN);
    let mut src = [0u8; 16];
    src[..4].copy_from_slice(&h[12..16]);
    let mut dst = [0u8; 16];
    dst[..4].copy_from_slice(&h[16..20]);
    advert(ctx, l3 + IPV4_HLEN, payload_len, FAMILY_V4, h[8], src, dst)
}

#[inline(always)]
fn classify_ipv6(ctx: &XdpContext, l3: usize) -> u32 {
    let Some(hdr) = ptr_at::<[u8; IPV6_HLEN]>(ctx, l3) else {
        count(counter::TRUNCATED);
        return xdp_action::XDP_PASS;
    };
    // SAFETY: checked by ptr_at.
    let h = unsafe { *hdr };
    match h[6] {
        IPPROTO_ICMPV6 => {
            let kind = u8_at(ctx, l3 + IPV6_HLEN);
            if kind == Some(ICMPV6_NS) {
                count(counter::ND_NS);
                return neighbor_solicit(ctx, l3, h);
            }
            // Neighbour discovery (133-137) always passes; echo and the rest obey Accept_Mode.
            if kind.is_some_and(|k| !(133..=137).contains(&k))
                && refused(ctx, FAMILY_V6 as u32, ipv6_dst(&h))
            {
                return xdp_action::XDP_DROP;
            }
            xdp_action::XDP_PASS
        }
        IPPROTO_VRRP => {
            let payload_len = u16::from_be_bytes([h[4], h[5]]) as usize;
            let mut src = [0u8; 16];
            src.copy_from_slice(&h[8..24]);
            advert(
                ctx,
                l3 + IPV6_HLEN,
                payload_len,
                FAMILY_V6,
                h[7],
                src,
                ipv6_dst(&h),
            )
        }
        _ => {
            if refused(ctx, FAMILY_V6 as u32, ipv6_dst(&h)) {
                return xdp_action::XDP_DROP;
            }
            xdp_action::XDP_PASS
        }
    }
}

#[inline(always)]
fn ipv6_dst(h: &[u8; IPV6_HLEN]) -> [u8; 16] {
    let mut d = [0u8; 16];
    d.copy_from_slice(&h[24..40]);
    d
}

/// ICMPv6 NS (RFC 4861 §4.3): type, code, checksum, reserved(4), target(16), options.
const NS_LEN: usize = 24;
/// The NA we send: the NS layout plus one target link-layer address option.
const NA_LEN: usize = 32;

/// A Neighbor Solicitation for an Active VIP becomes, in place, a Neighbor
/// Advertisement (RFC 4861 §7.2.4): to the soliciting address, or to
/// ff02::1 with S=0 when it came from :: (duplicate address detection);
/// hop limit 255; O=1; R when the host forwards; target link-layer option.
#[inline(always)]
fn neighbor_solicit(ctx: &XdpContext, l3: usize, ip6: [u8; IPV6_HLEN]) -> u32 {
    let payload_len = u16::from_be_bytes([ip6[4], ip6[5]]) as usize;
    // RFC 4861 §7.1.1: hop limit 255, code 0, at least 24 bytes.
    if ip6[7] != 255 || payload_len < NS_LEN {
        return xdp_action::XDP_PASS;
    }
    let Some(ns) = ptr_at::<[u8; NS_LEN]>(ctx, l3 + IPV6_HLEN) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: checked by ptr_at.
    let n = unsafe { *ns };
    if n[1] != 0 {
        return xdp_action::XDP_PASS;
    }
    let mut target = [0u8; 16];
    target.copy_from_slice(&n[8..24]);
    let vip = match vip_verdict(
        ctx,
        FAMILY_V6 as u32,
        target,
        counter::NS_DROP_BACKUP,
        counter::NS_DROP_STALE,
    ) {
        Verdict::NotOurs => return xdp_action::XDP_PASS,
        Verdict::Drop => return xdp_action::XDP_DROP,
        Verdict::Answer(v) => v,
    };
    let Some(eth) = ptr_at::<[u8; 12]>(ctx, 0) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: checked by ptr_at.
    let e = unsafe { *eth };
    let dad = ip6[8..24] == [0u8; 16];
    // Make the ICMPv6 part exactly NA_LEN bytes (grow a bare NS, cut options).
    let want = l3 + IPV6_HLEN + NA_LEN;
    let have = ctx.data_end() - ctx.data();
    let delta = want as i64 - have as i64;
    if delta != 0 {
        if !(-1500..=8).contains(&delta) {
            return xdp_action::XDP_PASS;
        }
        // SAFETY: the helper bounds-checks; pointers are re-derived below.
        if unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta as i32) } != 0 {
            return xdp_action::XDP_PASS;
        }
    }
    let (Some(eth), Some(ip), Some(na)) = (
        ptr_mut::<[u8; 12]>(ctx, 0),
        ptr_mut::<[u8; IPV6_HLEN]>(ctx, l3),
        ptr_mut::<[u8; NA_LEN]>(ctx, l3 + IPV6_HLEN),
    ) else {
        return xdp_action::XDP_DROP;
    };
    let all_nodes: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let mut dst = [0u8; 16];
    if dad {
        dst = all_nodes;
    } else {
        dst.copy_from_slice(&ip6[8..24]);
    }
    let mut ne = [0u8; 12];
    if dad {
        ne[..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    } else {
        ne[..6].copy_from_slice(&e[6..12]);
    }
    ne[6..].copy_from_slice(&vip.mac);
    let mut h = ip6;
    h[4] = 0;
    h[5] = NA_LEN as u8;
    h[6] = IPPROTO_ICMPV6;
    h[7] = 255;
    h[8..24].copy_from_slice(&target);
    h[24..40].copy_from_slice(&dst);
    let mut a = [0u8; NA_LEN];
    a[0] = ICMPV6_NA;
    let mut flags = 0x20; // O
    if !dad {
        flags |= 0x40; // S
    }
    if vip.flags & VIP_ROUTER != 0 {
        flags |= 0x80; // R
    }
    a[4] = flags;
    a[8..24].copy_from_slice(&target);
    a[24] = 2; // target link-layer address
    a[25] = 1;
    a[26..32].copy_from_slice(&vip.mac);
    // RFC 4443 §2.3: over the pseudo-header (src, dst, length, next header).
    let mut sum: u32 = NA_LEN as u32 + IPPROTO_ICMPV6 as u32;
    let mut i = 0;
    while i < 16 {
        sum += u16::from_be_bytes([target[i], target[i + 1]]) as u32;
        sum += u16::from_be_bytes([dst[i], dst[i + 1]]) as u32;
        sum += u16::from_be_bytes([a[i], a[i + 1]]) as u32;
        sum += u16::from_be_bytes([a[16 + i], a[17 + i]]) as u32;
        i += 2;
    }
    // 36 words of 16 bits sum below 2^22: two folds always finish the carry
    // (a loop here is one the verifier cannot bound).
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    let c = (!(sum as u16)).to_be_bytes();
    a[2] = c[0];
    a[3] = c[1];
    // SAFETY: all three checked by ptr_at after the tail adjustment.
    unsafe {
        *eth = ne;
        *ip = h;
        *na = a;
    }
    count(counter::NA_SENT);
    xdp_action::XDP_TX
}

#[inline(always)]
fn invalid(reason: u32) {
    count(counter::VRRP_INVALID);
    count(reason);
}

/// Folds a one's-complement sum to 16 bits (three folds cover any sum here).
#[inline(always)]
fn fold(mut sum: u32) -> u32 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    (sum & 0xffff) + (sum >> 16)
}

/// RFC 9568 §5.1 / RFC 3768 §5.1 header: ver|type, vrid, priority, count,
/// then v3: rsvd(4) max_adver_int(12) checksum; v2: auth type, adver int, checksum.
/// RFC 9568 §7.1 checks, then the last-advert map; a ring record only when
/// the election must know (docs/design.md rule 3).
#[inline(always)]
fn advert(
    ctx: &XdpContext,
    off: usize,
    payload_len: usize,
    family: u8,
    ttl: u8,
    src: [u8; 16],
    dst: [u8; 16],
) -> u32 {
    let Some(hdr) = ptr_at::<[u8; VRRP_HLEN]>(ctx, off) else {
        return reject(ctx, counter::INVALID_LENGTH, family, src);
    };
    // SAFETY: checked by ptr_at.
    let h = unsafe { *hdr };
    let version = h[0] >> 4;
    if !(version == 3 || (version == 2 && family == FAMILY_V4)) {
        return reject(ctx, counter::INVALID_VERSION, family, src);
    }
    if h[0] & 0x0f != 1 {
        return reject(ctx, counter::INVALID_TYPE, family, src);
    }
    let addr_count = h[3] as usize;
    if addr_count == 0 {
        return reject(ctx, counter::INVALID_FIELD, family, src);
    }
    let addr_len = if family == FAMILY_V4 { 4 } else { 16 };
    let mut needed = VRRP_HLEN + addr_count * addr_len;
    if version == 2 {
        needed += VRRP_V2_AUTH_LEN;
    }
    if payload_len < needed || ctx.data() + off + needed > ctx.data_end() {
        return reject(ctx, counter::INVALID_LENGTH, family, src);
    }
    // RFC 9568 §7.1: a received advert's TTL / hop limit must be 255. Only
    // unicast *instances* are exempt (keepalived: their adverts may cross
    // routers); a multicast instance drops unicast-addressed adverts below.
    let multicast = if family == FAMILY_V4 {
        dst[0] >= 224 && dst[0] < 240
    } else {
        dst[0] == 0xff
    };
    if ttl != 255 && multicast {
        return reject(ctx, counter::INVALID_TTL, family, src);
    }
    let interval_cs = if version == 3 {
        u16::from_be_bytes([h[4], h[5]]) & 0x0fff
    } else {
        h[5] as u16 * 100
    };
    if interval_cs == 0 {
        return reject(ctx, counter::INVALID_INTERVAL, family, src);
    }
    if needed > MAX_CHECKED_WORDS * 2 {
        count(counter::ADVERT_TOO_LONG);
        return xdp_action::XDP_PASS;
    }
    // Checksum over the message; v3 also with the pseudo-header (always for
    // IPv6; for IPv4 keepalived's form, RFC 9568's is without).
    let mut sum: u32 = 0;
    let mut i = 0usize;
    while i < MAX_CHECKED_WORDS {
        if i * 2 >= needed {
            break;
        }
        let Some(w) = be16_at(ctx, off + i * 2) else {
            break;
        };
        sum += w as u32;
        i += 1;
    }
    let plain_ok = fold(sum) == 0xffff;
    let mut pseudo: u32 = needed as u32 + IPPROTO_VRRP as u32;
    let words = if family == FAMILY_V4 { 2 } else { 8 };
    let mut j = 0;
    while j < 8 {
        if j < words {
            pseudo += u16::from_be_bytes([src[j * 2], src[j * 2 + 1]]) as u32;
            pseudo += u16::from_be_bytes([dst[j * 2], dst[j * 2 + 1]]) as u32;
        }
        j += 1;
    }
    let pseudo_ok = fold(fold(sum) + fold(pseudo)) == 0xffff;
    // Older keepalived unicast v3/IPv4 peers put the group (224.0.0.18) in
    // the pseudo-header, not our address (keepalived accepts both): the
    // pseudo-header sum with the group's words in place of the destination.
    let group_ok = !multicast && family == FAMILY_V4 && {
        let d0 = u16::from_be_bytes([dst[0], dst[1]]) as u32;
        let d1 = u16::from_be_bytes([dst[2], dst[3]]) as u32;
        let with_group = fold(pseudo) + 0xe000 + 0x0012 + (0xffff - d0) + (0xffff - d1);
        fold(fold(sum) + fold(with_group)) == 0xffff
    };
    let checksum_ok = match (version, family) {
        (2, _) => plain_ok,
        (_, FAMILY_V6) => pseudo_ok,
        _ => plain_ok || pseudo_ok || group_ok,
    };
    if !checksum_ok {
        return reject(ctx, counter::INVALID_CHECKSUM, family, src);
    }
    count(counter::VRRP_ADVERT);
    // SAFETY: reads the xdp_md context the kernel handed us.
    let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    let key = VrKey {
        ifindex,
        family,
        vrid: h[1],
        _pad: [0; 2],
    };
    let mut why = 0u8;
    let mut active = false;
    // SAFETY: copied out at once.
    match unsafe { VRS.get(&key) }.copied() {
        None => {
            count(counter::VRID_UNCONFIGURED);
            why |= reason::UNCONFIGURED;
        }
        Some(cfg) => {
            active = cfg.flags & VR_ACTIVE != 0;
            // RFC 3768 §7.1: authentication must match. Then the election's
            // own discards (agent/src/proto/router.rs `advert`), so that the
            // kernel never re-arms a timer on an advert the election would
            // throw away: another version, and in v2 another Adver Int.
            // (One reject below: each call site costs BPF stack.)
            let auth_at = off + VRRP_HLEN + addr_count * addr_len;
            let mut bad = 0u32;
            if version == 2 {
                let want_type = if cfg.flags & VR_AUTH_PASS != 0 { 1 } else { 0 };
                if h[4] != want_type {
                    bad = counter::INVALID_AUTH;
                } else if want_type == 1 {
                    match ptr_at::<[u8; 8]>(ctx, auth_at) {
                        None => bad = counter::INVALID_LENGTH,
                        // SAFETY: checked by ptr_at.
                        Some(data) if unsafe { *data } != cfg.auth => bad = counter::INVALID_AUTH,
                        Some(_) => {}
                    }
                }
            }
            if bad == 0 && cfg.version != 0 && version != cfg.version {
                bad = counter::INVALID_VERSION;
            }
            if bad == 0 && version == 2 && cfg.interval_cs != 0 && interval_cs != cfg.interval_cs {
                bad = counter::INVALID_INTERVAL;
            }
            // A multicast instance hears the group only: an advert sent to
            // our address (it may come from off-link, any TTL) is dropped.
            // (Unicast instances are VR_SOCKET: the agent judges those.)
            if bad == 0 && !multicast && cfg.flags & VR_SOCKET == 0 {
                bad = counter::INVALID_DESTINATION;
            }
            if bad != 0 {
                return reject(ctx, bad, family, src);
            }
            // Unicast peers and mixed v2/v3: the agent judges on its socket.
            if cfg.flags & VR_SOCKET != 0 {
                count(counter::ADVERT_TO_SOCKET);
                return xdp_action::XDP_PASS;
            }
            // RFC 9568 §7.1 MAY: the address set; a different one is a conflict.
            let mut asum: u32 = 0;
            let n = addr_count * addr_len / 4;
            let mut k = 0usize;
            while k < MAX_CHECKED_WORDS / 2 {
                if k >= n {
                    break;
                }
                let Some(w) = ptr_at::<[u8; 4]>(ctx, off + VRRP_HLEN + k * 4) else {
                    break;
                };
                // SAFETY: checked by ptr_at.
                asum = asum.wrapping_add(u32::from_be_bytes(unsafe { *w }));
                k += 1;
            }
            if addr_count != cfg.addr_count as usize || asum != cfg.addr_sum {
                why |= reason::CONFLICT;
            }
            // SAFETY: helper without arguments.
            let now = unsafe { bpf_ktime_get_ns() };
            match LAST.get_ptr_mut(&key) {
                Some(p) => {
                    // SAFETY: a map value pointer the helper returned.
                    let last = unsafe { &mut *p };
                    if last.src != src {
                        why |= reason::NEW_SOURCE;
                    }
                    if last.priority != h[2] {
                        why |= reason::PRIORITY;
                    }
                    if last.interval_cs != interval_cs {
                        why |= reason::INTERVAL;
                    }
                    last.ts_ns = now;
                    last.count += 1;
                    last.src = src;
                    last.priority = h[2];
                    last.interval_cs = interval_cs;
                    last.version = version;
                }
                None => {
                    why |= reason::NEW_SOURCE;
                    let last = LastAdvert {
                        ts_ns: now,
                        count: 1,
                        src,
                        interval_cs,
                        priority: h[2],
                        version,
                        _pad: [0; 4],
                    };
                    let _ = LAST.insert(&key, &last, 0);
                }
            }
            if h[2] == 0 {
                why |= reason::PRIORITY_ZERO;
            }
            if cfg.flags & VR_DOWN_TIMER != 0 {
                arm_down_timer(&key, &cfg, h[2], interval_cs);
            }
        }
    }
    // Adverts for a VRID not configured here, and those whose address set
    // differs (the agent logs both addresses lists), go on to the socket.
    let verdict = if why & (reason::UNCONFIGURED | reason::CONFLICT) != 0 {
        xdp_action::XDP_PASS
    } else {
        xdp_action::XDP_DROP
    };
    if why == 0 && !active {
        count(counter::ADVERT_UNCHANGED);
        return verdict;
    }
    // A VRID this host does not run: the agent ignores these records (the
    // socket reports such adverts); monitor mode logs them. At most one a
    // second per source, like invalid adverts.
    if why & reason::UNCONFIGURED != 0 {
        // SAFETY: helper without arguments.
        let now = unsafe { bpf_ktime_get_ns() };
        // SAFETY: copied out at once.
        let last = unsafe { UNKNOWN_SEEN.get(&src) }.copied().unwrap_or(0);
        if last != 0 && now.wrapping_sub(last) < INVALID_REPORT_NS {
            return verdict;
        }
        let _ = UNKNOWN_SEEN.insert(&src, &now, 0);
        count(counter::UNCONFIGURED_REPORTED);
    }
    let record = AdvertRecord {
        // SAFETY: helper without arguments.
        ts_ns: unsafe { bpf_ktime_get_ns() },
        ifindex,
        src,
        family,
        version,
        vrid: h[1],
        priority: h[2],
        interval_cs,
        addr_count: h[3],
        ttl,
        reason: why,
        detail: 0,
        unicast: !multicast as u8,
        _pad: 0,
    };
    emit(&record);
    verdict
}

#[inline(always)]
fn emit(record: &AdvertRecord) {
    if EVENTS.output::<AdvertRecord>(record, 0).is_err() {
        count(counter::RINGBUF_FULL);
    }
}

/// An invalid advert: counted, dropped (it never reaches the election), and
/// reported to the agent at most once a second per source (the agent logs it).
#[inline(always)]
fn reject(ctx: &XdpContext, why: u32, family: u8, src: [u8; 16]) -> u32 {
    invalid(why);
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: copied out at once.
    let last = unsafe { REPORTED.get(&src) }.copied().unwrap_or(0);
    if last != 0 && now.wrapping_sub(last) < INVALID_REPORT_NS {
        return xdp_action::XDP_DROP;
    }
    let _ = REPORTED.insert(&src, &now, 0);
    count(counter::INVALID_REPORTED);
    let record = AdvertRecord {
        ts_ns: now,
        // SAFETY: reads the xdp_md context the kernel handed us.
        ifindex: unsafe { (*ctx.ctx).ingress_ifindex },
        src,
        family,
        reason: reason::INVALID,
        detail: why as u8,
        ..AdvertRecord::default()
    };
    emit(&record);
    xdp_action::XDP_DROP
}

/// RFC 9568 §6.4.2 Backup: an advert from an Active we accept resets the
/// Active_Down timer (Skew_Time for priority 0); a lower priority one with
/// preemption on does not. The timer lives here, in the kernel, so that a
/// steady Backup's agent sleeps: it hears only when the timer fires.
#[inline(always)]
fn arm_down_timer(key: &VrKey, cfg: &VrConfig, priority: u8, interval_cs: u16) {
    // Same arithmetic as agent/src/proto/timing.rs (microseconds); v2's
    // skew is (256 - Priority) / 256 s whatever the interval (RFC 3768 §6.1).
    let skew_cs = if cfg.version == 2 {
        100
    } else {
        interval_cs as u64
    };
    let skew_us = (256 - cfg.priority as u64) * skew_cs * 10_000 / 256;
    let ns = if priority == 0 {
        skew_us * 1000
    } else if cfg.flags & VR_PREEMPT == 0 || priority >= cfg.priority {
        (interval_cs as u64 * 10_000 * cfg.down_adverts as u64 + skew_us) * 1000
    } else {
        return;
    };
    // An advert that keeps us Backup ends a takeover the kernel started
    // (another Backup got there first, or the Active is back).
    if cfg.flags & VR_TAKEOVER != 0 {
        // SAFETY: only tested for presence.
        if unsafe { TAKEOVER.get(key) }.is_some() {
            let _ = TAKEOVER.remove(key);
        }
    }
    let timer = match TIMERS.get_ptr_mut(key) {
        Some(t) => t,
        None => {
            let fresh = DownTimer {
                timer: bpf_timer { __opaque: [0; 2] },
                failing: 0,
                _pad: 0,
            };
            // BPF_NOEXIST: if another CPU inserted it meanwhile, keep
            // theirs (replacing it would free a timer they just armed).
            let _ = TIMERS.insert(key, &fresh, BPF_NOEXIST);
            match TIMERS.get_ptr_mut(key) {
                Some(t) => t,
                None => {
                    count(counter::TIMER_FAILED);
                    return;
                }
            }
        }
    };
    // SAFETY: a map value pointer the helper returned; the map pointer is
    // the map the value lives in, as bpf_timer_init requires.
    let (init, callback, start) = unsafe {
        let t = &raw mut (*timer).timer;
        let init = bpf_timer_init(t, &raw const TIMERS as *mut c_void, CLOCK_MONOTONIC);
        let callback = bpf_timer_set_callback(t, down_expired as *mut c_void);
        (init, callback, bpf_timer_start(t, ns, 0))
    };
    // SAFETY: the same map value; a race between CPUs at worst sends one
    // record twice.
    let failing = unsafe { &mut (*timer).failing };
    if callback != 0 || start != 0 {
        // -EBUSY from init means initialised before: expected. Any other
        // error there (bpf_timer_init allocates with kmalloc_nolock, which
        // gives up rather than wait: -ENOMEM on a busy CPU or under memory
        // pressure) is the cause; the next advert tries again.
        let err = if init != 0 && init != -EBUSY {
            init
        } else if callback != 0 {
            callback
        } else {
            start
        };
        count(counter::TIMER_FAILED);
        if *failing == 0 {
            *failing = 1;
            emit_timer_event(key, reason::TIMER_FAILED, err.unsigned_abs() as u8);
        }
    } else if *failing != 0 {
        *failing = 0;
        emit_timer_event(key, reason::TIMER_ARMED_AGAIN, 0);
    }
}

/// A record about one virtual router's timer (no advert in it).
fn emit_timer_event(key: &VrKey, why: u8, detail: u8) {
    let record = AdvertRecord {
        // SAFETY: helper without arguments.
        ts_ns: unsafe { bpf_ktime_get_ns() },
        ifindex: key.ifindex,
        family: key.family,
        vrid: key.vrid,
        reason: why,
        detail,
        ..AdvertRecord::default()
    };
    emit(&record);
}

/// The Active_Down timer of one virtual router fired: no advert it accepts
/// came in time. One record tells the agent, which then asks its election.
extern "C" fn down_expired(_map: *mut c_void, key: *mut VrKey, _value: *mut DownTimer) -> i32 {
    // SAFETY: the kernel passes the key of the element whose timer fired.
    let key = unsafe { *key };
    count(counter::DOWN_EXPIRED);
    // RFC 9568 §6.4.2: Active_Down_Timer fired, the Backup transitions to
    // Active. For a router the agent marked eligible, the ARP/ND answers
    // start here, without waiting for the agent to wake up.
    // SAFETY: copied out at once.
    let eligible = unsafe { VRS.get(&key) }
        .is_some_and(|c| c.flags & VR_TAKEOVER != 0 && c.flags & VR_ACTIVE == 0);
    let mut took = 0;
    if eligible {
        // SAFETY: helper without arguments.
        let now = unsafe { bpf_ktime_get_ns() };
        if TAKEOVER.insert(&key, &now, 0).is_ok() {
            count(counter::KERNEL_TAKEOVER);
            took = 1;
        }
    }
    emit_timer_event(&key, reason::DOWN_EXPIRED, took);
    // aya-log, on a rare event only (a takeover), never per packet: the
    // agent relays it to its own log (dataplane::logs).
    aya_log_ebpf::info!(
        &key,
        "Active_Down timer expired in the kernel: VRID {} on ifindex {}",
        key.vrid,
        key.ifindex
    );
    0
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
