//! lb_kind DR and TUN (keepalived's IPVS direct routing and tunnelling) in
//! XDP, IPv4 and IPv6 (docs/load-balancing.md). A TCP/UDP packet to a
//! forwarded virtual server goes to a real: DR rewrites the MACs only, TUN
//! wraps the packet in an outer header of its family (IPIP / IPv6-in-IPv6,
//! or GRE, or UDP + GUE). A remembered flow keeps its real (unless it left
//! the pool); a new one, a TCP SYN, or one this CPU has not seen takes the
//! real of its Maglev slot, which every load balancer with the same table
//! computes alike, so a flow moved by a failover lands on the same real.

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_csum_diff, bpf_xdp_adjust_head, bpf_xdp_adjust_tail},
    macros::map,
    maps::{Array, DevMap, HashMap, LruPerCpuHashMap, PerCpuArray},
    programs::XdpContext,
};
use xvrrp_common::{
    counter, lb_flow_words, lb_hash, lb_tun_overhead, LbFlowKey, LbReal, LbRealStats, LbService,
    LbServiceKey, FAMILY_V4, FAMILY_V6, LB_ACTIVE, LB_BY_CLIENT, LB_FLOWS, LB_MAGLEV_SIZE,
    LB_REAL_ALIVE, LB_TUN, LB_TUN_GRE, LB_TUN_GUE, MAX_LB_REALS, MAX_LB_SERVICES,
};

use super::{
    be16_at, count, fold, ptr_at, ptr_mut, u8_at, ETH_HLEN, ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMP,
    IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, IPV4_HLEN, IPV6_HLEN, TCP_ACK, TCP_SYN,
};

/// DR/TUN virtual servers forwarded here.
#[map(name = "LB_SERVICES")]
static LB_SERVICES: HashMap<LbServiceKey, LbService> =
    HashMap::with_max_entries(MAX_LB_SERVICES, 0);

/// Per virtual server, two tables of LB_MAGLEV_SIZE slots (primary, then
/// fallback): the real's index + 1 (0: none).
#[map(name = "LB_MAGLEV")]
static LB_MAGLEV: Array<u32> = Array::with_max_entries(MAX_LB_SERVICES * 2 * LB_MAGLEV_SIZE, 0);

#[map(name = "LB_REALS")]
static LB_REALS: Array<LbReal> = Array::with_max_entries(MAX_LB_REALS, 0);

/// Per real's index: the interface its frames leave by, when not the one
/// they came in on.
#[map(name = "LB_TX")]
static LB_TX: DevMap = DevMap::with_max_entries(MAX_LB_REALS, 0);

/// Per real's index, per CPU: packets and bytes forwarded to it.
#[map(name = "LB_REAL_STATS")]
static LB_REAL_STATS: PerCpuArray<LbRealStats> = PerCpuArray::with_max_entries(MAX_LB_REALS, 0);

/// Established flows and their real's index + 1, per CPU (Katran's
/// connection table): a weight change rewrites the Maglev table, not these.
/// A key one CPU inserted reads 0 on the others (per-CPU slots start
/// zeroed): 0 is "not seen here", never real 0.
#[map(name = "LB_FLOW_TABLE")]
static LB_FLOW_TABLE: LruPerCpuHashMap<LbFlowKey, u32> =
    LruPerCpuHashMap::with_max_entries(LB_FLOWS, 0);

/// The answer of `lb_forward_*` for a frame it leaves alone.
pub const NOT_FORWARDED: u32 = u32::MAX;

const IPPROTO_IPIP: u8 = 4;
const IPPROTO_IPV6: u8 = 41;
const IPPROTO_GRE: u8 = 47;
const ICMPV6_PACKET_TOO_BIG: u8 = 2;
/// RFC 8200's minimum link MTU: an ICMPv6 error quotes as much of the
/// packet as fits in it (RFC 4443 §2.4 (c)).
const IPV6_MIN_MTU: usize = 1280;

