//! What a client on the LAN sees, with the kernel's receive timestamps
//! (AF_PACKET, SO_TIMESTAMPNS): adverts, ARP/ND answers and gratuitous
//! announcements for a VIP, and the client's own probes. The benchmark and
//! the chaos tests read their timings from here, never from sleeps.

use std::{
    fs::File,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::AsRawFd as _,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    thread::{self, JoinHandle},
    time::Duration,
};

use anyhow::{bail, Context as _};
use xvrrp::{
    net::packet::PacketSocket,
    wire::{arp, build, ethernet, icmpv6, ip},
};

/// Nanoseconds since the epoch (CLOCK_REALTIME: the clock of SO_TIMESTAMPNS).
pub fn now_ns() -> u64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_nanos() as u64
}

/// One frame of interest, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// A VRRP advert (IPv4): source MAC and priority.
    Advert { mac: [u8; 6], priority: u8 },
    /// An ARP reply or Neighbor Advertisement for the VIP, solicited.
    Answer { mac: [u8; 6] },
    /// A gratuitous ARP / unsolicited NA for the VIP.
    Announce { mac: [u8; 6] },
    /// The client's own ARP request / NS for the VIP, going out.
    Probe,
}

/// A timestamped event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub ts_ns: u64,
    pub seen: Seen,
}

/// Runs `f` on a new thread inside the namespace `ns` (by name).
pub fn spawn_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> JoinHandle<anyhow::Result<T>> {
    let path = format!("/run/netns/{ns}");
    thread::spawn(move || {
        let file = File::open(&path).with_context(|| format!("opening {path}"))?;
        // SAFETY: a valid namespace fd; affects only this thread.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            bail!("setns {path}: {}", std::io::Error::last_os_error());
        }
        f()
    })
}

/// A capture on `eth0` of a namespace, running until dropped.
pub struct Capture {
    events: Arc<Mutex<Vec<Event>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
    /// Frames the socket saw (all kinds), for flood accounting.
    pub frames: Arc<AtomicU64>,
}

impl Capture {
    /// Starts capturing in namespace `ns` what concerns `vip` (IPv4 or IPv6).
    pub fn start(ns: &str, vip: IpAddr) -> anyhow::Result<Capture> {
        let events = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let frames = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (ev, st, fr) = (events.clone(), stop.clone(), frames.clone());
        let thread = spawn_in(ns, move || {
            let sock = match open_timestamped("eth0", Duration::from_millis(50)) {
                Ok(s) => {
                    let _ = ready_tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("{e:#}")));
                    return Err(e);
                }
            };
            let mut buf = [0u8; 256];
            while !st.load(Ordering::Relaxed) {
                let Some((n, ts, outgoing)) = recv_timestamped(&sock, &mut buf) else {
                    continue;
                };
                fr.fetch_add(1, Ordering::Relaxed);
                if let Some(seen) = classify(&buf[..n], vip, outgoing) {
                    ev.lock().expect("events").push(Event { ts_ns: ts, seen });
                }
            }
            Ok(())
        });
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => bail!("capture in {ns}: {e}"),
            Err(_) => bail!("capture in {ns} did not start"),
        }
        Ok(Capture {
            events,
            stop,
            thread: Some(thread),
            frames,
        })
    }

    /// A copy of every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().expect("events").clone()
    }

    /// Events at or after `since_ns`.
    pub fn since(&self, since_ns: u64) -> Vec<Event> {
        self.events
            .lock()
            .expect("events")
            .iter()
            .filter(|e| e.ts_ns >= since_ns)
            .copied()
            .collect()
    }

    /// Forgets the events so far (long runs).
    pub fn clear(&self) {
        self.events.lock().expect("events").clear();
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A VRRP packet as a host on the LAN received it.
#[derive(Debug, Clone)]
pub struct VrrpSeen {
    pub eth: ethernet::Repr,
    pub ip: ip::Repr,
    /// The IP header's bytes as received (for the fields `ip` leaves out:
    /// TOS / traffic class, flags, id).
    pub ip_header: Vec<u8>,
    /// The VRRP message (what the IP header announces).
    pub vrrp: Vec<u8>,
}

/// Every VRRP packet (IP protocol 112) namespace `ns` receives on `eth0`
/// during `period`: what goes on the wire, for send-side checks.
pub fn vrrp_received(ns: &str, period: Duration) -> anyhow::Result<Vec<VrrpSeen>> {
    spawn_in(ns, move || {
        let sock = open_timestamped("eth0", Duration::from_millis(50))?;
        let deadline = std::time::Instant::now() + period;
        let mut seen = Vec::new();
        let mut buf = [0u8; 1600];
        while std::time::Instant::now() < deadline {
            let Some((n, _, outgoing)) = recv_timestamped(&sock, &mut buf) else {
                continue;
            };
            if outgoing {
                continue;
            }
            let Ok((eth, payload)) = ethernet::split(&buf[..n]) else {
                continue;
            };
            if eth.ethertype != ethernet::ethertype::IPV4
                && eth.ethertype != ethernet::ethertype::IPV6
            {
                continue;
            }
            if let Ok((ip, body)) = ip::Repr::parse(payload) {
                if ip.protocol == xvrrp::wire::vrrp::PROTOCOL {
                    seen.push(VrrpSeen {
                        eth,
                        ip,
                        ip_header: payload[..ip.header_len()].to_vec(),
                        vrrp: body.to_vec(),
                    });
                }
            }
        }
        Ok(seen)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("capture thread in {ns} panicked"))?
}

/// A packet socket on `interface` with kernel receive timestamps, a large
/// buffer and a read timeout (so that loops can stop).
pub(crate) fn open_timestamped(
    interface: &str,
    read_timeout: Duration,
) -> anyhow::Result<PacketSocket> {
    let sock = PacketSocket::open(interface, true)?;
    let fd = sock.fd().as_raw_fd();
    let set = |level, name, value: i32| {
        // SAFETY: an int option of the right size.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const i32).cast(),
                std::mem::size_of::<i32>() as u32,
            )
        }
    };
    set(libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1);
    set(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 32 << 20);
    sock.set_read_timeout(read_timeout)?;
    Ok(sock)
}

