//! VRRP adverts on raw IP sockets (protocol 112): one per interface and
//! family, joined to 224.0.0.18 / ff02::12, TTL / hop limit 255, no loopback.
//! The socket path used when XDP is off, and always for sending.
//!
//! IPv4 adverts leave with the IP header written here (IP_HDRINCL), as
//! keepalived sends them (vrrp_build_ip4: TOS 0xc0, no DF, id and checksum
//! left to the kernel): the kernel then skips building one per advert
//! (ip_append_data and its cork; bench figure 13: 2.7–2.9 against 3.1 µs
//! of kernel time per advert) — routing, netfilter's OUTPUT hook and the
//! qdisc still apply.

use std::{
    io,
    mem::MaybeUninit,
    net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6},
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
    /// The interface's name (its fan-out attaches by name).
    pub interface: String,
    tx: Socket,
    source: IpAddr,
    /// TTL of unicast IPv4 adverts (multicast ones: 255 always).
    unicast_ttl: u8,
    /// Adverts waiting for `flush`: the instances of one round go out in
    /// one sendmmsg.
    queue: std::sync::Mutex<Vec<Queued>>,
    /// sendmmsg calls and adverts they carried (status counters).
    pub calls: std::sync::atomic::AtomicU64,
    pub sent: std::sync::atomic::AtomicU64,
}

/// What to do once an advert left (renew the interface's XDP lease:
/// docs/design.md rule 4, only for an advert that really left). One per
/// interface, shared by its instances' adverts: run once per flush however
/// many of them left together.
pub type AfterSent = std::sync::Arc<dyn Fn() + Send + Sync>;

/// One queued advert: its bytes (kept by the sender while they do not
/// change, so queueing one allocates nothing), where to, what after.
struct Queued {
    msg: std::sync::Arc<[u8]>,
    dst: IpAddr,
    after: Option<AfterSent>,
}

/// Runs each distinct `after` once, however many adverts that left
/// together carry it (one per interface: 255 instances' renewals in one
/// send are one renewal). The distinct ones are a handful (interfaces),
/// so a list beats hashing each of 255 pointers.
pub fn run_each_once<'a>(afters: impl Iterator<Item = &'a AfterSent>) {
    let mut done: Vec<*const ()> = Vec::new();
    for after in afters {
        let at = std::sync::Arc::as_ptr(after).cast::<()>();
        if !done.contains(&at) {
            done.push(at);
            after();
        }
    }
}

