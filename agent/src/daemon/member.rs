//! One vrrp_instance at run time: its sockets and addresses, and the I/O
//! that carries out the election's actions.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use tracing::{debug, error, info, warn};

use crate::{
    config::model::{minus, same_entries, Instance},
    control::{InstanceStatus, Transition},
    net::{advert::AdvertTx, packet::PacketSocket, rtnl},
    proto::{self, Action, Router, State},
    wire::{build, vrrp},
};

use super::rounds::RoundSend;

/// What an advert's bytes depend on besides its `Repr`: source,
/// destination, checksum form.
pub type AdvertKey = (IpAddr, IpAddr, vrrp::ChecksumMode);

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub sent: u64,
    pub received: u64,
    pub transitions: u64,
    pub discarded: BTreeMap<String, u64>,
    /// Lower-priority Actives heard while Active (healed split brains).
    pub split_brain: u64,
}

/// What an instance's config decides once its interfaces exist (built at a
/// start, and given to `Member::reconfigure` by a reload in place).
pub struct MemberParts {
    pub proto: proto::Config,
    pub tx: Arc<AdvertTx>,
    /// Where multicast adverts go (`Instance::mcast_group`).
    pub mcast_group: IpAddr,
    pub vips: Vec<rtnl::Address>,
    pub lease: std::time::Duration,
    /// What renews the interface's XDP lease once an advert left (shared by
    /// its instances; None without XDP).
    pub renewal: Option<crate::net::advert::AfterSent>,
    /// A reload's new notifier, when the notify settings changed.
    pub notifier: Option<crate::notify::Notifier>,
    /// use_vmac_addr's vmacs (and `use_vmac` on address lines).
    pub addr_vmacs: Vec<crate::net::vmac::Vmac>,
    /// Per link a VIP is on: the socket and the MAC its GARP/NA go with.
    pub announcers: HashMap<u32, (Arc<PacketSocket>, [u8; 6])>,
}

pub struct Member {
    /// The instance's config: read when it changes, not per advert (boxed:
    /// the fields the adverts touch stay close together).
    pub instance: Box<Instance>,
    /// A reload removed this instance: Some(whether it was in FAULT), for
    /// keepalived's DELETED/FAULT notify instead of STOP.
    pub deleting: Option<bool>,
    pub group: Option<String>,
    pub proto: proto::Config,
    pub ifindex: u32,
    /// The MAC GARP/NA announce (the virtual MAC with use_vmac).
    pub mac: [u8; 6],
    pub vips: Vec<rtnl::Address>,
    /// VIPs this agent added (pre-existing addresses are left alone).
    pub added: Vec<IpAddr>,
    pub tx: Arc<AdvertTx>,
    /// Where multicast adverts go: mcast_dst_ip or the global group.
    pub mcast_group: IpAddr,
    pub packet: Arc<PacketSocket>,
    pub stats: Stats,
    pub last_transition: Option<Transition>,
    /// IPv6 forwarding on the interface: the R flag of unsolicited NAs.
    pub router_flag: bool,
    /// use_vmac: the macvlan holding the VIPs (deleted with its last handle).
    pub vmac: Option<crate::net::vmac::Vmac>,
    /// use_vmac_addr's vmacs (and `use_vmac` on address lines).
    pub addr_vmacs: Vec<crate::net::vmac::Vmac>,
    /// Per link a VIP is on: the socket and the MAC its GARP/NA go with.
    pub announcers: HashMap<u32, (Arc<PacketSocket>, [u8; 6])>,
    /// Boxed for the same reason as `instance`.
    pub notifier: Box<crate::notify::Notifier>,
    /// The last (weight, fault) given to the election, and the checks behind it.
    pub health: Option<(i32, bool)>,
    pub checks: Vec<crate::track::CheckStatus>,
    /// The XDP program on the interface, when attached, and the lease length
    /// renewed with every advert (shorter than any Backup's down interval).
    pub xdp: Option<Arc<std::sync::Mutex<crate::dataplane::Dataplane>>>,
    pub lease: std::time::Duration,
    /// What the VRS map entry was written for: (priority, Active, takeover).
    /// The entry follows from these and `proto` alone (a reload, which
    /// replaces `proto`, clears this), so a steady router's every advert
    /// costs a comparison, not the entry built again.
    pub provisioned: Option<(u8, bool, bool)>,
    /// The kernel's Active_Down timer is running for this Backup: the agent
    /// does not time it (docs/design.md rule 3) and hears when it fires.
    pub kernel_armed: bool,
    /// The kernel reported it could not arm this router's down timer and
    /// has not reported an arm since: the agent times it meanwhile.
    pub kernel_timer_failing: bool,
    /// bpf_ktime of the last kernel-seen advert given to the election.
    pub last_fed_ns: u64,
    /// The kernel took this router over when its timer fired (VR_TAKEOVER,
    /// a DOWN_EXPIRED record with detail 1): its TAKEOVER entry is removed
    /// once the election has decided (Active: the VIP map rules again).
    pub kernel_took_over: bool,
    /// Adverts as last built, per destination, as they go to the socket
    /// (`advert_bytes`: with their IPv4 header, `AdvertTx::packet`).
    /// The election hands out one shared advert while it stays the same, so
    /// the same `Arc` is a hit without comparing the adverts.
    pub advert_cache: Vec<(Arc<vrrp::Repr>, AdvertKey, Arc<[u8]>)>,
    /// What renews the interface's XDP lease once one of this instance's
    /// adverts left: the interface's, shared with its other instances
    /// (`MemberParts::renewal`), replaced by a reload.
    pub renewal: Option<crate::net::advert::AfterSent>,
    /// (source, reason) of discarded adverts already logged.
    pub logged_discards: std::collections::HashSet<(IpAddr, &'static str)>,
    /// While Active between inputs: the slot of `Daemon::rounds` holding
    /// its lent Adver_Timer (docs/design.md rule 3).
    pub round: Option<usize>,
}

impl Member {
    fn name(&self) -> &str {
        &self.instance.name
    }

