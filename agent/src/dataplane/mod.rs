//! The eBPF side: load the embedded XDP program, attach it to an interface,
//! read its counters and drain its ring buffer of advert records.

pub mod object;

use std::{ffi::CString, fmt};

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
    counter, AdvertRecord, LastAdvert, VipKey, VipValue, VrConfig, VrKey, LEASE_LENGTH,
    LEASE_RENEWED, MAP_COUNTERS, MAP_EVENTS, MAP_LAST, MAP_LEASE, MAP_VIPS, MAP_VRS, PROGRAM_NAME,
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
    mode: AttachMode,
    /// Where link and maps are pinned (removed on a clean stop).
    pin_dir: Option<std::path::PathBuf>,
    resumed: bool,
    /// The lease as last written (renewed at, length; ns): every
    /// interface's instances renew the one lease, so most renewals are
    /// redundant and skipped (two bpf syscalls each).
    lease_written: Option<(u64, u64)>,
}

/// Renewals of the lease closer together than this are skipped: 255
/// instances at 10 ms would otherwise write it 25,500 times a second (two
/// bpf syscalls each); this bounds it to a thousand, and the lease runs out
/// at most a millisecond before the last advert's lease would have.
const LEASE_RENEW_SLACK_NS: u64 = 1_000_000;

/// Attaches the loaded program to `index` through a bpf_link (never netlink).
fn attach_fresh(
    ebpf: &mut Ebpf,
    interface: &str,
    index: u32,
    mode: AttachMode,
) -> anyhow::Result<FdLink> {
    let xdp = program_mut(ebpf)?;
    let id = xdp
        .attach_to_if_index(index, mode.aya())
        .with_context(|| format!("attaching XDP to {interface} in {mode} mode"))?;
    let link = xdp.take_link(id)?;
    // aya falls back to a netlink attachment when bpf_link is refused; such
    // an attachment outlives a crash unpinned and cannot be replaced in
    // place, which would break fail silent and re-adoption. Refuse it.
    FdLink::try_from(link).map_err(|_| {
        anyhow!(
            "XDP on {interface} was attached through netlink, not a bpf_link; \
             xvrrp needs Linux >= 5.9 with bpf_link support for XDP"
        )
    })
}

/// Loads the program with its state maps pinned in `dir` (reused when there).
fn load_pinned(dir: &std::path::Path) -> anyhow::Result<Ebpf> {
    let paths: Vec<(&str, std::path::PathBuf)> = [MAP_VIPS, MAP_LEASE, MAP_VRS, MAP_LAST]
        .iter()
        .map(|m| (*m, dir.join(m)))
        .collect();
    let mut loader = aya::EbpfLoader::new();
    for (name, path) in &paths {
        loader.map_pin_path(name, path.as_path());
    }
    let mut ebpf = loader
        .load(object::bytes()?)
        .context("loading the BPF object with pinned maps")?;
    program_mut(&mut ebpf)?
        .load()
        .context("the kernel refused the XDP program (verifier log above)")?;
    Ok(ebpf)
}

