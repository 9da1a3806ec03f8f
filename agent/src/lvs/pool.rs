//! The pool logic of one virtual server, sans-IO like the election: checker
//! results in; real-server states, weights, quorum and what to run out.
//! Each rule is keepalived's (check/check_api.c, check/ipwrapper.c), noted
//! where it is applied.

use std::time::Duration;

/// One checker's state machine (keepalived's `tcp_epilog` and its twins in
/// the other checkers): after a result, whether the checker changed state
/// and how long until it runs again.
#[derive(Debug, Clone)]
pub struct CheckerState {
    pub up: bool,
    retry_it: u32,
    retry: u32,
    delay_loop: Duration,
    delay_before_retry: Duration,
}

impl CheckerState {
    /// `alpha` starts the checker failed. Without it keepalived presets the
    /// retry count to `retry`: "one failure is enough initially".
    pub fn new(
        alpha: bool,
        retry: u32,
        delay_loop: Duration,
        delay_before_retry: Duration,
    ) -> Self {
        CheckerState {
            up: !alpha,
            retry_it: if alpha { 0 } else { retry },
            retry,
            delay_loop,
            delay_before_retry,
        }
    }

    /// A check's result: `Some(up)` when the checker changes state, and the
    /// delay before the next check. A failure while retries remain waits
    /// `delay_before_retry` and changes nothing; the failure that uses the
    /// last one (retry+1 in a row) takes an up checker down. One success
    /// brings it up.
    pub fn result(&mut self, ok: bool) -> (Option<bool>, Duration) {
        if ok || self.retry_it >= self.retry {
            self.retry_it = 0;
            // keepalived reports the first result either way; the pool only
            // needs to hear of a change.
            let change = (self.up != ok).then_some(ok);
            self.up = ok;
            (change, self.delay_loop)
        } else {
            self.retry_it += 1;
            (None, self.delay_before_retry)
        }
    }
}

/// A real server as the pool sees it.
#[derive(Debug, Clone)]
pub struct Real {
    pub weight: u32,
    /// MISC_CHECK misc_dynamic: the weight the script's exit code set.
    pub dynamic_weight: Option<u32>,
    pub inhibit_on_failure: bool,
    /// Per checker: currently failed.
    failed: Vec<bool>,
}

impl Real {
    pub fn new(weight: u32, inhibit_on_failure: bool, checkers_alpha: &[bool]) -> Real {
        Real {
            weight,
            dynamic_weight: None,
            inhibit_on_failure,
            failed: checkers_alpha.to_vec(),
        }
    }

    /// Up when none of its checkers is failed (keepalived: a real goes down
    /// with its first failed checker and up with its last recovering one).
    pub fn alive(&self) -> bool {
        !self.failed.iter().any(|f| *f)
    }

    pub fn effective_weight(&self) -> u32 {
        self.dynamic_weight.unwrap_or(self.weight)
    }
}

/// What the pool asks the outside world to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    RealUp(usize),
    RealDown(usize),
    QuorumUp,
    QuorumDown,
}

/// Where new connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destinations {
    /// Reals by index with their weight; an inhibited failed real is listed
    /// at weight 0 (no new connections, as IPVS's quiescent destination).
    Reals(Vec<(usize, u32)>),
    /// Quorum lost and a sorry server configured: only it.
    Sorry,
}

#[derive(Debug, Clone)]
pub struct Pool {
    pub reals: Vec<Real>,
    pub quorum: u32,
    pub hysteresis: u32,
    pub has_sorry: bool,
    pub quorum_up: bool,
}

impl Pool {
    /// The pool at start: reals whose checkers start failed (alpha) are
    /// down; quorum is judged at once (keepalived adds the sorry server at
    /// start when the alive weight is below quorum).
    pub fn new(reals: Vec<Real>, quorum: u32, hysteresis: u32, has_sorry: bool) -> Pool {
        let mut p = Pool {
            reals,
            quorum,
            hysteresis,
            has_sorry,
            quorum_up: true,
        };
        p.quorum_up = p.live_weight() >= p.quorum;
        p
    }

    /// Σ effective weight of the alive reals (`weigh_live_realservers`).
    pub fn live_weight(&self) -> u32 {
        self.reals
            .iter()
            .filter(|r| r.alive())
            .map(Real::effective_weight)
            .sum()
    }

    /// A checker of real `r` went up or down.
    pub fn checker(&mut self, r: usize, c: usize, up: bool) -> Vec<Event> {
        let Some(real) = self.reals.get_mut(r) else {
            return Vec::new();
        };
        if c >= real.failed.len() {
            return Vec::new();
        }
        let was = real.alive();
        real.failed[c] = !up;
        let now = real.alive();
        let mut events = Vec::new();
        if was != now {
            events.push(if now {
                Event::RealUp(r)
            } else {
                Event::RealDown(r)
            });
        }
        events.extend(self.judge_quorum());
        events
    }

