use aya_ebpf::{
    bindings::xdp_action,
    helpers::bpf_ktime_get_ns,
    macros::{map, xdp},
    maps::{PerCpuArray, RingBuf},
    programs::XdpContext,
};
use xvrrp_common::{counter, AdvertRecord, EVENTS_BYTES, FAMILY_V4, FAMILY_V6};

#[map(name = "COUNTERS")]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

#[map(name = "EVENTS")]
static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_VRRP: u8 = 112;
const IPPROTO_ICMPV6: u8 = 58;
const ICMPV6_NS: u8 = 135;
const IPV4_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;
const VRRP_HLEN: usize = 8;
/// RFC 3768 §5.3.10: v2 adverts end with 8 bytes of authentication data.
const VRRP_V2_AUTH_LEN: usize = 8;

#[xdp]
pub fn xvrrp(ctx: XdpContext) -> u32 {
    count(counter::FRAMES);
    classify(&ctx);
    xdp_action::XDP_PASS
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
fn classify(ctx: &XdpContext) {
    let Some(mut ethertype) = be16_at(ctx, 12) else {
        count(counter::TRUNCATED);
        return;
    };
    let mut l3 = ETH_HLEN;
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        count(counter::VLAN);
        let Some(inner) = be16_at(ctx, 16) else {
            count(counter::TRUNCATED);
            return;
        };
        ethertype = inner;
        l3 = ETH_HLEN + 4;
    }
    match ethertype {
        ETH_P_ARP => classify_arp(ctx, l3),
        ETH_P_IP => classify_ipv4(ctx, l3),
        ETH_P_IPV6 => classify_ipv6(ctx, l3),
        _ => {}
    }
}

/// RFC 826 header: hrd(2) pro(2) hln(1) pln(1) op(2).
#[inline(always)]
fn classify_arp(ctx: &XdpContext, l3: usize) {
    let Some(hdr) = ptr_at::<[u8; 8]>(ctx, l3) else {
        count(counter::TRUNCATED);
        return;
    };
    // SAFETY: checked by ptr_at.
    let h = unsafe { *hdr };
    let ethernet_ipv4 = h[0..2] == [0, 1] && h[2..4] == [0x08, 0x00] && h[4] == 6 && h[5] == 4;
    if ethernet_ipv4 && h[6..8] == [0, 1] {
        count(counter::ARP_REQUEST);
    } else {
        count(counter::ARP_OTHER);
    }
}

#[inline(always)]
fn classify_ipv4(ctx: &XdpContext, l3: usize) {
    let Some(hdr) = ptr_at::<[u8; IPV4_HLEN]>(ctx, l3) else {
        count(counter::TRUNCATED);
        return;
    };
    // SAFETY: checked by ptr_at.
    let h = unsafe { *hdr };
    if h[9] != IPPROTO_VRRP {
        return;
    }
    // VRRP never uses IPv4 options; a header with them is not one of ours.
    if h[0] != 0x45 {
        invalid(counter::INVALID_FIELD);
        return;
    }
    let total_len = u16::from_be_bytes([h[2], h[3]]) as usize;
    let payload_len = total_len.saturating_sub(IPV4_HLEN);
    let mut src = [0u8; 16];
    src[0] = h[12];
    src[1] = h[13];
    src[2] = h[14];
    src[3] = h[15];
    advert(ctx, l3 + IPV4_HLEN, payload_len, FAMILY_V4, h[8], src);
}

#[inline(always)]
fn classify_ipv6(ctx: &XdpContext, l3: usize) {
    let Some(hdr) = ptr_at::<[u8; IPV6_HLEN]>(ctx, l3) else {
        count(counter::TRUNCATED);
        return;
    };
    // SAFETY: checked by ptr_at.
    let h = unsafe { *hdr };
    match h[6] {
        IPPROTO_ICMPV6 => {
            if u8_at(ctx, l3 + IPV6_HLEN) == Some(ICMPV6_NS) {
                count(counter::ND_NS);
            }
        }
        IPPROTO_VRRP => {
            let payload_len = u16::from_be_bytes([h[4], h[5]]) as usize;
            let mut src = [0u8; 16];
            src.copy_from_slice(&h[8..24]);
            advert(ctx, l3 + IPV6_HLEN, payload_len, FAMILY_V6, h[7], src);
        }
        _ => {}
    }
}

#[inline(always)]
fn invalid(reason: u32) {
    count(counter::VRRP_INVALID);
    count(reason);
}

/// RFC 9568 §5.1 / RFC 3768 §5.1 header: ver|type, vrid, priority, count,
/// then v3: rsvd(4) max_adver_int(12) checksum; v2: auth type, adver int, checksum.
#[inline(always)]
fn advert(ctx: &XdpContext, off: usize, payload_len: usize, family: u8, ttl: u8, src: [u8; 16]) {
    let Some(hdr) = ptr_at::<[u8; VRRP_HLEN]>(ctx, off) else {
        invalid(counter::INVALID_LENGTH);
        return;
    };
    // SAFETY: checked by ptr_at.
    let h = unsafe { *hdr };
    let version = h[0] >> 4;
    if !(version == 3 || (version == 2 && family == FAMILY_V4)) {
        invalid(counter::INVALID_VERSION);
        return;
    }
    if h[0] & 0x0f != 1 {
        invalid(counter::INVALID_TYPE);
        return;
    }
    let addr_count = h[3] as usize;
    if addr_count == 0 {
        invalid(counter::INVALID_FIELD);
        return;
    }
    let addr_len = if family == FAMILY_V4 { 4 } else { 16 };
    let mut needed = VRRP_HLEN + addr_count * addr_len;
    if version == 2 {
        needed += VRRP_V2_AUTH_LEN;
    }
    if payload_len < needed || ctx.data() + off + needed > ctx.data_end() {
        invalid(counter::INVALID_LENGTH);
        return;
    }
    // RFC 9568 §7.1: a received advert's TTL / hop limit must be 255.
    if ttl != 255 {
        invalid(counter::INVALID_TTL);
        return;
    }
    let interval_cs = if version == 3 {
        u16::from_be_bytes([h[4], h[5]]) & 0x0fff
    } else {
        h[5] as u16 * 100
    };
    let record = AdvertRecord {
        // SAFETY: helper without arguments.
        ts_ns: unsafe { bpf_ktime_get_ns() },
        // SAFETY: reads the xdp_md context the kernel handed us.
        ifindex: unsafe { (*ctx.ctx).ingress_ifindex },
        src,
        family,
        version,
        vrid: h[1],
        priority: h[2],
        interval_cs,
        addr_count: h[3],
        ttl,
        _pad: [0; 4],
    };
    if EVENTS.output::<AdvertRecord>(&record, 0).is_err() {
        count(counter::RINGBUF_FULL);
    }
    count(counter::VRRP_ADVERT);
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