/// IPv4 frames. A BPF-to-BPF call of its own (its stack is not added to
/// the inlined advert path's, which is near the 512-byte limit).
#[inline(never)]
pub fn lb_forward_ipv4(raw: *mut aya_ebpf::bindings::xdp_md) -> u32 {
    let ctx = XdpContext::new(raw);
    choose_ipv4(&ctx).unwrap_or(NOT_FORWARDED)
}

/// IPv6 frames, a call of its own as `lb_forward_ipv4`.
#[inline(never)]
pub fn lb_forward_ipv6(raw: *mut aya_ebpf::bindings::xdp_md) -> u32 {
    let ctx = XdpContext::new(raw);
    choose_ipv6(&ctx).unwrap_or(NOT_FORWARDED)
}

#[inline(always)]
fn choose_ipv4(ctx: &XdpContext) -> Option<u32> {
    if be16_at(ctx, 12)? != ETH_P_IP {
        return None;
    }
    let hdr = ptr_at::<[u8; IPV4_HLEN]>(ctx, ETH_HLEN)?;
    // SAFETY: checked by ptr_at.
    let h = unsafe { *hdr };
    if h[9] != IPPROTO_TCP && h[9] != IPPROTO_UDP {
        return None;
    }
    // IP options or a fragment: no ports where we look; the kernel has it.
    if h[0] != 0x45 || (h[6] & 0x3f) != 0 || h[7] != 0 {
        return None;
    }
    let mut src = [0u8; 16];
    src[..4].copy_from_slice(&h[12..16]);
    let mut dst = [0u8; 16];
    dst[..4].copy_from_slice(&h[16..20]);
    let (svc, flow) = lookup(ctx, ETH_HLEN + IPV4_HLEN, h[9], FAMILY_V4, src, dst)?;
    let (index, real) = pick(ctx, &svc, &flow, ETH_HLEN + IPV4_HLEN)?;
    let total = u16::from_be_bytes([h[2], h[3]]) as u32;
    if svc.flags & LB_TUN != 0 {
        let too_big = total + lb_tun_overhead(svc.flags, false) > real.mtu;
        if too_big && h[6] & 0x40 == 0 {
            // Not DF: the kernel may fragment it; XDP cannot.
            count(counter::LB_TOO_BIG_PASSED);
            return Some(xdp_action::XDP_PASS);
        }
        return tunnel_next(index, &svc, &flow, h[1], total, false, too_big);
    } else {
        rewrite_macs(ctx, &real)?;
    }
    Some(send(ctx, index, &real, total))
}

