//! Event dispatch: inputs fed to the election and its actions carried
//! out, timers, the XDP program's records, adverts off the sockets.

use super::*;

/// When the event loop must wake for one group: kept beside the groups
/// (`Daemon::wake`) so the loop's look at every group each turn reads one
/// small array, not each instance's state.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub(super) struct Wake {
    /// The group's earliest timer.
    pub at: Option<Instant>,
    /// Every member is a Backup whose Active_Down interval the kernel
    /// times: the loop does not wake for it (the kernel's record or the
    /// sweep does).
    pub kernel: bool,
}

impl Wake {
    fn of(g: &Group) -> Wake {
        Wake {
            at: g.sg.next_deadline(),
            kernel: g
                .members
                .iter()
                .zip(g.sg.members())
                .all(|(m, r)| m.kernel_armed && r.state() == State::Backup),
        }
    }
}

impl Daemon {
    /// Feeds an input to group `g` (member `m`) and carries out the actions.
    pub(super) fn feed(&mut self, g: usize, now: Instant, m: usize, input: Input) {
        self.take_back_timers(g);
        let group = &mut self.groups[g];
        let mut actions = std::mem::take(&mut self.actions);
        actions.clear();
        group.sg.handle_into(now, m, input, &mut actions);
        for (i, action) in actions.drain(..) {
            let router = &group.sg.members()[i];
            group.members[i].execute(&action, router);
            if let Action::Conflict { .. } = action {
                *self.counters.entry("vrid_conflict".into()).or_default() += 1;
            }
        }
        self.actions = actions;
        for (i, (member, router)) in group.members.iter_mut().zip(group.sg.members()).enumerate() {
            member.provision_xdp(
                router.priority(),
                router.state() == State::Active,
                group.sg.takes_over_on_expiry(i),
            );
            if router.state() != State::Backup {
                member.kernel_armed = false;
            }
            // The election has had its say since the kernel took over
            // (Active, or held / sent back to Backup by an advert or its
            // group): the kernel's interim answers end.
            if member.kernel_took_over && !router.down_due(now) {
                member.end_kernel_takeover();
            }
        }
        if self.lvs.is_some() {
            self.tell_lvs_group(g);
        }
        self.lend_timers(g);
        self.refresh_wake(g);
        let group = &mut self.groups[g];
        // vrrp_sync_group notify: once per group state (priority 0, as keepalived).
        let state = group.sg.state();
        if state != group.notified {
            group.notified = state;
            if let Some(n) = &group.notifier {
                n.state(state, 0);
            }
        }
    }

    /// Gives group `g`'s Actives their lent Adver_Timers back (before any
    /// input: the election then times its adverts again), with the adverts
    /// sent meanwhile counted.
    pub(super) fn take_back_timers(&mut self, g: usize) {
        let group = &mut self.groups[g];
        for (i, member) in group.members.iter_mut().enumerate() {
            let Some(slot) = member.round.take() else {
                continue;
            };
            if let Some((due, sent)) = self.rounds.take(slot) {
                group.sg.return_adver_timer(i, due);
                member.stats.sent += sent;
            }
        }
    }

    /// Lends each Active of group `g` its Adver_Timer to `rounds` (after
    /// an input), with the adverts a firing sends built once.
    pub(super) fn lend_timers(&mut self, g: usize) {
        for i in 0..self.groups[g].members.len() {
            let group = &mut self.groups[g];
            let member = &mut group.members[i];
            if member.round.is_some() {
                continue;
            }
            let Some(lent) = group.sg.lend_adver_timer(i) else {
                continue;
            };
            let mut sends = member.round_sends(&lent.adverts);
            let fanout = sends
                .first()
                .and_then(|s| self.fanouts.get(&s.tx.ifindex).cloned().flatten());
            let mut failed = None;
            if let Some(f) = &fanout {
                let mut f = f.lock().expect("fan-out lock");
                // One frame a round carries one link header: group
                // adverts only (a unicast peer's has its own).
                for s in sends.iter_mut().filter(|s| is_group(&s.dst)) {
                    s.frame = f.keep(&s.msg).unwrap_or_else(|e| {
                        failed = Some(e);
                        None
                    });
                }
            }
            if let Some(e) = failed {
                // Counted every time, logged at the 1st, 2nd, 4th, ... time.
                let n = self
                    .counters
                    .entry("fanout_keep_failed".into())
                    .or_default();
                *n += 1;
                if n.is_power_of_two() {
                    warn!(
                        failed = *n,
                        "{e:#}: the advert goes through the socket on its own \
                         (counted as fanout_keep_failed in `xvrrp status`)"
                    );
                }
            }
            let slot = self
                .rounds
                .lend(g, i, lent.due, lent.interval, sends, fanout);
            self.groups[g].members[i].round = Some(slot);
        }
    }

