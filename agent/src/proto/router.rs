//! One virtual router: RFC 9568 §6.4 (v3) and RFC 3768 §6.4 (v2).

use std::{
    collections::{BTreeSet, HashSet},
    net::IpAddr,
    time::{Duration, Instant},
};

use super::{timing, Action, Config, Discard, Input, Reason, Received, State};
use crate::wire::vrrp::{self, Auth, Family, Version};

/// Per-source sets any sender can grow are cleared when they reach this
/// (a segment has a handful of routers; a flood of forged sources must not
/// grow memory).
/// GARP rounds queued at most (lower-priority bursts of a lasting split
/// brain are dropped beyond it).
const MAX_PENDING_GARPS: usize = 256;

const MAX_TRACKED_SOURCES: usize = 256;

/// A split brain with the same lower-priority Active is reported (logged,
/// notify_master_rx_lower_pri run) at most this often.
pub const SPLIT_BRAIN_REPORT_EVERY: Duration = Duration::from_secs(10);

/// An Active's Adver_Timer while another sender times it
/// (`Router::lend_adver_timer`).
#[derive(Debug, Clone)]
pub struct LentTimer {
    /// The next periodic advert.
    pub due: Instant,
    /// Adver_Interval: the time between two.
    pub interval: Duration,
    /// What each one sends, in order (the second only in mixed mode).
    pub adverts: [Option<std::sync::Arc<vrrp::Repr>>; 2],
}

/// The election state of one virtual router.
#[derive(Debug, Clone)]
pub struct Router {
    config: Config,
    state: State,
    /// Sum of tracker weights (keepalived: added to the configured priority).
    weight: i32,
    /// A tracked item without weight, or the interface, is down.
    own_fault: bool,
    /// The sync group holds us in Fault.
    group_fault: bool,
    /// Active_Adver_Interval learned from the Active (RFC 9568 §6.1).
    active_interval_cs: u16,
    /// The Active we follow and its priority, for status.
    active: Option<(IpAddr, u8)>,
    adver_timer: Option<Instant>,
    down_timer: Option<Instant>,
    /// Due times of gratuitous ARP rounds still to send.
    garp_due: Vec<Instant>,
    garp_refresh: Option<Instant>,
    /// garp_extra_if's next round.
    garp_extra: Option<Instant>,
    /// preempt_delay: when we first heard a lower-priority Active.
    lower_since: Option<Instant>,
    /// Sources we hear v3 from (mixed mode ignores their v2 twins).
    v3_sources: HashSet<IpAddr>,
    /// Address sets already reported as conflicting, per source.
    reported_conflicts: HashSet<(IpAddr, BTreeSet<IpAddr>)>,
    /// Sources outside unicast_peer already reported.
    not_peers_reported: HashSet<IpAddr>,
    /// When each lower-priority Active was last reported (split brain).
    split_brain_reported: Vec<(IpAddr, Instant)>,
    /// The last advert built, per version (v2 first): sent again while its
    /// priority holds; a new config clears them.
    adverts: [Option<std::sync::Arc<vrrp::Repr>>; 2],
}

