//! The advert fan-out on one interface (docs/design.md rule 3): the tc
//! program of ebpf/xvrrp-ebpf/src/fanout.rs on its egress (a tcx link,
//! held while this lives: a dead agent's adverts stop with it), the
//! adverts' bytes it writes, and the rounds the agent arms.

use std::sync::atomic::Ordering;

use anyhow::{anyhow, Context as _};
use aya::{
    maps::{Array, MapData, PerCpuArray},
    programs::{tc::TcAttachType, SchedClassifier},
    Ebpf,
};
use xvrrp_common::{
    fanout_counter, FanoutFrame, FanoutRound, FANOUT_FRAMES, FANOUT_FRAME_MAX, FANOUT_PROGRAM_NAME,
    FANOUT_ROUND_MAX, MAP_FANOUT_COUNTERS, MAP_FANOUT_FRAMES, MAP_FANOUT_ROUND,
};

/// The fan-out attached to one interface.
pub struct Fanout {
    /// Holds the program and its tcx link.
    _object: Ebpf,
    round: RoundMapping,
    frames: Array<MapData, FanoutFrame>,
    counters: PerCpuArray<MapData, u64>,
    /// Frame numbers not in use.
    free: Vec<u16>,
    /// The last nonce armed (never 0).
    nonce: u16,
}

/// Most frames one round carries (the sent one included).
pub const ROUND_MAX: usize = FANOUT_ROUND_MAX;

impl Fanout {
    /// Loads the program and attaches it to `interface`'s egress (tcx, so
    /// other tc programs there keep their place).
    pub fn attach(interface: &str) -> anyhow::Result<Fanout> {
        let mut object = crate::sched::without_realtime(|| {
            Ebpf::load(super::object::fanout_bytes()?).context("loading the fan-out object")
        })?;
        let take = |o: &mut Ebpf, name: &str| {
            o.take_map(name)
                .ok_or_else(|| anyhow!("no map {name} in the fan-out object"))
        };
        let round = RoundMapping::new(take(&mut object, MAP_FANOUT_ROUND)?)?;
        let frames = Array::try_from(take(&mut object, MAP_FANOUT_FRAMES)?)?;
        let counters = PerCpuArray::try_from(take(&mut object, MAP_FANOUT_COUNTERS)?)?;
        let prog: &mut SchedClassifier = object
            .program_mut(FANOUT_PROGRAM_NAME)
            .ok_or_else(|| anyhow!("no program {FANOUT_PROGRAM_NAME} in the fan-out object"))?
            .try_into()?;
        prog.load()
            .context("the kernel refused the fan-out program")?;
        prog.attach(interface, TcAttachType::Egress)
            .with_context(|| format!("attaching the fan-out to {interface}'s egress (tcx)"))?;
        Ok(Fanout {
            _object: object,
            round,
            frames,
            counters,
            free: (0..FANOUT_FRAMES as u16).rev().collect(),
            nonce: 0,
        })
    }

    /// Keeps `bytes` (an IPv4 advert as the socket sends it) as a frame:
    /// its number, or None when it is too long or every frame is in use
    /// (the advert then goes through the socket on its own).
    pub fn keep(&mut self, bytes: &[u8]) -> anyhow::Result<Option<u16>> {
        if bytes.len() >= FANOUT_FRAME_MAX || bytes.len() < crate::wire::ip::IPV4_HEADER_LEN {
            return Ok(None);
        }
        let Some(index) = self.free.pop() else {
            return Ok(None);
        };
        let mut frame = FanoutFrame {
            len: bytes.len() as u32,
            bytes: [0; FANOUT_FRAME_MAX],
        };
        frame.bytes[..bytes.len()].copy_from_slice(bytes);
        if let Err(e) = self.frames.set(u32::from(index), frame, 0) {
            self.free.push(index);
            return Err(e).context("writing an advert to the fan-out");
        }
        Ok(Some(index))
    }