    /// misc_dynamic: the script set the real's weight.
    pub fn set_weight(&mut self, r: usize, weight: u32) -> Vec<Event> {
        if let Some(real) = self.reals.get_mut(r) {
            real.dynamic_weight = Some(weight);
        }
        self.judge_quorum()
    }

    /// keepalived's `update_quorum_state`: gained at quorum + hysteresis,
    /// lost below quorum - hysteresis or when nothing is alive.
    fn judge_quorum(&mut self) -> Vec<Event> {
        let w = self.live_weight();
        if !self.quorum_up && w >= self.quorum + self.hysteresis {
            self.quorum_up = true;
            vec![Event::QuorumUp]
        } else if self.quorum_up && (w + self.hysteresis < self.quorum || w == 0) {
            self.quorum_up = false;
            vec![Event::QuorumDown]
        } else {
            Vec::new()
        }
    }

    pub fn destinations(&self) -> Destinations {
        if !self.quorum_up && self.has_sorry {
            return Destinations::Sorry;
        }
        Destinations::Reals(
            self.reals
                .iter()
                .enumerate()
                .filter_map(|(i, r)| match (r.alive(), r.inhibit_on_failure) {
                    (true, _) => Some((i, r.effective_weight())),
                    (false, true) => Some((i, 0)),
                    (false, false) => None,
                })
                .collect(),
        )
    }
}