impl Router {
    pub fn new(config: Config) -> Router {
        Router {
            active_interval_cs: config.interval_cs,
            config,
            state: State::Initialize,
            weight: 0,
            own_fault: false,
            group_fault: false,
            active: None,
            adver_timer: None,
            down_timer: None,
            garp_due: Vec::new(),
            garp_refresh: None,
            garp_extra: None,
            lower_since: None,
            v3_sources: HashSet::new(),
            reported_conflicts: HashSet::new(),
            not_peers_reported: HashSet::new(),
            split_brain_reported: Vec::new(),
            adverts: [None, None],
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The Active we last accepted (address, priority), when not us.
    pub fn active_router(&self) -> Option<(IpAddr, u8)> {
        self.active
    }

    pub fn active_interval_cs(&self) -> u16 {
        self.active_interval_cs
    }

    /// keepalived's effective priority: configured + weights, clamped to
    /// 1..254; an owner (255) is never changed.
    pub fn priority(&self) -> u8 {
        if self.config.is_owner() {
            return 255;
        }
        (self.config.priority as i32 + self.weight).clamp(1, 254) as u8
    }

    /// A tracked item of this member (not its group) is down.
    pub fn own_fault(&self) -> bool {
        self.own_fault
    }

    /// Held in Fault by its sync group.
    pub fn held_by_group(&self) -> bool {
        self.group_fault
    }

    fn faulty(&self) -> bool {
        self.own_fault || self.group_fault
    }

    /// A Backup whose Active_Down_Timer has run out at `now`: it wants to
    /// become Active (its sync group decides whether it may).
    pub fn down_due(&self, now: Instant) -> bool {
        self.state == State::Backup && self.down_timer.is_some_and(|t| t <= now)
    }

    /// Keeps a Backup that wants Active waiting (its sync group is not
    /// ready): the timer runs again, so it looks again a down interval later.
    pub fn hold_backup(&mut self, now: Instant) {
        if self.state == State::Backup {
            self.down_timer = Some(now + self.active_down());
        }
    }

    /// The earliest time `handle(_, Input::Timeout)` has work to do.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.adver_timer,
            self.down_timer,
            self.garp_due.first().copied(),
            self.garp_refresh,
            self.garp_extra,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Feeds one input; returns what to do, in order.
    #[must_use]
    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        self.handle_into(now, input, &mut out);
        out
    }

    /// `handle`, appending the actions to `out` (a buffer the caller
    /// keeps: no allocation per input).
    pub fn handle_into(&mut self, now: Instant, input: Input, out: &mut Vec<Action>) {
        match input {
            Input::Startup => self.startup(now, out),
            Input::Shutdown => self.shutdown(out),
            Input::Timeout => self.timeout(now, out),
            Input::Advert(rx) => self.advert(now, rx, out),
            Input::Health { weight, fault } => self.health(now, weight, fault, out),
            Input::Group(state) => self.group(now, state, out),
            Input::Resume => self.resume(now, out),
            Input::Reconfigure(config) => self.reconfigure(now, *config, out),
        }
    }

    // ---- transitions -------------------------------------------------------

    fn transition(&mut self, to: State, reason: Reason, out: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        out.push(Action::Transition { from, to, reason });
    }

    fn advert_repr(&self, priority: u8, version: Version) -> vrrp::Repr {
        let interval_cs = match version {
            // RFC 3768: whole seconds, at least 1.
            Version::V2 => (self.config.interval_cs / 100).max(1) * 100,
            Version::V3 => self.config.interval_cs,
        };
        vrrp::Repr {
            version,
            vrid: self.config.vrid,
            priority,
            interval_cs,
            auth: if version == Version::V2 {
                self.config.auth
            } else {
                Auth::None
            },
            addresses: self.config.vips.clone(),
        }
    }

    fn send_advert(&mut self, priority: u8, out: &mut Vec<Action>) {
        for repr in self.adverts_of(priority).into_iter().flatten() {
            out.push(Action::SendAdvert(repr));
        }
    }

    /// The adverts one sending carries at `priority`: the configured
    /// version's, and in mixed mode (RFC 9568 §8.4) a v2 twin for the v2
    /// routers.
    fn adverts_of(&mut self, priority: u8) -> [Option<std::sync::Arc<vrrp::Repr>>; 2] {
        let mixed = self.config.mixed_v2
            && self.config.version == Version::V3
            && self.config.family == Family::V4;
        [
            Some(self.shared_advert(priority, self.config.version)),
            mixed.then(|| self.shared_advert(priority, Version::V2)),
        ]
    }

    /// Lends an Active's Adver_Timer (RFC 9568 §6.4.3) to a sender that
    /// times many routers' periodic adverts in one table (docs/design.md
    /// rule 3): when the next is due, how often, and what each firing
    /// sends — what the timer itself would send. While it is lent the
    /// router sends no periodic advert and its `next_deadline` leaves the
    /// timer out; the borrower gives it back (`return_adver_timer`) before
    /// the router's next input. None unless Active.
    pub fn lend_adver_timer(&mut self) -> Option<LentTimer> {
        if self.state != State::Active {
            return None;
        }
        let due = self.adver_timer.take()?;
        Some(LentTimer {
            due,
            interval: self.adver_interval(),
            adverts: self.adverts_of(self.priority()),
        })
    }

    /// Takes back a lent Adver_Timer, next due at `due` (the borrower's
    /// last firing plus the interval).
    pub fn return_adver_timer(&mut self, due: Instant) {
        if self.state == State::Active && self.adver_timer.is_none() {
            self.adver_timer = Some(due);
        }
    }

    /// The advert of `priority` in `version`: the last one built while the
    /// priority is the same (everything else in it comes from the config).
    fn shared_advert(&mut self, priority: u8, version: Version) -> std::sync::Arc<vrrp::Repr> {
        let slot = usize::from(version == Version::V3);
        match &self.adverts[slot] {
            Some(repr) if repr.priority == priority => repr.clone(),
            _ => {
                let repr = std::sync::Arc::new(self.advert_repr(priority, version));
                self.adverts[slot] = Some(repr.clone());
                repr
            }
        }
    }

    fn adver_interval(&self) -> Duration {
        timing::interval(self.config.interval_cs)
    }

    fn active_down(&self) -> Duration {
        timing::active_down_for(
            self.config.version,
            self.priority(),
            self.active_interval_cs,
            self.config.down_timer_adverts,
        )
    }

    fn skew(&self) -> Duration {
        timing::skew(
            self.priority(),
            timing::skew_base_cs(self.config.version, self.active_interval_cs),
        )
    }

    /// RFC 9568 §6.4.1 / §6.4.2 "transition to Active": send an advert, add the
    /// VIPs, GARP/NA, start the Adver_Timer (keepalived's order: advert, VIPs, GARP, notify).
    fn become_active(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        self.down_timer = None;
        self.lower_since = None;
        self.active = None;
        self.take_active(now, reason, out);
        self.schedule_garp(now);
        self.fire_garp(now, out);
        out.push(Action::Notify {
            state: State::Active,
            priority: self.priority(),
        });
    }

    /// Into Backup with Active_Down_Timer armed.
    fn become_backup(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        let was_active = self.state == State::Active;
        // preempt_delay counts from a lower-priority Active heard in this
        // stay in Backup.
        self.lower_since = None;
        self.adver_timer = None;
        self.garp_due.clear();
        self.garp_refresh = None;
        self.garp_extra = None;
        self.transition(State::Backup, reason, out);
        // RFC 9568 §6.4.2: a Backup MUST NOT answer ARP/ND for the VIPs nor
        // accept packets addressed to them.
        if was_active {
            out.push(Action::RemoveVips);
        }
        out.push(Action::Dataplane {
            active: false,
            accept: false,
        });
        self.down_timer = Some(now + self.active_down());
        out.push(Action::Notify {
            state: State::Backup,
            priority: self.priority(),
        });
    }

    /// Stops every timer; an Active first sends priority 0 (so Backups take
    /// over after Skew_Time, not Active_Down_Interval) and drops its VIPs.
    fn leave(&mut self, out: &mut Vec<Action>) {
        if self.state == State::Active {
            self.send_advert(0, out);
            out.push(Action::RemoveVips);
        }
        self.adver_timer = None;
        self.down_timer = None;
        self.garp_due.clear();
        self.garp_refresh = None;
        self.garp_extra = None;
    }

    fn become_fault(&mut self, reason: Reason, out: &mut Vec<Action>) {
        // keepalived leaves MASTER for FAULT with a priority-0 advert too.
        self.leave(out);
        self.active = None;
        self.settle(State::Fault, reason, out);
    }

    /// Into a state that answers for nothing: the dataplane stops answering
    /// for the VIPs, and the notify for the state runs.
    fn settle(&mut self, to: State, reason: Reason, out: &mut Vec<Action>) {
        self.transition(to, reason, out);
        out.push(Action::Dataplane {
            active: false,
            accept: false,
        });
        out.push(Action::Notify {
            state: to,
            priority: self.priority(),
        });
    }

    fn schedule_garp(&mut self, now: Instant) {
        let g = &self.config.garp;
        self.garp_due.clear();
        for i in 0..g.repeat.max(1) {
            self.garp_due.push(now + g.interval * i);
        }
        if !g.delay.is_zero() {
            for i in 0..g.repeat.max(1) {
                self.garp_due.push(now + g.delay + g.interval * i);
            }
        }
        self.garp_due.sort();
        self.garp_refresh = g.refresh.map(|r| now + r);
        self.garp_extra = g.extra_if.map(|(p, _)| now + p);
    }

    fn fire_garp(&mut self, now: Instant, out: &mut Vec<Action>) {
        if let (Some(at), Some((period, all))) = (self.garp_extra, self.config.garp.extra_if) {
            if at <= now {
                out.push(Action::SendGarpExtra { all });
                self.garp_extra = Some(now + period);
            }
        }
        while self.garp_due.first().is_some_and(|t| *t <= now) {
            self.garp_due.remove(0);
            out.push(Action::SendGarp);
        }
        if let (Some(at), Some(period)) = (self.garp_refresh, self.config.garp.refresh) {
            if at <= now {
                let g = &self.config.garp;
                for i in 0..g.refresh_repeat.max(1) {
                    self.garp_due.push(now + g.interval * i);
                }
                self.garp_due.sort();
                self.garp_refresh = Some(now + period);
                while self.garp_due.first().is_some_and(|t| *t <= now) {
                    self.garp_due.remove(0);
                    out.push(Action::SendGarp);
                }
            }
        }
    }

    // ---- inputs ------------------------------------------------------------

    /// RFC 9568 §6.4.1 Initialize, on the Startup event.
    fn startup(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Initialize {
            return;
        }
        if self.faulty() {
            self.become_fault(Reason::Fault, out);
        } else if self.config.is_owner() {
            self.become_active(now, Reason::Owner, out);
        } else {
            self.active_interval_cs = self.config.interval_cs;
            // preempt_delay starts when a lower-priority Active is heard; it
            // never stretches the startup down timer (keepalived and FRR
            // agree: a cluster with no Active must not wait longer).
            self.become_backup(now, Reason::Startup, out);
        }
    }

    /// A restart that finds this router Active in the re-adopted dataplane: the
    /// adverts go on at once (before any Backup's Active_Down_Timer runs
    /// out) and the VIPs are re-adopted; no GARP and no notify.
    fn resume(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Initialize {
            return;
        }
        if self.faulty() {
            return self.become_fault(Reason::Fault, out);
        }
        self.take_active(now, Reason::Resumed, out);
    }

    /// A reload in place, as keepalived applies one: the state, the Active
    /// we follow and the timers carry on. An Active advertises at once when
    /// what its adverts carry changed (priority, interval, addresses), so
    /// Backups judge the new values now: a new priority below a Backup's
    /// moves the VIP by the protocol's own rules, nothing else does. A new
    /// Accept_Mode reaches the dataplane at once.
    fn reconfigure(&mut self, now: Instant, config: Config, out: &mut Vec<Action>) {
        let before = self.priority();
        let old = std::mem::replace(&mut self.config, config);
        self.adverts = [None, None];
        let after = self.priority();
        if before != after {
            out.push(Action::Priority {
                from: before,
                to: after,
            });
        }
        if !self.config.preempt || self.config.preempt_delay.is_zero() {
            self.lower_since = None;
        }
        match self.state {
            State::Active => {
                // The Active's own interval is the one it advertises.
                self.active_interval_cs = self.config.interval_cs;
                if before != after
                    || old.interval_cs != self.config.interval_cs
                    || old.vips != self.config.vips
                    || old.version != self.config.version
                    || old.auth != self.config.auth
                    || old.unicast_peers != self.config.unicast_peers
                {
                    self.send_advert(after, out);
                    self.adver_timer = Some(now + self.adver_interval());
                }
                let accept = |c: &Config| c.accept || c.is_owner();
                if accept(&old) != accept(&self.config) {
                    out.push(Action::Dataplane {
                        active: true,
                        accept: accept(&self.config),
                    });
                }
                if old.garp.refresh != self.config.garp.refresh {
                    self.garp_refresh = self.config.garp.refresh.map(|r| now + r);
                }
            }
            State::Backup => {
                // v2 does not learn the Active's interval: ours is the one.
                if self.config.version == Version::V2 {
                    self.active_interval_cs = self.config.interval_cs;
                }
            }
            State::Initialize | State::Fault => {
                self.active_interval_cs = self.config.interval_cs;
            }
        }
    }

    /// What every way into Active shares: advert first, Adver_Timer armed,
    /// VIPs on, the dataplane told to answer for them.
    fn take_active(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        self.transition(State::Active, reason, out);
        self.send_advert(self.priority(), out);
        self.adver_timer = Some(now + self.adver_interval());
        out.push(Action::AddVips);
        out.push(Action::Dataplane {
            active: true,
            accept: self.config.accept || self.config.is_owner(),
        });
    }

    /// RFC 9568 §6.4.2 / §6.4.3 Shutdown: an Active sends priority 0 first.
    fn shutdown(&mut self, out: &mut Vec<Action>) {
        self.leave(out);
        if self.state != State::Initialize {
            self.settle(State::Initialize, Reason::Shutdown, out);
        }
    }

    fn timeout(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.state {
            State::Backup => {
                if self.down_timer.is_some_and(|t| t <= now) {
                    // RFC 9568 §6.4.2: Active_Down_Timer fired.
                    self.become_active(now, Reason::ActiveDown, out);
                }
            }
            State::Active => {
                if self.adver_timer.is_some_and(|t| t <= now) {
                    // RFC 9568 §6.4.3: Adver_Timer fired.
                    self.send_advert(self.priority(), out);
                    self.adver_timer = Some(now + self.adver_interval());
                }
                self.fire_garp(now, out);
            }
            State::Initialize | State::Fault => {}
        }
    }

    /// RFC 9568 §7.1 receive checks that need the configuration, then the
    /// state's rules.
    fn advert(&mut self, now: Instant, rx: Received, out: &mut Vec<Action>) {
        let from = rx.src;
        let discard = |reason, out: &mut Vec<Action>| out.push(Action::Discarded { from, reason });
        // Our own adverts come from our primary address. Not from a VIP: an
        // address owner (RFC 9568 §6.1; FRR, routers, a keepalived owner)
        // sends from the VIP, and must be heard.
        if from == self.config.primary {
            return discard(Discard::Own, out);
        }
        if Family::of(&from) != self.config.family {
            return discard(Discard::Family, out);
        }
        // keepalived's rule, per instance: a unicast instance hears only
        // adverts sent to it (they may cross routers: no TTL check), a
        // multicast instance only adverts to the group, whose TTL/hop limit
        // MUST be 255 (RFC 9568 §7.1) — so an off-link host cannot route a
        // forged advert to our address and demote the Active.
        let unicast_instance = !self.config.unicast_peers.is_empty();
        if rx.unicast != unicast_instance {
            return discard(Discard::Destination, out);
        }
        if !unicast_instance && rx.ttl != vrrp::TTL {
            return discard(Discard::Ttl, out);
        }
        // keepalived checks a peer's min_ttl/max_ttl with check_unicast_src.
        if unicast_instance
            && self.config.check_unicast_src
            && self
                .config
                .peer_ttl
                .iter()
                .any(|&(p, lo, hi)| p == from && !(lo..=hi).contains(&rx.ttl))
        {
            return discard(Discard::Ttl, out);
        }
        if unicast_instance && !self.config.unicast_peers.contains(&from) {
            // keepalived drops these only with check_unicast_src; otherwise
            // it hears them and says so.
            if self.config.check_unicast_src {
                return discard(Discard::NotPeer, out);
            }
            if self.not_peers_reported.len() >= MAX_TRACKED_SOURCES {
                self.not_peers_reported.clear();
            }
            if self.not_peers_reported.insert(from) {
                out.push(Action::NotAPeer { from });
            }
        }
        let adv = &rx.advert;
        match (self.config.version, adv.version) {
            (Version::V3, Version::V3) => {
                // Bounded: any sender can add to it.
                if self.v3_sources.len() >= MAX_TRACKED_SOURCES {
                    self.v3_sources.clear();
                }
                self.v3_sources.insert(from);
            }
            (Version::V2, Version::V2) => {}
            (Version::V3, Version::V2) if self.config.mixed_v2 => {
                // RFC 9568 §8.4: a router sending both versions is heard once.
                if self.v3_sources.contains(&from) {
                    return discard(Discard::MixedDuplicate, out);
                }
            }
            _ => return discard(Discard::Version, out),
        }
        if adv.version == Version::V2 {
            // RFC 3768 §7.1: authentication must match ...
            if adv.auth != self.config.auth {
                return discard(Discard::Auth, out);
            }
            // ... and so must the Adver Interval (v2 does not learn it).
            let ours = (self.config.interval_cs / 100).max(1) * 100;
            if adv.interval_cs != ours && self.config.version == Version::V2 {
                return discard(Discard::Interval, out);
            }
        }
        self.check_addresses(&rx, out);
        match self.state {
            State::Backup => self.advert_in_backup(now, &rx, out),
            State::Active => self.advert_in_active(now, &rx, out),
            State::Initialize | State::Fault => {}
        }
    }

    /// RFC 9568 §7.1 MAY verify the address list; keepalived ≥ 2.3.3 logs it
    /// once per Active and still accepts the advert (so no dual Active).
    fn check_addresses(&mut self, rx: &Received, out: &mut Vec<Action>) {
        if self.config.skip_check_adv_addr && self.active.is_some_and(|(a, _)| a == rx.src) {
            return;
        }
        let theirs: BTreeSet<IpAddr> = rx.advert.addresses.iter().copied().collect();
        let ours: BTreeSet<IpAddr> = self.config.vips.iter().copied().collect();
        if rx.advert.priority == 0 || theirs == ours {
            return;
        }
        if self.reported_conflicts.len() >= MAX_TRACKED_SOURCES {
            self.reported_conflicts.clear();
        }
        if self.reported_conflicts.insert((rx.src, theirs.clone())) {
            out.push(Action::Conflict {
                from: rx.src,
                theirs: theirs.into_iter().collect(),
                ours: ours.into_iter().collect(),
            });
        }
    }

    /// Adopts the advert's interval (v3: RFC 9568 §6.4.2 Active_Adver_Interval).
    fn learn_interval(&mut self, rx: &Received, out: &mut Vec<Action>) {
        let cs = rx.advert.interval_cs;
        if cs != 0 && cs != self.active_interval_cs {
            self.active_interval_cs = cs;
            if cs != self.config.interval_cs {
                out.push(Action::IntervalLearned {
                    from: rx.src,
                    interval_cs: cs,
                });
            }
        }
    }

    /// RFC 9568 §6.4.2 Backup, on an advert.
    fn advert_in_backup(&mut self, now: Instant, rx: &Received, out: &mut Vec<Action>) {
        let prio = rx.advert.priority;
        if prio == 0 {
            // The Active is leaving: take over after Skew_Time only.
            self.down_timer = Some(now + self.skew());
            self.active = None;
            return;
        }
        // RFC 9568 §8.4: never preempt a v2 Active from a mixed-mode v3 router.
        let v2_active = rx.advert.version == Version::V2 && self.config.version == Version::V3;
        let lower = prio < self.priority();
        // The address owner always preempts, nopreempt or not.
        let preempt = self.config.preempt || self.config.is_owner();
        if preempt && lower && !v2_active {
            let since = *self.lower_since.get_or_insert(now);
            if now >= since + self.config.preempt_delay {
                // Discard: the down timer runs out and we preempt.
                out.push(Action::Discarded {
                    from: rx.src,
                    reason: Discard::LowerPriority,
                });
                return;
            }
        } else {
            self.lower_since = None;
        }
        self.learn_interval(rx, out);
        self.active = Some((rx.src, prio));
        self.down_timer = Some(now + self.active_down());
    }

    /// RFC 9568 §6.4.3 Active, on an advert.
    fn advert_in_active(&mut self, now: Instant, rx: &Received, out: &mut Vec<Action>) {
        let prio = rx.advert.priority;
        let ours = self.priority();
        if prio == 0 {
            // Someone left: assert ourselves at once.
            self.send_advert(ours, out);
            self.adver_timer = Some(now + self.adver_interval());
            return;
        }
        let ip_u128 = |a: &IpAddr| match a {
            IpAddr::V4(v) => u32::from(*v) as u128,
            IpAddr::V6(v) => u128::from(*v),
        };
        // Unsigned big-endian comparison of the primary addresses.
        let higher_addr = prio == ours && ip_u128(&rx.src) > ip_u128(&self.config.primary);
        // Two owners of the same addresses: a misconfiguration. The owner
        // never gives them up (RFC 9568 §6.4.3); the advert is discarded
        // and reported.
        if self.config.is_owner() && prio == 255 {
            return out.push(Action::Discarded {
                from: rx.src,
                reason: Discard::OtherOwner,
            });
        }
        if prio > ours || higher_addr {
            self.learn_interval(rx, out);
            let reason = if prio > ours {
                Reason::HigherPriority {
                    from: rx.src,
                    priority: prio,
                }
            } else {
                Reason::HigherAddress {
                    from: rx.src,
                    priority: prio,
                }
            };
            if self.config.higher_prio_send_advert {
                self.send_advert(ours, out);
            }
            self.become_backup(now, reason, out);
            self.active = Some((rx.src, prio));
        } else {
            // A lower-priority Active exists (it just recovered, or split
            // brain healed): RFC 9568 §6.4.3 sends an advert at once to
            // assert the Active state, so it backs off within one advert
            // (keepalived does the same; RFC 3768 only discards).
            let due = match self
                .split_brain_reported
                .iter_mut()
                .find(|(a, _)| *a == rx.src)
            {
                Some((_, at)) if now < *at + SPLIT_BRAIN_REPORT_EVERY => false,
                Some((_, at)) => {
                    *at = now;
                    true
                }
                None => {
                    if self.split_brain_reported.len() >= MAX_TRACKED_SOURCES {
                        self.split_brain_reported.clear();
                    }
                    self.split_brain_reported.push((rx.src, now));
                    true
                }
            };
            if due {
                out.push(Action::SplitBrain {
                    from: rx.src,
                    priority: prio,
                });
            }
            if !self.config.lower_prio_no_advert {
                self.send_advert(ours, out);
                self.adver_timer = Some(now + self.adver_interval());
            }
            // keepalived: a GARP burst now and another after a delay, so
            // caches the other Active poisoned point back here.
            self.schedule_lower_prio_garp(now);
            self.fire_garp(now, out);
        }
    }

    /// garp_lower_prio_repeat rounds now and again after
    /// garp_lower_prio_delay, spaced by vrrp_garp_interval. Bounded: a
    /// lasting split brain does not queue bursts without end.
    fn schedule_lower_prio_garp(&mut self, now: Instant) {
        let g = &self.config.garp;
        if g.lower_prio_repeat == 0 || self.garp_due.len() >= MAX_PENDING_GARPS {
            return;
        }
        for i in 0..g.lower_prio_repeat {
            self.garp_due.push(now + g.interval * i);
            if !g.lower_prio_delay.is_zero() {
                self.garp_due
                    .push(now + g.lower_prio_delay + g.interval * i);
            }
        }
        self.garp_due.sort();
    }

    fn health(&mut self, now: Instant, weight: i32, fault: bool, out: &mut Vec<Action>) {
        let before = self.priority();
        self.weight = weight;
        let after = self.priority();
        if before != after {
            out.push(Action::Priority {
                from: before,
                to: after,
            });
            // The new priority goes out in an advert at once.
            if self.state == State::Active {
                self.send_advert(after, out);
                self.adver_timer = Some(now + self.adver_interval());
            }
        }
        if fault != self.own_fault {
            self.own_fault = fault;
            self.fault_changed(now, out);
        }
    }

    fn fault_changed(&mut self, now: Instant, out: &mut Vec<Action>) {
        match (self.faulty(), self.state) {
            (true, State::Backup | State::Active) => self.become_fault(Reason::Fault, out),
            (false, State::Fault) => {
                if self.config.is_owner() {
                    self.become_active(now, Reason::FaultCleared, out);
                } else {
                    self.active_interval_cs = self.config.interval_cs;
                    self.become_backup(now, Reason::FaultCleared, out);
                }
            }
            _ => {}
        }
    }

    /// vrrp_sync_group: another member moved, so this one follows.
    fn group(&mut self, now: Instant, to: State, out: &mut Vec<Action>) {
        match to {
            State::Fault if !self.group_fault => {
                self.group_fault = true;
                self.fault_changed(now, out);
            }
            State::Backup | State::Active if self.group_fault => {
                self.group_fault = false;
                self.fault_changed(now, out);
            }
            State::Active if self.state == State::Backup => {
                self.become_active(now, Reason::Group(State::Active), out)
            }
            State::Backup if self.state == State::Active => {
                // Our own interval until an Active's adverts teach another
                // (as at startup and when a fault clears).
                self.active_interval_cs = self.config.interval_cs;
                self.become_backup(now, Reason::Group(State::Backup), out)
            }
            _ => {}
        }
    }
}
