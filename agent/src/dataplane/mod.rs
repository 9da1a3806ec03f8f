//! The eBPF side: load the embedded XDP program, attach it to an interface,
//! read its counters and drain its ring buffer of advert records.

pub mod object;

use std::{ffi::CString, fmt, os::fd::AsRawFd as _};

use anyhow::{anyhow, bail, Context as _};
use aya::{
    maps::{MapData, PerCpuArray, RingBuf},
    programs::{links::FdLink, Xdp, XdpMode},
    Ebpf,
};
use tokio::io::unix::AsyncFd;
use xvrrp_common::{counter, AdvertRecord, MAP_COUNTERS, MAP_EVENTS, PROGRAM_NAME};

/// How to attach the XDP program (`--xdp-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AttachMode {
    /// Let the kernel choose: native (driver) where the driver has XDP, else generic.
    #[default]
    Auto,
    /// Native XDP in the driver; fails where the driver lacks it.
    Driver,
    /// Generic XDP in the kernel stack (slower, works everywhere).
    Skb,
}

impl AttachMode {
    fn aya(self) -> XdpMode {
        match self {
            Self::Auto => XdpMode::Default,
            Self::Driver => XdpMode::Driver,
            Self::Skb => XdpMode::Skb,
        }
    }
}

impl fmt::Display for AttachMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Driver => "driver",
            Self::Skb => "skb",
        })
    }
}

/// Loads the embedded object and verifies the XDP program, without attaching
/// it anywhere. Packet tests (BPF_PROG_TEST_RUN) start from here.
pub fn load() -> anyhow::Result<Ebpf> {
    let mut ebpf = Ebpf::load(object::bytes()?).context("loading the BPF object")?;
    program_mut(&mut ebpf)?
        .load()
        .context("the kernel refused the XDP program (verifier log above)")?;
    Ok(ebpf)
}

/// The XDP program inside a loaded object.
pub fn program_mut(ebpf: &mut Ebpf) -> anyhow::Result<&mut Xdp> {
    let program = ebpf
        .program_mut(PROGRAM_NAME)
        .ok_or_else(|| anyhow!("no program {PROGRAM_NAME} in the BPF object"))?;
    Ok(program.try_into()?)
}

/// Index of a network interface by name.
pub fn ifindex(name: &str) -> anyhow::Result<u32> {
    let c = CString::new(name).context("interface name contains NUL")?;
    // SAFETY: valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        bail!("no interface named {name:?} in this network namespace (see `ip link`)");
    }
    Ok(index)
}

/// The program attached to one interface. Dropping it detaches the program
/// (the bpf_link is not pinned, so it also goes when the process dies).
pub struct Dataplane {
    ebpf: Ebpf,
    link: Option<FdLink>,
    interface: String,
    mode: AttachMode,
}

impl Dataplane {
    /// Loads the program and attaches it to `interface` through a bpf_link.
    pub fn attach(interface: &str, mode: AttachMode) -> anyhow::Result<Self> {
        let index = ifindex(interface)?;
        let mut ebpf = load()?;
        let xdp = program_mut(&mut ebpf)?;
        let id = xdp
            .attach_to_if_index(index, mode.aya())
            .with_context(|| format!("attaching XDP to {interface} in {mode} mode"))?;
        let link = xdp.take_link(id)?;
        // aya falls back to a netlink attachment when bpf_link is refused; such
        // an attachment outlives a crash, which would break fail-silent. Refuse it.
        let link = FdLink::try_from(link).map_err(|_| {
            anyhow!(
                "XDP on {interface} was attached through netlink, not a bpf_link; \
                 xvrrp needs Linux >= 5.9 with bpf_link support for XDP"
            )
        })?;
        Ok(Self {
            ebpf,
            link: Some(link),
            interface: interface.to_owned(),
            mode,
        })
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    pub fn mode(&self) -> AttachMode {
        self.mode
    }

    /// Takes the advert ring buffer out of the object (once).
    pub fn take_events(&mut self) -> anyhow::Result<AdvertEvents> {
        take_events(&mut self.ebpf)
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> anyhow::Result<Counters> {
        read_counters(&self.ebpf)
    }

    /// Detaches the program now (also happens on drop).
    pub fn detach(&mut self) {
        self.link.take();
    }
}

/// Takes the `EVENTS` ring buffer out of a loaded object.
pub fn take_events(ebpf: &mut Ebpf) -> anyhow::Result<AdvertEvents> {
    let map = ebpf
        .take_map(MAP_EVENTS)
        .ok_or_else(|| anyhow!("no map {MAP_EVENTS} (already taken?)"))?;
    let ring = RingBuf::try_from(map)?;
    let ring = crate::net::async_fd(ring).context("registering the ring buffer with tokio")?;
    Ok(AdvertEvents { ring })
}

/// Reads the per-CPU `COUNTERS` array of a loaded object, summed over CPUs.
pub fn read_counters(ebpf: &Ebpf) -> anyhow::Result<Counters> {
    let map = ebpf
        .map(MAP_COUNTERS)
        .ok_or_else(|| anyhow!("no map {MAP_COUNTERS}"))?;
    let array = PerCpuArray::<_, u64>::try_from(map)?;
    let mut values = [0u64; counter::COUNT as usize];
    for (index, value) in values.iter_mut().enumerate() {
        *value = array.get(&(index as u32), 0)?.iter().sum();
    }
    Ok(Counters(values))
}

/// Snapshot of the program's counters, indexed by `xvrrp_common::counter`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters(pub [u64; counter::COUNT as usize]);

impl Counters {
    pub fn get(&self, index: u32) -> u64 {
        self.0[index as usize]
    }

    /// (name, value) pairs in counter order.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        counter::NAMES.iter().copied().zip(self.0.iter().copied())
    }
}

/// The ring buffer of advert records, readable from tokio.
pub struct AdvertEvents {
    ring: AsyncFd<RingBuf<MapData>>,
}

impl AdvertEvents {
    /// Waits until at least one record is there, then drains all of them.
    pub async fn next_batch(&mut self) -> anyhow::Result<Vec<AdvertRecord>> {
        loop {
            let mut guard = self.ring.readable_mut().await?;
            let records = drain(guard.get_inner_mut());
            guard.clear_ready();
            if !records.is_empty() {
                return Ok(records);
            }
        }
    }

    /// Drains whatever is there without waiting.
    pub fn try_drain(&mut self) -> Vec<AdvertRecord> {
        drain(self.ring.get_mut())
    }

    pub fn raw_fd(&self) -> i32 {
        self.ring.get_ref().as_raw_fd()
    }
}

fn drain(ring: &mut RingBuf<MapData>) -> Vec<AdvertRecord> {
    let mut records = Vec::new();
    while let Some(item) = ring.next() {
        if let Some(record) = AdvertRecord::from_bytes(&item) {
            records.push(record);
        }
    }
    records
}

/// Decoding of a ring-buffer item into its record.
pub trait FromRecordBytes: Sized {
    fn from_bytes(bytes: &[u8]) -> Option<Self>;
}

impl FromRecordBytes for AdvertRecord {
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < std::mem::size_of::<Self>() {
            return None;
        }
        // SAFETY: AdvertRecord is repr(C) plain data; length checked; unaligned read.
        Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<Self>()) })
    }
}

/// The record's source as an IP address.
pub fn record_source(record: &AdvertRecord) -> std::net::IpAddr {
    if record.family == xvrrp_common::FAMILY_V4 {
        std::net::Ipv4Addr::new(record.src[0], record.src[1], record.src[2], record.src[3]).into()
    } else {
        std::net::Ipv6Addr::from(record.src).into()
    }
}