/// Most adverts one sendmmsg carries.
const BATCH: usize = 256;

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
                ask_v6_destination_and_hop_limit(&rx)?;
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
    /// Joins one more group (a reload's new `mcast_dst_ip`); joined
    /// already is fine.
    pub fn join(&self, group: IpAddr) -> io::Result<()> {
        let s = self.rx.get_ref();
        let joined = match group {
            IpAddr::V4(g) => {
                s.join_multicast_v4_n(&g, &InterfaceIndexOrAddress::Index(self.ifindex))
            }
            IpAddr::V6(g) => s.join_multicast_v6(&g, self.ifindex),
        };
        match joined {
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => Ok(()),
            other => other,
        }
    }

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
    /// Opens a sending socket on `interface` bound to `source`; unicast
    /// IPv4 adverts leave with `unicast_ttl` (255 but with keepalived's
    /// unicast_ttl), multicast ones with 255 always.
    pub fn open(
        interface: &str,
        ifindex: u32,
        source: IpAddr,
        unicast_ttl: u8,
    ) -> anyhow::Result<Self> {
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
                // TTL and TOS are in the header `packet` writes.
                tx.set_header_included_v4(true).context("IP_HDRINCL")?;
                tx.set_multicast_loop_v4(false)
                    .context("IP_MULTICAST_LOOP")?;
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
            interface: interface.to_owned(),
            tx,
            source,
            unicast_ttl,
            queue: Default::default(),
            calls: Default::default(),
            sent: Default::default(),
        })
    }

    /// A sender whose socket sends nothing anywhere (a UDP socket, no
    /// privileges): for tests of what is queued.
    #[cfg(test)]
    pub fn for_test() -> Self {
        AdvertTx {
            ifindex: 0,
            interface: String::new(),
            tx: Socket::new(Domain::IPV4, Type::DGRAM, None).expect("a UDP socket"),
            source: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            unicast_ttl: vrrp::TTL,
            queue: Default::default(),
            calls: Default::default(),
            sent: Default::default(),
        }
    }

    /// Adverts queued and not yet flushed.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.queue.lock().expect("advert queue").len()
    }

    pub fn source(&self) -> IpAddr {
        self.source
    }

    fn sockaddr(&self, dst: IpAddr) -> SockAddr {
        match dst {
            IpAddr::V4(a) => SockAddr::from(SocketAddr::new(a.into(), 0)),
            IpAddr::V6(a) => SockAddr::from(SocketAddrV6::new(a, 0, 0, self.ifindex)),
        }
    }

    /// What goes to `dst` for the VRRP message `msg` (`packet_to`), built
    /// once per advert that changes and kept by the caller: queueing it
    /// costs no building.
    pub fn packet(&self, msg: &[u8], dst: IpAddr) -> Vec<u8> {
        packet_to(self.source, self.unicast_ttl, msg, dst)
    }

    /// Queues `msg` (what `packet` built for `dst`) until `flush`; `after`
    /// runs once it left.
    pub fn queue(&self, msg: std::sync::Arc<[u8]>, dst: IpAddr, after: Option<AfterSent>) {
        self.queue
            .lock()
            .expect("advert queue")
            .push(Queued { msg, dst, after });
    }

    /// Sends one IPv4 advert `msg` (what `packet` built) to `dst` with
    /// `id` as its IPv4 identification: the frame that carries an armed
    /// fan-out round (docs/design.md rule 3), `adverts` of them in all.
    /// Counted as one system call and `adverts` adverts once it left.
    pub fn send_with_id(&self, msg: &[u8], dst: IpAddr, id: u16, adverts: usize) -> io::Result<()> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut frame = msg.to_vec();
        if frame.len() < ip::IPV4_HEADER_LEN {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // The kernel keeps a non-zero identification (IP_HDRINCL) and
        // writes the header checksum itself.
        frame[4..6].copy_from_slice(&id.to_be_bytes());
        self.calls.fetch_add(1, Relaxed);
        self.tx.send_to(&frame, &self.sockaddr(dst))?;
        self.sent.fetch_add(adverts as u64, Relaxed);
        Ok(())
    }

    /// Sends what is queued, up to 256 adverts a system call (sendmmsg),
    /// runs the `after` of each that left; the errors of those that did not.
    pub fn flush(&self) -> Vec<(IpAddr, io::Error)> {
        use std::sync::atomic::Ordering::Relaxed;
        // The next round queues as many: room for them at once.
        let queued = {
            let mut q = self.queue.lock().expect("advert queue");
            let room = q.len();
            std::mem::replace(&mut *q, Vec::with_capacity(room))
        };
        let mut errors = Vec::new();
        let mut i = 0;
        while i < queued.len() {
            let end = (i + BATCH).min(queued.len());
            let n = {
                let chunk = &queued[i..end];
                let addrs: Vec<SockAddr> = chunk.iter().map(|q| self.sockaddr(q.dst)).collect();
                let mut iovs: Vec<libc::iovec> = chunk
                    .iter()
                    .map(|q| libc::iovec {
                        iov_base: q.msg.as_ptr() as *mut libc::c_void,
                        iov_len: q.msg.len(),
                    })
                    .collect();
                let mut hdrs: Vec<libc::mmsghdr> = addrs
                    .iter()
                    .zip(iovs.iter_mut())
                    .map(|(a, iov)| {
                        // SAFETY: an all-zero mmsghdr is a valid empty one.
                        let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                        h.msg_hdr.msg_name = a.as_ptr() as *mut libc::c_void;
                        h.msg_hdr.msg_namelen = a.len();
                        h.msg_hdr.msg_iov = iov;
                        h.msg_hdr.msg_iovlen = 1;
                        h
                    })
                    .collect();
                // SAFETY: the headers point into `addrs`, `iovs` and the
                // queued messages, all alive across the call.
                unsafe {
                    libc::sendmmsg(
                        std::os::fd::AsRawFd::as_raw_fd(&self.tx),
                        hdrs.as_mut_ptr(),
                        hdrs.len() as u32,
                        0,
                    )
                }
            };
            self.calls.fetch_add(1, Relaxed);
            if n <= 0 {
                // The first of the chunk failed: its error, then the rest.
                errors.push((queued[i].dst, io::Error::last_os_error()));
                i += 1;
                continue;
            }
            let n = n as usize;
            self.sent.fetch_add(n as u64, Relaxed);
            run_each_once(queued[i..i + n].iter().filter_map(|q| q.after.as_ref()));
            i += n;
        }
        errors
    }
}

/// What a send socket from `source` hands the kernel for the VRRP message
/// `msg` to `dst`: IPv4, the IP header (TTL 255 to a group, `unicast_ttl`
/// to a peer; IP_HDRINCL) and `msg`; IPv6, `msg` alone (the kernel writes
/// that header).
fn packet_to(source: IpAddr, unicast_ttl: u8, msg: &[u8], dst: IpAddr) -> Vec<u8> {
    let IpAddr::V4(_) = source else {
        return msg.to_vec();
    };
    ip::Repr {
        src: source,
        dst,
        protocol: vrrp::PROTOCOL,
        ttl: if is_group(&dst) {
            vrrp::TTL
        } else {
            unicast_ttl
        },
        payload_len: msg.len(),
    }
    .packet(msg)
}

