//! Startup side of the daemon: groups, members and their sockets, the
//! XDP program per interface, and what the config decides for each.

use super::*;

impl Daemon {
    /// Builds groups (with sockets) for `cfg`; sockets are shared and reused.
    pub(super) fn build(&mut self, cfg: &Config) -> anyhow::Result<Vec<Group>> {
        reload::layout(cfg)
            .into_iter()
            .map(|(name, members)| self.group(cfg, name, &members))
            .collect()
    }

    pub(super) fn group(
        &mut self,
        cfg: &Config,
        name: Option<&str>,
        instances: &[&Instance],
    ) -> anyhow::Result<Group> {
        let notifier = name
            .and_then(|n| cfg.groups.iter().find(|g| g.name == n))
            .map(|g| self.group_notifier(cfg, g));
        let mut members = Vec::new();
        let mut routers = Vec::new();
        for i in instances {
            let m = self
                .member(cfg, name, i)
                .with_context(|| format!("vrrp_instance {}", i.name))?;
            routers.push(Router::new(m.proto.clone()));
            members.push(m);
        }
        Ok(Group {
            sg: SyncGroup::new(name.unwrap_or(&instances[0].name), routers),
            members,
            notifier,
            notified: State::Initialize,
        })
    }

    pub(super) fn member(
        &mut self,
        cfg: &Config,
        group: Option<&str>,
        i: &Instance,
    ) -> anyhow::Result<Member> {
        let ifindex = iface::ifindex(&i.interface)?;
        let v6 = i.is_ipv6();
        let family = if v6 { Family::V6 } else { Family::V4 };
        if i.state == config::model::InitialState::Master && i.priority != 255 {
            info!(
                instance = %i.name,
                "state MASTER with priority {}: starting as Backup, Active after Active_Down_Interval of silence (RFC 9568; keepalived waits about one advert interval)",
                i.priority
            );
        }
        // Every group an instance on this interface and family uses.
        let mut groups = vec![i.mcast_group(&cfg.global)];
        for other in &cfg.instances {
            let group = other.mcast_group(&cfg.global);
            if other.interface == i.interface && other.is_ipv6() == v6 && !groups.contains(&group) {
                groups.push(group);
            }
        }
        self.advert_receiver(&i.interface, ifindex, family, &groups)?;
        // keepalived's promote_secondaries: set on the interface (left set).
        if i.promote_secondaries && !v6 {
            crate::net::vmac::sysctl(&i.interface, "promote_secondaries", "1");
        }
        let v6_vmac = v6;
        let vmac = match &i.use_vmac {
            Some(name) => {
                let name = if name.is_empty() {
                    let prefix = cfg.global.vmac_prefix.as_deref().unwrap_or("vrrp");
                    format!("{prefix}.{}", i.vrid)
                } else {
                    name.clone()
                };
                Some(crate::net::vmac::Vmac::create(
                    &i.interface,
                    &name,
                    i.vmac_address(),
                    v6_vmac,
                    vmac_options(i),
                )?)
            }
            None => None,
        };
        let (vip_if, vip_index) = match &vmac {
            Some(v) => (v.name.clone(), v.ifindex),
            None => (i.interface.clone(), ifindex),
        };
        let packet = self.packet_socket(&vip_if, vip_index)?;
        let xdp = self.xdp_for(&i.interface, ifindex);
        // use_vmac on the socket path: an advert whose source MAC is the
        // virtual MAC (a peer's vmac: the same MAC as ours) is handed by the
        // kernel's macvlan to our vmac only, never to the base interface, so
        // such instances hear adverts on the vmac, as keepalived does
        // (`Daemon::advert` takes each VRID's adverts from one of the two).
        // The XDP program sees every frame before the macvlan does.
        if let Some(v) = vmac
            .as_ref()
            .filter(|_| xdp.is_none() && !v6 && !i.vmac_xmit_base)
        {
            self.vmac_base.insert(v.ifindex, ifindex);
            self.advert_receiver(&v.name, v.ifindex, family, &groups)?;
        }
        let parts = self.member_parts(cfg, i, ifindex, vmac.as_ref())?;
        let forwarding = std::fs::read_to_string(format!(
            "/proc/sys/net/ipv6/conf/{}/forwarding",
            i.interface
        ))
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
        Ok(Member {
            instance: Box::new(i.clone()),
            deleting: None,
            group: group.map(str::to_owned),
            proto: parts.proto,
            ifindex,
            mac: match i.use_vmac {
                Some(_) => i.vmac_address(),
                None => iface::mac(&i.interface)?,
            },
            vips: parts.vips,
            addr_vmacs: parts.addr_vmacs,
            announcers: parts.announcers,
            added: Vec::new(),
            tx: parts.tx,
            mcast_group: parts.mcast_group,
            packet,
            stats: Stats::default(),
            last_transition: None,
            router_flag: forwarding,
            vmac,
            notifier: Box::new(self.notifier(cfg, i)),
            health: None,
            checks: Vec::new(),
            xdp,
            provisioned: None,
            kernel_armed: false,
            kernel_timer_failing: false,
            last_fed_ns: 0,
            kernel_took_over: false,
            advert_cache: Vec::new(),
            renewal: parts.renewal,
            logged_discards: Default::default(),
            round: None,
            lease: parts.lease,
        })
    }