/// IPv6 without extension headers (anything else goes to the kernel).
#[inline(always)]
fn choose_ipv6(ctx: &XdpContext) -> Option<u32> {
    if be16_at(ctx, 12)? != ETH_P_IPV6 {
        return None;
    }
    let hdr = ptr_at::<[u8; IPV6_HLEN]>(ctx, ETH_HLEN)?;
    // SAFETY: checked by ptr_at.
    let h = unsafe { *hdr };
    if h[6] != IPPROTO_TCP && h[6] != IPPROTO_UDP {
        return None;
    }
    let mut src = [0u8; 16];
    src.copy_from_slice(&h[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&h[24..40]);
    let (svc, flow) = lookup(ctx, ETH_HLEN + IPV6_HLEN, h[6], FAMILY_V6, src, dst)?;
    let (index, real) = pick(ctx, &svc, &flow, ETH_HLEN + IPV6_HLEN)?;
    let total = u16::from_be_bytes([h[4], h[5]]) as u32 + IPV6_HLEN as u32;
    if svc.flags & LB_TUN != 0 {
        // IPv6 is never fragmented on the way: too big is always answered.
        let too_big = total + lb_tun_overhead(svc.flags, true) > real.mtu;
        let tclass = (h[0] << 4) | (h[1] >> 4);
        return tunnel_next(index, &svc, &flow, tclass, total, true, too_big);
    } else {
        rewrite_macs(ctx, &real)?;
    }
    Some(send(ctx, index, &real, total))
}

/// The service a packet is for, and its flow; None: not one forwarded here.
#[inline(always)]
fn lookup(
    ctx: &XdpContext,
    l4: usize,
    proto: u8,
    family: u8,
    src: [u8; 16],
    dst: [u8; 16],
) -> Option<(LbService, LbFlowKey)> {
    let ports = ptr_at::<[u8; 4]>(ctx, l4)?;
    // SAFETY: checked by ptr_at.
    let p = unsafe { *ports };
    let key = LbServiceKey {
        addr: dst,
        port: u16::from_be_bytes([p[2], p[3]]),
        proto,
        family,
    };
    // SAFETY: copied out at once.
    let svc = unsafe { LB_SERVICES.get(&key) }.copied()?;
    if svc.flags & LB_ACTIVE == 0 || svc.index >= MAX_LB_SERVICES {
        return None;
    }
    let flow = LbFlowKey {
        src,
        dst,
        sport: u16::from_be_bytes([p[0], p[1]]),
        dport: key.port,
        proto,
        family,
        _pad: [0; 2],
    };
    Some((svc, flow))
}

/// The real for a flow: the remembered one, else its Maglev slot's
/// (primary table, or the live reals' when the primary real is not alive
/// here), remembered.
#[inline(always)]
fn pick(ctx: &XdpContext, svc: &LbService, flow: &LbFlowKey, l4: usize) -> Option<(u32, LbReal)> {
    let new_connection = flow.proto == IPPROTO_TCP
        && u8_at(ctx, l4 + 13).is_some_and(|f| f & TCP_SYN != 0 && f & TCP_ACK == 0);
    if !new_connection {
        // SAFETY: copied out at once.
        if let Some(entry) = unsafe { LB_FLOW_TABLE.get(flow) }.copied() {
            let r = entry.wrapping_sub(1);
            if let Some(real) = LB_REALS.get(r).copied().filter(|_| entry != 0) {
                if real.flags & LB_REAL_ALIVE != 0 {
                    count(counter::LB_FLOW_KEPT);
                    return Some((r, real));
                }
            }
        }
    }
    let hash = lb_hash(&lb_flow_words(flow, svc.flags & LB_BY_CLIENT != 0));
    let slot = hash % LB_MAGLEV_SIZE;
    let primary = svc.index * 2 * LB_MAGLEV_SIZE;
    let mut entry = LB_MAGLEV.get(primary + slot).copied().unwrap_or(0);
    // The primary real is not alive here: the live reals' table.
    let alive = entry != 0
        && LB_REALS
            .get(entry - 1)
            .is_some_and(|r| r.flags & LB_REAL_ALIVE != 0);
    if !alive {
        entry = LB_MAGLEV
            .get(primary + LB_MAGLEV_SIZE + slot)
            .copied()
            .unwrap_or(0);
    }
    if entry == 0 {
        count(counter::LB_NO_REAL);
        return None;
    }
    let r = entry - 1;
    let real = LB_REALS.get(r).copied()?;
    let _ = LB_FLOW_TABLE.insert(flow, &entry, 0);
    Some((r, real))
}

/// A TUN packet's next step, handed from `lb_forward_*` to `lb_tunnel`
/// through a per-CPU slot: each is a BPF-to-BPF call of its own from the
/// entry (nested, their stacks would pass the verifier's 512 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Pending {
    real: u32,
    /// The service's LB_* flags.
    flags: u32,
    hash: u32,
    /// The inner packet's IP length.
    total: u16,
    tun_port: u16,
    /// The TOS / traffic class the outer header copies.
    tclass: u8,
    v6: u8,
    /// Answer with ICMP "too big" instead.
    too_big: u8,
    _pad: u8,
}

#[map(name = "LB_PENDING")]
static LB_PENDING: PerCpuArray<Pending> = PerCpuArray::with_max_entries(1, 0);

/// `lb_forward_*`'s answer for a TUN packet: call `lb_tunnel` next.
pub const TUNNEL: u32 = u32::MAX - 1;

