//! The eBPF side: load the embedded XDP program, attach it to an interface,
//! read its counters and drain its ring buffer of advert records.

pub mod fanout;
pub mod lb;
pub mod netlink;
pub mod object;
pub mod rules;

use std::{fmt, os::fd::AsFd as _};

use anyhow::{anyhow, bail, Context as _};
use aya::{
    maps::{Array, HashMap as AyaHashMap, Map, MapData, PerCpuArray, RingBuf},
    programs::Xdp,
    Ebpf,
};
use tokio::io::unix::AsyncFd;
use tracing::info;
use xvrrp_common::{
    counter, AdvertRecord, LastAdvert, VipKey, VipValue, VrConfig, VrKey, LEASE_LENGTH,
    LEASE_OBJECT, LEASE_RENEWED, MAP_COUNTERS, MAP_EVENTS, MAP_LAST, MAP_LEASE, MAP_TAKEOVER,
    MAP_TIMERS, MAP_VIPS, MAP_VRS, PROGRAM_NAME,
};

/// How to attach the XDP program (`--xdp-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AttachMode {
    /// Native (driver) XDP on physical NICs and on veths whose peer runs
    /// XDP (veth's driver-mode XDP_TX needs it), generic elsewhere; a
    /// driver that refuses falls back to generic.
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
    /// The concrete mode for `interface` (`index`): `auto` is driver mode
    /// on a physical NIC and on a veth whose peer runs XDP (veth delivers
    /// driver-mode XDP_TX frames only then), skb mode elsewhere; a driver
    /// that refuses falls back to skb mode at attach.
    pub fn resolve(self, interface: &str, index: u32) -> AttachMode {
        match self {
            AttachMode::Auto
                if std::path::Path::new(&format!("/sys/class/net/{interface}/device")).exists() =>
            {
                AttachMode::Driver
            }
            AttachMode::Auto
                if crate::net::rtnl::veth_peer_has_xdp(index).is_ok_and(|p| p == Some(true)) =>
            {
                AttachMode::Driver
            }
            AttachMode::Auto => AttachMode::Skb,
            m => m,
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
    crate::sched::without_realtime(|| {
        let mut ebpf = Ebpf::load(object::bytes()?).context("loading the BPF object")?;
        program_mut(&mut ebpf)?
            .load()
            .context("the kernel refused the XDP program (verifier log above)")?;
        Ok(ebpf)
    })
}

/// The XDP program inside a loaded object.
pub fn program_mut(ebpf: &mut Ebpf) -> anyhow::Result<&mut Xdp> {
    let program = ebpf
        .program_mut(PROGRAM_NAME)
        .ok_or_else(|| anyhow!("no program {PROGRAM_NAME} in the BPF object"))?;
    Ok(program.try_into()?)
}

/// The maps the agent holds, by name. TIMERS is only held: the kernel
/// refuses bpf_timer_init (EPERM) in a map no process holds, and cancels a
/// map's timers when its last holder goes, so a dead agent's Backups stop
/// timing (they are silent anyway) and a re-adopting agent's work again.
const AGENT_MAPS: [&str; 8] = [
    MAP_VIPS,
    MAP_LEASE,
    MAP_VRS,
    MAP_LAST,
    MAP_COUNTERS,
    MAP_EVENTS,
    MAP_TIMERS,
    MAP_TAKEOVER,
];

/// The program attached to one interface, through rtnetlink (see
/// `netlink`): it stays attached when the agent dies, so a crashed agent's
/// host falls silent once the lease runs out, and the next agent re-adopts
/// the program and its maps from the program's id. Only `detach` (a clean
/// stop) takes it off; dropping a `Dataplane` leaves it attached.
pub struct Dataplane {
    maps: std::collections::HashMap<&'static str, Map>,
    prog_id: u32,
    ifindex: u32,
    interface: String,
    mode: AttachMode,
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

/// A fingerprint of the embedded object (FNV-1a 64): equal fingerprints,
/// equal program and map layouts. Never 0 (0 is an unwritten slot).
pub fn object_fingerprint() -> anyhow::Result<u64> {
    static FP: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let bytes = object::bytes()?;
    Ok(*FP.get_or_init(|| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h.max(1)
    }))
}

/// Why the attached program on an interface is not re-adopted.
#[derive(Debug)]
enum NotOurs {
    /// Another tool's program: never replaced behind its owner's back.
    Foreign(String),
    /// An xvrrp program from another build (or with its maps gone).
    OtherBuild(String),
}

/// The attached program `attached`, when it is xvrrp's: its maps by name,
/// opened from the program's map ids (no bpffs needed).
fn adopt(
    attached: netlink::Attached,
) -> Result<std::collections::HashMap<&'static str, Map>, NotOurs> {
    let info = aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == attached.prog_id)
        .ok_or_else(|| NotOurs::OtherBuild(format!("program {} vanished", attached.prog_id)))?;
    let name = info.name_as_str().unwrap_or("?").to_owned();
    if name != PROGRAM_NAME {
        return Err(NotOurs::Foreign(format!(
            "program {} named {name:?}",
            attached.prog_id
        )));
    }
    let ids = info
        .map_ids()
        .map_err(|e| NotOurs::OtherBuild(format!("its map ids: {e}")))?
        .unwrap_or_default();
    let mut maps = std::collections::HashMap::new();
    for id in ids {
        let Ok(mi) = aya::maps::MapInfo::from_id(id) else {
            continue;
        };
        let Some(name) = mi
            .name_as_str()
            .and_then(|n| AGENT_MAPS.iter().find(|m| **m == n))
        else {
            continue;
        };
        let map = MapData::from_id(id)
            .and_then(Map::from_map_data)
            .map_err(|e| NotOurs::OtherBuild(format!("map {name}: {e}")))?;
        maps.insert(*name, map);
    }
    if let Some(missing) = AGENT_MAPS.iter().find(|m| !maps.contains_key(*m)) {
        return Err(NotOurs::OtherBuild(format!("no map {missing}")));
    }
    let ours = object_fingerprint().map_err(|e| NotOurs::OtherBuild(e.to_string()))?;
    let theirs = Array::<_, u64>::try_from(&maps[MAP_LEASE])
        .ok()
        .and_then(|a| a.get(&LEASE_OBJECT, 0).ok())
        .unwrap_or(0);
    if theirs != ours {
        return Err(NotOurs::OtherBuild(format!(
            "loaded from another build (object {theirs:#x}, this binary carries {ours:#x})"
        )));
    }
    Ok(maps)
}

