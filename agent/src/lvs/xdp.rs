//! lb_kind DR through the XDP program (docs/load-balancing.md): the engine
//! says which reals a virtual server has and their weights; this writes the
//! program's maps on every interface it is attached to. A real's MAC comes
//! from the kernel's neighbour table (rtnetlink), or an ARP request when
//! the table has none; a real that does not answer stays out of the table
//! and is asked again at the next change or status round.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use tracing::{info, warn};
use xvrrp_common::{
    LbReal, LbService, LbServiceKey, FAMILY_V6, LB_ACTIVE, LB_BY_CLIENT, LB_MAGLEV_SIZE,
    LB_REAL_ALIVE, LB_TUN, LB_TUN_GRE, LB_TUN_GUE, MAX_LB_REALS, MAX_LB_SERVICES,
};

use super::maglev;
use crate::{
    config::lvs::{LbKind, LbProtocol, TunType, VirtualServer},
    dataplane::{lb::LbMaps, map_address},
    net::{
        iface,
        probe::{format_mac, Prober},
        rtnl,
    },
};

/// How often the reals' MACs (and TUN gateways) are looked up afresh.
const REFRESH: Duration = Duration::from_secs(30);

/// Where a real's frames go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Link {
    ifindex: u32,
    mac: [u8; 6],
    src_mac: [u8; 6],
    /// The interface's address of the real's family (TUN's outer source;
    /// IPv4 in the first four bytes) and MTU.
    local: [u8; 16],
    mtu: u32,
}

struct Service {
    index: u32,
    keys: Vec<LbServiceKey>,
    by_client: bool,
    /// lb_kind TUN: the tunnel to the real, its LB_TUN* flags and port.
    tun: Option<(u32, u16)>,
    /// The reals' indexes in LB_REALS, by the virtual server's real order
    /// (then the sorry server's).
    reals: Vec<u32>,
    /// The (primary, fallback) tables last written.
    written: [Option<Vec<u32>>; 2],
    /// What each written table was built from ((address, weight, value)
    /// per entry): the same input is not built again (a Maglev table is a
    /// few ms of CPU, and writes repeat every 2 s while a MAC is unknown).
    built: [Vec<(SocketAddr, u32, u32)>; 2],
    flags: Option<u32>,
}

/// The DR virtual servers of one engine.
pub struct DrForwarder {
    maps: Arc<Mutex<Vec<LbMaps>>>,
    /// By the engine's virtual server index.
    services: HashMap<usize, Service>,
    /// By (real, routed): a TUN real may be reached through a gateway.
    links: HashMap<(IpAddr, bool), Link>,
    /// Links to look up afresh at their next write (every `REFRESH`).
    stale: std::collections::HashSet<(IpAddr, bool)>,
    /// When the links were last marked stale.
    refreshed: std::time::Instant,
    /// Reals whose MAC could not be found (said once, asked again).
    unresolved: std::collections::HashSet<IpAddr>,
    next_real: u32,
}

/// What one virtual server should forward now.
pub struct Want {
    pub forwarding: bool,
    /// Every configured real: (position in the config, address, weight
    /// whether it is alive or not): the primary table, the same on every
    /// load balancer with this config and weights.
    pub all: Vec<(usize, SocketAddr, u32)>,
    /// The reals in the pool now, at their weight (0: inhibit_on_failure):
    /// the fallback table, and which reals the primary may pick. Quorum
    /// lost: the sorry server alone, at position `reals.len()` of the
    /// config (every real is then not alive, so every slot takes it).
    pub reals: Vec<(usize, SocketAddr, u32)>,
}

impl DrForwarder {
    /// Takes the maps of every attached program; services a previous run
    /// left that this config does not have are removed at the first write.
    pub fn new(maps: Vec<LbMaps>) -> DrForwarder {
        DrForwarder {
            maps: Arc::new(Mutex::new(maps)),
            services: HashMap::new(),
            links: HashMap::new(),
            stale: Default::default(),
            refreshed: std::time::Instant::now(),
            unresolved: Default::default(),
            next_real: 0,
        }
    }