    /// Attaches the advert fan-out (docs/design.md rule 3) to every
    /// interface an IPv4 instance sends its adverts to a group from, where
    /// it is not yet: at start and after a reload, not at a takeover (the
    /// verifier's work would compete with the takeover for the CPU). None
    /// for IPv6 (the kernel writes that header) or with `--xdp-mode off`
    /// (the kernel does no per-packet work); one that cannot attach is said
    /// once and its adverts go one by one through the socket.
    pub(super) fn attach_fanouts(&mut self) {
        if self.opts.xdp_mode == crate::dataplane::AttachMode::Off {
            return;
        }
        let txs: Vec<Arc<AdvertTx>> = self
            .groups
            .iter()
            .flat_map(|g| &g.members)
            .filter(|m| m.proto.unicast_peers.is_empty() && m.tx.source().is_ipv4())
            .map(|m| m.tx.clone())
            .collect();
        for tx in txs {
            self.fanouts.entry(tx.ifindex).or_insert_with(|| {
                match crate::dataplane::fanout::Fanout::attach(&tx.interface) {
                    Ok(f) => {
                        info!(interface = tx.interface, "advert fan-out attached (tc egress)");
                        Some(Arc::new(std::sync::Mutex::new(f)))
                    }
                    Err(e) => {
                        warn!(
                            interface = tx.interface,
                            "advert fan-out unavailable, adverts leave one by one through the socket: {e:#}"
                        );
                        None
                    }
                }
            });
        }
    }

    /// The LVS engine hears each instance's Active/not-Active changes.
    fn tell_lvs_group(&mut self, g: usize) {
        let Some(lvs) = &self.lvs else { return };
        let group = &self.groups[g];
        for (member, router) in group.members.iter().zip(group.sg.members()) {
            let active = router.state() == State::Active;
            if self.lvs_told.get(&member.instance.name) != Some(&active) {
                self.lvs_told.insert(member.instance.name.clone(), active);
                lvs.instance(&member.instance.name, active);
            }
        }
    }

    /// Every instance's state, told again (a restarted engine).
    /// The load-balancer maps of every attached XDP program, for the LVS
    /// engine's DR virtual servers (handles of its own: it never takes the
    /// dataplane lock the election uses).
    pub(super) fn lb_maps(&self) -> Vec<crate::dataplane::lb::LbMaps> {
        let mut out = Vec::new();
        for x in self.xdp.values().flatten() {
            let (prog_id, interface, ifindex) = {
                let dp = x.lock().expect("dataplane lock");
                (dp.prog_id(), dp.interface().to_owned(), dp.ifindex())
            };
            match crate::dataplane::lb::LbMaps::open(prog_id, &interface, ifindex) {
                Ok(m) => out.push(m),
                Err(e) => warn!("{interface}: the XDP load-balancer maps: {e:#}"),
            }
        }
        out
    }

    pub(super) fn tell_lvs(&mut self) {
        for g in 0..self.groups.len() {
            self.tell_lvs_group(g);
        }
    }

    /// Recomputes every instance's (weight, fault) from the trackers and
    /// tells the election what changed.
    pub(super) fn health(&mut self, now: Instant) {
        let Some(tracker) = &self.tracker else { return };
        let mut inputs = Vec::new();
        for (g, group) in self.groups.iter_mut().enumerate() {
            for (m, member) in group.members.iter_mut().enumerate() {
                let (weight, fault, checks) = tracker.health(&self.config, &member.instance);
                member.checks = checks;
                if member.health != Some((weight, fault)) {
                    member.health = Some((weight, fault));
                    inputs.push((g, m, Input::Health { weight, fault }));
                }
            }
        }
        for (g, m, input) in inputs {
            self.feed(g, now, m, input);
        }
    }