/// IPV6_RECVPKTINFO and IPV6_RECVHOPLIMIT: what `recv_v6` reads.
fn ask_v6_destination_and_hop_limit(s: &impl std::os::fd::AsFd) -> anyhow::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    setsockopt(s, sockopt::Ipv6RecvPacketInfo, &true).context("IPV6_RECVPKTINFO")?;
    setsockopt(s, sockopt::Ipv6RecvHopLimit, &true).context("IPV6_RECVHOPLIMIT")?;
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
/// destination and hop limit from control messages (IPV6_RECVPKTINFO,
/// IPV6_RECVHOPLIMIT on the socket), read through nix.
fn recv_v6(s: &impl std::os::fd::AsRawFd) -> io::Result<RawAdvert> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrIn6};
    let mut buf = [0u8; 2048];
    let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<SockaddrIn6>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty())?;
    let mut dst = Ipv6Addr::UNSPECIFIED;
    let mut ttl = 0u8;
    for c in msg.cmsgs()? {
        match c {
            ControlMessageOwned::Ipv6PacketInfo(info) => {
                dst = Ipv6Addr::from(info.ipi6_addr.s6_addr)
            }
            ControlMessageOwned::Ipv6HopLimit(hops) => ttl = hops as u8,
            _ => {}
        }
    }
    let src = msg.address.map_or(Ipv6Addr::UNSPECIFIED, |a| a.ip());
    let n = msg.bytes;
    Ok(RawAdvert {
        src: src.into(),
        dst: dst.into(),
        ttl,
        payload: buf[..n].to_vec(),
    })
}

/// Whether `dst` is one of the VRRP groups (not a unicast advert).
pub fn is_group(dst: &IpAddr) -> bool {
    match dst {
        IpAddr::V4(a) => a.is_multicast(),
        IpAddr::V6(a) => a.is_multicast(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv6Addr, UdpSocket};

    /// IPv4 adverts go with keepalived's header (vrrp_build_ip4): TOS 0xc0,
    /// no DF, TTL 255 to the group and unicast_ttl to a peer; IPv6 ones
    /// without a header (the kernel writes it).
    #[test]
    fn ipv4_adverts_carry_keepalived_header_and_ipv6_ones_none() {
        use crate::wire::{checksum, ip, vrrp};
        use std::net::{IpAddr, Ipv4Addr};
        let (src, peer) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let msg = [0x31, 7, 100, 1, 0, 100, 0, 0, 10, 0, 0, 9];
        for (dst, ttl) in [(IpAddr::from(vrrp::MCAST_V4), 255), (peer.into(), 9)] {
            let p = super::packet_to(src.into(), 9, &msg, dst);
            let (h, body) = ip::Repr::parse(&p).unwrap();
            assert_eq!(
                (h.src, h.dst, h.protocol, h.ttl),
                (src.into(), dst, 112, ttl)
            );
            assert_eq!(body, msg);
            assert_eq!((p[1], [p[6], p[7]]), (0xc0, [0, 0]), "TOS, flags/fragment");
            assert_eq!(checksum::finish(checksum::sum(&p[..20])), 0);
        }
        let v6 = IpAddr::from(vrrp::MCAST_V6);
        assert_eq!(
            super::packet_to(Ipv6Addr::LOCALHOST.into(), 9, &msg, v6),
            msg
        );
    }

    /// The control messages `recv_v6` reads, off a UDP socket on ::1 (no
    /// privilege needed; the same recvmsg path as the raw VRRP socket).
    #[test]
    fn recv_v6_reads_the_destination_and_hop_limit_from_control_messages() {
        let Ok(rx) = UdpSocket::bind("[::1]:0") else {
            panic!("no IPv6 loopback: the agent's IPv6 path cannot be tested here");
        };
        super::ask_v6_destination_and_hop_limit(&rx).unwrap();
        let tx = UdpSocket::bind("[::1]:0").unwrap();
        nix::sys::socket::setsockopt(&tx, nix::sys::socket::sockopt::Ipv6Ttl, &7).unwrap();
        tx.send_to(b"advert", rx.local_addr().unwrap()).unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let got = super::recv_v6(&rx).unwrap();
        assert_eq!(got.payload, b"advert");
        assert_eq!(got.dst, Ipv6Addr::LOCALHOST);
        assert_eq!(got.ttl, 7, "hop limit from IPV6_HOPLIMIT");
        assert_eq!(got.src, Ipv6Addr::LOCALHOST);
    }
}