#[inline(always)]
fn tunnel_next(
    real: u32,
    svc: &LbService,
    flow: &LbFlowKey,
    tclass: u8,
    total: u32,
    v6: bool,
    too_big: bool,
) -> Option<u32> {
    let slot = LB_PENDING.get_ptr_mut(0)?;
    // SAFETY: this CPU's slot; the entry calls lb_tunnel right after.
    unsafe {
        *slot = Pending {
            real,
            flags: svc.flags,
            hash: tunnel_hash(flow),
            total: total as u16,
            tun_port: svc.tun_port,
            tclass,
            v6: u8::from(v6),
            too_big: u8::from(too_big),
            _pad: 0,
        };
    }
    Some(TUNNEL)
}

/// The second half of a TUN packet (after `lb_forward_*` said TUNNEL):
/// ICMP "too big" for one that would not fit, else the outer headers and
/// on its way.
#[inline(never)]
pub fn lb_tunnel(raw: *mut aya_ebpf::bindings::xdp_md) -> u32 {
    let ctx = &XdpContext::new(raw);
    let Some(p) = LB_PENDING.get(0).copied() else {
        return xdp_action::XDP_PASS;
    };
    let Some(real) = LB_REALS.get(p.real) else {
        return xdp_action::XDP_PASS;
    };
    let v6 = p.v6 != 0;
    let overhead = lb_tun_overhead(p.flags, v6);
    if p.too_big != 0 {
        return if v6 {
            too_big_v6(ctx, real, overhead)
        } else {
            too_big(ctx, real, overhead)
        };
    }
    if encapsulate(ctx, real, &p).is_none() {
        return xdp_action::XDP_PASS;
    }
    send(ctx, p.real, real, u32::from(p.total))
}

/// The flow's hash for tunnel headers: GUE's UDP source port and the IPv6
/// flow label carry it (entropy for ECMP and RSS on the way, as the
/// kernel's udp_flow_src_port and ip6_make_flowlabel).
#[inline(always)]
fn tunnel_hash(flow: &LbFlowKey) -> u32 {
    lb_hash(&lb_flow_words(flow, false))
}

#[inline(always)]
fn rewrite_macs(ctx: &XdpContext, real: &LbReal) -> Option<()> {
    let eth = ptr_mut::<[u8; 12]>(ctx, 0)?;
    let mut e = [0u8; 12];
    e[..6].copy_from_slice(&real.mac);
    e[6..].copy_from_slice(&real.src_mac);
    // SAFETY: checked by ptr_mut.
    unsafe { *eth = e };
    Some(())
}

/// Counts the packet for its real and sends it: XDP_TX on the interface it
/// came in on, else XDP_REDIRECT through the devmap.
#[inline(always)]
fn send(ctx: &XdpContext, index: u32, real: &LbReal, total: u32) -> u32 {
    count(counter::LB_FORWARDED);
    if let Some(st) = LB_REAL_STATS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe {
            (*st).packets += 1;
            (*st).bytes += u64::from(total);
        }
    }
    // SAFETY: reads the xdp_md context the kernel handed us.
    let ingress = unsafe { (*ctx.ctx).ingress_ifindex };
    if real.ifindex == 0 || real.ifindex == ingress {
        return xdp_action::XDP_TX;
    }
    LB_TX.redirect(index, 0).unwrap_or(xdp_action::XDP_ABORTED)
}

/// The one's-complement sum of a header's 16-bit words, folded.
#[inline(always)]
fn ones_sum(bytes: &[u8]) -> u32 {
    let mut sum = 0u32;
    let mut i = 0;
    while i + 1 < bytes.len() {
        sum += u16::from_be_bytes([bytes[i], bytes[i + 1]]) as u32;
        i += 2;
    }
    fold(sum)
}

#[inline(always)]
fn v4(a: &[u8; 16]) -> [u8; 4] {
    [a[0], a[1], a[2], a[3]]
}

/// An IPv4 header (no options) with its checksum.
#[inline(always)]
fn ipv4_header(tos: u8, total: u16, proto: u8, src: [u8; 4], dst: [u8; 4]) -> [u8; IPV4_HLEN] {
    let mut ip = [0u8; IPV4_HLEN];
    ip[0] = 0x45;
    ip[1] = tos;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40; // DF: the inner packet was sized for the path already
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let sum = !(ones_sum(&ip) as u16);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    ip
}