    /// A sync group's notify scripts and fifos.
    pub(super) fn group_notifier(
        &mut self,
        cfg: &Config,
        g: &crate::config::model::SyncGroup,
    ) -> Notifier {
        let fifos = crate::notify::fifos(&g.notify, &cfg.global, &mut self.fifos);
        let mail = self
            .mailer
            .clone()
            .filter(|_| cfg.global.smtp.alerts(g.notify.smtp_alert));
        Notifier::spawn("GROUP", &g.name, &g.notify, script_user(cfg), fifos, mail)
    }

    /// An instance's notify scripts and fifos.
    pub(super) fn notifier(&mut self, cfg: &Config, i: &Instance) -> Notifier {
        let fifos = crate::notify::fifos(&i.notify, &cfg.global, &mut self.fifos);
        let mail = self
            .mailer
            .clone()
            .filter(|_| cfg.global.smtp.alerts(i.notify.smtp_alert));
        Notifier::spawn(
            "INSTANCE",
            &i.name,
            &i.notify,
            script_user(cfg),
            fifos,
            mail,
        )
    }

    /// What an instance's config decides once its interfaces exist: the
    /// election's config, the advert sender, the addresses, the lease.
    /// Shared by a start and a reload in place.
    pub(super) fn member_parts(
        &mut self,
        cfg: &Config,
        i: &Instance,
        ifindex: u32,
        vmac: Option<&crate::net::vmac::Vmac>,
    ) -> anyhow::Result<MemberParts> {
        let v6 = i.is_ipv6();
        let family = if v6 { Family::V6 } else { Family::V4 };
        // Heard on its group too (a reload may bring a new mcast_dst_ip).
        self.advert_receiver(&i.interface, ifindex, family, &[i.mcast_group(&cfg.global)])?;
        let vip_addrs: Vec<IpAddr> = i.vips.iter().map(|v| v.addr).collect();
        let source = match i.unicast_src_ip {
            Some(a) => a,
            None => iface::primary(&i.interface, v6, &vip_addrs).ok_or_else(|| {
                anyhow!(
                    "{} has no {} address to send adverts from; add one, or set unicast_src_ip",
                    i.interface,
                    if v6 { "IPv6 link-local" } else { "IPv4" }
                )
            })?,
        };
        let proto = router_config(i, &cfg.global, source);
        // With use_vmac, IPv4 adverts leave through the vmac (source MAC the
        // virtual MAC, RFC 9568 §7.2) unless vmac_xmit_base; IPv6 ones from
        // the base's link-local.
        let (tx_if, tx_index) = match vmac {
            Some(v) if !i.vmac_xmit_base && !v6 => (v.name.clone(), v.ifindex),
            _ => (i.interface.clone(), ifindex),
        };
        // keepalived's unicast_ttl: unicast IPv4 adverts with that TTL (a
        // socket per TTL; multicast ones always carry 255).
        let ttl = match i.unicast_ttl {
            Some(t) if !i.unicast_peers.is_empty() && !v6 => t,
            _ => crate::wire::vrrp::TTL,
        };
        let tx = match self.tx.get(&(tx_index, source, ttl)) {
            Some(t) => t.clone(),
            None => {
                let t = Arc::new(AdvertTx::open(&tx_if, tx_index, source, ttl)?);
                self.tx.insert((tx_index, source, ttl), t.clone());
                t
            }
        };
        let mut vips = Vec::new();
        let mut addr_vmacs: Vec<crate::net::vmac::Vmac> = Vec::new();
        let mut announcers = HashMap::new();
        // virtual_ipaddress_excluded: managed like VIPs, never advertised.
        for v in i.vips.iter().chain(&i.vips_excluded) {
            let (dev, dev_index, mac) = match vip_link(i, v) {
                VipLink::InstanceVmac => {
                    let vmac = vmac.expect("vip_link: InstanceVmac only with use_vmac");
                    (vmac.name.clone(), vmac.ifindex, i.vmac_address())
                }
                VipLink::Interface(dev) => {
                    let index = iface::ifindex(dev)?;
                    (dev.to_owned(), index, iface::mac(dev)?)
                }
                VipLink::OwnVmac(base) => {
                    let mac = i.vmac_mac.unwrap_or_else(|| {
                        crate::wire::ethernet::virtual_mac(v.addr.is_ipv6(), i.vrid)
                    });
                    let base_index = iface::ifindex(base)?;
                    let existing = addr_vmacs
                        .iter()
                        .find(|x| x.parent_index() == base_index && x.mac == mac);
                    let vm = match existing {
                        Some(x) => (x.name.clone(), x.ifindex),
                        None => {
                            let prefix = cfg
                                .global
                                .vmac_addr_prefix
                                .as_deref()
                                .or(cfg.global.vmac_prefix.as_deref())
                                .unwrap_or("vrrp");
                            let name = crate::net::vmac::addr_vmac_name(
                                base_index,
                                mac,
                                v.addr.is_ipv6(),
                                prefix,
                                i.vrid,
                            );
                            let x = crate::net::vmac::Vmac::create(
                                base,
                                &name,
                                mac,
                                v.addr.is_ipv6(),
                                vmac_options(i),
                            )
                            .with_context(|| format!("use_vmac_addr for {}", v.addr))?;
                            let got = (x.name.clone(), x.ifindex);
                            addr_vmacs.push(x);
                            got
                        }
                    };
                    (vm.0, vm.1, mac)
                }
            };
            if let std::collections::hash_map::Entry::Vacant(e) = announcers.entry(dev_index) {
                e.insert((self.packet_socket(&dev, dev_index)?, mac));
            }
            vips.push(address(v, dev_index));
        }
        let lease = lease_length(cfg, &i.interface);
        Ok(MemberParts {
            proto,
            tx,
            mcast_group: i.mcast_group(&cfg.global),
            vips,
            lease,
            renewal: self.renewal_for(&i.interface, ifindex, lease),
            notifier: None,
            addr_vmacs,
            announcers,
        })
    }

