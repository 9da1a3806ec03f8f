//! The XDP program's load-balancer maps (lb_kind DR), opened by id from
//! the attached program: the LVS engine writes them from its own task with
//! handles of its own, never holding the election's dataplane lock (a whole
//! Maglev table is 65,537 writes).

use anyhow::{anyhow, Context as _};
use aya::maps::{Array, DevMap, HashMap as AyaHashMap, Map, MapData, PerCpuArray, PerCpuValues};
use xvrrp_common::{
    LbReal, LbRealStats, LbService, LbServiceKey, LB_MAGLEV_SIZE, MAP_LB_MAGLEV, MAP_LB_REALS,
    MAP_LB_REAL_STATS, MAP_LB_SERVICES, MAP_LB_TX,
};

pub struct LbMaps {
    pub interface: String,
    pub ifindex: u32,
    services: AyaHashMap<MapData, LbServiceKey, LbService>,
    maglev: Array<MapData, u32>,
    reals: Array<MapData, LbReal>,
    tx: DevMap<MapData>,
    stats: PerCpuArray<MapData, LbRealStats>,
}

/// One of a loaded program's maps, by name, through the program's id.
fn map_of(prog_id: u32, name: &str) -> anyhow::Result<Map> {
    let info = aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == prog_id)
        .ok_or_else(|| anyhow!("XDP program {prog_id} is gone"))?;
    for id in info.map_ids()?.unwrap_or_default() {
        let Ok(mi) = aya::maps::MapInfo::from_id(id) else {
            continue;
        };
        if mi.name_as_str() == Some(name) {
            return Ok(Map::from_map_data(MapData::from_id(id)?)?);
        }
    }
    Err(anyhow!(
        "XDP program {prog_id} has no map {name} (an older build?)"
    ))
}

impl LbMaps {
    pub fn open(prog_id: u32, interface: &str, ifindex: u32) -> anyhow::Result<LbMaps> {
        let open = |name| map_of(prog_id, name).with_context(|| format!("{interface}: {name}"));
        Ok(LbMaps {
            interface: interface.to_owned(),
            ifindex,
            services: AyaHashMap::try_from(open(MAP_LB_SERVICES)?)?,
            maglev: Array::try_from(open(MAP_LB_MAGLEV)?)?,
            reals: Array::try_from(open(MAP_LB_REALS)?)?,
            tx: DevMap::try_from(open(MAP_LB_TX)?)?,
            stats: PerCpuArray::try_from(open(MAP_LB_REAL_STATS)?)?,
        })
    }

    pub fn set_service(&mut self, key: LbServiceKey, svc: LbService) -> anyhow::Result<()> {
        Ok(self.services.insert(key, svc, 0)?)
    }

    /// Every service the map holds (a re-adopted program's may be stale).
    pub fn service_keys(&self) -> Vec<LbServiceKey> {
        self.services.keys().filter_map(Result::ok).collect()
    }

    pub fn remove_service(&mut self, key: &LbServiceKey) {
        let _ = self.services.remove(key);
    }

    /// Where a real's frames go: XDP_TX on this interface, or through the
    /// devmap to `real.ifindex`.
    pub fn set_real(&mut self, index: u32, real: LbReal) -> anyhow::Result<()> {
        if real.ifindex != 0 && real.ifindex != self.ifindex {
            self.tx
                .set(index, real.ifindex, None, 0)
                .map_err(|e| anyhow!("devmap slot {index}: {e}"))?;
        }
        Ok(self.reals.set(index, real, 0)?)
    }

    /// (packets, bytes) forwarded to real `index`, summed over the CPUs.
    pub fn real_stats(&self, index: u32) -> (u64, u64) {
        self.stats.get(&index, 0).map_or((0, 0), |per_cpu| {
            per_cpu
                .iter()
                .fold((0, 0), |(p, b), s| (p + s.packets, b + s.bytes))
        })
    }

    /// Zeroes real `index`'s counters (the index is given to a real anew).
    pub fn reset_real_stats(&mut self, index: u32) -> anyhow::Result<()> {
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| anyhow!("the CPU count: {e}"))?;
        let zero = PerCpuValues::try_from(vec![LbRealStats::default(); cpus])?;
        Ok(self.stats.set(index, zero, 0)?)
    }

    /// Writes one of a service's Maglev tables (`fallback`: the live
    /// reals' one) as real index + 1 (0 for none), only the slots that
    /// differ from `before` (Maglev moves few on a change).
    pub fn write_table(
        &mut self,
        service: u32,
        fallback: bool,
        table: &[u32],
        before: Option<&[u32]>,
    ) -> anyhow::Result<usize> {
        let base = (service * 2 + u32::from(fallback)) * LB_MAGLEV_SIZE;
        let mut written = 0;
        for (slot, entry) in table.iter().enumerate() {
            if before.and_then(|b| b.get(slot)) == Some(entry) {
                continue;
            }
            self.maglev.set(base + slot as u32, *entry, 0)?;
            written += 1;
        }
        Ok(written)
    }
}