    /// Carries out one action of the election.
    pub fn execute(&mut self, action: &Action, router: &Router) {
        if !matches!(action, Action::SendAdvert(_)) {
            self.flush_adverts();
        }
        match action {
            Action::SendAdvert(repr) => self.send_advert(repr),
            Action::AddVips => self.add_vips(),
            Action::RemoveVips => self.remove_vips(),
            Action::SendGarp => self.send_garp(),
            Action::SendGarpExtra { all } => {
                // keepalived's garp_extra_if: the vmac's VIPs, or all of them.
                let all = *all;
                let vmac = self.vmac.as_ref().map(|v| v.ifindex);
                for a in &self.vips {
                    if all || Some(a.ifindex) == vmac {
                        self.announce(a);
                    }
                }
            }
            Action::Dataplane { active, accept } => self.set_xdp(*active, *accept),
            Action::Transition { from, to, reason } => {
                self.stats.transitions += 1;
                info!(instance = self.name(), vrid = self.proto.vrid, "{from} -> {to}: {reason}");
                let at = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
                self.last_transition = Some(Transition { at, from: from.to_string(), to: to.to_string(), reason: reason.to_string() });
            }
            Action::Notify { state, priority } => match self.deleting {
                Some(was_fault) if *state == State::Initialize => {
                    self.notifier.deleted(*priority, was_fault)
                }
                _ => self.notifier.state(*state, *priority),
            },
            Action::Conflict { from, theirs, ours } => {
                warn!(
                    instance = self.name(),
                    vrid = self.proto.vrid,
                    "ip address associated with VRID {} not present in MASTER advert: {from} advertises [{}], we have [{}] \
                     (another cluster using VRID {} on this segment, or the configs drifted)",
                    self.proto.vrid,
                    join(theirs),
                    join(ours),
                    self.proto.vrid
                );
            }
            Action::Discarded { from, reason } => {
                *self.stats.discarded.entry(reason.name().to_owned()).or_default() += 1;
                // RFC 9568 §7.1: discarded adverts SHOULD be logged — once per
                // source and reason (counted in `xvrrp status` every time).
                // Preemption's lower-priority discards are normal operation.
                let normal = matches!(
                    reason,
                    proto::Discard::LowerPriority | proto::Discard::MixedDuplicate
                );
                if self.logged_discards.len() >= 256 {
                    self.logged_discards.clear();
                }
                if !normal && self.logged_discards.insert((*from, reason.name())) {
                    warn!(
                        instance = self.name(),
                        vrid = self.proto.vrid,
                        %from,
                        reason = reason.name(),
                        "advert discarded (further ones from it for this reason are only counted)"
                    );
                } else {
                    debug!(instance = self.name(), %from, reason = reason.name(), "advert discarded");
                }
            }
            Action::NotAPeer { from } => warn!(
                instance = self.name(),
                vrid = self.proto.vrid,
                %from,
                "advert from a source not in unicast_peer, heard as keepalived does; \
                 set check_unicast_src (or vrrp_check_unicast_src) to drop such adverts"
            ),
            Action::SplitBrain { from, priority } => {
                self.stats.split_brain += 1;
                warn!(
                    instance = self.name(),
                    vrid = self.proto.vrid,
                    "split brain: {from} is Active too, at priority {priority} (below ours, {}): advertising at once so it backs off",
                    router.priority()
                );
                self.notifier.master_rx_lower_pri(router.priority());
            }
            Action::Priority { from, to } => info!(instance = self.name(), "effective priority {from} -> {to}"),
            Action::IntervalLearned { from, interval_cs } => info!(
                instance = self.name(),
                "{from} advertises every {} ms, ours is {} ms: following the Active's interval (RFC 9568 §6.4.2)",
                *interval_cs as u32 * 10,
                router.config().interval_cs as u32 * 10
            ),
        }
    }

