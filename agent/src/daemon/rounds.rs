//! A steady Active's periodic adverts, timed in one table (docs/design.md
//! rule 3). Each Active lends its Adver_Timer here (`Router::
//! lend_adver_timer`) after every input it was fed and gets it back before
//! the next (`Daemon::feed`), so between inputs a round of 255 routers is a
//! walk over this small table — due time, interval, the frame numbers of
//! adverts already built — not a call into each router's election and its
//! member: those sit in memory the round would otherwise bring back into
//! the cache one instance at a time.
//!
//! The walk reads only the table: a fan-out advert is a few numbers kept
//! in its timer's own entry (`Fan`: where it goes, its frame, its
//! renewal), so a round touches no advert's bytes but its first, clones
//! nothing and allocates nothing (measured at 255 routers: cloning each
//! advert's bytes and reading them from each timer's own list were three
//! quarters of the agent's own time, cache misses on memory 255 routers
//! spread over the heap).

use std::{
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use tracing::warn;

use crate::{
    dataplane::fanout::{Fanout, ROUND_MAX},
    net::advert::{run_each_once, AdvertTx, AfterSent},
};

/// An interface's advert fan-out, shared by the timers lent on it.
pub(super) type SharedFanout = Arc<std::sync::Mutex<Fanout>>;

/// One advert a firing sends: the bytes as they go to the socket, where
/// to, what renews the lease once it left (`Member::send_advert`'s).
pub(super) struct RoundSend {
    pub tx: Arc<AdvertTx>,
    pub msg: Arc<[u8]>,
    pub dst: IpAddr,
    pub after: Option<AfterSent>,
    /// The fan-out frame holding `msg`, when the interface has a fan-out
    /// and the advert goes to a group (one frame, one link header).
    pub frame: Option<u16>,
}

/// A firing sends at most two adverts to a group (both versions in mixed
/// mode); unicast peers' adverts are never fanned out.
const FANS: usize = 2;

/// An advert of a lent timer that leaves in a fan-out round, as numbers:
/// its route, its frame, where its bytes are (`Lent::sends`), its renewal.
#[derive(Clone, Copy)]
struct Fan {
    route: u16,
    frame: u16,
    send: u8,
    after: Option<u16>,
}

/// A lent Adver_Timer.
struct Lent {
    group: usize,
    member: usize,
    due: Instant,
    interval: Duration,
    /// Its adverts that leave in fan-out rounds; any other of `sends` is
    /// queued on its socket.
    fans: [Option<Fan>; FANS],
    /// Read by a firing only for adverts queued on the socket, a round's
    /// first advert and a round that fell back.
    sends: Vec<RoundSend>,
    /// The fan-out holding the sends' frames.
    fanout: Option<SharedFanout>,
    /// Adverts queued since it was lent or last counted (the member's
    /// `stats.sent` takes them: `Rounds::count`).
    sent: u64,
}

/// Where fan-out adverts go together, one round each firing: one socket,
/// one destination, one fan-out; and that firing's adverts to it.
struct Route {
    tx: Arc<AdvertTx>,
    dst: IpAddr,
    fanout: SharedFanout,
    /// This firing's adverts on it (the list's room is kept between
    /// firings).
    picks: Vec<Pick>,
}

/// An advert of this firing's round: the lent timer's slot and its send
/// (where the bytes are), its frame, its renewal.
#[derive(Clone, Copy)]
struct Pick {
    slot: u32,
    send: u8,
    frame: u16,
    after: Option<u16>,
}

/// A table of items shared by several lent timers, in slots that stay
/// where they are, each counted by its users and dropped at none.
struct Shared<T> {
    slots: Vec<Option<(T, usize)>>,
}

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Shared { slots: Vec::new() }
    }
}

impl<T> Shared<T> {
    /// The slot of the item `same` finds, one user more; or `make`'s in a
    /// free slot.
    fn join(&mut self, same: impl Fn(&T) -> bool, make: impl FnOnce() -> T) -> u16 {
        if let Some(i) = self
            .slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|(t, _)| same(t)))
        {
            if let Some((_, users)) = &mut self.slots[i] {
                *users += 1;
            }
            return i as u16;
        }
        let item = Some((make(), 1));
        match self.slots.iter().position(Option::is_none) {
            Some(i) => {
                self.slots[i] = item;
                i as u16
            }
            None => {
                self.slots.push(item);
                (self.slots.len() - 1) as u16
            }
        }
    }

    /// One user fewer for slot `i`: the item goes at none.
    fn leave(&mut self, i: u16) {
        let slot = &mut self.slots[usize::from(i)];
        if let Some((_, users)) = slot {
            *users -= 1;
            if *users == 0 {
                *slot = None;
            }
        }
    }

    fn get(&self, i: u16) -> Option<&T> {
        self.slots.get(usize::from(i))?.as_ref().map(|(t, _)| t)
    }
}