/// Writes an IPv6 header into `ip`: traffic class, a 20-bit flow label,
/// hop limit 64.
#[inline(always)]
fn ipv6_header(
    ip: &mut [u8; IPV6_HLEN],
    tclass: u8,
    label: u32,
    payload: u16,
    next: u8,
    src: &[u8; 16],
    dst: &[u8; 16],
) {
    let word = (6u32 << 28) | (u32::from(tclass) << 20) | (label & 0xfffff);
    ip[..4].copy_from_slice(&word.to_be_bytes());
    ip[4..6].copy_from_slice(&payload.to_be_bytes());
    ip[6] = next;
    ip[7] = 64;
    ip[8..24].copy_from_slice(src);
    ip[24..40].copy_from_slice(dst);
}

/// lb_kind TUN: the frame grows by an outer header of the packet's family
/// from this load balancer to the real (IPIP, RFC 2003; IPv6-in-IPv6,
/// RFC 2473), the inner packet untouched; with `tun_type gre` a GRE header
/// (RFC 2784) follows it, with `gue` a UDP header to `tun_port` and a GUE
/// header (IPVS's GUE: variant 0, proto IPIP/IPv6, no checksum).
#[inline(always)]
fn encapsulate(ctx: &XdpContext, real: &LbReal, p: &Pending) -> Option<()> {
    let (tclass, inner_total, v6, hash) = (p.tclass, p.total, p.v6 != 0, p.hash);
    let overhead = lb_tun_overhead(p.flags, v6);
    // SAFETY: the helper moves the frame's start; every access after it
    // is bounds-checked again by ptr_at.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(overhead as i32)) } != 0 {
        return None;
    }
    let outer_hlen = if v6 { IPV6_HLEN } else { IPV4_HLEN };
    let inner_proto = if v6 { IPPROTO_IPV6 } else { IPPROTO_IPIP };
    let (proto, extra) = if p.flags & LB_TUN_GUE != 0 {
        let udp_len = inner_total + 8 + 4;
        let out = ptr_mut::<[u8; 12]>(ctx, ETH_HLEN + outer_hlen)?;
        let sport = 0xc000 | (hash & 0x3fff) as u16;
        let mut u = [0u8; 12];
        u[..2].copy_from_slice(&sport.to_be_bytes());
        u[2..4].copy_from_slice(&p.tun_port.to_be_bytes());
        u[4..6].copy_from_slice(&udp_len.to_be_bytes());
        // u[6..8]: no UDP checksum (IPVS's default, `nocsum`, for both
        // families); u[8]: GUE version 0, no control, no extension words.
        u[9] = inner_proto;
        // SAFETY: checked by ptr_mut.
        unsafe { *out = u };
        (IPPROTO_UDP, 12)
    } else if p.flags & LB_TUN_GRE != 0 {
        let out = ptr_mut::<[u8; 4]>(ctx, ETH_HLEN + outer_hlen)?;
        let ethertype = if v6 { ETH_P_IPV6 } else { ETH_P_IP };
        let t = ethertype.to_be_bytes();
        // No checksum, key or sequence; the payload's ethertype.
        // SAFETY: checked by ptr_mut.
        unsafe { *out = [0, 0, t[0], t[1]] };
        (IPPROTO_GRE, 4)
    } else {
        (inner_proto, 0)
    };
    let eth = ptr_mut::<[u8; ETH_HLEN]>(ctx, 0)?;
    // SAFETY: checked by ptr_mut; the headers are written in place.
    let eth = unsafe { &mut *eth };
    eth[..6].copy_from_slice(&real.mac);
    eth[6..12].copy_from_slice(&real.src_mac);
    if v6 {
        let out = ptr_mut::<[u8; IPV6_HLEN]>(ctx, ETH_HLEN)?;
        // SAFETY: checked by ptr_mut.
        unsafe {
            eth[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
            ipv6_header(
                &mut *out,
                tclass,
                hash,
                inner_total + extra,
                proto,
                &real.local,
                &real.addr,
            );
        }
    } else {
        let out = ptr_mut::<[u8; IPV4_HLEN]>(ctx, ETH_HLEN)?;
        let ip = ipv4_header(
            tclass,
            inner_total + IPV4_HLEN as u16 + extra,
            proto,
            v4(&real.local),
            v4(&real.addr),
        );
        // SAFETY: checked by ptr_mut.
        unsafe {
            eth[12..14].copy_from_slice(&ETH_P_IP.to_be_bytes());
            *out = ip;
        }
    }
    count(counter::LB_ENCAPSULATED);
    Some(())
}