    fn send_advert(&mut self, repr: &Arc<vrrp::Repr>) {
        // Queued: the instances due in one round leave in one sendmmsg when
        // the event loop (or this instance's next other action) flushes.
        for s in self.advert_sends(repr) {
            s.tx.queue(s.msg, s.dst, s.after);
            self.stats.sent += 1;
        }
    }

    /// What sending `repr` puts on the socket: to the group, or to each
    /// unicast peer, the bytes built once (`advert_bytes`).
    fn advert_sends(&mut self, repr: &Arc<vrrp::Repr>) -> Vec<RoundSend> {
        let src = self.tx.source();
        // The lease is renewed only once an advert really left
        // (docs/design.md rule 4): an Active that cannot send must not keep
        // answering ARP for the VIPs.
        let after = if repr.priority != 0 {
            self.renewal.clone()
        } else {
            None
        };
        (0..self.proto.unicast_peers.len().max(1))
            .map(|i| {
                let dst = self
                    .proto
                    .unicast_peers
                    .get(i)
                    .copied()
                    .unwrap_or(self.mcast_group);
                RoundSend {
                    tx: self.tx.clone(),
                    msg: self.advert_bytes(repr, src, dst),
                    dst,
                    after: after.clone(),
                    frame: None,
                }
            })
            .collect()
    }

    /// What each firing of a lent Adver_Timer sends (`Daemon::rounds`):
    /// the election's periodic adverts, as `send_advert` would send them.
    pub(super) fn round_sends(&mut self, adverts: &[Option<Arc<vrrp::Repr>>]) -> Vec<RoundSend> {
        adverts
            .iter()
            .flatten()
            .flat_map(|repr| self.advert_sends(repr))
            .collect()
    }

    /// The bytes of `repr` from `src` to `dst`: built once and kept while
    /// they stay the same (a steady Active's adverts never change), so an
    /// advert costs no allocation and no checksum.
    fn advert_bytes(&mut self, repr: &Arc<vrrp::Repr>, src: IpAddr, dst: IpAddr) -> Arc<[u8]> {
        let key = (src, dst, self.proto.checksum);
        if let Some((_, _, bytes)) = self
            .advert_cache
            .iter()
            .find(|(r, k, _)| *k == key && (Arc::ptr_eq(r, repr) || r == repr))
        {
            return bytes.clone();
        }
        let msg = repr.to_bytes(self.proto.checksum, &vrrp::Endpoints { src, dst });
        let bytes: Arc<[u8]> = self.tx.packet(&msg, dst).into();
        // One entry per destination (unicast peers), replaced on change.
        self.advert_cache.retain(|(_, k, _)| k.1 != dst);
        self.advert_cache.push((repr.clone(), key, bytes.clone()));
        bytes
    }