    pub fn has_maps(&self) -> bool {
        !self.maps.lock().expect("lb maps").is_empty()
    }

    /// Registers a DR virtual server on these addresses; false (with a
    /// warning) when it cannot be forwarded in XDP.
    pub fn add(&mut self, v: usize, cfg: &VirtualServer, addrs: &[SocketAddr]) -> bool {
        let proto = match cfg.protocol {
            LbProtocol::Tcp => 6,
            LbProtocol::Udp => 17,
            LbProtocol::Sctp => return false,
        };
        if !self.has_maps() {
            warn!(
                "virtual_server {}: lb_kind DR is forwarded by the XDP program, which is not attached here (--xdp-mode off, or it failed): not forwarded",
                cfg.target
            );
            return false;
        }
        if self.services.len() as u32 >= MAX_LB_SERVICES {
            warn!(
                "virtual_server {}: more than {MAX_LB_SERVICES} DR virtual servers: this one is not forwarded",
                cfg.target
            );
            return false;
        }
        // One family per service, as IPVS: the first address's.
        let v6 = addrs.first().is_some_and(|a| a.is_ipv6());
        let keys: Vec<LbServiceKey> = addrs
            .iter()
            .filter(|a| a.is_ipv6() == v6)
            .map(|a| {
                let (family, addr) = map_address(a.ip());
                LbServiceKey {
                    addr,
                    port: a.port(),
                    proto,
                    family,
                }
            })
            .collect();
        if keys.is_empty() {
            return false;
        }
        let family = |v6: bool| if v6 { "IPv6" } else { "IPv4" };
        if keys.len() < addrs.len() {
            warn!(
                "virtual_server {}: mixes IPv4 and IPv6 addresses: only its {} ones are forwarded in XDP",
                cfg.target,
                family(v6)
            );
        }
        for r in cfg.reals.iter().filter(|r| r.addr.is_ipv6() != v6) {
            warn!(
                "virtual_server {}: real_server {} is not {} like the virtual server: left out (DR and TUN here keep one family)",
                cfg.target,
                r.addr,
                family(v6)
            );
        }
        // The sorry server, if any, is one more real after the configured
        // ones (position reals.len()).
        let count = cfg.reals.len() + usize::from(cfg.sorry_server.is_some());
        let reals = (0..count as u32)
            .map(|k| self.next_real + k)
            .collect::<Vec<_>>();
        if self.next_real + reals.len() as u32 > MAX_LB_REALS {
            warn!(
                "virtual_server {}: more than {MAX_LB_REALS} DR real servers: not forwarded",
                cfg.target
            );
            return false;
        }
        self.next_real += reals.len() as u32;
        // Counters start afresh with the indexes (a reload may give them
        // to other reals).
        for m in self.maps.lock().expect("lb maps").iter_mut() {
            for i in &reals {
                if let Err(e) = m.reset_real_stats(*i) {
                    warn!("{}: zeroing real {i}'s counters: {e:#}", m.interface);
                }
            }
        }
        let index = self.services.len() as u32;
        self.services.insert(
            v,
            Service {
                index,
                keys,
                by_client: cfg.persistence_timeout.is_some() || cfg.lb_algo == "sh",
                tun: (cfg.lb_kind == LbKind::Tun).then(|| {
                    let kind = match cfg.tun_type {
                        TunType::Ipip => 0,
                        TunType::Gue => LB_TUN_GUE,
                        TunType::Gre => LB_TUN_GRE,
                    };
                    (LB_TUN | kind, cfg.tun_port)
                }),
                reals,
                written: [None, None],
                built: [Vec::new(), Vec::new()],
                flags: None,
            },
        );
        true
    }

    pub fn handles(&self, v: usize) -> bool {
        self.services.contains_key(&v)
    }