/// ICMP "fragmentation needed" (RFC 792 type 3 code 4, RFC 1191's next-hop
/// MTU) to the client, in place of a DF packet too big for the tunnel:
/// from this load balancer's address, quoting the packet's IP header and
/// first 8 bytes, the frame cut to its 70 bytes and sent back.
#[inline(always)]
fn too_big(ctx: &XdpContext, real: &LbReal, overhead: u32) -> u32 {
    const QUOTE: usize = IPV4_HLEN + 8;
    const ICMP_LEN: usize = 8 + QUOTE;
    const FRAME: usize = ETH_HLEN + IPV4_HLEN + ICMP_LEN;
    let (Some(eth), Some(quoted)) = (
        ptr_at::<[u8; 12]>(ctx, 0),
        ptr_at::<[u8; QUOTE]>(ctx, ETH_HLEN),
    ) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: checked by ptr_at; copied before the frame changes.
    let (e, q) = unsafe { (*eth, *quoted) };
    let len = ctx.data_end() - ctx.data();
    // SAFETY: shrinks the frame to FRAME bytes (it is longer: too big).
    if unsafe { bpf_xdp_adjust_tail(ctx.ctx, FRAME as i32 - len as i32) } != 0 {
        return xdp_action::XDP_PASS;
    }
    let Some(out) = ptr_mut::<[u8; FRAME]>(ctx, 0) else {
        return xdp_action::XDP_PASS;
    };
    let mut f = [0u8; FRAME];
    f[..6].copy_from_slice(&e[6..12]);
    f[6..12].copy_from_slice(&e[..6]);
    f[12..14].copy_from_slice(&ETH_P_IP.to_be_bytes());
    let mut client = [0u8; 4];
    client.copy_from_slice(&q[12..16]);
    f[ETH_HLEN..ETH_HLEN + IPV4_HLEN].copy_from_slice(&ipv4_header(
        0,
        (IPV4_HLEN + ICMP_LEN) as u16,
        IPPROTO_ICMP,
        v4(&real.local),
        client,
    ));
    let icmp = ETH_HLEN + IPV4_HLEN;
    f[icmp] = 3;
    f[icmp + 1] = 4;
    let mtu = (real.mtu as u16).saturating_sub(overhead as u16);
    f[icmp + 6..icmp + 8].copy_from_slice(&mtu.to_be_bytes());
    f[icmp + 8..].copy_from_slice(&q);
    let sum = !(ones_sum(&f[icmp..]) as u16);
    f[icmp + 2..icmp + 4].copy_from_slice(&sum.to_be_bytes());
    // SAFETY: checked by ptr_mut.
    unsafe { *out = f };
    count(counter::LB_ICMP_TOO_BIG);
    xdp_action::XDP_TX
}

