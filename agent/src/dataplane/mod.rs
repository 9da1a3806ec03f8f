//! The eBPF side: load the embedded XDP program, attach it to an interface,
//! read its counters and drain its ring buffer of advert records.

pub mod object;

use std::{ffi::CString, fmt, os::fd::AsRawFd as _};

use anyhow::{anyhow, bail, Context as _};
use aya::{
    maps::{Array, HashMap as AyaHashMap, MapData, PerCpuArray, RingBuf},
    programs::{
        links::{FdLink, PinnedLink},
        Xdp, XdpMode,
    },
    Ebpf,
};
use tokio::io::unix::AsyncFd;
use xvrrp_common::{
    counter, AdvertRecord, VipKey, VipValue, VrConfig, VrKey, LEASE_LENGTH, LEASE_RENEWED,
    MAP_COUNTERS, MAP_EVENTS, MAP_LEASE, MAP_VIPS, MAP_VRS, PROGRAM_NAME,
};

/// How to attach the XDP program (`--xdp-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AttachMode {
    /// Native (driver) XDP on physical NICs, generic on virtual devices
    /// (veth's XDP_TX in driver mode needs a program on the peer too).
    #[default]
    Auto,
    /// Native XDP in the driver; fails where the driver lacks it.
    Driver,
    /// Generic XDP in the kernel stack (slower, works everywhere).
    Skb,
    /// No XDP: adverts and ARP/ND on the kernel's socket path only.
    Off,
}

impl AttachMode {
    /// The concrete mode for `interface`.
    pub fn resolve(self, interface: &str) -> AttachMode {
        match self {
            AttachMode::Auto
                if std::path::Path::new(&format!("/sys/class/net/{interface}/device")).exists() =>
            {
                AttachMode::Driver
            }
            AttachMode::Auto => AttachMode::Skb,
            m => m,
        }
    }

    fn aya(self) -> XdpMode {
        match self {
            Self::Auto | Self::Off => XdpMode::Default,
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
            Self::Off => "off",
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

/// The attachment: a plain bpf_link (detached when the process dies), or a
/// pinned one (survives a crash, so the program keeps dropping requests for
/// the VIPs once the lease runs out: fail silent).
enum Attachment {
    /// Held only: dropping it detaches.
    #[allow(dead_code)]
    Link(FdLink),
    Pinned(PinnedLink),
}

/// The program attached to one interface. Dropping it (a clean stop)
/// unpins and detaches; a crash leaves a pinned program in place.
pub struct Dataplane {
    ebpf: Ebpf,
    link: Option<Attachment>,
    interface: String,
    ifindex: u32,
    mode: AttachMode,
}

/// A bpffs at `root`, mounted when it is not. A bpffs mounted inside
/// `ip netns exec` lives in that command's private mount namespace and goes
/// with the process: give such agents a bpffs of the host (`--bpffs`).
pub fn ensure_bpffs(root: &std::path::Path) -> anyhow::Result<()> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let r = root.to_string_lossy();
    let mounted = mounts.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 2 && f[1] == r && f[2] == "bpf"
    });
    if mounted {
        return Ok(());
    }
    std::fs::create_dir_all(root)?;
    let c = |s: &str| CString::new(s).expect("no NUL");
    let (src, dst, fs) = (c("bpf"), c(&r), c("bpf"));
    // SAFETY: mount(2) with valid C strings.
    if unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) } != 0 {
        bail!(
            "mounting bpffs at {r}: {} (needs CAP_SYS_ADMIN)",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

impl Dataplane {
    /// Loads the program and attaches it to `interface` through a bpf_link;
    /// with `pin`, the link is pinned there (a previous pin is replaced).
    pub fn attach(
        interface: &str,
        mode: AttachMode,
        pin: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let index = ifindex(interface)?;
        let mode = mode.resolve(interface);
        if mode == AttachMode::Off {
            bail!("XDP is off (--xdp-mode off)");
        }
        if let Some(p) = pin {
            let root = p
                .ancestors()
                .find(|a| a.ends_with("xvrrp"))
                .and_then(|a| a.parent())
                .unwrap_or(std::path::Path::new("/sys/fs/bpf"));
            ensure_bpffs(root)?;
            if p.exists() {
                // A previous run that crashed: replace its program.
                match PinnedLink::from_pin(p) {
                    Ok(old) => drop(old.unpin()),
                    Err(_) => {
                        let _ = std::fs::remove_file(p);
                    }
                }
            }
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)?;
            }
        }
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
        let link = match pin {
            Some(p) => Attachment::Pinned(
                link.pin(p)
                    .with_context(|| format!("pinning the XDP link at {}", p.display()))?,
            ),
            None => Attachment::Link(link),
        };
        Ok(Self {
            ebpf,
            link: Some(link),
            interface: interface.to_owned(),
            ifindex: index,
            mode,
        })
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
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

    /// Sets what the program does for one VIP.
    pub fn set_vip(&mut self, key: VipKey, value: VipValue) -> anyhow::Result<()> {
        let mut map: AyaHashMap<_, VipKey, VipValue> = AyaHashMap::try_from(
            self.ebpf
                .map_mut(MAP_VIPS)
                .ok_or_else(|| anyhow!("no map {MAP_VIPS}"))?,
        )?;
        map.insert(key, value, 0)?;
        Ok(())
    }

    pub fn remove_vip(&mut self, key: &VipKey) {
        if let Some(m) = self.ebpf.map_mut(MAP_VIPS) {
            if let Ok(mut map) = AyaHashMap::<_, VipKey, VipValue>::try_from(m) {
                let _ = map.remove(key);
            }
        }
    }

    /// What adverts for one virtual router are checked against.
    pub fn set_vr(&mut self, key: VrKey, cfg: VrConfig) -> anyhow::Result<()> {
        let mut map: AyaHashMap<_, VrKey, VrConfig> = AyaHashMap::try_from(
            self.ebpf
                .map_mut(MAP_VRS)
                .ok_or_else(|| anyhow!("no map {MAP_VRS}"))?,
        )?;
        map.insert(key, cfg, 0)?;
        Ok(())
    }

    /// Renews the lease (now, CLOCK_MONOTONIC) for `length`.
    pub fn renew_lease(&mut self, length: std::time::Duration) -> anyhow::Result<()> {
        let mut map: Array<_, u64> = Array::try_from(
            self.ebpf
                .map_mut(MAP_LEASE)
                .ok_or_else(|| anyhow!("no map {MAP_LEASE}"))?,
        )?;
        map.set(LEASE_RENEWED, monotonic_ns(), 0)?;
        map.set(LEASE_LENGTH, length.as_nanos() as u64, 0)?;
        Ok(())
    }

    /// Detaches the program now (also happens on drop).
    pub fn detach(&mut self) {
        if let Some(Attachment::Pinned(p)) = self.link.take() {
            drop(p.unpin());
        }
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        self.detach();
    }
}

/// CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Where a namespace's pins live: versioned (aya reuses pinned maps by name
/// without checking their layout), keyed by network namespace and interface.
pub fn pin_path(bpffs: &std::path::Path, interface: &str) -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt as _;
    let ns = std::fs::metadata("/proc/self/ns/net")
        .map(|m| m.ino())
        .unwrap_or(0);
    bpffs.join(format!("xvrrp/v1/netns-{ns}/{interface}/link"))
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