    /// Sends this instance's queued adverts now (before any other action of
    /// its: the advert goes before the VIPs and the GARP, keepalived's order).
    pub fn flush_adverts(&self) {
        super::flush(&self.tx);
    }

    pub fn xdp_keys(&self) -> Vec<xvrrp_common::VipKey> {
        self.vips.iter().map(|a| self.xdp_key(a.addr)).collect()
    }

    /// Tells the XDP program whether we answer for our VIPs.
    fn set_xdp(&mut self, active: bool, accept: bool) {
        let Some(xdp) = &self.xdp else { return };
        let mut flags = if active { xvrrp_common::VIP_ACTIVE } else { 0 };
        if accept || !active {
            // A Backup has no VIPs to protect; only an Active without
            // Accept_Mode refuses traffic to them.
            flags |= xvrrp_common::VIP_ACCEPT;
        }
        if self.router_flag {
            flags |= xvrrp_common::VIP_ROUTER;
        }
        if self.proto.family == vrrp::Family::V6 {
            flags |= xvrrp_common::VIP_VR_V6;
        }
        let mut dp = xdp.lock().expect("dataplane lock");
        for a in &self.vips {
            // Answered with the MAC of the link the VIP is on (a vmac's
            // virtual MAC for use_vmac_addr's), as the kernel would.
            let value = xvrrp_common::VipValue {
                mac: self.link_mac(a.ifindex),
                flags,
                vrid: self.proto.vrid,
            };
            if let Err(e) = dp.set_vip(self.xdp_key(a.addr), value) {
                error!(instance = self.name(), "XDP VIP map: {e:#}");
            }
        }
    }

    /// The MAC GARP/NA and ARP/ND answers carry for a VIP on this link.
    fn link_mac(&self, ifindex: u32) -> [u8; 6] {
        self.announcers.get(&ifindex).map_or(self.mac, |(_, m)| *m)
    }

    /// A restart over a re-adopted dataplane left by a run of the same config
    /// in which this instance was Active: every VIP marked Active, the
    /// advert checks unchanged, and the lease not yet run out (after it, a
    /// Backup has taken over: start as a Backup like any fresh start).
    pub fn can_resume(&self) -> bool {
        let Some(xdp) = &self.xdp else { return false };
        let dp = xdp.lock().expect("dataplane lock");
        if !dp.resumed() || !dp.lease_fresh() {
            return false;
        }
        let (key, cfg) = self.vr_entry(self.proto.priority, true, false);
        // The priority is the effective one, which health may have moved.
        dp.vr(&key).map(|c| xvrrp_common::VrConfig {
            priority: cfg.priority,
            ..c
        }) == Some(cfg)
            && self.xdp_keys().iter().all(|k| {
                dp.vip(k)
                    .is_some_and(|v| v.flags & xvrrp_common::VIP_ACTIVE != 0)
            })
    }

    /// Tells the XDP program what this virtual router's adverts must carry,
    /// so it checks them in the kernel and keeps the last one in LAST.
    /// Written again when `priority` (the effective one) or `active` changes.
    pub fn provision_xdp(&mut self, priority: u8, active: bool, takeover: bool) {
        let Some(xdp) = &self.xdp else { return };
        let takeover = takeover && !self.kernel_timer_failing;
        let inputs = (priority, active, takeover);
        if self.provisioned == Some(inputs) {
            return;
        }
        let (key, cfg) = self.vr_entry(priority, active, takeover);
        let mut dp = xdp.lock().expect("dataplane lock");
        // The kernel's takeover answers for one lease length.
        if cfg.flags & xvrrp_common::VR_TAKEOVER != 0 {
            if let Err(e) = dp.set_lease_length(self.lease) {
                warn!(instance = self.name(), "XDP lease length: {e:#}");
            }
        }
        match dp.set_vr(key, cfg) {
            Ok(()) => self.provisioned = Some(inputs),
            Err(e) => warn!(instance = self.name(), "XDP VRS map: {e:#}"),
        }
    }

