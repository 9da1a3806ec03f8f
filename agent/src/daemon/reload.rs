//! SIGHUP: what a new config changes in the running one, decided on typed
//! values (docs/design.md rule 6). An instance keeps its running state across a
//! reload when its identity — interface, VRID, family, and the vmac it
//! speaks through — is unchanged: priority, advert_int, preempt, VIPs,
//! tracking, notify scripts, peers and authentication then change in place,
//! as keepalived applies them. A sync group keeps its state when its name
//! and its members' identities are unchanged. Everything else stops
//! (priority 0) or starts.

use crate::config::{model::Instance, Config};

/// What makes a running instance the same virtual router after a reload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub interface: String,
    pub vrid: u8,
    pub ipv6: bool,
    /// use_vmac decides which interface holds the VIPs and sends adverts.
    pub use_vmac: Option<String>,
    pub vmac_xmit_base: bool,
}

impl Identity {
    pub fn of(i: &Instance) -> Identity {
        Identity {
            interface: i.interface.clone(),
            vrid: i.vrid,
            ipv6: i.is_ipv6(),
            use_vmac: i.use_vmac.clone(),
            vmac_xmit_base: i.vmac_xmit_base,
        }
    }
}

/// A sync group (or a lone instance, name None) as a reload compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub name: Option<String>,
    pub members: Vec<Identity>,
}

/// The groups a config runs, in the order the daemon builds them: each
/// vrrp_sync_group, then each instance outside any group.
pub fn layout(cfg: &Config) -> Vec<(Option<&str>, Vec<&Instance>)> {
    let mut out = Vec::new();
    let mut grouped: Vec<&str> = Vec::new();
    for g in &cfg.groups {
        let members: Vec<&Instance> = g
            .members
            .iter()
            .filter_map(|n| cfg.instances.iter().find(|i| &i.name == n))
            .collect();
        grouped.extend(members.iter().map(|i| i.name.as_str()));
        out.push((Some(g.name.as_str()), members));
    }
    for i in &cfg.instances {
        if !grouped.contains(&i.name.as_str()) {
            out.push((None, vec![i]));
        }
    }
    out
}

/// The shape of each group of `layout`.
pub fn shapes(layout: &[(Option<&str>, Vec<&Instance>)]) -> Vec<Shape> {
    layout
        .iter()
        .map(|(name, members)| Shape {
            name: name.map(str::to_owned),
            members: members.iter().map(|i| Identity::of(i)).collect(),
        })
        .collect()
}

/// What becomes of one group of the new config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// The running group `old` carries on, reconfigured in place.
    InPlace { old: usize },
    /// New (or its identity changed): built and started.
    Start,
}

/// The reload: a fate per new group, and the running groups that stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub fates: Vec<Fate>,
    pub stop: Vec<usize>,
}

/// Matches the new groups to the running ones by shape.
pub fn plan(old: &[Shape], new: &[Shape]) -> Plan {
    let mut taken = vec![false; old.len()];
    let fates = new
        .iter()
        .map(
            |n| match old.iter().enumerate().find(|(i, o)| !taken[*i] && *o == n) {
                Some((i, _)) => {
                    taken[i] = true;
                    Fate::InPlace { old: i }
                }
                None => Fate::Start,
            },
        )
        .collect();
    let stop = (0..old.len()).filter(|i| !taken[*i]).collect();
    Plan { fates, stop }
}

/// The instance with every source position cleared: two configs that say
/// the same thing on other lines compare equal.
pub fn without_positions(i: &Instance) -> Instance {
    let mut c = i.clone();
    c.pos = Default::default();
    for v in c.vips.iter_mut().chain(c.vips_excluded.iter_mut()) {
        v.pos = None;
    }
    for t in c
        .track_interfaces
        .iter_mut()
        .chain(c.track_scripts.iter_mut())
        .chain(c.track_files.iter_mut())
        .chain(c.track_processes.iter_mut())
    {
        t.pos = None;
    }
    for n in c.notify.scripts_mut().into_iter().flatten() {
        n.pos = None;
    }
    c
}