    /// The packet socket that sends gratuitous ARP/NA on a link (one per link).
    fn packet_socket(&mut self, ifname: &str, ifindex: u32) -> anyhow::Result<Arc<PacketSocket>> {
        if let Some(p) = self.packet.get(&ifindex) {
            return Ok(p.clone());
        }
        let p = Arc::new(PacketSocket::open(ifname, false)?);
        self.packet.insert(ifindex, p.clone());
        Ok(p)
    }

    /// What renews the XDP lease on `ifindex` for `lease` once an advert
    /// left (docs/design.md rule 4): one per interface and lease length,
    /// shared by the adverts of every instance there, so a flush renews
    /// once however many instances sent. None without XDP there.
    fn renewal_for(
        &mut self,
        interface: &str,
        ifindex: u32,
        lease: Duration,
    ) -> Option<crate::net::advert::AfterSent> {
        // Keyed by interface: its program, once attached, is never replaced
        // (`xdp_for`).
        let xdp = self.xdp.get(&ifindex)?.clone()?;
        let renewal = self
            .renewals
            .entry((ifindex, lease))
            .or_insert_with(|| renew_lease(xdp, interface, lease));
        Some(renewal.clone())
    }

    /// The XDP program on `interface`, attached (or re-adopted) the first time;
    /// when it cannot attach, says why once and the socket path carries on.
    pub(super) fn xdp_for(
        &mut self,
        interface: &str,
        ifindex: u32,
    ) -> Option<Arc<std::sync::Mutex<crate::dataplane::Dataplane>>> {
        if let Some(x) = self.xdp.get(&ifindex) {
            return x.clone();
        }
        let mode = self.opts.xdp_mode;
        let got = if mode == crate::dataplane::AttachMode::Off {
            warn!(
                interface,
                "XDP off (--xdp-mode off): ARP/ND answered by the kernel, adverts on sockets; \
                 NO FAIL SILENT: if this agent is killed, the kernel keeps answering ARP/ND for \
                 VIPs left on {interface} beside the new Active"
            );
            self.fail_silent.insert(
                interface.to_owned(),
                (
                    false,
                    "--xdp-mode off: the kernel answers ARP/ND for the VIPs".into(),
                ),
            );
            None
        } else {
            match crate::dataplane::Dataplane::attach(interface, mode, !self.opts.clean) {
                Ok(mut dp) => {
                    info!(
                        interface,
                        mode = %dp.mode(),
                        prog_id = dp.prog_id(),
                        readopted = dp.resumed(),
                        "XDP attached through rtnetlink: ARP/ND for Active VIPs answered in the kernel; \
                         fail silent on (the program outlives the agent and drops requests for the VIPs once its lease runs out)"
                    );
                    self.fail_silent.insert(
                        interface.to_owned(),
                        (true, "XDP attached through rtnetlink, lease-gated".into()),
                    );
                    // Changes, invalid adverts and down timers come as records.
                    match dp.take_events() {
                        Ok(mut events) => {
                            let tx = self.records.clone();
                            self.tasks.spawn(
                                format!("XDP record reader ({interface})"),
                                async move {
                                    loop {
                                        let batch = events.next_batch().await?;
                                        if tx.send(batch).await.is_err() {
                                            return Ok(());
                                        }
                                    }
                                },
                            );
                        }
                        Err(e) => warn!(interface, "XDP records: {e:#}"),
                    }
                    self.tasks.spawn(
                        format!("XDP log relay ({interface})"),
                        crate::dataplane::relay_logs(dp.prog_id()),
                    );
                    Some(Arc::new(std::sync::Mutex::new(dp)))
                }
                Err(e) => {
                    warn!(
                        interface,
                        "XDP could not attach ({e:#}); falling back to the socket path (kernel ARP/ND); \
                         NO FAIL SILENT on {interface}: if this agent is killed, the kernel keeps \
                         answering ARP/ND for VIPs left there"
                    );
                    self.fail_silent.insert(
                        interface.to_owned(),
                        (false, format!("XDP could not attach: {e:#}")),
                    );
                    None
                }
            }
        };
        self.xdp.insert(ifindex, got.clone());
        got
    }