/// One frame: (length, kernel timestamp in ns, sent by this host).
pub(crate) fn recv_timestamped(sock: &PacketSocket, buf: &mut [u8]) -> Option<(usize, u64, bool)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // u64s: control messages are 8-byte aligned.
    let mut control = [0u64; 16];
    // SAFETY: zeroed sockaddr_ll / msghdr are valid; pointers set below.
    let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_ll).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: msg points at live buffers for the call's duration.
    let n = unsafe { libc::recvmsg(sock.fd().as_raw_fd(), &mut msg, libc::MSG_TRUNC) };
    if n < 0 {
        return None;
    }
    let mut ts = 0u64;
    // SAFETY: walking the control messages the kernel wrote into `control`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let t = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                ts = t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if ts == 0 {
        ts = now_ns();
    }
    let outgoing = from.sll_pkttype == libc::PACKET_OUTGOING;
    Some(((n as usize).min(buf.len()), ts, outgoing))
}

/// What a frame means for `vip`, if anything.
pub fn classify(frame: &[u8], vip: IpAddr, outgoing: bool) -> Option<Seen> {
    let (e, payload) = ethernet::split(frame).ok()?;
    match e.ethertype {
        ethernet::ethertype::ARP => {
            let IpAddr::V4(v) = vip else { return None };
            let r = arp::Repr::parse(&arp::Packet::new_checked(payload).ok()?).ok()?;
            if outgoing {
                return (r.operation == arp::Operation::Request
                    && r.target_ip == v
                    && r.sender_ip != v)
                    .then_some(Seen::Probe);
            }
            if r.sender_ip != v {
                return None;
            }
            if r.target_ip == v {
                return Some(Seen::Announce { mac: r.sender_mac });
            }
            (r.operation == arp::Operation::Reply).then_some(Seen::Answer { mac: r.sender_mac })
        }
        ethernet::ethertype::IPV4 if !outgoing => {
            // VRRP (protocol 112): priority is the third byte of the message.
            let (iph, body) = ip::Repr::parse(payload).ok()?;
            (iph.protocol == 112 && body.len() >= 3).then(|| Seen::Advert {
                mac: e.src,
                priority: body[2],
            })
        }
        ethernet::ethertype::IPV6 => {
            let IpAddr::V6(v) = vip else { return None };
            let (iph, body) = ip::Repr::parse(payload).ok()?;
            if iph.protocol != icmpv6::NEXT_HEADER {
                return None;
            }
            // Type 135 NS (ours, going out) / 136 NA: target at bytes 8..24.
            if body.len() < 24 || body[8..24] != v.octets() {
                return None;
            }
            match (body[0], outgoing) {
                (135, true) => Some(Seen::Probe),
                (136, false) => {
                    let solicited = body[4] & 0x40 != 0;
                    Some(if solicited {
                        Seen::Answer { mac: e.src }
                    } else {
                        Seen::Announce { mac: e.src }
                    })
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Sends an ARP request (IPv4 VIP) or Neighbor Solicitation (IPv6) for
/// `vip` from `eth0` of namespace `ns` every `period` until dropped; with a
/// zero period, as fast as the socket takes them (a flood).
pub struct Prober {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
    /// Requests sent so far.
    pub sent: Arc<AtomicU64>,
}

impl Prober {
    pub fn start(
        ns: &str,
        client_v4: Ipv4Addr,
        client_v6: Ipv6Addr,
        vip: IpAddr,
        period: Duration,
    ) -> anyhow::Result<Prober> {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (st, se) = (stop.clone(), sent.clone());
        let thread = spawn_in(ns, move || {
            let sock = PacketSocket::open("eth0", false)?;
            let mac = xvrrp::net::iface::mac("eth0")?;
            let frame = match vip {
                IpAddr::V4(v) => build::arp_request(mac, client_v4, v),
                IpAddr::V6(v) => build::neighbor_solicit(mac, client_v6, v),
            };
            let mut next = std::time::Instant::now();
            while !st.load(Ordering::Relaxed) {
                if sock.send(&frame).is_ok() {
                    se.fetch_add(1, Ordering::Relaxed);
                }
                if !period.is_zero() {
                    next += period;
                    let now = std::time::Instant::now();
                    if next > now {
                        thread::sleep(next - now);
                    } else {
                        next = now;
                    }
                }
            }
            Ok(())
        });
        Ok(Prober {
            stop,
            thread: Some(thread),
            sent,
        })
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends `frames` round-robin from `eth0` of `ns` for `length`, as fast as
/// it can or at most `per_second`; returns how many went out.
pub fn flood(
    ns: &str,
    frames: Vec<Vec<u8>>,
    length: Duration,
    per_second: Option<u64>,
) -> anyhow::Result<u64> {
    spawn_in(ns, move || {
        let sock = PacketSocket::open("eth0", false)?;
        let start = std::time::Instant::now();
        let until = start + length;
        let mut sent = 0u64;
        let mut i = 0usize;
        while std::time::Instant::now() < until {
            for _ in 0..64 {
                if sock.send(&frames[i % frames.len()]).is_ok() {
                    sent += 1;
                }
                i += 1;
            }
            // Paced: the next batch waits until its time has come.
            if let Some(rate) = per_second {
                let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
            }
        }
        Ok(sent)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("flood thread panicked"))?
}

/// Malformed adverts for `vrid` from `src`: bad checksum, TTL 64, version 1,
/// cut short, random bytes, each with priority 255 and 0 (so that an
/// implementation that took one would change state), and 32 fuzzed ones
/// (a fixed seed: every run sends the same).
pub fn malformed_adverts(mac: [u8; 6], src: Ipv4Addr, vrid: u8, vip: Ipv4Addr) -> Vec<Vec<u8>> {
    use xvrrp::wire::vrrp;
    let repr = |priority| vrrp::Repr {
        version: vrrp::Version::V3,
        vrid,
        priority,
        interval_cs: 10,
        auth: vrrp::Auth::None,
        addresses: vec![vip.into()],
    };
    let mut frames = Vec::new();
    for priority in [255u8, 0] {
        let good = build::advert(
            mac,
            src.into(),
            255,
            &repr(priority),
            vrrp::ChecksumMode::PseudoHeader,
        );
        let mut bad_sum = good.clone();
        let n = bad_sum.len();
        bad_sum[n - 5] ^= 0x5a;
        frames.push(bad_sum);
        frames.push(build::advert(
            mac,
            src.into(),
            64,
            &repr(priority),
            vrrp::ChecksumMode::PseudoHeader,
        ));
        let mut v1 = good.clone();
        v1[14 + 20] = 0x11;
        frames.push(v1);
        let mut short = good.clone();
        short.truncate(14 + 20 + 6);
        frames.push(short);
        let mut random = good.clone();
        for (i, b) in random[14 + 20..].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(priority);
        }
        frames.push(random);
    }
    // Fuzzed: the valid advert with 1..8 random bytes changed after the IP header.
    let good = build::advert(
        mac,
        src.into(),
        255,
        &repr(255),
        vrrp::ChecksumMode::PseudoHeader,
    );
    let mut next = crate::xorshift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..32 {
        let mut f = good.clone();
        let body = f.len() - (14 + 20);
        for _ in 0..1 + next() % 8 {
            let at = 14 + 20 + (next() as usize % body);
            f[at] ^= 1 | next() as u8;
        }
        let keep = 14 + 20 + (next() as usize % (body + 1));
        f.truncate(keep.max(14 + 20 + 1));
        frames.push(f);
    }
    frames
}