    /// The kernel times this router's Active_Down interval: XDP attached,
    /// and the kernel judges its adverts (`dataplane::rules`).
    pub fn kernel_times_down(&self) -> bool {
        self.xdp.is_some() && crate::dataplane::rules::kernel_times_down(&self.proto)
    }

    /// Whether the kernel re-arms the down timer on an advert of `priority`
    /// given ours (the same rule as `arm_down_timer` in the XDP program).
    pub fn kernel_rearms(&self, priority: u8, ours: u8) -> bool {
        self.kernel_times_down()
            && !self.kernel_timer_failing
            && (priority == 0 || !self.proto.preempt || priority >= ours)
    }

    /// The VRS key of this virtual router.
    pub fn vr_key(&self) -> xvrrp_common::VrKey {
        let family = if self.proto.family == vrrp::Family::V6 {
            xvrrp_common::FAMILY_V6
        } else {
            xvrrp_common::FAMILY_V4
        };
        xvrrp_common::VrKey {
            ifindex: self.ifindex,
            family,
            vrid: self.proto.vrid,
            _pad: [0; 2],
        }
    }

    /// An advert the kernel checked (ring record or LAST), as the election
    /// input: its address set is ours (else the kernel passes the packet to
    /// the socket, which reports the conflict with both lists).
    pub fn kernel_advert(
        &self,
        src: IpAddr,
        version: u8,
        priority: u8,
        interval_cs: u16,
        unicast: bool,
    ) -> proto::Received {
        let v2 = version == 2;
        proto::Received {
            src,
            ttl: vrrp::TTL,
            unicast,
            advert: vrrp::Repr {
                version: if v2 {
                    vrrp::Version::V2
                } else {
                    vrrp::Version::V3
                },
                vrid: self.proto.vrid,
                priority,
                interval_cs,
                auth: if v2 {
                    self.proto.auth
                } else {
                    vrrp::Auth::None
                },
                addresses: self.proto.vips.clone(),
            },
        }
    }

    /// This virtual router's VRS key and entry.
    fn vr_entry(
        &self,
        priority: u8,
        active: bool,
        takeover: bool,
    ) -> (xvrrp_common::VrKey, xvrrp_common::VrConfig) {
        (
            self.vr_key(),
            crate::dataplane::rules::vr_config(&self.proto, priority, active, takeover),
        )
    }

    /// The election has decided after a takeover the kernel started: the
    /// program's TAKEOVER entry goes (Active: the VIP map answers now;
    /// still Backup: it must stop answering).
    pub fn end_kernel_takeover(&mut self) {
        if !std::mem::take(&mut self.kernel_took_over) {
            return;
        }
        if let Some(xdp) = &self.xdp {
            xdp.lock()
                .expect("dataplane lock")
                .end_takeover(&self.vr_key());
        }
    }

