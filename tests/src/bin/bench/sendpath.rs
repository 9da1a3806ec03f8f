//! Figure 13's second table: what the same burst of adverts (`n` every
//! 10 ms) costs the sending thread alone by each path the kernel has for
//! sending it — the raw IP socket xvrrp and keepalived use, a packet socket,
//! a packet socket's PACKET_MMAP TX ring, XDP frames (the only path
//! without a socket buffer per frame), and one frame a round cloned into
//! the rest by a tc program on egress (the socket buffers built by the
//! kernel, one system call a round). Whether the Active's goal can be
//! reached at all depends on the cheapest of them: no implementation spends
//! less than its send path.

use std::{
    net::IpAddr,
    os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use xvrrp::{net::advert::AdvertTx, wire::build};
use xvrrp_tests::{lan::Lan, xdpasm};

#[derive(Clone, Copy)]
pub enum Path {
    RawIp,
    Packet,
    PacketRing,
    XdpFrames,
    TcFanout,
}

impl Path {
    pub const ALL: [Path; 5] = [
        Path::RawIp,
        Path::Packet,
        Path::PacketRing,
        Path::XdpFrames,
        Path::TcFanout,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Path::RawIp => {
                "raw IP socket, one sendmmsg (keepalived's socket; xvrrp's without its fan-out)"
            }
            Path::Packet => "packet socket, one sendmmsg of whole frames",
            Path::PacketRing => "packet socket, PACKET_MMAP TX ring, one send",
            Path::XdpFrames => "XDP frames: BPF_PROG_TEST_RUN live frames, XDP_TX",
            Path::TcFanout => "one frame, cloned on egress by a tc program (bpf_clone_redirect)",
        }
    }
}

/// What the sending thread spent over the window, what reached the switch
/// port, and what was lost on the way (the interface's drops and, for the
/// ring, frames with no free slot).
pub struct Cost {
    pub cpu_s_per_min: f64,
    /// The sending thread's context switches a second.
    pub wakeups_per_s: f64,
    /// Send system calls a second.
    pub calls_per_s: f64,
    pub frames_per_s: f64,
    pub lost: u64,
}

impl Cost {
    pub fn ns_per_frame(&self) -> f64 {
        self.cpu_s_per_min / 60.0 * 1e9 / self.frames_per_s.max(1.0)
    }
}

/// One round's sender, opened in the namespace of the thread using it.
trait Round {
    /// Sends the round's frames: the system calls it took, how many frames
    /// could not be handed over.
    fn round(&mut self) -> anyhow::Result<(u64, u64)>;
}

