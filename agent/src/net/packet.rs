//! An AF_PACKET socket bound to one interface, for whole Ethernet frames:
//! gratuitous ARP, unsolicited NA, and test traffic.

use std::{io, os::fd::OwnedFd};

use anyhow::Context as _;
use nix::sys::socket::{
    bind, recv, sendto, setsockopt, socket, sockopt, AddressFamily, LinkAddr, MsgFlags, SockFlag,
    SockProtocol, SockType, SockaddrLike as _,
};

use super::iface::ifindex;

pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
}

/// A sockaddr_ll for `ifindex` (nix has no constructor for one).
fn link_addr(ifindex: u32, protocol: u16, dst: Option<&[u8]>) -> LinkAddr {
    // SAFETY: sockaddr_ll is plain data; all zeroes is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol;
    sll.sll_ifindex = ifindex as i32;
    if let Some(mac) = dst.filter(|m| m.len() >= 6) {
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&mac[..6]);
    }
    let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: a complete sockaddr_ll of the length given.
    unsafe { LinkAddr::from_raw((&sll as *const libc::sockaddr_ll).cast(), Some(len)) }
        .expect("an AF_PACKET address")
}

impl PacketSocket {
    /// Opens a raw packet socket bound to `interface` (needs CAP_NET_RAW).
    /// `receive` = false binds with protocol 0, so nothing is queued to it.
    pub fn open(interface: &str, receive: bool) -> anyhow::Result<Self> {
        let ifindex = ifindex(interface)?;
        // ETH_P_ALL in network byte order, as socket(2) and sockaddr_ll want it.
        let (proto, sock_proto) = if receive {
            (
                SockProtocol::EthAll as i32 as u16,
                Some(SockProtocol::EthAll),
            )
        } else {
            (0, None)
        };
        let fd = socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            sock_proto,
        )
        .context("socket(AF_PACKET) needs CAP_NET_RAW")?;
        bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &link_addr(ifindex, proto, None),
        )
        .with_context(|| format!("binding a packet socket to {interface}"))?;
        Ok(PacketSocket { fd, ifindex })
    }

    /// The socket, for options and calls this type does not wrap.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Sends one whole Ethernet frame.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let to = link_addr(self.ifindex, 0, Some(frame));
        sendto(
            std::os::fd::AsRawFd::as_raw_fd(&self.fd),
            frame,
            &to,
            MsgFlags::empty(),
        )?;
        Ok(())
    }

    /// Receives one frame into `buf` (blocking); its length.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(recv(
            std::os::fd::AsRawFd::as_raw_fd(&self.fd),
            buf,
            MsgFlags::empty(),
        )?)
    }

    /// Sets a receive timeout so `recv` returns `WouldBlock` when it passes.
    pub fn set_read_timeout(&self, timeout: std::time::Duration) -> io::Result<()> {
        let tv = nix::sys::time::TimeVal::new(
            timeout.as_secs() as libc::time_t,
            timeout.subsec_micros() as libc::suseconds_t,
        );
        Ok(setsockopt(&self.fd, sockopt::ReceiveTimeout, &tv)?)
    }
}