/// Puts the newly loaded program into the pinned link (bpf_link_update:
/// atomic, the interface is never without a program).
fn adopt(ebpf: &mut Ebpf, link_path: &std::path::Path) -> anyhow::Result<PinnedLink> {
    let old = PinnedLink::from_pin(link_path)?;
    let fd: FdLink = old.into();
    let link = aya::programs::xdp::XdpLink::try_from(fd)?;
    let xdp = program_mut(ebpf)?;
    let id = xdp.attach_to_link(link)?;
    // The pin keeps the link; this process holds it through a fresh handle.
    drop(xdp.take_link(id));
    Ok(PinnedLink::from_pin(link_path)?)
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
    /// Loads the program and attaches it to `interface` through a bpf_link.
    /// With `pin` (a directory), the link and the VIPS/LEASE/VRS/LAST maps are
    /// pinned there; when a previous run left them (it crashed), the maps are
    /// reused and the pinned link's program replaced in place, so the
    /// interface is never without a program (`resumed()` says so). The
    /// caller makes sure `pin` is on a bpffs (`ensure_bpffs`).
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
        let Some(dir) = pin else {
            let mut ebpf = load()?;
            let link = attach_fresh(&mut ebpf, interface, index, mode)?;
            return Ok(Self::new(
                ebpf,
                Attachment::Link(link),
                interface,
                mode,
                None,
                false,
            ));
        };
        std::fs::create_dir_all(dir)?;
        let link_path = dir.join("link");
        let mut ebpf = load_pinned(dir)?;
        if link_path.exists() {
            match adopt(&mut ebpf, &link_path) {
                Ok(pinned) => {
                    return Ok(Self::new(
                        ebpf,
                        Attachment::Pinned(pinned),
                        interface,
                        mode,
                        Some(dir),
                        true,
                    ))
                }
                Err(e) => {
                    // Not ours any more (interface gone, other program): start clean.
                    tracing::warn!(
                        interface,
                        "pinned XDP state at {} not reusable ({e:#}); starting fresh",
                        dir.display()
                    );
                    drop(ebpf);
                    let _ = std::fs::remove_dir_all(dir);
                    std::fs::create_dir_all(dir)?;
                    ebpf = load_pinned(dir)?;
                }
            }
        }
        let link = attach_fresh(&mut ebpf, interface, index, mode)?;
        let pinned = link
            .pin(&link_path)
            .with_context(|| format!("pinning the XDP link at {}", link_path.display()))?;
        Ok(Self::new(
            ebpf,
            Attachment::Pinned(pinned),
            interface,
            mode,
            Some(dir),
            false,
        ))
    }

    fn new(
        ebpf: Ebpf,
        link: Attachment,
        interface: &str,
        mode: AttachMode,
        pin_dir: Option<&std::path::Path>,
        resumed: bool,
    ) -> Self {
        Self {
            ebpf,
            link: Some(link),
            interface: interface.to_owned(),
            mode,
            pin_dir: pin_dir.map(std::path::Path::to_path_buf),
            resumed,
            lease_written: None,
        }
    }

    /// A previous run's pinned link and maps were taken over.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// What the (possibly inherited) VIPS map holds for `key`.
    pub fn vip(&self, key: &VipKey) -> Option<VipValue> {
        let map: AyaHashMap<_, VipKey, VipValue> =
            AyaHashMap::try_from(self.ebpf.map(MAP_VIPS)?).ok()?;
        map.get(key, 0).ok()
    }

    /// The last valid advert the program saw for a virtual router.
    pub fn last(&self, key: &VrKey) -> Option<LastAdvert> {
        let map: AyaHashMap<_, VrKey, LastAdvert> =
            AyaHashMap::try_from(self.ebpf.map(MAP_LAST)?).ok()?;
        map.get(key, 0).ok()
    }

    /// What the (possibly inherited) VRS map holds for `key`.
    pub fn vr(&self, key: &VrKey) -> Option<VrConfig> {
        let map: AyaHashMap<_, VrKey, VrConfig> =
            AyaHashMap::try_from(self.ebpf.map(MAP_VRS)?).ok()?;
        map.get(key, 0).ok()
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

    /// Inserts into one of the program's hash maps by name.
    fn insert<K: aya::Pod, V: aya::Pod>(
        &mut self,
        name: &str,
        key: K,
        value: V,
    ) -> anyhow::Result<()> {
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or_else(|| anyhow!("no map {name}"))?;
        AyaHashMap::<_, K, V>::try_from(map)?.insert(key, value, 0)?;
        Ok(())
    }

    /// Sets what the program does for one VIP.
    pub fn set_vip(&mut self, key: VipKey, value: VipValue) -> anyhow::Result<()> {
        self.insert(MAP_VIPS, key, value)
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
        self.insert(MAP_VRS, key, cfg)
    }

    /// The (possibly inherited) lease still runs: the program still answers
    /// for Active VIPs, so no Backup has had reason to take over yet.
    pub fn lease_fresh(&self) -> bool {
        let Some(map) = self.ebpf.map(MAP_LEASE) else {
            return false;
        };
        let Ok(map) = Array::<_, u64>::try_from(map) else {
            return false;
        };
        let renewed = map.get(&LEASE_RENEWED, 0).unwrap_or(0);
        let length = map.get(&LEASE_LENGTH, 0).unwrap_or(0);
        renewed != 0 && monotonic_ns() < renewed.saturating_add(length)
    }

    /// Renews the lease (now, CLOCK_MONOTONIC) for `length`. A renewal of
    /// the same length within LEASE_RENEW_SLACK_NS of the last one is
    /// skipped: the lease then runs out at most that much early, never late.
    pub fn renew_lease(&mut self, length: std::time::Duration) -> anyhow::Result<()> {
        let (now, length) = (monotonic_ns(), length.as_nanos() as u64);
        if let Some((at, len)) = self.lease_written {
            if len == length && now.saturating_sub(at) < LEASE_RENEW_SLACK_NS {
                return Ok(());
            }
        }
        let mut map: Array<_, u64> = Array::try_from(
            self.ebpf
                .map_mut(MAP_LEASE)
                .ok_or_else(|| anyhow!("no map {MAP_LEASE}"))?,
        )?;
        map.set(LEASE_RENEWED, now, 0)?;
        map.set(LEASE_LENGTH, length, 0)?;
        self.lease_written = Some((now, length));
        Ok(())
    }

    /// Detaches the program now and forgets pinned state (a clean stop;
    /// also happens on drop).
    pub fn detach(&mut self) {
        if let Some(Attachment::Pinned(p)) = self.link.take() {
            drop(p.unpin());
        }
        self.link = None;
        if let Some(dir) = self.pin_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
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
    bpffs.join(format!("xvrrp/v2/netns-{ns}/{interface}/link"))
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
}

fn drain(ring: &mut RingBuf<MapData>) -> Vec<AdvertRecord> {
    let mut records = Vec::new();
    while let Some(item) = ring.next() {
        if let Some(record) = record_from_bytes(&item) {
            records.push(record);
        }
    }
    records
}

/// A ring-buffer item as its record (None when too short).
fn record_from_bytes(bytes: &[u8]) -> Option<AdvertRecord> {
    if bytes.len() < std::mem::size_of::<AdvertRecord>() {
        return None;
    }
    // SAFETY: AdvertRecord is repr(C) plain data; length checked; unaligned read.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<AdvertRecord>()) })
}

/// The record's source as an IP address.
pub fn record_source(record: &AdvertRecord) -> std::net::IpAddr {
    address(record.family, &record.src)
}

/// The sum of a virtual router's addresses as big-endian 32-bit words
/// (wrapping): how the XDP program tells an advert's address set from ours
/// without a loop over a list (`VrConfig::addr_sum`).
pub fn addr_sum(addrs: &[std::net::IpAddr]) -> u32 {
    let mut sum = 0u32;
    for a in addrs {
        let bytes = match a {
            std::net::IpAddr::V4(v) => v.octets().to_vec(),
            std::net::IpAddr::V6(v) => v.octets().to_vec(),
        };
        for w in bytes.chunks(4) {
            sum = sum.wrapping_add(u32::from_be_bytes(w.try_into().expect("4 bytes")));
        }
    }
    sum
}

/// A map's address bytes (IPv4 in the first 4) as an IP address.
pub fn address(family: u8, bytes: &[u8; 16]) -> std::net::IpAddr {
    if family == xvrrp_common::FAMILY_V4 {
        std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).into()
    } else {
        std::net::Ipv6Addr::from(*bytes).into()
    }
}

/// A bpf_ktime_get_ns() value (CLOCK_MONOTONIC, the clock of `Instant`) as
/// an `Instant`.
pub fn instant_of(ktime_ns: u64) -> std::time::Instant {
    let now = std::time::Instant::now();
    let ago = monotonic_ns().saturating_sub(ktime_ns);
    now.checked_sub(std::time::Duration::from_nanos(ago))
        .unwrap_or(now)
}