/// ICMPv6 "Packet Too Big" (RFC 4443 §3.2: type 2, the MTU) to the client
/// for an IPv6 packet too big for the tunnel, from this load balancer's
/// address, quoting as much of the packet as fits in 1,280 bytes (§2.4):
/// the frame grows by the new headers in front of the packet and is cut
/// after the quote. A packet too big here is longer than any quote (the
/// link MTU is at least 1,280 and the tunnel adds 40 or more), so the quote
/// is always 1,232 bytes, summed by the kernel (bpf_csum_diff) in three
/// fixed pieces.
#[inline(always)]
fn too_big_v6(ctx: &XdpContext, real: &LbReal, overhead: u32) -> u32 {
    const HEADERS: usize = ETH_HLEN + IPV6_HLEN + 8;
    const QUOTE: usize = IPV6_MIN_MTU - IPV6_HLEN - 8;
    const FRAME: usize = HEADERS + QUOTE;
    const GROW: usize = IPV6_HLEN + 8;
    let (Some(macs), Some(source)) = (
        ptr_at::<[u8; 12]>(ctx, 0),
        ptr_at::<[u8; 16]>(ctx, ETH_HLEN + 8),
    ) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: checked by ptr_at; copied before the frame changes.
    let (macs, client) = unsafe { (*macs, *source) };
    // SAFETY: grows the frame's front; every access after it is checked.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(GROW as i32)) } != 0 {
        return xdp_action::XDP_PASS;
    }
    let len = ctx.data_end() - ctx.data();
    if len < FRAME {
        return xdp_action::XDP_DROP;
    }
    // SAFETY: shrinks the frame to FRAME bytes (checked longer above).
    if unsafe { bpf_xdp_adjust_tail(ctx.ctx, FRAME as i32 - len as i32) } != 0 {
        return xdp_action::XDP_DROP;
    }
    // The quote's sum, in three pieces of at most 512 bytes (the helper's
    // limit), each a multiple of 4, each proven inside the frame.
    let (Some(a), Some(b), Some(c)) = (
        ptr_at::<[u8; 512]>(ctx, HEADERS),
        ptr_at::<[u8; 512]>(ctx, HEADERS + 512),
        ptr_at::<[u8; QUOTE - 1024]>(ctx, HEADERS + 1024),
    ) else {
        return xdp_action::XDP_DROP;
    };
    let mut seed = 0u32;
    for (p, size) in [
        (a as *mut u32, 512u32),
        (b as *mut u32, 512),
        (c as *mut u32, (QUOTE - 1024) as u32),
    ] {
        // SAFETY: [p, p + size) is inside the frame (ptr_at above).
        let s = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, p, size, seed) };
        if s < 0 {
            return xdp_action::XDP_DROP;
        }
        seed = s as u32;
    }
    // The kernel sums 16-bit words in host order (little-endian here):
    // folded and swapped, the big-endian sum.
    let quote_sum = (fold(seed) as u16).swap_bytes() as u32;
    let Some(out) = ptr_mut::<[u8; HEADERS]>(ctx, 0) else {
        return xdp_action::XDP_DROP;
    };
    let icmp_len = (8 + QUOTE) as u16;
    let mtu = real.mtu.saturating_sub(overhead);
    // SAFETY: checked by ptr_mut; the headers are written in place.
    let f = unsafe { &mut *out };
    f[..6].copy_from_slice(&macs[6..12]);
    f[6..12].copy_from_slice(&macs[..6]);
    f[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
    let mut ip = [0u8; IPV6_HLEN];
    ipv6_header(
        &mut ip,
        0,
        0,
        icmp_len,
        IPPROTO_ICMPV6,
        &real.local,
        &client,
    );
    f[ETH_HLEN..ETH_HLEN + IPV6_HLEN].copy_from_slice(&ip);
    let icmp = ETH_HLEN + IPV6_HLEN;
    f[icmp..icmp + 4].copy_from_slice(&[ICMPV6_PACKET_TOO_BIG, 0, 0, 0]);
    f[icmp + 4..icmp + 8].copy_from_slice(&mtu.to_be_bytes());
    // RFC 4443 §2.3: the pseudo-header (addresses, length, next header),
    // the ICMPv6 header and the quote.
    let sum = ones_sum(&ip[8..])
        + u32::from(icmp_len)
        + u32::from(IPPROTO_ICMPV6)
        + u32::from(ICMPV6_PACKET_TOO_BIG) * 256
        + (mtu >> 16)
        + (mtu & 0xffff)
        + quote_sum;
    let sum = !(fold(sum) as u16);
    f[icmp + 2..icmp + 4].copy_from_slice(&sum.to_be_bytes());
    count(counter::LB_ICMP_TOO_BIG);
    xdp_action::XDP_TX
}