/// Loads and verifies the embedded program, marks its LEASE with the object
/// fingerprint, attaches it to `index` (atomically replacing a program
/// attached in the same mode) and returns its maps and id.
fn load_and_attach(
    interface: &str,
    index: u32,
    mode: AttachMode,
) -> anyhow::Result<(std::collections::HashMap<&'static str, Map>, u32)> {
    let mut ebpf = load()?;
    let mut maps = std::collections::HashMap::new();
    for name in AGENT_MAPS {
        let map = ebpf
            .take_map(name)
            .ok_or_else(|| anyhow!("no map {name} in the BPF object"))?;
        maps.insert(name, map);
    }
    let mut lease = Array::<_, u64>::try_from(maps.get_mut(MAP_LEASE).expect("taken above"))?;
    lease.set(LEASE_OBJECT, object_fingerprint()?, 0)?;
    let xdp = program_mut(&mut ebpf)?;
    let prog_id = xdp.info()?.id();
    let fd = xdp.fd()?.as_fd();
    netlink::attach(index, fd, mode)
        .with_context(|| format!("attaching XDP to {interface} in {mode} mode"))?;
    // The attachment holds the program now; dropping the object closes only
    // this process's handles (aya detaches only links it made itself).
    Ok((maps, prog_id))
}

impl Dataplane {
    /// Attaches the program to `interface`. With `readopt`, an xvrrp program
    /// of this very build already attached there (a crashed or restarted
    /// agent's) is taken over with its maps, without loading anything
    /// (`resumed()` says so): the restart is as fast as opening a few fds.
    /// Otherwise the program is loaded and attached, replacing an older
    /// xvrrp program atomically. Another tool's program is never replaced.
    pub fn attach(interface: &str, mode: AttachMode, readopt: bool) -> anyhow::Result<Self> {
        let index = crate::net::iface::ifindex(interface)?;
        if mode == AttachMode::Off {
            bail!("XDP is off (--xdp-mode off)");
        }
        let existing = netlink::query(index)?;
        let wanted = mode.resolve(interface, index);
        if let Some(att) = existing {
            match adopt(att) {
                Ok(maps) if readopt && (mode == AttachMode::Auto || att.mode == wanted) => {
                    return Ok(Self::new(
                        maps,
                        att.prog_id,
                        index,
                        interface,
                        att.mode,
                        true,
                    ));
                }
                Err(NotOurs::Foreign(what)) => bail!(
                    "{interface} already has another XDP program attached ({what}, {} mode); \
                     xvrrp will not replace it: detach it (`ip link set dev {interface} xdp off`) \
                     or run with --xdp-mode off",
                    att.mode
                ),
                ours_or_older => {
                    if let Err(NotOurs::OtherBuild(why)) = ours_or_older {
                        info!(
                            interface,
                            "replacing the xvrrp XDP program found attached: {why}"
                        );
                    }
                    if att.mode != wanted {
                        // The kernel keeps one mode per interface.
                        netlink::detach(index, att.mode)?;
                    }
                }
            }
        }
        let (maps, prog_id, mode) = match load_and_attach(interface, index, wanted) {
            Ok((maps, id)) => (maps, id, wanted),
            // `auto` chose driver mode for a device whose driver refuses it.
            Err(e) if mode == AttachMode::Auto && wanted == AttachMode::Driver => {
                info!(interface, "driver-mode XDP refused ({e:#}); using skb mode");
                let (maps, id) = load_and_attach(interface, index, AttachMode::Skb)?;
                (maps, id, AttachMode::Skb)
            }
            Err(e) => return Err(e),
        };
        Ok(Self::new(maps, prog_id, index, interface, mode, false))
    }

