//! A steady Active's periodic adverts, timed in one table (docs/design.md
//! rule 3). Each Active lends its Adver_Timer here (`Router::
//! lend_adver_timer`) after every input it was fed and gets it back before
//! the next (`Daemon::feed`), so between inputs a round of 255 routers is a
//! walk over this small table — due time, interval, bytes already built —
//! not a call into each router's election and its member: those sit in
//! memory the round would otherwise bring back into the cache one
//! instance at a time.

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

/// A lent Adver_Timer.
struct Lent {
    group: usize,
    member: usize,
    due: Instant,
    interval: Duration,
    sends: Vec<RoundSend>,
    /// The fan-out holding the sends' frames.
    fanout: Option<SharedFanout>,
    /// Adverts queued since it was lent or last counted (the member's
    /// `stats.sent` takes them: `Rounds::count`).
    sent: u64,
}

/// The adverts of one firing that one fan-out round can carry: same
/// socket, same destination.
struct Batch {
    tx: Arc<AdvertTx>,
    dst: IpAddr,
    fanout: SharedFanout,
    adverts: Vec<Fanned>,
}

/// An advert of a fan-out round: its frame, its bytes (for the round's
/// first, or to go alone), what renews the lease once it left.
struct Fanned {
    frame: u16,
    msg: Arc<[u8]>,
    after: Option<AfterSent>,
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
    /// This firing's fan-out rounds (the list's room is kept between
    /// firings).
    batches: Vec<Batch>,
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
        let lent = Lent {
            group,
            member,
            due,
            interval,
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
        let batches = &mut self.batches;
        for lent in self.slots.iter_mut().flatten() {
            if lent.due <= now {
                for s in &lent.sends {
                    match (s.frame, &lent.fanout) {
                        (Some(frame), Some(fanout)) => {
                            let at = batches
                                .iter()
                                .position(|b| Arc::ptr_eq(&b.tx, &s.tx) && b.dst == s.dst);
                            let at = at.unwrap_or_else(|| {
                                batches.push(Batch {
                                    tx: s.tx.clone(),
                                    dst: s.dst,
                                    fanout: fanout.clone(),
                                    adverts: Vec::new(),
                                });
                                batches.len() - 1
                            });
                            batches[at].adverts.push(Fanned {
                                frame,
                                msg: s.msg.clone(),
                                after: s.after.clone(),
                            });
                        }
                        _ => s.tx.queue(s.msg.clone(), s.dst, s.after.clone()),
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
        let batches = std::mem::take(&mut self.batches);
        for b in &batches {
            for chunk in b.adverts.chunks(ROUND_MAX) {
                self.send_round(b, chunk);
            }
        }
        self.batches = batches;
        self.batches.clear();
    }

    /// One fan-out round: `chunk`'s first advert through the socket, the
    /// kernel sending the rest from it; each lease renewed once when it
    /// left. A round whose frame did not leave (netfilter dropped it, the
    /// socket's buffer was full) is disarmed and its adverts are queued one
    /// by one, as without a fan-out.
    fn send_round(&mut self, b: &Batch, chunk: &[Fanned]) {
        let queue_each = || {
            for a in chunk {
                b.tx.queue(a.msg.clone(), b.dst, a.after.clone());
            }
        };
        if chunk.len() < 2 {
            // A round of one is an advert like any other.
            return queue_each();
        }
        let frames: Vec<u16> = chunk.iter().map(|a| a.frame).collect();
        let sent = {
            let mut fanout = b.fanout.lock().expect("fan-out lock");
            let sent = fanout.arm(&frames).and_then(|nonce| {
                b.tx.send_with_id(&chunk[0].msg, b.dst, nonce, chunk.len())
                    .map_err(anyhow::Error::from)
            });
            if sent.is_err() {
                fanout.disarm();
            }
            sent
        };
        match sent {
            Ok(()) => run_each_once(chunk.iter().filter_map(|a| a.after.as_ref())),
            Err(e) => {
                self.fallbacks += 1;
                if self.fallbacks.is_power_of_two() {
                    warn!(
                        interface = b.tx.interface,
                        dst = %b.dst,
                        fallbacks = self.fallbacks,
                        "advert fan-out round not sent ({e:#}): its adverts go one by one \
                         through the socket (counted as fanout_fallbacks in `xvrrp status`)"
                    );
                }
                queue_each();
            }
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