    /// Some real's MAC is still unknown: the engine writes again later.
    pub fn waiting(&self) -> bool {
        !self.unresolved.is_empty()
    }

    /// Every `REFRESH` the reals' links are looked up afresh (a real
    /// replaced by another host at its address, a gateway that moved):
    /// true when the engine should write every virtual server again.
    pub fn refresh_due(&mut self) -> bool {
        if self.refreshed.elapsed() < REFRESH {
            return false;
        }
        self.refreshed = std::time::Instant::now();
        self.stale = self.links.keys().copied().collect();
        true
    }

    /// Writes what virtual server `v` forwards now: its reals' links, its
    /// Maglev table (only the slots that changed) and whether it forwards.
    pub async fn write(&mut self, v: usize, target: &str, want: Want) {
        let Some((indexes, routed, v6)) = self.services.get(&v).map(|s| {
            (
                s.reals.clone(),
                s.tun.is_some(),
                s.keys.first().is_some_and(|k| k.family == FAMILY_V6),
            )
        }) else {
            return;
        };
        // Reals of the other family were warned about at `add`.
        let mut want = want;
        want.reals.retain(|(_, a, _)| a.is_ipv6() == v6);
        want.all.retain(|(_, a, _)| a.is_ipv6() == v6);
        let mut entries = Vec::new();
        let mut reals = Vec::new();
        for (r, addr, weight) in &want.reals {
            let Some(link) = self.link(addr.ip(), routed, target).await else {
                continue;
            };
            let index = indexes[*r];
            reals.push((
                index,
                LbReal {
                    mac: link.mac,
                    src_mac: link.src_mac,
                    ifindex: link.ifindex,
                    flags: if *weight > 0 { LB_REAL_ALIVE } else { 0 },
                    addr: map_address(addr.ip()).1,
                    local: link.local,
                    mtu: link.mtu,
                },
            ));
            entries.push(maglev::Entry {
                addr: *addr,
                weight: *weight,
                value: index + 1,
            });
        }
        let svc = self.services.get_mut(&v).expect("looked up above");
        // Reals that left the pool: their remembered flows choose again.
        for index in &svc.reals {
            if !reals.iter().any(|(i, _)| i == index) {
                reals.push((*index, LbReal::default()));
            }
        }
        // The primary does not depend on this host's checkers, nor on
        // which MACs it has found: a real it cannot reach is not alive in
        // LB_REALS, and its slots take the fallback.
        let inputs = [
            want.all
                .iter()
                .map(|(r, addr, weight)| (*addr, *weight, indexes[*r] + 1))
                .collect::<Vec<_>>(),
            entries
                .iter()
                .map(|e| (e.addr, e.weight, e.value))
                .collect::<Vec<_>>(),
        ];
        let tables = [0, 1].map(|k| match &svc.written[k] {
            Some(t) if svc.built[k] == inputs[k] => t.clone(),
            _ => maglev::table(
                &inputs[k]
                    .iter()
                    .map(|(addr, weight, value)| maglev::Entry {
                        addr: *addr,
                        weight: *weight,
                        value: *value,
                    })
                    .collect::<Vec<_>>(),
                LB_MAGLEV_SIZE,
            ),
        });
        let mut flags = if want.forwarding { LB_ACTIVE } else { 0 };
        if svc.by_client {
            flags |= LB_BY_CLIENT;
        }
        let tun_port = svc.tun.map_or(0, |(tun, port)| {
            flags |= tun;
            port
        });
        let before = std::mem::take(&mut svc.written);
        let maps = self.maps.clone();
        let (index, keys) = (svc.index, svc.keys.clone());
        let target_owned = target.to_owned();
        let job = tokio::task::spawn_blocking(move || {
            let mut maps = maps.lock().expect("lb maps");
            let mut ok = true;
            for m in maps.iter_mut() {
                for (i, real) in &reals {
                    if let Err(e) = m.set_real(*i, *real) {
                        warn!(
                            "virtual_server {target_owned}: {}: real {i}: {e:#}",
                            m.interface
                        );
                        ok = false;
                    }
                }
                for (k, table) in tables.iter().enumerate() {
                    if before[k].as_ref() == Some(table) {
                        continue;
                    }
                    if let Err(e) = m.write_table(index, k == 1, table, before[k].as_deref()) {
                        warn!(
                            "virtual_server {target_owned}: {}: Maglev table: {e:#}",
                            m.interface
                        );
                        ok = false;
                    }
                }
                for k in &keys {
                    if let Err(e) = m.set_service(
                        *k,
                        LbService {
                            index,
                            flags,
                            tun_port,
                            _pad: 0,
                        },
                    ) {
                        warn!(
                            "virtual_server {target_owned}: {}: service: {e:#}",
                            m.interface
                        );
                        ok = false;
                    }
                }
            }
            (ok, tables)
        });
        let svc = self.services.get_mut(&v).expect("looked up above");
        match job.await {
            Ok((ok, tables)) => {
                let [p, f] = tables;
                svc.written = if ok { [Some(p), Some(f)] } else { [None, None] };
                svc.built = if ok { inputs } else { Default::default() };
                if svc.flags != Some(flags) {
                    info!(
                        "virtual_server {target}: DR in XDP {} ({} reals in its Maglev table)",
                        if want.forwarding {
                            "forwarding"
                        } else {
                            "not forwarding"
                        },
                        entries.len()
                    );
                }
                svc.flags = Some(flags);
            }
            Err(e) => warn!("virtual_server {target}: writing the XDP maps: {e}"),
        }
    }

