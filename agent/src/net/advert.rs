//! VRRP adverts on raw IP sockets (protocol 112): one per interface and
//! family, joined to 224.0.0.18 / ff02::12, TTL / hop limit 255, no loopback.
//! The socket path used when XDP is off, and always for sending.

use std::{
    io,
    mem::MaybeUninit,
    net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6},
    os::fd::AsRawFd as _,
};

use anyhow::Context as _;
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use crate::wire::{ip, vrrp};

/// One received advert, before parsing the VRRP part.
#[derive(Debug, Clone)]
pub struct RawAdvert {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub payload: Vec<u8>,
}

/// Receives adverts on one interface and family (joined to the groups).
pub struct AdvertRx {
    pub family: vrrp::Family,
    pub ifindex: u32,
    rx: AsyncFd<Socket>,
}

/// Sends adverts from one source address out of one interface.
pub struct AdvertTx {
    pub ifindex: u32,
    tx: Socket,
    source: IpAddr,
}

fn raw(domain: Domain) -> io::Result<Socket> {
    let s = Socket::new(
        domain,
        Type::RAW,
        Some(Protocol::from(vrrp::PROTOCOL as i32)),
    )?;
    s.set_nonblocking(true)?;
    Ok(s)
}

impl AdvertRx {
    /// Opens a receiving socket on `interface`, joined to `groups` of `family`.
    pub fn open(
        interface: &str,
        ifindex: u32,
        family: vrrp::Family,
        groups: &[IpAddr],
    ) -> anyhow::Result<Self> {
        let ctx = || format!("VRRP receive socket on {interface} (needs CAP_NET_RAW)");
        let rx = match family {
            vrrp::Family::V4 => {
                let rx = raw(Domain::IPV4).with_context(ctx)?;
                rx.bind_device(Some(interface.as_bytes()))
                    .with_context(ctx)?;
                for g in groups {
                    if let IpAddr::V4(g) = g {
                        rx.join_multicast_v4_n(g, &InterfaceIndexOrAddress::Index(ifindex))
                            .with_context(ctx)?;
                    }
                }
                rx
            }
            vrrp::Family::V6 => {
                let rx = raw(Domain::IPV6).with_context(ctx)?;
                rx.bind_device(Some(interface.as_bytes()))
                    .with_context(ctx)?;
                for g in groups {
                    if let IpAddr::V6(g) = g {
                        rx.join_multicast_v6(g, ifindex).with_context(ctx)?;
                    }
                }
                set_int(&rx, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
                    .context("IPV6_RECVPKTINFO")?;
                set_int(&rx, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)
                    .context("IPV6_RECVHOPLIMIT")?;
                rx
            }
        };
        Ok(AdvertRx {
            family,
            ifindex,
            rx: super::async_fd(rx)?,
        })
    }

    /// Waits for the next advert.
    pub async fn recv(&self) -> io::Result<RawAdvert> {
        loop {
            let mut guard = self.rx.readable().await?;
            match guard.try_io(|fd| recv_one(fd.get_ref(), self.family)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

impl AdvertTx {
    /// Opens a sending socket on `interface` bound to `source`.
    pub fn open(interface: &str, ifindex: u32, source: IpAddr) -> anyhow::Result<Self> {
        let ctx = || format!("VRRP send socket on {interface} from {source} (needs CAP_NET_RAW)");
        let tx = match source {
            IpAddr::V4(src) => {
                let tx = raw(Domain::IPV4).with_context(ctx)?;
                tx.bind_device(Some(interface.as_bytes()))
                    .with_context(ctx)?;
                tx.bind(&SockAddr::from(SocketAddr::new(src.into(), 0)))
                    .with_context(|| {
                        format!("{source} is not an address of this host (check unicast_src_ip)")
                    })?;
                // SO_BINDTODEVICE picks the output device for multicast too.
                tx.set_multicast_ttl_v4(vrrp::TTL as u32)
                    .context("IP_MULTICAST_TTL")?;
                tx.set_ttl_v4(vrrp::TTL as u32).context("IP_TTL")?;
                tx.set_multicast_loop_v4(false)
                    .context("IP_MULTICAST_LOOP")?;
                tx.set_tos_v4(0xc0).context("IP_TOS")?; // CS6, as keepalived
                tx
            }
            IpAddr::V6(src) => {
                let tx = raw(Domain::IPV6).with_context(ctx)?;
                tx.bind_device(Some(interface.as_bytes()))
                    .with_context(ctx)?;
                tx.bind(&SockAddr::from(SocketAddrV6::new(src, 0, 0, ifindex)))
                    .with_context(|| format!("{source} is not an address of {interface}"))?;
                tx.set_multicast_hops_v6(vrrp::TTL as u32)
                    .context("IPV6_MULTICAST_HOPS")?;
                tx.set_unicast_hops_v6(vrrp::TTL as u32)
                    .context("IPV6_UNICAST_HOPS")?;
                tx.set_multicast_loop_v6(false)
                    .context("IPV6_MULTICAST_LOOP")?;
                tx.set_multicast_if_v6(ifindex)
                    .context("IPV6_MULTICAST_IF")?;
                tx
            }
        };
        Ok(AdvertTx {
            ifindex,
            tx,
            source,
        })
    }

    pub fn source(&self) -> IpAddr {
        self.source
    }

    /// Sends `msg` (a whole VRRP message) to `dst`.
    pub fn send(&self, msg: &[u8], dst: IpAddr) -> io::Result<()> {
        let addr = match dst {
            IpAddr::V4(a) => SockAddr::from(SocketAddr::new(a.into(), 0)),
            IpAddr::V6(a) => SockAddr::from(SocketAddrV6::new(a, 0, 0, self.ifindex)),
        };
        self.tx.send_to(msg, &addr).map(|_| ())
    }
}

fn set_int(s: &Socket, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: an int option of the right size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as u32,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn recv_one(s: &Socket, family: vrrp::Family) -> io::Result<RawAdvert> {
    match family {
        vrrp::Family::V4 => {
            let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
            let (n, _) = s.recv_from(&mut buf)?;
            // SAFETY: recv_from initialised the first n bytes.
            let bytes: Vec<u8> = buf[..n]
                .iter()
                .map(|b| unsafe { b.assume_init() })
                .collect();
            // IPv4 raw sockets deliver the IP header.
            let (iph, payload) = ip::Repr::parse(&bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            Ok(RawAdvert {
                src: iph.src,
                dst: iph.dst,
                ttl: iph.ttl,
                payload: payload.to_vec(),
            })
        }
        vrrp::Family::V6 => recv_v6(s),
    }
}

/// IPv6 raw sockets deliver only the payload: source from the address,
/// destination and hop limit from control messages.
fn recv_v6(s: &Socket) -> io::Result<RawAdvert> {
    let mut buf = [0u8; 2048];
    let mut from: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let mut cbuf = [0u8; 256];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_in6).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as u32;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = cbuf.len();
    // SAFETY: msg points at live buffers of the sizes given.
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut dst = Ipv6Addr::UNSPECIFIED;
    let mut ttl = 0u8;
    // SAFETY: walking the control messages recvmsg wrote.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let info = std::ptr::read_unaligned(data as *const libc::in6_pktinfo);
                    dst = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                }
                (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                    ttl = std::ptr::read_unaligned(data as *const i32) as u8;
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(RawAdvert {
        src: Ipv6Addr::from(from.sin6_addr.s6_addr).into(),
        dst: dst.into(),
        ttl,
        payload: buf[..n as usize].to_vec(),
    })
}

/// Whether `dst` is one of the VRRP groups (not a unicast advert).
pub fn is_group(dst: &IpAddr) -> bool {
    match dst {
        IpAddr::V4(a) => a.is_multicast(),
        IpAddr::V6(a) => a.is_multicast(),
    }
}