/// The keywords whose values a reload changes, for the log.
pub fn changes(old: &Instance, new: &Instance) -> Vec<&'static str> {
    let (a, b) = (without_positions(old), without_positions(new));
    let mut out = Vec::new();
    let mut check = |changed: bool, keyword: &'static str| {
        if changed {
            out.push(keyword);
        }
    };
    check(a.name != b.name, "name");
    check(a.state != b.state, "state");
    check(a.priority != b.priority, "priority");
    check(a.advert_int_cs != b.advert_int_cs, "advert_int");
    check(a.version != b.version, "version");
    check(a.preempt != b.preempt, "preempt");
    check(a.preempt_delay != b.preempt_delay, "preempt_delay");
    check(a.accept != b.accept, "accept");
    check(a.auth != b.auth, "authentication");
    check(a.vips != b.vips, "virtual_ipaddress");
    check(
        a.vips_excluded != b.vips_excluded,
        "virtual_ipaddress_excluded",
    );
    check(a.unicast_src_ip != b.unicast_src_ip, "unicast_src_ip");
    check(a.unicast_peers != b.unicast_peers, "unicast_peer");
    check(a.track_interfaces != b.track_interfaces, "track_interface");
    check(a.track_scripts != b.track_scripts, "track_script");
    check(a.track_files != b.track_files, "track_file");
    check(a.track_processes != b.track_processes, "track_process");
    check(a.notify != b.notify, "notify");
    check(
        a.garp_master_delay != b.garp_master_delay
            || a.garp_master_repeat != b.garp_master_repeat
            || a.garp_master_refresh != b.garp_master_refresh
            || a.garp_master_refresh_repeat != b.garp_master_refresh_repeat,
        "garp_master_*",
    );
    check(
        a.down_timer_adverts != b.down_timer_adverts,
        "down_timer_adverts",
    );
    check(
        a.skip_check_adv_addr != b.skip_check_adv_addr,
        "skip_check_adv_addr",
    );
    check(a.strict != b.strict, "strict_mode");
    check(
        a.check_unicast_src != b.check_unicast_src,
        "check_unicast_src",
    );
    check(
        a.dont_track_primary != b.dont_track_primary,
        "dont_track_primary",
    );
    check(a.native_ipv6 != b.native_ipv6, "native_ipv6");
    out
}

/// Applying a plan to the running daemon.
mod apply {
    use super::super::*;