    /// Packets and bytes forwarded to each real, by (virtual server, real's
    /// position in its config), summed over the interfaces and CPUs.
    pub async fn stats(&self) -> super::nft::Counters {
        let which: Vec<(usize, usize, u32)> = self
            .services
            .iter()
            .flat_map(|(v, s)| s.reals.iter().enumerate().map(|(r, i)| (*v, r, *i)))
            .collect();
        let maps = self.maps.clone();
        tokio::task::spawn_blocking(move || {
            let maps = maps.lock().expect("lb maps");
            which
                .into_iter()
                .map(|(v, r, i)| {
                    let sum = maps.iter().fold((0, 0), |(p, b), m| {
                        let (mp, mb) = m.real_stats(i);
                        (p + mp, b + mb)
                    });
                    ((v, r), sum)
                })
                .collect()
        })
        .await
        .unwrap_or_default()
    }

    /// Removes services a previous run left that this engine does not have.
    pub async fn forget_others(&self) {
        let ours: Vec<LbServiceKey> = self
            .services
            .values()
            .flat_map(|s| s.keys.iter().copied())
            .collect();
        let maps = self.maps.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for m in maps.lock().expect("lb maps").iter_mut() {
                for k in m.service_keys() {
                    if !ours.contains(&k) {
                        m.remove_service(&k);
                    }
                }
            }
        })
        .await;
    }

    /// A clean stop: the program forwards nothing more.
    pub async fn clear(&self) {
        let maps = self.maps.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for m in maps.lock().expect("lb maps").iter_mut() {
                for k in m.service_keys() {
                    m.remove_service(&k);
                }
            }
        })
        .await;
    }

    /// The link a real is reached on: an interface with the program whose
    /// subnet holds the real (DR needs the real on the same link), and the
    /// real's MAC there; `routed` (TUN): else the kernel's route to it, out
    /// of an interface with the program, and its gateway's MAC.
    async fn link(&mut self, ip: IpAddr, routed: bool, target: &str) -> Option<Link> {
        let key = (ip, routed);
        let old = self.links.get(&key).copied();
        if let Some(l) = old.filter(|_| !self.stale.contains(&key)) {
            return Some(l);
        }
        self.stale.remove(&key);
        let interfaces: Vec<(String, u32)> = self
            .maps
            .lock()
            .expect("lb maps")
            .iter()
            .map(|m| (m.interface.clone(), m.ifindex))
            .collect();
        let found = tokio::task::spawn_blocking(move || resolve(ip, routed, &interfaces))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        match found {
            Ok(l) => {
                if self.unresolved.remove(&ip) {
                    info!("real_server {ip}: MAC found, back in the table");
                }
                if let Some(o) = old.filter(|o| *o != l) {
                    info!(
                        "real_server {ip}: now reached at {} on interface {} (was {} on {})",
                        format_mac(&l.mac),
                        l.ifindex,
                        format_mac(&o.mac),
                        o.ifindex
                    );
                }
                self.links.insert(key, l);
                Some(l)
            }
            // A refresh that finds nothing keeps the link that worked (one
            // lost ARP answer must not take a real out).
            Err(_) if old.is_some() => old,
            Err(why) => {
                if self.unresolved.insert(ip) {
                    warn!("virtual_server {target}: real_server {ip}: {why}: left out of the table until it answers");
                }
                None
            }
        }
    }
}