    /// A reload in place (the election's side is `Input::Reconfigure`): the
    /// new config's values replace the old ones; an Active adds the new VIPs
    /// (with a gratuitous ARP/NA round for them alone) and removes the ones
    /// that went, a Backup only updates what its dataplane drops. A new
    /// notifier replaces the old one when the notify settings changed.
    pub fn reconfigure(
        &mut self,
        instance: Instance,
        group: Option<String>,
        parts: MemberParts,
        router: &Router,
    ) {
        let active = router.state() == State::Active;
        let removed: Vec<rtnl::Address> = self
            .vips
            .iter()
            .filter(|a| !parts.vips.contains(a))
            .cloned()
            .collect();
        let new: Vec<rtnl::Address> = parts
            .vips
            .iter()
            .filter(|a| !self.vips.contains(a))
            .cloned()
            .collect();
        for a in &removed {
            if self.added.contains(&a.addr) {
                if let Err(e) = rtnl::remove(a) {
                    error!(instance = self.name(), addr = %a.addr, "removing VIP: {e}");
                }
                self.added.retain(|x| *x != a.addr);
            }
            if let Some(xdp) = &self.xdp {
                xdp.lock()
                    .expect("dataplane lock")
                    .remove_vip(&self.xdp_key(a.addr));
            }
            info!(instance = self.name(), addr = %a.addr, "reload: VIP removed");
        }
        // virtual_routes / virtual_rules changed on an Active: the
        // difference, in place.
        if active
            && !(same_entries(&self.instance.virtual_routes, &instance.virtual_routes)
                && same_entries(&self.instance.virtual_rules, &instance.virtual_rules))
        {
            let (old_routes, old_rules) = (
                std::mem::take(&mut self.instance.virtual_routes),
                std::mem::take(&mut self.instance.virtual_rules),
            );
            self.instance.virtual_routes = minus(&old_routes, &instance.virtual_routes);
            self.instance.virtual_rules = minus(&old_rules, &instance.virtual_rules);
            self.remove_routes();
            self.instance.virtual_routes = minus(&instance.virtual_routes, &old_routes);
            self.instance.virtual_rules = minus(&instance.virtual_rules, &old_rules);
            self.add_routes();
        }
        *self.instance = instance;
        self.group = group;
        self.proto = parts.proto;
        self.vips = parts.vips;
        // The new handles came first: a vmac both configs use stays.
        self.addr_vmacs = parts.addr_vmacs;
        self.announcers = parts.announcers;
        self.tx = parts.tx;
        self.mcast_group = parts.mcast_group;
        self.lease = parts.lease;
        self.renewal = parts.renewal;
        self.advert_cache.clear();
        if let Some(n) = parts.notifier {
            *self.notifier = n;
        }
        // Written again below and by provision_xdp.
        self.provisioned = None;
        self.kernel_armed = false;
        if active {
            for a in &new {
                match rtnl::add(a) {
                    Ok(_) => self.added.push(a.addr),
                    Err(e) => error!(instance = self.name(), addr = %a.addr, "adding VIP: {e}"),
                }
                info!(instance = self.name(), addr = %a.addr, "reload: VIP added and announced");
            }
        }
        let accept = self.proto.accept || self.proto.is_owner();
        self.set_xdp(active, accept);
        if active {
            for a in &new {
                self.announce(a);
            }
        }
    }

    /// The VIPS key of one of our addresses.
    fn xdp_key(&self, addr: IpAddr) -> xvrrp_common::VipKey {
        let (family, key) = crate::dataplane::map_address(addr);
        // Requests reach the XDP program on the VRRP interface.
        xvrrp_common::VipKey {
            ifindex: self.ifindex,
            family: family as u32,
            addr: key,
        }
    }

    /// Forgets our VIPs and this virtual router in the XDP program (the
    /// instance stopped or was removed): nothing answered, nothing checked.
    pub fn clear_xdp(&mut self) {
        let Some(xdp) = &self.xdp else { return };
        let mut dp = xdp.lock().expect("dataplane lock");
        for key in self.xdp_keys() {
            dp.remove_vip(&key);
        }
        dp.remove_vr(&self.vr_key());
        self.kernel_took_over = false;
    }

    /// keepalived's `virtual_routes`, after the VIPs (a route's src may be
    /// one): installed while Active, removed when it ends.
    fn add_routes(&mut self) {
        for r in &self.instance.virtual_rules {
            if let Err(e) = rtnl::add_rule(r) {
                error!(instance = self.name(), "adding virtual rule: {e}");
            }
        }
        for r in &self.instance.virtual_routes {
            if let Err(e) = rtnl::add_route(r) {
                error!(instance = self.name(), route = %format!("{}/{}", r.dst, r.prefix), "adding virtual route: {e}");
            }
        }
    }

    fn remove_routes(&mut self) {
        for r in &self.instance.virtual_rules {
            if let Err(e) = rtnl::remove_rule(r) {
                error!(instance = self.name(), "removing virtual rule: {e}");
            }
        }
        for r in &self.instance.virtual_routes {
            if let Err(e) = rtnl::remove_route(r) {
                error!(instance = self.name(), route = %format!("{}/{}", r.dst, r.prefix), "removing virtual route: {e}");
            }
        }
    }