    /// Removes from each interface's program what no configured instance
    /// owns: a re-adopted program keeps the maps of the run before, whose
    /// config may have had a VIP or a virtual router this one has not (it must
    /// not be answered for, nor its adverts checked).
    pub(super) fn reconcile_xdp(&self) {
        for (ifindex, xdp) in self.xdp.iter().filter_map(|(i, x)| Some((*i, x.as_ref()?))) {
            // Members' VIPS and VRS keys carry the VRRP interface's index, the
            // one its program is keyed by.
            let members = || {
                self.groups
                    .iter()
                    .flat_map(|g| &g.members)
                    .filter(move |m| m.ifindex == ifindex)
            };
            let vips: Vec<_> = members().flat_map(Member::xdp_keys).collect();
            let vrs: Vec<_> = members().map(Member::vr_key).collect();
            let mut dp = xdp.lock().expect("dataplane lock");
            for k in dp.vip_keys().into_iter().filter(|k| !vips.contains(k)) {
                let old = dp.vip(&k);
                dp.remove_vip(&k);
                let addr = crate::dataplane::address(k.family as u8, &k.addr);
                info!(interface = dp.interface(), %addr, "removing a VIP of the previous run's config from the XDP program");
                // The previous run added it (an owner's VIP is its own address,
                // and stays): left on the interface, the kernel would answer
                // ARP for an address no instance here manages.
                let owner = old
                    .and_then(|v| {
                        dp.vr(&xvrrp_common::VrKey {
                            ifindex: k.ifindex,
                            family: k.family as u8,
                            vrid: v.vrid,
                            _pad: [0; 2],
                        })
                    })
                    .is_some_and(|c| c.priority == 255);
                let on = iface::addresses(dp.interface())
                    .into_iter()
                    .find(|(a, _)| *a == addr);
                if let (false, Some((_, prefix))) = (owner, on) {
                    let a = rtnl::Address {
                        ifindex: k.ifindex,
                        addr,
                        prefix,
                        broadcast: None,
                        label: None,
                        scope: 0,
                    };
                    match rtnl::remove(&a) {
                        Ok(_) => {
                            info!(interface = dp.interface(), %addr, "removed the previous run's VIP from the interface")
                        }
                        Err(e) => {
                            warn!(interface = dp.interface(), %addr, "removing the previous run's VIP: {e}")
                        }
                    }
                }
            }
            for k in dp.vr_keys().into_iter().filter(|k| !vrs.contains(k)) {
                info!(
                    interface = dp.interface(),
                    vrid = k.vrid,
                    "removing a virtual router of the previous run's config from the XDP program"
                );
                dp.remove_vr(&k);
            }
        }
    }

