//! Interface facts: index, MAC, addresses, carrier (from getifaddrs and sysfs).

use std::{
    ffi::CStr,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

/// Index of a network interface by name.
pub fn ifindex(name: &str) -> anyhow::Result<u32> {
    let index = nix::net::if_::if_nametoindex(name).map_err(|_| {
        anyhow::anyhow!("no interface named {name:?} in this network namespace (see `ip link`)")
    })?;
    Ok(index)
}

/// The interface's MAC address.
pub fn mac(name: &str) -> anyhow::Result<[u8; 6]> {
    let path = format!("/sys/class/net/{name}/address");
    let text =
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("reading {path}: {e}"))?;
    let bytes: Vec<u8> = text
        .trim()
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("{path}: not a MAC address: {}", text.trim()))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("{path}: not a 6-byte MAC"))
}

/// Whether the interface is administratively up and has carrier.
pub fn is_up(name: &str) -> bool {
    let read =
        |f: &str| std::fs::read_to_string(format!("/sys/class/net/{name}/{f}")).unwrap_or_default();
    let flags = u32::from_str_radix(read("flags").trim().trim_start_matches("0x"), 16).unwrap_or(0);
    flags & libc::IFF_UP as u32 != 0 && read("carrier").trim() == "1"
}

/// Addresses on `name` (with their prefix lengths), in kernel order.
pub fn addresses(name: &str) -> Vec<(IpAddr, u8)> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: cur is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: a NUL-terminated name.
        if unsafe { CStr::from_ptr(ifa.ifa_name) }.to_bytes() != name.as_bytes() {
            continue;
        }
        // SAFETY: ifa_addr / ifa_netmask point to sockaddrs of their family.
        let (addr, mask) = unsafe { (sockaddr_ip(ifa.ifa_addr), sockaddr_ip(ifa.ifa_netmask)) };
        if let Some(addr) = addr {
            let prefix = match mask {
                Some(IpAddr::V4(m)) => u32::from(m).count_ones() as u8,
                Some(IpAddr::V6(m)) => u128::from(m).count_ones() as u8,
                None => {
                    if addr.is_ipv4() {
                        32
                    } else {
                        128
                    }
                }
            };
            out.push((addr, prefix));
        }
    }
    // SAFETY: the list from getifaddrs.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// # Safety
/// `sa` is null or points to a valid sockaddr.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    match (*sa).sa_family as i32 {
        libc::AF_INET => {
            let sin = &*(sa as *const libc::sockaddr_in);
            Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).into())
        }
        libc::AF_INET6 => {
            let sin6 = &*(sa as *const libc::sockaddr_in6);
            Some(Ipv6Addr::from(sin6.sin6_addr.s6_addr).into())
        }
        _ => None,
    }
}

/// The address adverts are sent from: IPv4, the interface's first address
/// that is not a VIP; IPv6, its link-local address (RFC 9568 §5.1.2.1).
pub fn primary(name: &str, ipv6: bool, vips: &[IpAddr]) -> Option<IpAddr> {
    addresses(name)
        .into_iter()
        .map(|(a, _)| a)
        .find(|a| match a {
            IpAddr::V4(_) => !ipv6 && !vips.contains(a),
            IpAddr::V6(v) => ipv6 && (v.segments()[0] & 0xffc0) == 0xfe80,
        })
}
