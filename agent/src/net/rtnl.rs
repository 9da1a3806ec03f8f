//! Addresses through rtnetlink (RTM_NEWADDR / RTM_DELADDR), written by hand:
//! a netlink socket, one request, one acknowledgement.

use std::{
    io,
    net::{IpAddr, Ipv4Addr},
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
};

const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFA_F_NODAD: u32 = 0x02;

/// One address to put on (or take off) an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    pub broadcast: Option<Ipv4Addr>,
    pub label: Option<String>,
    /// RT_SCOPE_*: 0 global, 200 site, 253 link, 254 host.
    pub scope: u8,
}

/// keepalived's scope names (and numbers).
pub fn scope(name: &str) -> Option<u8> {
    match name {
        "global" | "universe" => Some(0),
        "site" => Some(200),
        "link" => Some(253),
        "host" => Some(254),
        "nowhere" => Some(255),
        n => n.parse().ok(),
    }
}

pub(crate) fn attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

/// Fills in the netlink header of a message built after 16 placeholder bytes.
pub(crate) fn finish(mut m: Vec<u8>, kind: u16, flags: u16) -> Vec<u8> {
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&kind.to_ne_bytes());
    m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_ACK | flags).to_ne_bytes());
    m[8..12].copy_from_slice(&1u32.to_ne_bytes());
    m
}

pub(crate) const CREATE_EXCL: u16 = NLM_F_CREATE | NLM_F_EXCL;

fn request(kind: u16, flags: u16, a: &Address) -> Vec<u8> {
    let mut m = vec![0u8; 16];
    let family = if a.addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    } as u8;
    // struct ifaddrmsg
    m.extend_from_slice(&[family, a.prefix, 0, a.scope]);
    m.extend_from_slice(&a.ifindex.to_ne_bytes());
    let bytes = match a.addr {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    };
    attr(&mut m, IFA_LOCAL, &bytes);
    attr(&mut m, IFA_ADDRESS, &bytes);
    if let Some(b) = a.broadcast {
        attr(&mut m, IFA_BROADCAST, &b.octets());
    }
    if let Some(l) = &a.label {
        let mut s = l.as_bytes().to_vec();
        s.push(0);
        attr(&mut m, IFA_LABEL, &s);
    }
    if a.addr.is_ipv6() {
        // A VIP moves between hosts: duplicate address detection would hold it back.
        attr(&mut m, IFA_FLAGS, &IFA_F_NODAD.to_ne_bytes());
    }
    finish(m, kind, flags)
}

/// Sends one request and returns the kernel's errno (0 = done).
pub(crate) fn transact(msg: &[u8]) -> io::Result<i32> {
    // SAFETY: plain socket(2).
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // The event loop calls this: a lost answer must not hang the agent.
    nix::sys::socket::setsockopt(
        &fd,
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(2, 0),
    )
    .map_err(io::Error::from)?;
    // SAFETY: msg is valid for its length; the kernel is the default destination.
    if unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = [0u8; 4096];
    // SAFETY: buf is valid for its length.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 20 {
        return Err(io::Error::last_os_error());
    }
    let kind = u16::from_ne_bytes([buf[4], buf[5]]);
    if kind != NLMSG_ERROR {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "netlink: no acknowledgement",
        ));
    }
    Ok(-i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]))
}

/// Adds the address. Ok(true) when added, Ok(false) when it was already
/// there (then it is not ours to remove later).
pub fn add(a: &Address) -> io::Result<bool> {
    match transact(&request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, a))? {
        0 => Ok(true),
        libc::EEXIST => Ok(false),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Removes the address; gone already is fine.
pub fn remove(a: &Address) -> io::Result<()> {
    match transact(&request(RTM_DELADDR, 0, a))? {
        0 | libc::EADDRNOTAVAIL | libc::ENOENT | libc::ENODEV => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout() {
        let a = Address {
            ifindex: 7,
            addr: "192.0.2.8".parse().unwrap(),
            prefix: 24,
            broadcast: Some(Ipv4Addr::new(192, 0, 2, 255)),
            label: Some("eth0:1".into()),
            scope: 0,
        };
        let m = request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &a);
        assert_eq!(
            u32::from_ne_bytes(m[0..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert!(m.len().is_multiple_of(4));
        assert_eq!(&m[16..20], &[libc::AF_INET as u8, 24, 0, 0]);
        assert_eq!(u32::from_ne_bytes(m[20..24].try_into().unwrap()), 7);
        // IFA_LOCAL first: len 8, type 2, the address.
        assert_eq!(u16::from_ne_bytes(m[24..26].try_into().unwrap()), 8);
        assert_eq!(u16::from_ne_bytes(m[26..28].try_into().unwrap()), IFA_LOCAL);
        assert_eq!(&m[28..32], &[192, 0, 2, 8]);
        assert_eq!(scope("link"), Some(253));
        assert_eq!(scope("17"), Some(17));
    }
}