/// `adverts` (whole VRRP messages from host 0 to the IPv4 group) sent every
/// 10 ms by `path` from a thread in host 0's namespace: that thread's CPU
/// (the median of figure 13's windows of 10 s), after `meanwhile` (started
/// once the adverts flow: a listener, kept to the end) and 2 s. Host 0's
/// switch port must run in a thread of its own (figure 13's
/// `wire_of_its_own`), so the receive side is not charged to the sender.
pub fn cost<T>(
    lan: &Lan,
    path: Path,
    adverts: Vec<Vec<u8>>,
    meanwhile: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<(Cost, T)> {
    let host = lan.host(0);
    let (ns, mac, src) = (host.ns.name.clone(), host.mac, IpAddr::from(host.v4));
    if let Path::XdpFrames = path {
        host.ns.ip(&[
            "link", "add", SPARE, "type", "veth", "peer", "name", "xvspare1",
        ])?;
        host.ns.ip(&["link", "set", SPARE, "up"])?;
        host.ns.ip(&["link", "set", "xvspare1", "up"])?;
    }
    let frames: Vec<Vec<u8>> = adverts
        .iter()
        .map(|m| build::advert_bytes(mac, src, xvrrp::wire::vrrp::TTL, m))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let (lost, calls) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let sender = {
        let (stop, lost, calls) = (stop.clone(), lost.clone(), calls.clone());
        std::thread::spawn(move || -> anyhow::Result<()> {
            xvrrp_tests::enter_netns(&ns)?;
            let ifindex = xvrrp::net::iface::ifindex("eth0")?;
            let mut sender: Box<dyn Round> = match path {
                Path::RawIp => Box::new(RawIp::open(ifindex, src, adverts)?),
                Path::Packet => Box::new(Packet::open(ifindex, frames)?),
                Path::PacketRing => Box::new(PacketRing::open(ifindex, frames)?),
                Path::XdpFrames => Box::new(XdpFrames::open(ifindex, frames)?),
                Path::TcFanout => Box::new(TcFanout::open(ifindex, frames)?),
            };
            // SAFETY: gettid(2) has no arguments.
            let _ = tid_tx.send(unsafe { libc::gettid() });
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let (c, l) = sender.round()?;
                calls.fetch_add(c, Ordering::Relaxed);
                lost.fetch_add(l, Ordering::Relaxed);
                next += Duration::from_millis(10);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            Ok(())
        })
    };
    let join = |sender: std::thread::JoinHandle<anyhow::Result<()>>| {
        sender
            .join()
            .map_err(|_| anyhow::anyhow!("the sender panicked"))?
            .context(path.name())
    };
    let Ok(tid) = tid_rx.recv() else {
        join(sender)?;
        anyhow::bail!("{}: the sender stopped before sending", path.name());
    };
    let port = (&lan.switch, lan.host(0).port.as_str());
    let task = format!("/proc/self/task/{tid}");
    let sample = || -> anyhow::Result<[u64; 5]> {
        let (cpu, switches) = crate::task_usage(&task);
        let dropped = super::fwd::counter(&lan.host(0).ns, "eth0", "tx_dropped")?
            + lost.load(Ordering::Relaxed);
        let frames = super::fwd::counter(port.0, port.1, "rx_packets")?;
        Ok([
            cpu,
            switches,
            calls.load(Ordering::Relaxed),
            frames,
            dropped,
        ])
    };
    let measured = meanwhile().and_then(|kept| {
        std::thread::sleep(Duration::from_secs(2));
        let (first, t0) = (sample()?, Instant::now());
        let (mut before, mut at, mut cpu) = (first, t0, Vec::new());
        for _ in 0..crate::WINDOWS {
            std::thread::sleep(Duration::from_secs(10));
            let (now, t) = (sample()?, Instant::now());
            cpu.push((now[0] - before[0]) as f64 / 1e9 * 60.0 / (t - at).as_secs_f64());
            (before, at) = (now, t);
        }
        let mut d = [0u64; 5];
        for (d, (a, b)) in d.iter_mut().zip(before.iter().zip(first)) {
            *d = a - b;
        }
        Ok((crate::median(cpu), d, (at - t0).as_secs_f64(), kept))
    });
    stop.store(true, Ordering::Relaxed);
    join(sender)?;
    let (cpu_s_per_min, [_, switches, calls, frames, lost], secs, kept) = measured?;
    let per_s = |x: u64| x as f64 / secs;
    Ok((
        Cost {
            cpu_s_per_min,
            wakeups_per_s: per_s(switches),
            calls_per_s: per_s(calls),
            frames_per_s: per_s(frames),
            lost,
        },
        kept,
    ))
}

/// xvrrp's own sender: the agent's queue and flush.
struct RawIp {
    tx: AdvertTx,
    adverts: Vec<Arc<[u8]>>,
    group: IpAddr,
}

impl RawIp {
    fn open(ifindex: u32, src: IpAddr, adverts: Vec<Vec<u8>>) -> anyhow::Result<Self> {
        let tx = AdvertTx::open("eth0", ifindex, src, 255)?;
        let group = xvrrp::wire::vrrp::MCAST_V4.into();
        Ok(RawIp {
            adverts: adverts
                .iter()
                .map(|m| Arc::from(tx.packet(m, group)))
                .collect(),
            tx,
            group,
        })
    }
}

impl Round for RawIp {
    fn round(&mut self) -> anyhow::Result<(u64, u64)> {
        for m in &self.adverts {
            self.tx.queue(m.clone(), self.group, None);
        }
        let calls = self.tx.calls.load(Ordering::Relaxed);
        let failed = self.tx.flush().len() as u64;
        Ok((self.tx.calls.load(Ordering::Relaxed) - calls, failed))
    }
}

/// A packet socket (SOCK_RAW, protocol 0: it receives nothing) bound to
/// the interface, sending whole frames.
fn packet_socket(ifindex: u32) -> anyhow::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned at once.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    anyhow::ensure!(
        fd >= 0,
        "packet socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: fd was just opened and is ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero sockaddr_ll is valid; the fields are set below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_IP as u16).to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: sll is a sockaddr_ll of the size given.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const sll).cast(),
            std::mem::size_of_val(&sll) as u32,
        )
    };
    anyhow::ensure!(
        r == 0,
        "binding the packet socket: {}",
        std::io::Error::last_os_error()
    );
    Ok(fd)
}