    impl Daemon {
        /// SIGHUP (docs/design.md rule 6): instances whose identity is unchanged
        /// carry on and take the new values in place; removed ones stop
        /// (priority 0), new ones start. A config that does not load, or whose
        /// new parts cannot be built, is refused and the running one carries on.
        pub(in crate::daemon) fn reload(&mut self) {
            let began = Instant::now();
            info!("SIGHUP: reloading {}", self.opts.config.display());
            let refuse = |e: anyhow::Error| {
                error!("reload refused, the running configuration stays: {e:#}");
            };
            let cfg = match load(&self.opts) {
                Ok(c) => c,
                Err(e) => return refuse(e),
            };
            if cfg.global.net_namespace != self.config.global.net_namespace {
                warn!("reload: net_namespace changed; the agent stays where it is until it is restarted");
            }
            // New mail settings: a new sender, and every notifier takes it.
            let mail_changed = cfg.global.smtp != self.config.global.smtp
                || cfg.global.router_id != self.config.global.router_id;
            if mail_changed {
                self.mailer = mailer(&cfg);
            }
            let layout = reload::layout(&cfg);
            let old_shapes: Vec<reload::Shape> = self
                .groups
                .iter()
                .map(|g| reload::Shape {
                    name: g.members.first().and_then(|m| m.group.clone()),
                    members: g
                        .members
                        .iter()
                        .map(|m| reload::Identity::of(&m.instance))
                        .collect(),
                })
                .collect();
            let plan = reload::plan(&old_shapes, &reload::shapes(&layout));
            // Everything that can fail, before anything changes: a new
            // group built, or a kept group's new member parts.
            enum Prepared {
                Start(Box<Group>),
                InPlace(usize, Vec<MemberParts>),
            }
            let mut prepared = Vec::new();
            for ((name, members), fate) in layout.iter().zip(&plan.fates) {
                match *fate {
                    reload::Fate::Start => match self.group(&cfg, *name, members) {
                        Ok(g) => prepared.push(Prepared::Start(Box::new(g))),
                        Err(e) => return refuse(e),
                    },
                    reload::Fate::InPlace { old } => {
                        let mut parts = Vec::new();
                        for (j, i) in members.iter().enumerate() {
                            let (ifindex, vmac) = {
                                let m = &mut self.groups[old].members[j];
                                (m.ifindex, m.vmac.take())
                            };
                            let got = self.member_parts(&cfg, i, ifindex, vmac.as_ref());
                            self.groups[old].members[j].vmac = vmac;
                            match got.with_context(|| format!("vrrp_instance {}", i.name)) {
                                Ok(mut p) => {
                                    let before = &self.groups[old].members[j].instance;
                                    if mail_changed
                                        || reload::without_positions(before).notify
                                            != reload::without_positions(i).notify
                                    {
                                        p.notifier = Some(self.notifier(&cfg, i));
                                    }
                                    parts.push(p);
                                }
                                Err(e) => return refuse(e),
                            }
                        }
                        prepared.push(Prepared::InPlace(old, parts));
                    }
                }
            }
            // Group numbers change below: every lent Adver_Timer goes back
            // first (each group's next input lends it again).
            for g in 0..self.groups.len() {
                self.take_back_timers(g);
            }
            let now = Instant::now();
            let mut old: Vec<Option<Group>> = std::mem::take(&mut self.groups)
                .into_iter()
                .map(Some)
                .collect();
            // Stop what went away (or changed identity).
            self.groups = plan.stop.iter().filter_map(|k| old[*k].take()).collect();
            for g in 0..self.groups.len() {
                info!(group = %self.groups[g].sg.name, "reload: stopping (removed, or its interface, VRID or family changed)");
                let group = &mut self.groups[g];
                for (m, r) in group.members.iter_mut().zip(group.sg.members()) {
                    m.deleting = Some(r.state() == State::Fault);
                }
                self.feed(g, now, 0, Input::Shutdown);
                for m in &mut self.groups[g].members {
                    m.remove_vips();
                    m.clear_xdp();
                }
            }
            // The stopped groups go; the new ones take their place, in the
            // new config's order, with the kept ones' member parts to apply.
            self.groups.clear();
            let mut started = Vec::new();
            let mut updates = Vec::new();
            for (n, p) in prepared.into_iter().enumerate() {
                match p {
                    Prepared::Start(g) => {
                        started.push(n);
                        self.groups.push(*g);
                    }
                    Prepared::InPlace(k, parts) => {
                        self.groups.push(old[k].take().expect("each kept once"));
                        updates.push((n, parts));
                    }
                }
            }
            // Change in place.
            let mut in_place = 0;
            for (n, parts) in updates {
                let (name, members) = &layout[n];
                if let Some(gcfg) = name.and_then(|gn| cfg.groups.iter().find(|g| g.name == gn)) {
                    let old_cfg = self.config.groups.iter().find(|g| g.name == gcfg.name);
                    if mail_changed || old_cfg.map(|o| &o.notify) != Some(&gcfg.notify) {
                        self.groups[n].notifier = Some(self.group_notifier(&cfg, gcfg));
                    }
                }
                for (j, (i, p)) in members.iter().zip(parts).enumerate() {
                    let member = &self.groups[n].members[j];
                    let changed = reload::changes(&member.instance, i);
                    if !changed.is_empty() {
                        info!(instance = %i.name, "reload: {} changed: applied in place, no transition", changed.join(", "));
                    }
                    let proto = p.proto.clone();
                    let group = &mut self.groups[n];
                    group.members[j].reconfigure(
                        (*i).clone(),
                        name.map(str::to_owned),
                        p,
                        &group.sg.members()[j],
                    );
                    self.feed(n, now, j, Input::Reconfigure(Box::new(proto)));
                    in_place += 1;
                }
            }
            provision_xdp(&mut self.groups);
            let mut tracker = Tracker::start(&cfg, self.track_tx.clone(), &self.tasks);
            if let Some(old) = &self.tracker {
                tracker.carry_over(old);
            }
            self.tracker = Some(tracker);
            self.statics.reload(statics::Statics::of(&cfg));
            if cfg.virtual_servers != self.config.virtual_servers
                || cfg.vs_groups != self.config.vs_groups
            {
                info!("reload: virtual servers changed; the LVS engine restarts with them");
                self.lvs_reload = Some(cfg.clone());
            }
            self.config = cfg;
            self.reindex();
            self.reconcile_xdp();
            self.health(now);
            for g in &started {
                info!(group = %self.groups[*g].sg.name, "reload: starting (new, or its interface, VRID or family changed)");
                self.feed(*g, now, 0, Input::Startup);
            }
            self.attach_fanouts();
            // A group that no input reached since lends its timers here.
            for g in 0..self.groups.len() {
                self.lend_timers(g);
            }
            self.refresh_wake_all();
            // Receivers for interfaces no longer used.
            // (A vmac's own receiver counts as used: build.rs.)
            let used: Vec<(u32, Family)> = self
                .groups
                .iter()
                .flat_map(|g| g.members.iter())
                .flat_map(|m| {
                    let vmac = m
                        .vmac
                        .as_ref()
                        .filter(|v| self.vmac_base.contains_key(&v.ifindex))
                        .map(|v| (v.ifindex, m.proto.family));
                    std::iter::once((m.ifindex, m.proto.family)).chain(vmac)
                })
                .collect();
            self.rx.retain(|k, r| {
                let keep = used.contains(k);
                if !keep {
                    r.task.abort();
                }
                keep
            });
            info!(
                in_place,
                started = started.len(),
                stopped = plan.stop.len(),
                "reload done in {:.1} ms",
                began.elapsed().as_secs_f64() * 1e3
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_str, LoadOptions};

    fn cfg(text: &str) -> Config {
        let (c, d) = parse_str(
            text,
            std::path::Path::new("/test/keepalived.conf"),
            &LoadOptions::default(),
        );
        c.unwrap_or_else(|| panic!("{d:?}"))
    }

    const BASE: &str = "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 150\n  advert_int 1\n  virtual_ipaddress {\n    10.0.0.100/24\n  }\n}\n";

    fn plan_of(old: &str, new: &str) -> (Plan, Config, Config) {
        let (o, n) = (cfg(old), cfg(new));
        let p = plan(&shapes(&layout(&o)), &shapes(&layout(&n)));
        (p, o, n)
    }

    #[test]
    fn every_change_that_keeps_the_identity_is_applied_in_place() {
        for (changed, keyword) in [
            (BASE.replace("priority 150", "priority 160"), "priority"),
            (BASE.replace("advert_int 1", "advert_int 2"), "advert_int"),
            (
                BASE.replace("  state BACKUP\n", "  state BACKUP\n  nopreempt\n"),
                "preempt",
            ),
            (
                BASE.replace("10.0.0.100/24\n", "10.0.0.100/24\n    10.0.0.101/24\n"),
                "virtual_ipaddress",
            ),
            (
                BASE.replace("  priority 150\n", "  priority 150\n  notify /bin/true\n"),
                "notify",
            ),
            (
                BASE.replace(
                    "  priority 150\n",
                    "  priority 150\n  authentication {\n    auth_type PASS\n    auth_pass secret\n  }\n",
                ),
                "authentication",
            ),
            (
                BASE.replace(
                    "  priority 150\n",
                    "  priority 150\n  unicast_peer {\n    10.0.0.2\n  }\n",
                ),
                "unicast_peer",
            ),
        ] {
            let (p, o, n) = plan_of(BASE, &changed);
            assert_eq!(
                p,
                Plan {
                    fates: vec![Fate::InPlace { old: 0 }],
                    stop: vec![]
                },
                "{keyword}"
            );
            assert_eq!(
                changes(&o.instances[0], &n.instances[0]),
                [keyword],
                "{keyword}"
            );
        }
    }

    #[test]
    fn the_same_config_on_other_lines_changes_nothing() {
        let moved = format!("# a comment\n\n{BASE}");
        let (p, o, n) = plan_of(BASE, &moved);
        assert_eq!(p.fates, [Fate::InPlace { old: 0 }]);
        assert_eq!(
            changes(&o.instances[0], &n.instances[0]),
            Vec::<&str>::new()
        );
        assert_eq!(
            without_positions(&o.instances[0]),
            without_positions(&n.instances[0])
        );
    }

    #[test]
    fn a_new_vrid_or_interface_stops_the_old_instance_and_starts_a_new_one() {
        for changed in [
            BASE.replace("virtual_router_id 51", "virtual_router_id 52"),
            BASE.replace("interface eth0", "interface eth1"),
            BASE.replace("10.0.0.100/24", "fd00::100/64"),
            BASE.replace("  priority 150\n", "  priority 150\n  use_vmac\n"),
        ] {
            let (p, _, _) = plan_of(BASE, &changed);
            assert_eq!(
                p,
                Plan {
                    fates: vec![Fate::Start],
                    stop: vec![0]
                },
                "{changed}"
            );
        }
    }

    #[test]
    fn instances_added_and_removed_around_a_kept_one() {
        let two = format!(
            "{BASE}{}",
            BASE.replace("VI_1", "VI_2").replace(" 51", " 52")
        );
        let (p, _, _) = plan_of(BASE, &two);
        assert_eq!(p.fates, [Fate::InPlace { old: 0 }, Fate::Start]);
        assert!(p.stop.is_empty());
        let (p, _, _) = plan_of(&two, BASE);
        assert_eq!(p.fates, [Fate::InPlace { old: 0 }]);
        assert_eq!(p.stop, [1]);
    }

    #[test]
    fn a_sync_group_is_kept_when_its_members_are() {
        let two = format!(
            "{BASE}{}",
            BASE.replace("VI_1", "VI_2").replace(" 51", " 52")
        );
        let grouped =
            format!("vrrp_sync_group G {{\n  group {{\n    VI_1\n    VI_2\n  }}\n}}\n{two}");
        let reprio = grouped.replace("priority 150", "priority 170");
        let (p, _, _) = plan_of(&grouped, &reprio);
        assert_eq!(p.fates, [Fate::InPlace { old: 0 }]);
        // Out of the group: the group stops, both instances start alone.
        let (p, _, _) = plan_of(&grouped, &two);
        assert_eq!(p.fates, [Fate::Start, Fate::Start]);
        assert_eq!(p.stop, [0]);
    }
}