fn on_subnet(ip: IpAddr, addr: IpAddr, prefix: u8) -> bool {
    match (ip, addr) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// Finds the interface and asks for the MAC of the real (or, `routed`,
/// of the gateway the kernel's route to it names) — blocking: netlink, then
/// an ARP request of 300 ms at most.
fn resolve(ip: IpAddr, routed: bool, interfaces: &[(String, u32)]) -> Result<Link, String> {
    let on_link = interfaces.iter().find(|(name, _)| {
        iface::addresses(name)
            .iter()
            .any(|(a, p)| on_subnet(ip, *a, *p))
    });
    let (name, ifindex, next_hop) = match on_link {
        Some((name, ifindex)) => (name, ifindex, ip),
        None if routed => {
            let (oif, gateway) = rtnl::route_to(ip)
                .map_err(|e| format!("no route to it: {e}"))?
                .ok_or("no route to it")?;
            let Some((name, ifindex)) = interfaces.iter().find(|(_, i)| *i == oif) else {
                return Err(format!(
                    "its route leaves by interface {oif}, which has no XDP program ({}); \
                     TUN reals are reached through an interface of a vrrp_instance",
                    interfaces.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
                ));
            };
            (name, ifindex, gateway.unwrap_or(ip))
        }
        None => {
            return Err(format!(
                "on no subnet of an interface with the XDP program ({}); DR needs the real on the same link",
                interfaces.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
            ))
        }
    };
    let src_mac = match iface::mac(name) {
        Ok(m) => m,
        Err(e) => return Err(format!("{e:#}")),
    };
    let mac = match rtnl::neighbour_mac(*ifindex, next_hop) {
        Ok(Some(m)) => Some(m),
        _ => Prober::open(name)
            .and_then(|p| p.who_has(next_hop, Duration::from_millis(300)))
            .ok()
            .and_then(|set| set.into_iter().next()),
    };
    // The outer source: an address of the real's family on the interface
    // (IPv6: a global one, not the link-local).
    let local = iface::addresses(name)
        .into_iter()
        .map(|(a, _)| a)
        .find(|a| match (a, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) => true,
            (IpAddr::V6(v), IpAddr::V6(_)) => (v.segments()[0] & 0xffc0) != 0xfe80,
            _ => false,
        })
        .map_or([0; 16], |a| map_address(a).1);
    let mtu = std::fs::read_to_string(format!("/sys/class/net/{name}/mtu"))
        .ok()
        .and_then(|m| m.trim().parse().ok())
        .unwrap_or(1500);
    match mac {
        Some(mac) => Ok(Link {
            ifindex: *ifindex,
            mac,
            src_mac,
            local,
            mtu,
        }),
        None if next_hop != ip => Err(format!(
            "no MAC for its gateway {next_hop} on {name} (no neighbour entry, no ARP answer)"
        )),
        None => Err(format!(
            "no MAC for it on {name} (no neighbour entry, no ARP answer)"
        )),
    }
}