fn set_int(fd: &OwnedFd, level: i32, name: i32, value: i32, what: &str) -> anyhow::Result<()> {
    // SAFETY: an int option of the size given.
    let r = unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (&raw const value).cast(), 4) };
    anyhow::ensure!(r == 0, "{what}: {}", std::io::Error::last_os_error());
    Ok(())
}

struct Packet {
    fd: OwnedFd,
    frames: Vec<Vec<u8>>,
}

impl Packet {
    fn open(ifindex: u32, frames: Vec<Vec<u8>>) -> anyhow::Result<Self> {
        Ok(Packet {
            fd: packet_socket(ifindex)?,
            frames,
        })
    }
}

impl Round for Packet {
    fn round(&mut self) -> anyhow::Result<(u64, u64)> {
        let mut iovs: Vec<libc::iovec> = self
            .frames
            .iter()
            .map(|f| libc::iovec {
                iov_base: f.as_ptr() as *mut libc::c_void,
                iov_len: f.len(),
            })
            .collect();
        let mut hdrs: Vec<libc::mmsghdr> = iovs
            .iter_mut()
            .map(|iov| {
                // SAFETY: an all-zero mmsghdr is a valid empty one.
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_iov = iov;
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        // SAFETY: the headers point into `iovs` and the frames, alive
        // across the call.
        let n =
            unsafe { libc::sendmmsg(self.fd.as_raw_fd(), hdrs.as_mut_ptr(), hdrs.len() as u32, 0) };
        Ok((1, (hdrs.len() as i64 - i64::from(n.max(0))) as u64))
    }
}

/// PACKET_MMAP (TPACKET_V2) TX ring: the frames written into shared
/// slots, one send(2) hands all of them to the kernel.
struct PacketRing {
    fd: OwnedFd,
    ring: *mut u8,
    slots: usize,
    next: usize,
    frames: Vec<Vec<u8>>,
}

// SAFETY: the ring mapping belongs to this sender alone.
unsafe impl Send for PacketRing {}

const SLOT: usize = 2048;
const SLOTS: usize = 1024;
/// Where a TPACKET_V2 TX slot's frame starts: after the header, aligned.
const SLOT_DATA: usize = (std::mem::size_of::<libc::tpacket2_hdr>() + 15) & !15;

impl PacketRing {
    fn open(ifindex: u32, frames: Vec<Vec<u8>>) -> anyhow::Result<Self> {
        let fd = packet_socket(ifindex)?;
        set_int(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            libc::tpacket_versions::TPACKET_V2 as i32,
            "PACKET_VERSION",
        )?;
        // Room for every frame in flight: the ring's slots are released
        // only when the frame is freed past the interface.
        set_int(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUFFORCE,
            16 << 20,
            "SO_SNDBUFFORCE",
        )?;
        let block = 64 * 1024;
        let req = libc::tpacket_req {
            tp_block_size: block as u32,
            tp_block_nr: (SLOTS * SLOT / block) as u32,
            tp_frame_size: SLOT as u32,
            tp_frame_nr: SLOTS as u32,
        };
        // SAFETY: a tpacket_req of the size given.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_TX_RING,
                (&raw const req).cast(),
                std::mem::size_of_val(&req) as u32,
            )
        };
        anyhow::ensure!(
            r == 0,
            "PACKET_TX_RING: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: maps the ring just configured on fd, whole.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SLOTS * SLOT,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        anyhow::ensure!(
            ring != libc::MAP_FAILED,
            "mapping the TX ring: {}",
            std::io::Error::last_os_error()
        );
        Ok(PacketRing {
            fd,
            ring: ring.cast(),
            slots: SLOTS,
            next: 0,
            frames,
        })
    }
}