    /// Rebuilds what is kept per group and instance beside `groups` (after
    /// groups came or went): the VRID index, the vmac listeners, the event
    /// loop's wake index.
    pub(super) fn reindex(&mut self) {
        self.refresh_wake_all();
        self.index.clear();
        self.heard_on_vmac.clear();
        for (g, group) in self.groups.iter().enumerate() {
            for (m, member) in group.members.iter().enumerate() {
                let key = (member.ifindex, member.proto.family, member.proto.vrid);
                self.index.insert(key, (g, m));
                if member
                    .vmac
                    .as_ref()
                    .is_some_and(|v| self.vmac_base.contains_key(&v.ifindex))
                {
                    self.heard_on_vmac.insert(key);
                }
            }
        }
    }

    /// A supervised task reading adverts off a socket on `interface`
    /// (once per interface and family), handing them on with its ifindex.
    fn advert_receiver(
        &mut self,
        interface: &str,
        ifindex: u32,
        family: Family,
        groups: &[IpAddr],
    ) -> anyhow::Result<()> {
        if let Some(r) = self.rx.get(&(ifindex, family)) {
            for g in groups {
                r.socket
                    .join(*g)
                    .with_context(|| format!("joining {g} on {interface}"))?;
            }
            return Ok(());
        }
        let rx = Arc::new(AdvertRx::open(interface, ifindex, family, groups)?);
        let socket = rx.clone();
        let chan = self.adverts.clone();
        let task = self.tasks.spawn(
            format!("advert receiver ({interface} {family:?})"),
            async move {
                // Transient errors (ENOBUFS, an interface flap) are retried;
                // a socket that keeps failing takes the agent down.
                let mut failed_in_a_row = 0u32;
                loop {
                    match rx.recv().await {
                        Ok(raw) => {
                            failed_in_a_row = 0;
                            if chan.send((ifindex, raw)).await.is_err() {
                                return Ok(());
                            }
                        }
                        Err(e) if failed_in_a_row < 100 => {
                            failed_in_a_row += 1;
                            warn!(ifindex, "receiving adverts: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => {
                            anyhow::bail!("receiving adverts failed 100 times in a row: {e}")
                        }
                    }
                }
            },
        );
        self.rx
            .insert((ifindex, family), super::Receiver { task, socket });
        Ok(())
    }
}

/// Writes each member's configuration (priority, Active or not) into the
/// XDP program's maps.
pub(super) fn provision_xdp(groups: &mut [Group]) {
    for g in groups {
        let priorities: Vec<(u8, bool, bool)> =
            g.sg.members()
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    (
                        r.priority(),
                        r.state() == State::Active,
                        g.sg.takes_over_on_expiry(i),
                    )
                })
                .collect();
        for (m, (p, active, takeover)) in g.members.iter_mut().zip(priorities) {
            m.provision_xdp(p, active, takeover);
        }
    }
}

/// Renews `xdp`'s lease for `lease`: what runs once an advert left.
fn renew_lease(
    xdp: Arc<std::sync::Mutex<crate::dataplane::Dataplane>>,
    interface: &str,
    lease: Duration,
) -> crate::net::advert::AfterSent {
    let name = interface.to_owned();
    Arc::new(move || {
        if let Err(e) = xdp.lock().expect("dataplane lock").renew_lease(lease) {
            warn!(interface = name, "renewing the XDP lease: {e:#}");
        }
    })
}

/// The fail-silent lease of an interface's program: the shortest
/// Active_Down_Interval a Backup of any instance there can have
/// (down_timer_adverts x advert interval; the skew only lengthens it), so a
/// dead agent's host is silent before any Backup takes over. Renewed after
/// every advert really sent.
pub(super) fn lease_length(cfg: &Config, interface: &str) -> Duration {
    cfg.instances
        .iter()
        .filter(|o| o.interface == interface)
        .map(|o| crate::proto::timing::interval(o.advert_int_cs) * o.down_timer_adverts.max(1))
        .min()
        .unwrap_or(Duration::from_secs(3))
}