/// The lent Adver_Timers, in slots that stay where they are (a member
/// keeps its slot number in `Member::round`).
#[derive(Default)]
pub(super) struct Rounds {
    slots: Vec<Option<Lent>>,
    free: Vec<usize>,
    /// No slot is due before this (an early guess after a removal only
    /// costs a wake-up that fires nothing).
    next: Option<Instant>,
    /// Where the lent timers' fan-out adverts go.
    routes: Shared<Route>,
    /// The lent timers' renewals (one per interface: a round runs each
    /// once).
    afters: Shared<AfterSent>,
    /// Fan-out rounds whose frame did not leave: their adverts went
    /// through the socket one by one (`xvrrp status`: fanout_fallbacks).
    pub fallbacks: u64,
}

impl Rounds {
    /// Lends member `member` of group `group`'s timer: returns its slot.
    /// A timer whose interval another lent timer has is brought into that
    /// one's step, its next advert moved earlier by less than an interval
    /// (an Active may advertise early: each advert restarts the Backups'
    /// Active_Down timers), so routers that went Active at different times
    /// still leave in one round.
    pub fn lend(
        &mut self,
        group: usize,
        member: usize,
        due: Instant,
        interval: Duration,
        sends: Vec<RoundSend>,
        fanout: Option<SharedFanout>,
    ) -> usize {
        let due = self
            .slots
            .iter()
            .flatten()
            .find(|l| l.interval == interval)
            .map_or(due, |l| in_step(due, l.due, interval));
        let mut fans = [None; FANS];
        let mut n = 0;
        for (i, s) in sends.iter().enumerate() {
            match (s.frame, &fanout) {
                (Some(frame), Some(f)) if n < FANS => {
                    let route = self.routes.join(
                        |r| Arc::ptr_eq(&r.tx, &s.tx) && r.dst == s.dst,
                        || Route {
                            tx: s.tx.clone(),
                            dst: s.dst,
                            fanout: f.clone(),
                            picks: Vec::new(),
                        },
                    );
                    let after = s
                        .after
                        .as_ref()
                        .map(|a| self.afters.join(|b| Arc::ptr_eq(a, b), || a.clone()));
                    fans[n] = Some(Fan {
                        route,
                        frame,
                        send: i as u8,
                        after,
                    });
                    n += 1;
                }
                _ => {}
            }
        }
        let lent = Lent {
            group,
            member,
            due,
            interval,
            fans,
            sends,
            fanout,
            sent: 0,
        };
        self.next = Some(self.next.map_or(due, |n| n.min(due)));
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(lent);
                slot
            }
            None => {
                self.slots.push(Some(lent));
                self.slots.len() - 1
            }
        }
    }

    /// Takes back slot `slot`: (when its next advert is due, adverts it
    /// sent since last counted).
    pub fn take(&mut self, slot: usize) -> Option<(Instant, u64)> {
        let lent = self.slots.get_mut(slot)?.take()?;
        self.free.push(slot);
        for f in lent.fans.iter().flatten() {
            self.routes.leave(f.route);
            if let Some(a) = f.after {
                self.afters.leave(a);
            }
        }
        if let Some(f) = &lent.fanout {
            let mut f = f.lock().expect("fan-out lock");
            for i in lent.sends.iter().filter_map(|s| s.frame) {
                f.release(i);
            }
        }
        Some((lent.due, lent.sent))
    }

    /// The earliest due time, if any timer is lent.
    pub fn next_due(&self) -> Option<Instant> {
        self.next
    }

    /// Sends the adverts of every timer due at `now` and moves each on by
    /// its interval — from its due time, so the routers of one round stay
    /// in step; one that fell more than an interval behind (the loop was
    /// held up) starts again from `now`. Adverts with a fan-out frame leave
    /// as fan-out rounds, one system call each; the rest are queued on
    /// their sockets (the event loop's flush sends them, one sendmmsg per
    /// socket).
    pub fn fire(&mut self, now: Instant) {
        if self.next.is_none_or(|n| n > now) {
            return;
        }
        let mut next: Option<Instant> = None;
        for (slot, lent) in self.slots.iter_mut().enumerate() {
            let Some(lent) = lent else {
                continue;
            };
            if lent.due <= now {
                for f in lent.fans.iter().flatten() {
                    if let Some(Some((route, _))) = self.routes.slots.get_mut(usize::from(f.route))
                    {
                        route.picks.push(Pick {
                            slot: slot as u32,
                            send: f.send,
                            frame: f.frame,
                            after: f.after,
                        });
                    }
                }
                if lent.sends.len() > lent.fans.iter().flatten().count() {
                    for (i, s) in lent.sends.iter().enumerate() {
                        if !lent.fans.iter().flatten().any(|f| usize::from(f.send) == i) {
                            s.tx.queue(s.msg.clone(), s.dst, s.after.clone());
                        }
                    }
                }
                lent.sent += lent.sends.len() as u64;
                lent.due = if lent.due + lent.interval > now {
                    lent.due + lent.interval
                } else {
                    now + lent.interval
                };
            }
            next = Some(next.map_or(lent.due, |n| n.min(lent.due)));
        }
        self.next = next;
        for r in 0..self.routes.slots.len() {
            let Some(Some((route, _))) = self.routes.slots.get_mut(r) else {
                continue;
            };
            let mut picks = std::mem::take(&mut route.picks);
            for round in picks.chunks(ROUND_MAX) {
                self.send_round(r as u16, round);
            }
            if let Some(Some((route, _))) = self.routes.slots.get_mut(r) {
                picks.clear();
                route.picks = picks;
            }
        }
    }

    /// The advert `send` of the timer in slot `slot`.
    fn send_of(&self, slot: u32, send: u8) -> Option<&RoundSend> {
        self.slots
            .get(slot as usize)?
            .as_ref()?
            .sends
            .get(usize::from(send))
    }

    /// One fan-out round on route `r`: `round`'s first advert through the
    /// socket, the kernel sending the rest from it; each renewal run once
    /// when it left. A round whose frame did not leave (netfilter dropped
    /// it, the socket's buffer was full) is disarmed and its adverts are
    /// queued one by one, as without a fan-out.
    fn send_round(&mut self, r: u16, round: &[Pick]) {
        let Some(route) = self.routes.get(r) else {
            return;
        };
        let queue_each = || {
            for s in round.iter().filter_map(|p| self.send_of(p.slot, p.send)) {
                route.tx.queue(s.msg.clone(), route.dst, s.after.clone());
            }
        };
        if round.len() < 2 {
            // A round of one is an advert like any other.
            return queue_each();
        }
        let sent = {
            let mut fanout = route.fanout.lock().expect("fan-out lock");
            let first = self.send_of(round[0].slot, round[0].send);
            let nonce = fanout.arm(round.iter().map(|p| p.frame));
            let sent = first
                .ok_or_else(|| anyhow::anyhow!("the round's first advert is gone"))
                .and_then(|first| {
                    route
                        .tx
                        .send_with_id(&first.msg, route.dst, nonce, round.len())
                        .map_err(anyhow::Error::from)
                });
            if sent.is_err() {
                fanout.disarm();
            }
            sent
        };
        let Err(e) = sent else {
            let afters = round.iter().filter_map(|p| p.after);
            return run_each_once(afters.filter_map(|a| self.afters.get(a)));
        };
        queue_each();
        self.fallbacks += 1;
        if self.fallbacks.is_power_of_two() {
            let route = self.routes.get(r).expect("the route sent on");
            warn!(
                interface = route.tx.interface,
                dst = %route.dst,
                fallbacks = self.fallbacks,
                "advert fan-out round not sent ({e:#}): its adverts go one by one \
                 through the socket (counted as fanout_fallbacks in `xvrrp status`)"
            );
        }
    }

    /// (group, member, adverts sent since last counted) of every lent
    /// timer, the counts reset: `xvrrp status` adds them to the members'.
    pub fn count(&mut self) -> Vec<(usize, usize, u64)> {
        self.slots
            .iter_mut()
            .flatten()
            .map(|l| (l.group, l.member, std::mem::take(&mut l.sent)))
            .collect()
    }
}