    fn new(
        maps: std::collections::HashMap<&'static str, Map>,
        prog_id: u32,
        ifindex: u32,
        interface: &str,
        mode: AttachMode,
        resumed: bool,
    ) -> Self {
        Self {
            maps,
            prog_id,
            ifindex,
            interface: interface.to_owned(),
            mode,
            resumed,
            lease_written: None,
        }
    }

    /// A previous run's attached program and maps were taken over.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// The attached program's id (`bpftool prog show id N`).
    pub fn prog_id(&self) -> u32 {
        self.prog_id
    }

    fn map(&self, name: &str) -> Option<&Map> {
        self.maps.get(name)
    }

    fn map_mut(&mut self, name: &str) -> anyhow::Result<&mut Map> {
        self.maps
            .get_mut(name)
            .ok_or_else(|| anyhow!("no map {name} (ring buffer already taken?)"))
    }

    /// One value of one of the program's hash maps, by name.
    fn get<K: aya::Pod, V: aya::Pod>(&self, name: &str, key: &K) -> Option<V> {
        AyaHashMap::<_, K, V>::try_from(self.map(name)?)
            .ok()?
            .get(key, 0)
            .ok()
    }

    /// Every key of one of the program's hash maps (a re-adopted map may
    /// hold a previous config's).
    fn keys<K: aya::Pod, V: aya::Pod>(&self, name: &str) -> Vec<K> {
        self.map(name)
            .and_then(|m| AyaHashMap::<_, K, V>::try_from(m).ok())
            .map(|m| m.keys().filter_map(Result::ok).collect())
            .unwrap_or_default()
    }

    /// What the (possibly inherited) VIPS map holds for `key`.
    pub fn vip(&self, key: &VipKey) -> Option<VipValue> {
        self.get(MAP_VIPS, key)
    }