/// Who scripts run as: script_user, else keepalived_script when it exists.
pub(super) fn script_user(cfg: &Config) -> Option<crate::config::model::ScriptUser> {
    cfg.global
        .script_user
        .clone()
        .or_else(crate::track::exec::default_user)
}

/// A virtual_ipaddress / static_ipaddress line as the address rtnetlink sets
/// on interface `ifindex`.
/// Where a VIP goes, as keepalived's vrrp_complete_instance decides.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum VipLink<'a> {
    /// The instance's use_vmac: a VIP of its family without another `dev`.
    InstanceVmac,
    /// The VIP's `dev`, or the instance's interface.
    Interface(&'a str),
    /// A vmac of its own on this interface: use_vmac_addr for a VIP on
    /// another interface or of the other family, or `use_vmac` on the
    /// address line.
    OwnVmac(&'a str),
}

pub(super) fn vip_link<'a>(i: &'a Instance, v: &'a crate::config::model::Vip) -> VipLink<'a> {
    let other_family = v.addr.is_ipv6() != i.is_ipv6();
    let dev = v.dev.as_deref().unwrap_or(&i.interface);
    let off_interface = dev != i.interface;
    if !off_interface && !other_family && i.use_vmac.is_some() {
        // keepalived complains of `use_vmac` on such an address and puts it
        // on the instance's vmac all the same.
        return VipLink::InstanceVmac;
    }
    if (v.use_vmac && v.dev.is_some()) || (i.use_vmac_addr && (off_interface || other_family)) {
        VipLink::OwnVmac(dev)
    } else {
        VipLink::Interface(dev)
    }
}

fn vmac_options(i: &Instance) -> crate::net::vmac::LinkOptions {
    crate::net::vmac::LinkOptions {
        group: i.vmac_group,
        notify_parent: i.vmac_netlink_notify,
    }
}

pub(super) fn address(v: &crate::config::model::Vip, ifindex: u32) -> rtnl::Address {
    rtnl::Address {
        ifindex,
        addr: v.addr,
        prefix: v.prefix,
        broadcast: v.brd,
        label: v.label.clone(),
        scope: v.scope.as_deref().and_then(rtnl::scope).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::{vip_link, VipLink};
    use crate::config::{parse_str, LoadOptions};

    /// keepalived's placement (vrrp_complete_instance): the instance's vmac
    /// takes its family's VIPs without another dev; use_vmac_addr gives a
    /// vmac of its own to a VIP on another interface or of the other
    /// family; `use_vmac` on an address line does for that address.
    #[test]
    fn vips_go_where_keepalived_puts_them() {
        let text = |instance: &str| {
            format!(
                "vrrp_instance A {{\n interface eth0\n virtual_router_id 5\n {instance}\n\
                 virtual_ipaddress {{\n 192.0.2.1/24\n 198.51.100.1/24 dev eth1\n\
                 203.0.113.1/24 dev eth2 use_vmac\n 192.0.2.9/24 dev eth0 use_vmac\n }}\n\
                 virtual_ipaddress_excluded {{\n 2001:db8::1/64\n }}\n}}\n"
            )
        };
        let placements = |instance: &str| {
            let (cfg, diags) = parse_str(
                &text(instance),
                std::path::Path::new("mem.conf"),
                &LoadOptions::default(),
            );
            let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
            let i = &cfg.instances[0];
            i.vips
                .iter()
                .chain(&i.vips_excluded)
                .map(|v| format!("{:?}", vip_link(i, v)))
                .collect::<Vec<_>>()
        };
        let on = |s: &str| format!("{:?}", VipLink::Interface(s));
        let own = |s: &str| format!("{:?}", VipLink::OwnVmac(s));
        let vmac = format!("{:?}", VipLink::InstanceVmac);
        assert_eq!(
            placements(""),
            [on("eth0"), on("eth1"), own("eth2"), own("eth0"), on("eth0")]
        );
        assert_eq!(
            placements("use_vmac"),
            [
                vmac.clone(),
                on("eth1"),
                own("eth2"),
                vmac.clone(),
                on("eth0")
            ]
        );
        assert_eq!(
            placements("use_vmac_addr"),
            [
                on("eth0"),
                own("eth1"),
                own("eth2"),
                own("eth0"),
                own("eth0")
            ]
        );
        assert_eq!(
            placements("use_vmac\n use_vmac_addr"),
            [vmac.clone(), own("eth1"), own("eth2"), vmac, own("eth0")]
        );
    }
}
