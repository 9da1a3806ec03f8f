//! Frames and map contents for the XDP load balancer's packet tests and
//! its per-packet benchmark (BPF_PROG_TEST_RUN): a client, a VIP, a load
//! balancer and two reals, all on one link.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aya::{
    maps::{Array, HashMap},
    programs::{TestRun, TestRunOptions},
};
use xvrrp::wire::{ethernet, ip};
use xvrrp_common::{
    LbReal, LbService, LbServiceKey, LB_MAGLEV_SIZE, LB_REAL_ALIVE, MAP_LB_MAGLEV, MAP_LB_REALS,
    MAP_LB_SERVICES,
};

pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0c];
pub const LB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x1b];
pub const REAL_MACS: [[u8; 6]; 2] = [[0x02, 0, 0, 0, 0, 0xa1], [0x02, 0, 0, 0, 0, 0xa2]];
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 100);
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 3);
pub const LB_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
pub const REAL_ADDRS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 77, 0, 11), Ipv4Addr::new(10, 77, 0, 12)];
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x100);
pub const CLIENT6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 3);
pub const LB_ADDR6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);
pub const REAL_ADDRS6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x11),
    Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x12),
];
/// The MTU the reals' link has in these tests.
pub const MTU: u32 = 1500;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;

/// A TCP or UDP frame from the client to VIP:dport.
pub fn frame(proto: u8, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    frame_between(proto, sport, dport, flags, CLIENT.into(), VIP.into())
}

/// The same over IPv6, from CLIENT6 to VIP6.
pub fn frame6(proto: u8, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    frame_between(proto, sport, dport, flags, CLIENT6.into(), VIP6.into())
}

fn frame_between(
    proto: u8,
    sport: u16,
    dport: u16,
    flags: u8,
    src: IpAddr,
    dst: IpAddr,
) -> Vec<u8> {
    let mut l4 = vec![0u8; if proto == IPPROTO_TCP { 20 } else { 8 }];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    if proto == IPPROTO_TCP {
        l4[12] = 5 << 4;
        l4[13] = flags;
    } else {
        l4[4..6].copy_from_slice(&8u16.to_be_bytes());
    }
    l4.extend_from_slice(b"payload");
    let iph = ip::Repr {
        src,
        dst,
        protocol: proto,
        ttl: 64,
        payload_len: l4.len(),
    };
    ethernet::frame(
        &ethernet::Repr {
            dst: LB_MAC,
            src: CLIENT_MAC,
            vlan: None,
            ethertype: if src.is_ipv6() {
                ethernet::ethertype::IPV6
            } else {
                ethernet::ethertype::IPV4
            },
        },
        &iph.packet(&l4),
    )
}

/// The frame as it leaves for real `r`: only the MACs differ.
pub fn to_real(input: &[u8], r: usize) -> Vec<u8> {
    let mut out = input.to_vec();
    out[..6].copy_from_slice(&REAL_MACS[r]);
    out[6..12].copy_from_slice(&LB_MAC);
    out
}

/// VIP:80/tcp as service 0 with these LB_* flags.
pub fn set_service(ebpf: &mut aya::Ebpf, flags: u32) {
    set_tun_service(ebpf, flags, 0);
}

/// `set_service` with a GUE tunnel's UDP port.
pub fn set_tun_service(ebpf: &mut aya::Ebpf, flags: u32, tun_port: u16) {
    set_service_on(ebpf, VIP.into(), flags, tun_port);
}

/// VIP6:80/tcp as service 0.
pub fn set_service6(ebpf: &mut aya::Ebpf, flags: u32) {
    set_service_on(ebpf, VIP6.into(), flags, 0);
}

fn set_service_on(ebpf: &mut aya::Ebpf, vip: IpAddr, flags: u32, tun_port: u16) {
    let mut m: HashMap<_, LbServiceKey, LbService> =
        HashMap::try_from(ebpf.map_mut(MAP_LB_SERVICES).expect("LB_SERVICES"))
            .expect("LB_SERVICES");
    let (family, addr) = xvrrp::dataplane::map_address(vip);
    m.insert(
        LbServiceKey {
            addr,
            port: 80,
            proto: IPPROTO_TCP,
            family,
        },
        LbService {
            index: 0,
            flags,
            tun_port,
            _pad: 0,
        },
        0,
    )
    .expect("LB_SERVICES insert");
}

/// Real `r` (XDP_TX on the same link), alive or not.
pub fn set_real(ebpf: &mut aya::Ebpf, r: usize, alive: bool) {
    set_real_on(ebpf, r, alive, 0)
}

/// Real `r` behind interface `ifindex` (0: the one frames come in on).
pub fn set_real_on(ebpf: &mut aya::Ebpf, r: usize, alive: bool, ifindex: u32) {
    put_real(
        ebpf,
        r,
        alive,
        ifindex,
        REAL_ADDRS[r].into(),
        LB_ADDR.into(),
    );
}

/// Real `r` at its IPv6 address (TUN's outer header from LB_ADDR6).
pub fn set_real6(ebpf: &mut aya::Ebpf, r: usize, alive: bool) {
    put_real(ebpf, r, alive, 0, REAL_ADDRS6[r].into(), LB_ADDR6.into());
}

fn put_real(
    ebpf: &mut aya::Ebpf,
    r: usize,
    alive: bool,
    ifindex: u32,
    addr: IpAddr,
    local: IpAddr,
) {
    let mut m: Array<_, LbReal> =
        Array::try_from(ebpf.map_mut(MAP_LB_REALS).expect("LB_REALS")).expect("LB_REALS");
    m.set(
        r as u32,
        LbReal {
            mac: REAL_MACS[r],
            src_mac: LB_MAC,
            ifindex,
            flags: if alive { LB_REAL_ALIVE } else { 0 },
            addr: xvrrp::dataplane::map_address(addr).1,
            local: xvrrp::dataplane::map_address(local).1,
            mtu: MTU,
        },
        0,
    )
    .expect("LB_REALS set");
}

/// Every slot of service 0's table `which` (0 primary, 1 fallback) to
/// real `r` (None: to no real).
pub fn fill(ebpf: &mut aya::Ebpf, which: u32, r: Option<usize>) {
    let mut m: Array<_, u32> =
        Array::try_from(ebpf.map_mut(MAP_LB_MAGLEV).expect("LB_MAGLEV")).expect("LB_MAGLEV");
    let entry = r.map_or(0, |r| r as u32 + 1);
    for slot in 0..LB_MAGLEV_SIZE {
        m.set(which * LB_MAGLEV_SIZE + slot, entry, 0)
            .expect("LB_MAGLEV set");
    }
}

/// Pins the calling thread to one CPU (the flow table is per CPU).
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t with one bit set, for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
            0,
            "sched_setaffinity"
        );
    }
}

/// One frame through the program (BPF_PROG_TEST_RUN): its verdict and the
/// frame it leaves.
pub fn run(ebpf: &mut aya::Ebpf, input: &[u8]) -> (u32, Vec<u8>) {
    let prog = xvrrp::dataplane::program_mut(ebpf).expect("the XDP program");
    let mut out = vec![0u8; input.len() + 64];
    let r = prog
        .test_run(TestRunOptions {
            data_in: Some(input),
            data_out: Some(&mut out),
            ..Default::default()
        })
        .expect("BPF_PROG_TEST_RUN");
    out.truncate(r.data_size_out as usize);
    (r.return_value, out)
}