    pub fn vip_keys(&self) -> Vec<VipKey> {
        self.keys::<VipKey, VipValue>(MAP_VIPS)
    }

    pub fn vr_keys(&self) -> Vec<VrKey> {
        self.keys::<VrKey, VrConfig>(MAP_VRS)
    }

    /// The last valid advert the program saw for a virtual router.
    pub fn last(&self, key: &VrKey) -> Option<LastAdvert> {
        self.get(MAP_LAST, key)
    }

    /// What the (possibly inherited) VRS map holds for `key`.
    pub fn vr(&self, key: &VrKey) -> Option<VrConfig> {
        self.get(MAP_VRS, key)
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    pub fn mode(&self) -> AttachMode {
        self.mode
    }

    /// Takes the advert ring buffer (once).
    pub fn take_events(&mut self) -> anyhow::Result<AdvertEvents> {
        let map = self
            .maps
            .remove(MAP_EVENTS)
            .ok_or_else(|| anyhow!("no map {MAP_EVENTS} (already taken?)"))?;
        events_of(map)
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> anyhow::Result<Counters> {
        counters_of(
            self.map(MAP_COUNTERS)
                .ok_or_else(|| anyhow!("no map {MAP_COUNTERS}"))?,
        )
    }

    /// Inserts into one of the program's hash maps by name.
    fn insert<K: aya::Pod, V: aya::Pod>(
        &mut self,
        name: &str,
        key: K,
        value: V,
    ) -> anyhow::Result<()> {
        AyaHashMap::<_, K, V>::try_from(self.map_mut(name)?)?.insert(key, value, 0)?;
        Ok(())
    }

    fn remove<K: aya::Pod, V: aya::Pod>(&mut self, name: &str, key: &K) {
        if let Ok(m) = self.map_mut(name) {
            if let Ok(mut map) = AyaHashMap::<_, K, V>::try_from(m) {
                let _ = map.remove(key);
            }
        }
    }

    /// Sets what the program does for one VIP.
    pub fn set_vip(&mut self, key: VipKey, value: VipValue) -> anyhow::Result<()> {
        self.insert(MAP_VIPS, key, value)
    }

    pub fn remove_vip(&mut self, key: &VipKey) {
        self.remove::<VipKey, VipValue>(MAP_VIPS, key)
    }

    /// What adverts for one virtual router are checked against.
    pub fn set_vr(&mut self, key: VrKey, cfg: VrConfig) -> anyhow::Result<()> {
        self.insert(MAP_VRS, key, cfg)
    }

    /// Forgets a virtual router: its checks and its last advert.
    pub fn remove_vr(&mut self, key: &VrKey) {
        self.remove::<VrKey, VrConfig>(MAP_VRS, key);
        self.remove::<VrKey, LastAdvert>(MAP_LAST, key);
        self.end_takeover(key);
    }

    /// Ends the answers the program gives for a router it took over when
    /// its timer fired (VR_TAKEOVER): the election has decided.
    pub fn end_takeover(&mut self, key: &VrKey) {
        self.remove::<VrKey, u64>(MAP_TAKEOVER, key);
    }

    /// The (possibly inherited) lease still runs: the program still answers
    /// for Active VIPs, so no Backup has had reason to take over yet.
    pub fn lease_fresh(&self) -> bool {
        let Some(map) = self.map(MAP_LEASE) else {
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
        let new_length = self.lease_written.map(|(_, len)| len) != Some(length);
        let mut map: Array<_, u64> = Array::try_from(self.map_mut(MAP_LEASE)?)?;
        // The length first: the program never sees a renewal with an older,
        // longer length. Written only when it changes (one system call a
        // renewal, not two).
        if new_length {
            map.set(LEASE_LENGTH, length, 0)?;
        }
        map.set(LEASE_RENEWED, now, 0)?;
        self.lease_written = Some((now, length));
        Ok(())
    }

    /// Writes the lease's length alone (not a renewal): a Backup sends no
    /// adverts, yet the kernel's takeover answers for one lease length.
    pub fn set_lease_length(&mut self, length: std::time::Duration) -> anyhow::Result<()> {
        let length = length.as_nanos() as u64;
        let mut map: Array<_, u64> = Array::try_from(self.map_mut(MAP_LEASE)?)?;
        if map.get(&LEASE_LENGTH, 0).ok() != Some(length) {
            map.set(LEASE_LENGTH, length, 0)?;
            // A renewal writes the length only when it differs from this.
            self.lease_written = self.lease_written.map(|(at, _)| (at, length));
        }
        Ok(())
    }

    /// Takes the program off the interface (a clean stop), when it is still
    /// the one this agent attached or adopted.
    pub fn detach(&mut self) -> anyhow::Result<()> {
        match netlink::query(self.ifindex)? {
            Some(att) if att.prog_id == self.prog_id => netlink::detach(self.ifindex, att.mode),
            _ => Ok(()),
        }
    }
}

/// Relays the XDP program's aya-log records (rare events only: a kernel
/// timer expiry, never per packet) into the agent's log, for as long as
/// the program lives. Works on a re-adopted program too: the log ring is
/// found from the program's id.
pub async fn relay_logs(prog_id: u32) -> anyhow::Result<()> {
    let logger = aya_log::EbpfLogger::init_from_id(prog_id)
        .with_context(|| format!("the XDP program's log ring (program {prog_id})"))?;
    let mut logs = crate::net::async_fd(logger)?;
    loop {
        let mut guard = logs.readable_mut().await?;
        guard.get_inner_mut().flush();
        guard.clear_ready();
    }
}

/// CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns.
pub fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always there");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// The `EVENTS` ring buffer, readable from tokio.
fn events_of(map: Map) -> anyhow::Result<AdvertEvents> {
    let ring = RingBuf::try_from(map)?;
    let ring = crate::net::async_fd(ring).context("registering the ring buffer with tokio")?;
    Ok(AdvertEvents { ring })
}

/// Takes the `EVENTS` ring buffer out of a loaded object.
pub fn take_events(ebpf: &mut Ebpf) -> anyhow::Result<AdvertEvents> {
    let map = ebpf
        .take_map(MAP_EVENTS)
        .ok_or_else(|| anyhow!("no map {MAP_EVENTS} (already taken?)"))?;
    events_of(map)
}

/// Reads the per-CPU `COUNTERS` array of a loaded object, summed over CPUs.
pub fn read_counters(ebpf: &Ebpf) -> anyhow::Result<Counters> {
    counters_of(
        ebpf.map(MAP_COUNTERS)
            .ok_or_else(|| anyhow!("no map {MAP_COUNTERS}"))?,
    )
}

fn counters_of(map: &Map) -> anyhow::Result<Counters> {
    let array = PerCpuArray::<_, u64>::try_from(map)?;
    let mut values = [0u64; counter::COUNT as usize];
    for (index, value) in values.iter_mut().enumerate() {
        *value = array.get(&(index as u32), 0)?.iter().sum();
    }
    Ok(Counters(values))
}

/// Snapshot of the program's counters, indexed by `xvrrp_common::counter`.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    let mut add = |bytes: &[u8]| {
        for w in bytes.chunks(4) {
            sum = sum.wrapping_add(u32::from_be_bytes(w.try_into().expect("4 bytes")));
        }
    };
    for a in addrs {
        match a {
            std::net::IpAddr::V4(v) => add(&v.octets()),
            std::net::IpAddr::V6(v) => add(&v.octets()),
        }
    }
    sum
}

/// An IP address as the maps hold it: its family and 16 bytes (IPv4 in the
/// first 4), the inverse of `address`.
pub fn map_address(ip: std::net::IpAddr) -> (u8, [u8; 16]) {
    match ip {
        std::net::IpAddr::V4(a) => {
            let mut o = [0u8; 16];
            o[..4].copy_from_slice(&a.octets());
            (xvrrp_common::FAMILY_V4, o)
        }
        std::net::IpAddr::V6(a) => (xvrrp_common::FAMILY_V6, a.octets()),
    }
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
