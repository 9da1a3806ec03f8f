//! A simulated LAN (quinn-proto's Pair::step idea): N routers for one VRID,
//! the clock stepped to the earliest deadline or delivery, per-link delay
//! and loss, partitions and heals. Properties checked with proptest.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use proptest::prelude::*;

use super::super::*;
use crate::wire::vrrp::Repr;

struct Node {
    router: Router,
    up: bool,
    transitions: u32,
}

pub struct Lan {
    nodes: Vec<Node>,
    pub now: Instant,
    /// (time, seq) -> (to, advert)
    queue: BTreeMap<(Instant, u64), (usize, Received)>,
    seq: u64,
    delay: Duration,
    /// Loss probability in 1/1000.
    loss_permille: u32,
    /// blocked[i][j]: i's adverts do not reach j.
    blocked: Vec<Vec<bool>>,
    rng: u64,
}

fn addr(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + i as u8))
}

impl Lan {
    pub fn new(
        priorities: &[u8],
        interval_cs: u16,
        delay: Duration,
        loss_permille: u32,
        seed: u64,
    ) -> Lan {
        let now = Instant::now();
        let nodes = priorities
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut c = Config::new(
                    "VI",
                    7,
                    addr(i),
                    vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 200))],
                );
                c.priority = *p;
                c.interval_cs = interval_cs;
                c.garp.delay = Duration::ZERO;
                Node {
                    router: Router::new(c),
                    up: false,
                    transitions: 0,
                }
            })
            .collect();
        let n = priorities.len();
        Lan {
            nodes,
            now,
            queue: BTreeMap::new(),
            seq: 0,
            delay,
            loss_permille,
            blocked: vec![vec![false; n]; n],
            rng: seed | 1,
        }
    }

    fn random(&mut self) -> u32 {
        // xorshift64: deterministic per seed.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % 1000) as u32
    }

    pub fn start(&mut self, i: usize) {
        self.nodes[i].up = true;
        let a = self.nodes[i].router.handle(self.now, Input::Startup);
        self.apply(i, a);
    }

    pub fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.start(i);
        }
    }

    /// The router dies without a word (kill -9).
    pub fn crash(&mut self, i: usize) {
        self.nodes[i].up = false;
        self.nodes[i].router = Router::new(self.nodes[i].router.config().clone());
    }

    /// Graceful stop: priority 0 goes out.
    pub fn stop(&mut self, i: usize) {
        let a = self.nodes[i].router.handle(self.now, Input::Shutdown);
        self.apply(i, a);
        self.nodes[i].up = false;
    }

    pub fn partition_all(&mut self, on: bool) {
        for row in &mut self.blocked {
            for b in row.iter_mut() {
                *b = on;
            }
        }
    }

    fn apply(&mut self, from: usize, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::SendAdvert(repr) => self.broadcast(from, Repr::clone(&repr)),
                Action::Transition { .. } => self.nodes[from].transitions += 1,
                _ => {}
            }
        }
    }

    fn broadcast(&mut self, from: usize, advert: Repr) {
        for to in 0..self.nodes.len() {
            if to == from || self.blocked[from][to] {
                continue;
            }
            if self.random() < self.loss_permille {
                continue;
            }
            self.seq += 1;
            let rx = Received {
                src: addr(from),
                ttl: 255,
                unicast: false,
                advert: advert.clone(),
            };
            self.queue
                .insert((self.now + self.delay, self.seq), (to, rx));
        }
    }

    /// Advances to the next event (a delivery or a deadline) no later than `until`.
    fn step(&mut self, until: Instant) -> bool {
        let next_delivery = self.queue.keys().next().map(|k| k.0);
        let next_deadline = self
            .nodes
            .iter()
            .filter(|n| n.up)
            .filter_map(|n| n.router.next_deadline())
            .min();
        let Some(t) = [next_delivery, next_deadline].into_iter().flatten().min() else {
            return false;
        };
        if t > until {
            return false;
        }
        self.now = self.now.max(t);
        if next_delivery == Some(t) {
            let key = *self.queue.keys().next().unwrap();
            let (to, rx) = self.queue.remove(&key).unwrap();
            if self.nodes[to].up {
                let a = self.nodes[to].router.handle(self.now, Input::Advert(rx));
                self.apply(to, a);
            }
        } else {
            for i in 0..self.nodes.len() {
                if self.nodes[i].up && self.nodes[i].router.next_deadline().is_some_and(|d| d <= t)
                {
                    let a = self.nodes[i].router.handle(self.now, Input::Timeout);
                    self.apply(i, a);
                }
            }
        }
        true
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        for _ in 0..1_000_000 {
            if !self.step(until) {
                break;
            }
        }
        self.now = until;
    }

    /// Runs until `cond` holds or `d` passes; the time it took.
    pub fn run_until(
        &mut self,
        d: Duration,
        mut cond: impl FnMut(&Lan) -> bool,
    ) -> Option<Duration> {
        let start = self.now;
        let until = start + d;
        for _ in 0..1_000_000 {
            if cond(self) {
                return Some(self.now - start);
            }
            if !self.step(until) {
                break;
            }
        }
        cond(self).then(|| self.now - start)
    }

    pub fn actives(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].up && self.nodes[i].router.state() == State::Active)
            .collect()
    }

    pub fn transitions(&self) -> u32 {
        self.nodes.iter().map(|n| n.transitions).sum()
    }

    pub fn down_interval(&self, i: usize) -> Duration {
        let r = &self.nodes[i].router;
        timing::active_down(r.priority(), r.config().interval_cs, 3)
    }

    pub fn interval(&self) -> Duration {
        timing::interval(self.nodes[0].router.config().interval_cs)
    }

    /// The router that should win: highest priority, then highest address.
    pub fn expected_winner(&self, among: &[usize]) -> usize {
        *among
            .iter()
            .max_by_key(|&&i| (self.nodes[i].router.priority(), i))
            .unwrap()
    }
}