    fn add_vips(&mut self) {
        for a in &self.vips {
            match rtnl::add(a) {
                Ok(true) => self.added.push(a.addr),
                // A non-owner's VIPs were removed at startup unless it resumed:
                // then they are its own from before the restart.
                Ok(false) if !self.proto.is_owner() => self.added.push(a.addr),
                Ok(false) => {
                    debug!(instance = self.name(), addr = %a.addr, "address already present: left as it is")
                }
                Err(e) => error!(instance = self.name(), addr = %a.addr, "adding VIP: {e}"),
            }
        }
        self.add_routes();
    }

    pub fn remove_vips(&mut self) {
        self.remove_routes();
        for a in &self.vips {
            if self.added.contains(&a.addr) {
                if let Err(e) = rtnl::remove(a) {
                    error!(instance = self.name(), addr = %a.addr, "removing VIP: {e}");
                }
            }
        }
        self.added.clear();
    }

    /// keepalived removes its VIPs at startup: after a crash (kill -9) they are
    /// still on the interface and the kernel would answer ARP for them while
    /// we are Backup. An owner's (priority 255) VIPs are its own addresses
    /// and stay.
    pub fn remove_stale_vips(&mut self) {
        if self.proto.is_owner() {
            return;
        }
        for a in &self.vips {
            let ifname = if a.ifindex == self.ifindex {
                self.instance.interface.clone()
            } else {
                continue;
            };
            if crate::net::iface::addresses(&ifname)
                .iter()
                .any(|(x, _)| *x == a.addr)
            {
                info!(instance = self.name(), addr = %a.addr, "removing VIP left on {ifname} by a previous run");
                if let Err(e) = rtnl::remove(a) {
                    error!(instance = self.name(), addr = %a.addr, "removing stale VIP: {e}");
                }
            }
        }
    }

    /// One round: a gratuitous ARP per IPv4 VIP, an unsolicited NA per IPv6 VIP.
    fn send_garp(&self) {
        for a in &self.vips {
            self.announce(a);
        }
    }

    /// A gratuitous ARP (IPv4) or unsolicited NA (IPv6) for one address,
    /// on the link it is on, from that link's MAC (the vmac's virtual MAC).
    fn announce(&self, a: &rtnl::Address) {
        let addr = a.addr;
        let packet = self
            .announcers
            .get(&a.ifindex)
            .map_or(&self.packet, |(p, _)| p);
        let mac = self.link_mac(a.ifindex);
        let frame = match addr {
            IpAddr::V4(v) => build::garp(mac, v, false),
            IpAddr::V6(v) => build::unsolicited_na(mac, v, self.router_flag),
        };
        if let Err(e) = packet.send(&frame) {
            warn!(instance = self.name(), %addr, "sending gratuitous ARP/NA: {e}");
        }
    }

    pub fn status(&self, router: &Router) -> InstanceStatus {
        let state = router.state();
        InstanceStatus {
            name: self.instance.name.clone(),
            group: self.group.clone(),
            interface: self.instance.interface.clone(),
            vrid: self.proto.vrid,
            family: if self.proto.family == vrrp::Family::V6 {
                "IPv6"
            } else {
                "IPv4"
            }
            .into(),
            version: self.proto.version.number(),
            state: state.to_string(),
            priority: router.priority(),
            configured_priority: self.proto.priority,
            active: match state {
                State::Active => Some(format!("{} (this host)", self.tx.source())),
                _ => router.active_router().map(|(a, p)| format!("{a} ({p})")),
            },
            last_transition: self.last_transition.clone(),
            vips: self
                .instance
                .vips
                .iter()
                .map(|v| format!("{}/{}", v.addr, v.prefix))
                .collect(),
            adverts_sent: self.stats.sent,
            // Read off sockets, plus those checked (and dropped) in XDP.
            adverts_received: self.stats.received
                + self.xdp.as_ref().map_or(0, |x| {
                    let key = self.vr_key();
                    x.lock()
                        .expect("dataplane lock")
                        .last(&key)
                        .map_or(0, |l| l.count)
                }),
            transitions: self.stats.transitions,
            discarded: self.stats.discarded.clone(),
            checks: self.checks.clone(),
            split_brain: self.stats.split_brain,
        }
    }
}

fn join(a: &[IpAddr]) -> String {
    a.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