/// The latest time at or before `due` that is a whole number of
/// `interval`s from `step`.
fn in_step(due: Instant, step: Instant, interval: Duration) -> Instant {
    if interval.is_zero() {
        return due;
    }
    let n = interval.as_nanos();
    if step >= due {
        let back = (step - due).as_nanos().div_ceil(n) * n;
        step - Duration::from_nanos(back as u64)
    } else {
        let ahead = (due - step).as_nanos() / n * n;
        step + Duration::from_nanos(ahead as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx() -> Arc<AdvertTx> {
        Arc::new(AdvertTx::for_test())
    }

    /// Each lent timer fires at its due time and then every interval, on
    /// the same step however late the loop woke (within an interval); one
    /// left further behind starts again from the wake; a taken slot fires
    /// no more and is used again.
    #[test]
    fn lent_timers_fire_on_their_own_step() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let tx = tx();
        let send = || RoundSend {
            tx: tx.clone(),
            msg: Arc::from(&b"advert"[..]),
            dst: "224.0.0.18".parse().unwrap(),
            after: None,
            frame: None,
        };
        let mut r = Rounds::default();
        let a = r.lend(0, 0, t0 + ms(10), ms(10), vec![send()], None);
        let b = r.lend(1, 0, t0 + ms(15), ms(20), vec![send(), send()], None);
        assert_eq!(r.next_due(), Some(t0 + ms(10)));
        r.fire(t0 + ms(9));
        assert_eq!(tx.queued(), 0, "nothing due yet");
        r.fire(t0 + ms(11));
        assert_eq!(tx.queued(), 1);
        assert_eq!(r.next_due(), Some(t0 + ms(15)));
        r.fire(t0 + ms(16));
        assert_eq!(tx.queued(), 3);
        // a is due at 20 ms: a wake at 22 keeps its step (next at 30).
        assert_eq!(r.next_due(), Some(t0 + ms(20)));
        r.fire(t0 + ms(22));
        assert_eq!(tx.queued(), 4);
        // b (due at 35) is taken back: due then, two adverts counted.
        assert_eq!(r.take(b), Some((t0 + ms(35), 2)));
        assert!(r.take(b).is_none(), "taken once");
        assert_eq!(r.count(), vec![(0, 0, 2)]);
        assert_eq!(r.count(), vec![(0, 0, 0)], "counted once");
        // a, due at 30, fires at 75: far behind, it goes on from 75.
        r.fire(t0 + ms(75));
        assert_eq!(tx.queued(), 5);
        assert_eq!(r.next_due(), Some(t0 + ms(85)));
        let c = r.lend(2, 1, t0 + ms(93), ms(10), vec![send()], None);
        assert_eq!(c, b, "the free slot is used again");
        assert_eq!(r.take(a).map(|(due, _)| due), Some(t0 + ms(85)));
        // c was brought into a's step (85 + 10 k): due at 85, not 93.
        assert_eq!(r.take(c).map(|(due, _)| due), Some(t0 + ms(85)));
    }

    /// Routes and renewals are shared by the timers lent on them: the same
    /// item joined twice is one slot with two users, it goes when the last
    /// leaves and its slot is used again.
    #[test]
    fn shared_items_are_counted_by_their_users() {
        let mut t: Shared<&str> = Shared::default();
        let a = t.join(|x| *x == "eth0", || "eth0");
        assert_eq!(t.join(|x| *x == "eth0", || "eth0"), a, "joined, not added");
        let b = t.join(|x| *x == "eth1", || "eth1");
        assert_ne!(a, b);
        t.leave(a);
        assert_eq!(t.get(a), Some(&"eth0"), "one user left");
        t.leave(a);
        assert_eq!(t.get(a), None, "gone with its last user");
        assert_eq!(t.get(b), Some(&"eth1"));
        assert_eq!(
            t.join(|x| *x == "eth2", || "eth2"),
            a,
            "the free slot is used again"
        );
    }

    /// A timer lent beside another of the same interval joins its step,
    /// earlier by less than an interval; another interval keeps its own.
    #[test]
    fn a_lent_timer_joins_the_step_of_its_interval() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(in_step(t0 + ms(37), t0 + ms(10), ms(10)), t0 + ms(30));
        assert_eq!(in_step(t0 + ms(30), t0 + ms(10), ms(10)), t0 + ms(30));
        assert_eq!(in_step(t0 + ms(12), t0 + ms(50), ms(10)), t0 + ms(10));
        assert_eq!(in_step(t0 + ms(10), t0 + ms(50), ms(10)), t0 + ms(10));
        let mut r = Rounds::default();
        let a = r.lend(0, 0, t0 + ms(1000), ms(1000), vec![], None);
        let b = r.lend(1, 0, t0 + ms(1700), ms(1000), vec![], None);
        let c = r.lend(2, 0, t0 + ms(1700), ms(300), vec![], None);
        assert_eq!(r.take(b).map(|(d, _)| d), Some(t0 + ms(1000)));
        assert_eq!(r.take(c).map(|(d, _)| d), Some(t0 + ms(1700)));
        assert_eq!(r.take(a).map(|(d, _)| d), Some(t0 + ms(1000)));
    }
}