impl Round for PacketRing {
    fn round(&mut self) -> anyhow::Result<(u64, u64)> {
        let mut no_slot = 0;
        for f in &self.frames {
            // SAFETY: slot `next` lies inside the mapping; the kernel reads
            // the slot only once its status says SEND_REQUEST, written last.
            unsafe {
                let slot = self.ring.add(self.next * SLOT);
                let hdr = slot.cast::<libc::tpacket2_hdr>();
                if std::ptr::read_volatile(&raw const (*hdr).tp_status) != libc::TP_STATUS_AVAILABLE
                {
                    no_slot += 1;
                    continue;
                }
                std::ptr::copy_nonoverlapping(f.as_ptr(), slot.add(SLOT_DATA), f.len());
                (*hdr).tp_len = f.len() as u32;
                std::ptr::write_volatile(&raw mut (*hdr).tp_status, libc::TP_STATUS_SEND_REQUEST);
            }
            self.next = (self.next + 1) % self.slots;
        }
        // SAFETY: send(2) with no buffer: transmit the ring's requests.
        let r = unsafe { libc::send(self.fd.as_raw_fd(), std::ptr::null(), 0, 0) };
        anyhow::ensure!(r >= 0, "TX ring send: {}", std::io::Error::last_os_error());
        Ok((1, no_slot))
    }
}

impl Drop for PacketRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in open, unmapped once.
        unsafe { libc::munmap(self.ring.cast(), SLOTS * SLOT) };
    }
}

/// XDP frames with no socket buffer: the kernel's test-run facility in
/// live-frames mode runs a program returning XDP_TX `n` times and sends
/// each frame out of the interface (driver `ndo_xdp_xmit`). The program
/// sends the first advert each time: picking the n-th from a map would add
/// a few tens of ns per frame, so this row is that path's lower bound. It
/// is also attached (driver mode) to a spare veth: a program already in the
/// kernel's XDP dispatcher is run as is, any other makes every run rewrite
/// the dispatcher and wait ~26 ms for it (measured), too long for a 10 ms
/// round. XDP frames have no transmit queue: what the peer's ring cannot
/// take is dropped.
/// The spare veth (in host 0's namespace) holding the XDP frames' program.
const SPARE: &str = "xvspare0";

struct XdpFrames {
    prog: OwnedFd,
    ifindex: u32,
    frame: Vec<u8>,
    count: u32,
}

impl XdpFrames {
    fn open(ifindex: u32, frames: Vec<Vec<u8>>) -> anyhow::Result<Self> {
        let prog = xdpasm::load("advert_tx", &xdpasm::verdict(xdpasm::XDP_TX))?;
        xvrrp::dataplane::netlink::attach(
            xvrrp::net::iface::ifindex(SPARE)?,
            prog.as_fd(),
            xvrrp::dataplane::AttachMode::Driver,
        )
        .context("keeping the sender program in the XDP dispatcher")?;
        Ok(XdpFrames {
            prog,
            ifindex,
            frame: frames.first().context("no adverts")?.clone(),
            count: frames.len() as u32,
        })
    }
}

impl Round for XdpFrames {
    fn round(&mut self) -> anyhow::Result<(u64, u64)> {
        xdpasm::send_live(self.prog.as_fd(), self.ifindex, &self.frame, self.count)?;
        Ok((1, 0))
    }
}

/// One frame a round through a packet socket marked
/// `xdpasm::FANOUT_MARK`; the tc program on the interface's egress
/// (`xdpasm::fanout`) sends the other adverts as clones of it, each with
/// its own VRID.
struct TcFanout {
    packet: Packet,
    _link: OwnedFd,
}

impl TcFanout {
    fn open(ifindex: u32, frames: Vec<Vec<u8>>) -> anyhow::Result<Self> {
        let count = frames.len() as i32;
        let link = xdpasm::tcx_egress(
            "advert_fanout",
            &xdpasm::fanout(xdpasm::FANOUT_MARK, ifindex, 14 + 20 + 1, count),
            ifindex,
        )?;
        let packet = Packet::open(ifindex, frames.into_iter().take(1).collect())?;
        set_int(
            &packet.fd,
            libc::SOL_SOCKET,
            libc::SO_MARK,
            xdpasm::FANOUT_MARK as i32,
            "SO_MARK",
        )?;
        Ok(TcFanout {
            packet,
            _link: link,
        })
    }
}

impl Round for TcFanout {
    fn round(&mut self) -> anyhow::Result<(u64, u64)> {
        self.packet.round()
    }
}
