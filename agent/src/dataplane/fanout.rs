//! The advert fan-out on one interface (docs/design.md rule 3): the tc
//! program of ebpf/xvrrp-ebpf/src/fanout.rs on its egress (a tcx link,
//! held while this lives: a dead agent's adverts stop with it), the
//! adverts' bytes it writes, and the rounds the agent arms.

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
    round: Array<MapData, FanoutRound>,
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
        let round = Array::try_from(take(&mut object, MAP_FANOUT_ROUND)?)?;
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
    pub fn arm(&mut self, frames: &[u16]) -> anyhow::Result<u16> {
        self.nonce = self.nonce.wrapping_add(1).max(1);
        let mut round = FanoutRound {
            nonce: u32::from(self.nonce),
            count: frames.len().min(ROUND_MAX) as u32,
            frames: [0; ROUND_MAX],
        };
        let n = frames.len().min(ROUND_MAX);
        round.frames[..n].copy_from_slice(&frames[..n]);
        self.round
            .set(0, round, 0)
            .context("arming a fan-out round")?;
        Ok(self.nonce)
    }

    /// Disarms a round whose frame did not leave.
    pub fn disarm(&mut self) {
        let round = FanoutRound {
            nonce: 0,
            count: 0,
            frames: [0; ROUND_MAX],
        };
        let _ = self.round.set(0, round, 0);
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
