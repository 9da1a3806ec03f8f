//! Interface facts: index, MAC, addresses, carrier (from getifaddrs and sysfs).

use std::net::IpAddr;

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
    let Ok(all) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    all.filter(|ifa| ifa.interface_name == name)
        .filter_map(|ifa| {
            let ip = |sa: Option<nix::sys::socket::SockaddrStorage>| -> Option<IpAddr> {
                let sa = sa?;
                if let Some(v4) = sa.as_sockaddr_in() {
                    return Some(IpAddr::V4(v4.ip()));
                }
                sa.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            };
            let addr = ip(ifa.address)?;
            let prefix = match ip(ifa.netmask) {
                Some(IpAddr::V4(m)) => u32::from(m).count_ones() as u8,
                Some(IpAddr::V6(m)) => u128::from(m).count_ones() as u8,
                None if addr.is_ipv4() => 32,
                None => 128,
            };
            Some((addr, prefix))
        })
        .collect()
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