fn lan_strategy() -> impl Strategy<Value = (Vec<u8>, u16, u64, u64)> {
    (
        proptest::collection::vec(1u8..=254, 2..6),
        prop_oneof![Just(10u16), Just(100u16), 1u16..=300],
        0u64..20, // one-way delay in ms
        any::<u64>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Everyone hears everyone: exactly one Active at steady state, the best one.
    #[test]
    fn one_active_at_steady_state((prios, int, delay, seed) in lan_strategy()) {
        let mut lan = Lan::new(&prios, int, Duration::from_millis(delay), 0, seed);
        lan.start_all();
        lan.run_for(lan.down_interval(0) * 4 + Duration::from_millis(delay * 10));
        let all: Vec<usize> = (0..prios.len()).collect();
        prop_assert_eq!(lan.actives(), vec![lan.expected_winner(&all)]);
        // and it stays so
        let t = lan.transitions();
        lan.run_for(lan.interval() * 20);
        prop_assert_eq!(lan.actives().len(), 1);
        prop_assert_eq!(lan.transitions(), t, "no flapping at steady state");
    }

    /// After the Active dies, a new one within Active_Down_Interval + one interval.
    #[test]
    fn takeover_after_a_crash((prios, int, delay, seed) in lan_strategy()) {
        let mut lan = Lan::new(&prios, int, Duration::from_millis(delay), 0, seed);
        lan.start_all();
        lan.run_for(lan.down_interval(0) * 4 + Duration::from_millis(delay * 10));
        let old = lan.actives()[0];
        lan.crash(old);
        let rest: Vec<usize> = (0..prios.len()).filter(|&i| i != old).collect();
        let winner = lan.expected_winner(&rest);
        let bound = lan.down_interval(winner) + lan.interval() + Duration::from_millis(delay);
        let took = lan.run_until(bound * 2, |l| l.actives().len() == 1 && l.actives()[0] != old);
        prop_assert!(took.is_some(), "no new Active");
        prop_assert!(took.unwrap() <= bound, "took {:?} > {:?}", took, bound);
        lan.run_for(lan.interval() * 10 + Duration::from_millis(delay * 4));
        prop_assert_eq!(lan.actives(), vec![winner]);
    }

    /// A graceful stop (priority 0) hands over after about Skew_Time.
    #[test]
    fn graceful_stop_hands_over_after_skew((prios, int, delay, seed) in lan_strategy()) {
        let mut lan = Lan::new(&prios, int, Duration::from_millis(delay), 0, seed);
        lan.start_all();
        lan.run_for(lan.down_interval(0) * 4 + Duration::from_millis(delay * 10));
        let old = lan.actives()[0];
        lan.stop(old);
        let rest: Vec<usize> = (0..prios.len()).filter(|&i| i != old).collect();
        let winner = lan.expected_winner(&rest);
        let skew = timing::skew(lan.nodes[winner].router.priority(), int);
        let bound = skew + Duration::from_millis(2 * delay + 1);
        let took = lan.run_until(bound * 4 + lan.interval(), |l| !l.actives().is_empty());
        prop_assert!(took.is_some_and(|t| t <= bound), "took {:?} > {:?}", took, bound);
    }

    /// Partition: everyone becomes Active; heal: one Active within one interval.
    #[test]
    fn partition_heals_to_one_active((prios, int, delay, seed) in lan_strategy()) {
        let mut lan = Lan::new(&prios, int, Duration::from_millis(delay), 0, seed);
        lan.start_all();
        lan.run_for(lan.down_interval(0) * 4);
        lan.partition_all(true);
        lan.run_for(lan.down_interval(0) * 3);
        prop_assert_eq!(lan.actives().len(), prios.len(), "split brain while partitioned");
        lan.partition_all(false);
        let bound = lan.interval() + Duration::from_millis(3 * delay + 1);
        let took = lan.run_until(bound * 4, |l| l.actives().len() == 1);
        prop_assert!(took.is_some_and(|t| t <= bound), "took {:?} > {:?}", took, bound);
        let all: Vec<usize> = (0..prios.len()).collect();
        prop_assert_eq!(lan.actives(), vec![lan.expected_winner(&all)]);
    }

    /// Equal priorities: the address breaks the tie and nothing flaps, even
    /// with some loss.
    #[test]
    fn equal_priorities_never_flap(n in 2usize..6, prio in 1u8..=254, seed in any::<u64>()) {
        let prios = vec![prio; n];
        let mut lan = Lan::new(&prios, 100, Duration::from_millis(1), 0, seed);
        lan.start_all();
        lan.run_for(Duration::from_secs(10));
        prop_assert_eq!(lan.actives(), vec![n - 1], "highest address wins");
        let t = lan.transitions();
        lan.run_for(Duration::from_secs(60));
        prop_assert_eq!(lan.transitions(), t);
    }
}

#[test]
fn light_loss_keeps_one_active() {
    // 5 % loss: a Backup needs 3 consecutive losses plus skew to fire, rare
    // but possible; the property is that the LAN always returns to one Active.
    let mut lan = Lan::new(&[200, 100, 50], 100, Duration::from_millis(1), 50, 42);
    lan.start_all();
    lan.run_for(Duration::from_secs(5));
    for _ in 0..100 {
        lan.run_for(Duration::from_secs(1));
        let took = lan.run_until(Duration::from_secs(2), |l| l.actives().len() == 1);
        assert!(
            took.is_some(),
            "not exactly one Active for 2 s: {:?}",
            lan.actives()
        );
    }
    assert_eq!(lan.actives(), vec![0]);
}