    /// Frame `index` is no longer used.
    pub fn release(&mut self, index: u16) {
        if !self.free.contains(&index) {
            self.free.push(index);
        }
    }

    /// Arms a round of `frames` (the first the one about to be sent):
    /// returns the nonce the sent frame carries as IPv4 identification.
    pub fn arm(&mut self, frames: impl IntoIterator<Item = u16>) -> u16 {
        self.nonce = self.nonce.wrapping_add(1).max(1);
        self.round.arm(self.nonce, frames);
        self.nonce
    }

    /// Disarms a round whose frame did not leave.
    pub fn disarm(&mut self) {
        self.round.disarm();
    }

    /// The program's counters, summed over CPUs, by name.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        (0..fanout_counter::COUNT)
            .map(|i| {
                let v = self
                    .counters
                    .get(&i, 0)
                    .map(|per_cpu| per_cpu.iter().sum())
                    .unwrap_or(0);
                (fanout_counter::NAMES[i as usize], v)
            })
            .collect()
    }
}

/// FANOUT_ROUND's only slot, mapped into the agent (the map is
/// BPF_F_MMAPABLE): a round is armed by plain stores, the nonce last, where
/// a map update was a system call and a copy of the whole slot each round.
struct RoundMapping {
    slot: std::ptr::NonNull<FanoutRound>,
    len: usize,
    /// Keeps the map (and so the mapping's memory) alive.
    _map: MapData,
}

// SAFETY: the mapping is this value's alone; the kernel program is the
// only other party and synchronises on the nonce.
unsafe impl Send for RoundMapping {}

impl RoundMapping {
    fn new(map: aya::maps::Map) -> anyhow::Result<RoundMapping> {
        use std::os::fd::{AsFd as _, AsRawFd as _};
        let aya::maps::Map::Array(map) = map else {
            anyhow::bail!("{MAP_FANOUT_ROUND} is not an array map");
        };
        let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .unwrap_or(4096) as usize;
        let len = std::mem::size_of::<FanoutRound>().next_multiple_of(page);
        // SAFETY: maps the array's values (its one slot) shared and
        // writable, as the kernel allows for a BPF_F_MMAPABLE array.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.fd().as_fd().as_raw_fd(),
                0,
            )
        };
        if at == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error())
                .context("mapping the fan-out's round (FANOUT_ROUND, BPF_F_MMAPABLE)");
        }
        let slot = std::ptr::NonNull::new(at.cast()).ok_or_else(|| anyhow!("mmap gave null"))?;
        Ok(RoundMapping {
            slot,
            len,
            _map: map,
        })
    }

    /// The nonce field, as the program reads and clears it.
    fn nonce(&self) -> &std::sync::atomic::AtomicU32 {
        // SAFETY: `nonce` is the slot's first field, a u32 aligned to 4 in
        // mapped memory that lives as long as self.
        unsafe { std::sync::atomic::AtomicU32::from_ptr(&raw mut (*self.slot.as_ptr()).nonce) }
    }

    /// Writes `frames` (the first FANOUT_ROUND_MAX) and their count, then
    /// `nonce`: the program takes a round only once its nonce is there.
    fn arm(&mut self, nonce: u16, frames: impl IntoIterator<Item = u16>) {
        self.nonce().store(0, Ordering::Release);
        // SAFETY: the slot is mapped and ours; the program reads these
        // fields only after it found the nonce, stored after them.
        unsafe {
            let slot = self.slot.as_ptr();
            let out: &mut [u16; ROUND_MAX] = &mut (*slot).frames;
            let mut n = 0;
            for (to, frame) in out.iter_mut().zip(frames) {
                *to = frame;
                n += 1;
            }
            (*slot).count = n;
        }
        self.nonce().store(u32::from(nonce), Ordering::Release);
    }

    /// No round armed.
    fn disarm(&mut self) {
        self.nonce().store(0, Ordering::Release);
    }
}

impl Drop for RoundMapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.slot.as_ptr().cast(), self.len) };
    }
}