    /// When the loop must wake next. A group whose members are all Backups
    /// with the kernel timing their Active_Down interval has no deadline
    /// here: the kernel's record wakes us (a slow sweep guards the kernel).
    /// Read from `wake`, one small entry per group: the loop looks at every
    /// group each turn, and at 255 instances reading each one's state for
    /// it cost more than the adverts due.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let mut watched = false;
        let next = self
            .wake
            .iter()
            .filter_map(|w| {
                watched |= w.kernel;
                if w.kernel {
                    None
                } else {
                    w.at
                }
            })
            .min();
        let sweep = watched.then_some(self.sweep_at);
        next.into_iter()
            .chain(sweep)
            .chain(self.rounds.next_due())
            .min()
    }

    /// Notes group `g`'s timers and kernel timing in `wake` (after anything
    /// that may change them: `feed`, a kernel record).
    pub(super) fn refresh_wake(&mut self, g: usize) {
        if self.wake.len() != self.groups.len() {
            self.wake.resize(self.groups.len(), Wake::default());
        }
        self.wake[g] = Wake::of(&self.groups[g]);
    }

    /// `refresh_wake` for every group (after a reload: groups come and go).
    pub(super) fn refresh_wake_all(&mut self) {
        self.wake = self.groups.iter().map(Wake::of).collect();
    }

    /// On each safety sweep: `refresh_wake_all`, counting entries found
    /// stale. The index is kept where the groups change, so there should be
    /// none; one would be repaired here, within a sweep.
    fn check_wake(&mut self) {
        let kept = std::mem::take(&mut self.wake);
        self.refresh_wake_all();
        if kept != self.wake {
            let stale = self.counters.entry("wake_index_stale".into()).or_default();
            *stale += 1;
            if *stale == 1 {
                warn!(
                    "an instance's timers changed without the event loop's wake index hearing of it: \
                     repaired by the safety sweep, counted as wake_index_stale in `xvrrp status` \
                     (a bug: please report it with the log)"
                );
            }
        }
    }

    /// Groups whose earliest timer is due at `now`.
    fn due(&self, now: Instant) -> Vec<usize> {
        (0..self.wake.len())
            .filter(|&g| self.wake[g].at.is_some_and(|t| t <= now))
            .collect()
    }

    pub(super) fn timeouts(&mut self, now: Instant) {
        self.rounds.fire(now);
        // The safety sweep looks at every kernel-timed Backup on its own
        // schedule: a kernel expiry record lost (ring full) still leads to
        // a takeover within KERNEL_TIMER_SWEEP.
        let sweep = now >= self.sweep_at;
        if sweep {
            self.sweep_at = now + KERNEL_TIMER_SWEEP;
            self.check_wake();
        }
        let due = self.due(now);
        if sweep {
            self.refresh_from_kernel(&(0..self.groups.len()).collect::<Vec<_>>());
        } else {
            self.refresh_from_kernel(&due);
        }
        for g in due {
            if self.wake[g].at.is_some_and(|t| t <= now) {
                self.feed(g, now, 0, Input::Timeout);
            }
        }
    }

    /// Before a down timer is judged: each Backup that is due (every one on
    /// a sweep) on an XDP interface gets the last advert the kernel saw
    /// (LAST, with its arrival time), so a timer that fires while adverts
    /// still arrive is re-armed, not obeyed.
    /// `groups`: the due ones, or every group on a sweep.
    pub(super) fn refresh_from_kernel(&mut self, groups: &[usize]) {
        let mut inputs = Vec::new();
        for &g in groups {
            let group = &mut self.groups[g];
            for (m, (member, router)) in
                group.members.iter_mut().zip(group.sg.members()).enumerate()
            {
                if router.state() != State::Backup {
                    continue;
                }
                let Some(xdp) = &member.xdp else { continue };
                let key = member.vr_key();
                let Some(last) = xdp.lock().expect("dataplane lock").last(&key) else {
                    continue;
                };
                if last.ts_ns <= member.last_fed_ns {
                    continue;
                }
                member.last_fed_ns = last.ts_ns;
                member.kernel_armed = member.kernel_rearms(last.priority, router.priority());
                let src = crate::dataplane::address(key.family, &last.src);
                let unicast = !member.proto.unicast_peers.is_empty();
                let rx = member.kernel_advert(
                    src,
                    last.version,
                    last.priority,
                    last.interval_cs,
                    unicast,
                );
                inputs.push((g, m, crate::dataplane::instant_of(last.ts_ns), rx));
            }
        }
        for (g, m, at, rx) in inputs {
            self.feed(g, at, m, Input::Advert(rx));
        }
    }

    /// Records from the XDP programs: adverts the election must know about,
    /// invalid adverts (each reason and source logged once), down timers.
    pub(super) fn records(&mut self, batch: Vec<AdvertRecord>) {
        for rec in batch {
            let family = if rec.family == xvrrp_common::FAMILY_V6 {
                Family::V6
            } else {
                Family::V4
            };
            let src = crate::dataplane::address(rec.family, &rec.src);
            if matches!(
                rec.reason,
                reason::DOWN_EXPIRED | reason::TIMER_FAILED | reason::TIMER_ARMED_AGAIN
            ) {
                if rec.reason == reason::TIMER_FAILED {
                    self.count_once("kernel_timer_failed", src, || {
                        format!(
                            "the XDP program could not arm VRID {}'s down timer ({}); the agent times it until the kernel can again",
                            rec.vrid,
                            std::io::Error::from_raw_os_error(rec.detail.into())
                        )
                    });
                }
                if let Some(&(g, m)) = self.index.get(&(rec.ifindex, family, rec.vrid)) {
                    let member = &mut self.groups[g].members[m];
                    // An expiry or a failure: the agent times it now. An arm
                    // again: the next advert fed hands it back to the kernel.
                    member.kernel_armed = false;
                    match rec.reason {
                        reason::DOWN_EXPIRED if rec.detail == 1 => member.kernel_took_over = true,
                        reason::TIMER_FAILED => member.kernel_timer_failing = true,
                        reason::TIMER_ARMED_AGAIN => member.kernel_timer_failing = false,
                        _ => {}
                    }
                    self.refresh_wake(g);
                }
                continue;
            }
            if rec.reason & reason::INVALID != 0 {
                let name = xvrrp_common::counter::NAMES
                    .get(rec.detail as usize)
                    .copied()
                    .unwrap_or("invalid");
                self.count_once(name, src, || {
                    format!("VRRP packet from {src} dropped in XDP: {name} (counted per packet in `xvrrp status`)")
                });
                continue;
            }
            if rec.reason & reason::UNCONFIGURED != 0 {
                continue; // passed on to the socket, which reports it
            }
            let Some(&(g, m)) = self.index.get(&(rec.ifindex, family, rec.vrid)) else {
                continue;
            };
            let member = &mut self.groups[g].members[m];
            member.last_fed_ns = member.last_fed_ns.max(rec.ts_ns);
            let rx = member.kernel_advert(
                src,
                rec.version,
                rec.priority,
                rec.interval_cs,
                rec.unicast != 0,
            );
            self.feed(
                g,
                crate::dataplane::instant_of(rec.ts_ns),
                m,
                Input::Advert(rx),
            );
            let group = &mut self.groups[g];
            let router = &group.sg.members()[m];
            let member = &mut group.members[m];
            member.kernel_armed = router.state() == State::Backup
                && member.kernel_rearms(rec.priority, router.priority());
            self.refresh_wake(g);
        }
    }

    pub(super) fn count_once(&mut self, reason: &str, from: IpAddr, msg: impl FnOnce() -> String) {
        *self.counters.entry(reason.to_owned()).or_default() += 1;
        if self.logged.len() < 10_000 && self.logged.insert((reason.to_owned(), from)) {
            warn!(
                "{} (further ones from {from} are counted, not logged)",
                msg()
            );
        }
    }

    /// One advert off a socket: checked, parsed, dispatched to its instance.
    pub(super) fn advert(&mut self, ifindex: u32, raw: RawAdvert) {
        let (ifindex, via_vmac) = match self.vmac_base.get(&ifindex) {
            Some(&base) => (base, true),
            None => (ifindex, false),
        };
        let family = Family::of(&raw.src);
        let packet = match vrrp::Packet::new_checked(&raw.payload[..], family) {
            Ok(p) => p,
            Err(e) => {
                let reason = format!("invalid_{}", e.reason());
                return self.count_once(&reason, raw.src, || {
                    format!("bad VRRP packet from {}: {e}", raw.src)
                });
            }
        };
        // Each VRID's adverts come off one socket: its vmac's where it
        // listens there (build.rs), else the base interface's.
        if via_vmac
            != self
                .heard_on_vmac
                .contains(&(ifindex, family, packet.vrid()))
        {
            return;
        }
        let ep = vrrp::Endpoints {
            src: raw.src,
            dst: raw.dst,
        };
        match packet.verify_checksum(&ep) {
            Ok(vrrp::ChecksumMode::Plain) => *self.counters.entry("checksum_plain".into()).or_default() += 1,
            Ok(vrrp::ChecksumMode::PseudoHeader) => *self.counters.entry("checksum_pseudo_header".into()).or_default() += 1,
            Err(e) => {
                return self.count_once("invalid_checksum", raw.src, || {
                    format!("VRRP advert from {} for VRID {}: {e} (a v3 peer with another checksum form, or corruption)", raw.src, packet.vrid())
                })
            }
        }
        let advert = match vrrp::Repr::parse(&packet) {
            Ok(r) => r,
            Err(e) => {
                let reason = format!("invalid_{}", e.reason());
                return self.count_once(&reason, raw.src, || {
                    format!("bad VRRP advert from {}: {e}", raw.src)
                });
            }
        };
        let Some(&(g, m)) = self.index.get(&(ifindex, family, advert.vrid)) else {
            let vrid = advert.vrid;
            return self.count_once("unknown_vrid", raw.src, || {
                format!("advert for VRID {vrid} from {}, which no instance here uses (another cluster on this segment?)", raw.src)
            });
        };
        self.groups[g].members[m].stats.received += 1;
        let rx = Received {
            src: raw.src,
            ttl: raw.ttl,
            unicast: !is_group(&raw.dst),
            advert,
        };
        self.feed(g, Instant::now(), m, Input::Advert(rx));
    }
}