/// The slots of a virtual server's table: `slots` entries naming reals, each
/// real in proportion to its weight, interleaved (smooth weighted round
/// robin) so that consecutive connections, picked by a counter, go to the
/// reals in turn. Exact for any total weight dividing `slots`.
pub fn slot_table(weights: &[(usize, u32)], slots: usize) -> Vec<usize> {
    let live: Vec<(usize, i64)> = weights
        .iter()
        .filter(|(_, w)| *w > 0)
        .map(|(i, w)| (*i, i64::from(*w)))
        .collect();
    if live.is_empty() {
        return Vec::new();
    }
    let total: i64 = live.iter().map(|(_, w)| w).sum();
    let mut current = vec![0i64; live.len()];
    let mut out = Vec::with_capacity(slots);
    for _ in 0..slots {
        let mut best = 0;
        for (k, (_, w)) in live.iter().enumerate() {
            current[k] += w;
            if current[k] > current[best] {
                best = k;
            }
        }
        current[best] -= total;
        out.push(live[best].0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOP: Duration = Duration::from_secs(6);
    const RETRY: Duration = Duration::from_secs(1);

    #[test]
    fn a_checker_goes_down_after_retry_plus_one_failures_and_up_on_one_success() {
        let mut c = CheckerState::new(false, 2, LOOP, RETRY);
        // A first success: no change (it started up).
        assert_eq!(c.result(true), (None, LOOP));
        // Two failures use the two retries, each after delay_before_retry.
        assert_eq!(c.result(false), (None, RETRY));
        assert_eq!(c.result(false), (None, RETRY));
        // The third in a row takes it down.
        assert_eq!(c.result(false), (Some(false), LOOP));
        assert!(!c.up);
        // One success brings it back.
        assert_eq!(c.result(true), (Some(true), LOOP));
        // A success in between resets the count.
        assert_eq!(c.result(false), (None, RETRY));
        assert_eq!(c.result(true), (None, LOOP));
        assert_eq!(c.result(false), (None, RETRY));
        assert_eq!(c.result(false), (None, RETRY));
        assert_eq!(c.result(false), (Some(false), LOOP));
    }

    #[test]
    fn without_alpha_one_failure_is_enough_initially() {
        let mut c = CheckerState::new(false, 3, LOOP, RETRY);
        assert_eq!(c.result(false), (Some(false), LOOP));
    }

    #[test]
    fn alpha_starts_failed_and_one_success_brings_it_up() {
        let mut c = CheckerState::new(true, 1, LOOP, RETRY);
        assert!(!c.up);
        assert_eq!(c.result(false), (None, RETRY));
        assert_eq!(c.result(false), (None, LOOP));
        assert_eq!(c.result(true), (Some(true), LOOP));
    }

    fn pool(weights: &[u32], quorum: u32, hysteresis: u32, sorry: bool) -> Pool {
        Pool::new(
            weights
                .iter()
                .map(|w| Real::new(*w, false, &[false]))
                .collect(),
            quorum,
            hysteresis,
            sorry,
        )
    }

    #[test]
    fn a_real_is_up_when_all_its_checkers_are() {
        let mut p = Pool::new(vec![Real::new(1, false, &[false, false])], 1, 0, false);
        assert_eq!(
            p.checker(0, 0, false),
            vec![Event::RealDown(0), Event::QuorumDown]
        );
        // The second checker failing too changes nothing more.
        assert_eq!(p.checker(0, 1, false), vec![]);
        // Up only when the last failing one recovers.
        assert_eq!(p.checker(0, 0, true), vec![]);
        assert_eq!(
            p.checker(0, 1, true),
            vec![Event::RealUp(0), Event::QuorumUp]
        );
    }

    #[test]
    fn a_failed_real_is_removed_or_kept_at_weight_zero_with_inhibit_on_failure() {
        let mut p = Pool::new(
            vec![
                Real::new(2, false, &[false]),
                Real::new(3, true, &[false]),
                Real::new(1, false, &[false]),
            ],
            1,
            0,
            false,
        );
        assert_eq!(
            p.destinations(),
            Destinations::Reals(vec![(0, 2), (1, 3), (2, 1)])
        );
        p.checker(0, 0, false);
        p.checker(1, 0, false);
        assert_eq!(p.destinations(), Destinations::Reals(vec![(1, 0), (2, 1)]));
    }

    #[test]
    fn alpha_reals_start_out_of_the_pool() {
        let p = Pool::new(
            vec![Real::new(1, false, &[true]), Real::new(1, false, &[false])],
            1,
            0,
            false,
        );
        assert_eq!(p.destinations(), Destinations::Reals(vec![(1, 1)]));
    }

    #[test]
    fn quorum_with_hysteresis_switches_to_the_sorry_server_and_back() {
        // Four reals of weight 1, quorum 3, hysteresis 1: lost below 2,
        // gained at 4.
        let mut p = pool(&[1, 1, 1, 1], 3, 1, true);
        assert!(p.quorum_up);
        assert_eq!(p.checker(0, 0, false), vec![Event::RealDown(0)]); // 3 alive
        assert_eq!(p.checker(1, 0, false), vec![Event::RealDown(1)]); // 2: not below 3-1
        assert_eq!(
            p.checker(2, 0, false),
            vec![Event::RealDown(2), Event::QuorumDown]
        ); // 1
        assert_eq!(p.destinations(), Destinations::Sorry);
        assert_eq!(p.checker(2, 0, true), vec![Event::RealUp(2)]); // 2: below 3+1
        assert_eq!(p.checker(1, 0, true), vec![Event::RealUp(1)]); // 3: still below 4
        assert_eq!(p.destinations(), Destinations::Sorry);
        assert_eq!(
            p.checker(0, 0, true),
            vec![Event::RealUp(0), Event::QuorumUp]
        ); // 4
        assert_eq!(
            p.destinations(),
            Destinations::Reals(vec![(0, 1), (1, 1), (2, 1), (3, 1)])
        );
    }

    #[test]
    fn quorum_lost_when_nothing_is_alive_even_at_quorum_zero_hysteresis() {
        let mut p = pool(&[1], 1, 0, false);
        assert_eq!(
            p.checker(0, 0, false),
            vec![Event::RealDown(0), Event::QuorumDown]
        );
        // Without a sorry server the pool stays as the checkers say.
        assert_eq!(p.destinations(), Destinations::Reals(vec![]));
    }

    #[test]
    fn quorum_starts_down_when_the_alive_weight_is_short() {
        let p = Pool::new(
            vec![Real::new(1, false, &[true]), Real::new(1, false, &[false])],
            2,
            0,
            true,
        );
        assert!(!p.quorum_up);
        assert_eq!(p.destinations(), Destinations::Sorry);
    }

    #[test]
    fn a_dynamic_weight_counts_toward_quorum() {
        let mut p = pool(&[1, 1], 2, 0, true);
        assert_eq!(p.set_weight(0, 0), vec![Event::QuorumDown]);
        assert_eq!(p.set_weight(0, 5), vec![Event::QuorumUp]);
        assert_eq!(p.destinations(), Destinations::Reals(vec![(0, 5), (1, 1)]));
    }

    #[test]
    fn the_slot_table_follows_the_weights_interleaved() {
        let t = slot_table(&[(0, 1), (1, 1), (2, 1)], 2520);
        assert_eq!(&t[..6], &[0, 1, 2, 0, 1, 2]);
        let t = slot_table(&[(0, 2), (1, 1)], 2520);
        let count = |i| t.iter().filter(|s| **s == i).count();
        assert_eq!((count(0), count(1)), (1680, 840));
        // Consecutive picks interleave: never three of the same in a row.
        assert!(t.windows(3).all(|w| !(w[0] == w[1] && w[1] == w[2])));
        // Weight 0 gets no slot; no weight, no table.
        assert_eq!(slot_table(&[(0, 0), (1, 4)], 4), vec![1, 1, 1, 1]);
        assert!(slot_table(&[(0, 0)], 4).is_empty());
    }
}
