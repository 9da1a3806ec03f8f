//! One test per RFC rule, on the pure state machine with virtual time.

mod sim;

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use super::*;
use crate::wire::vrrp::{Auth, Repr, Version};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cfg(prio: u8) -> Config {
    let mut c = Config::new("VI_1", 51, ip("10.0.0.1"), vec![ip("10.0.0.100")]);
    c.priority = prio;
    c
}

fn advert_from(src: &str, prio: u8, interval_cs: u16) -> Input {
    Input::Advert(Received {
        src: ip(src),
        ttl: 255,
        unicast: false,
        advert: Repr {
            version: Version::V3,
            vrid: 51,
            priority: prio,
            interval_cs,
            auth: Auth::None,
            addresses: vec![ip("10.0.0.100")],
        },
    })
}

fn started(prio: u8) -> (Router, Instant) {
    let t0 = Instant::now();
    let mut r = Router::new(cfg(prio));
    let _ = r.handle(t0, Input::Startup);
    (r, t0)
}

/// The adverts sent, in order (shared: the same one again is the same `Arc`).
fn sent_adverts(actions: &[Action]) -> Vec<std::sync::Arc<Repr>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendAdvert(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn sent_priorities(actions: &[Action]) -> Vec<u8> {
    sent_adverts(actions).iter().map(|r| r.priority).collect()
}

fn transitions(actions: &[Action]) -> Vec<State> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Transition { to, .. } => Some(*to),
            _ => None,
        })
        .collect()
}

/// Runs timeouts until `until`, collecting actions.
fn run_until(r: &mut Router, until: Instant) -> Vec<Action> {
    let mut out = Vec::new();
    for _ in 0..100_000 {
        match r.next_deadline() {
            Some(t) if t <= until => out.extend(r.handle(t, Input::Timeout)),
            _ => break,
        }
    }
    out
}

#[test]
fn rfc9568_6_4_1_owner_goes_active_at_once_in_keepalived_order() {
    let t0 = Instant::now();
    let mut r = Router::new(cfg(255));
    let a = r.handle(t0, Input::Startup);
    assert_eq!(r.state(), State::Active);
    // send advert -> VIPs -> dataplane -> GARP burst -> notify
    let kinds: Vec<&str> = a
        .iter()
        .map(|a| match a {
            Action::Transition { .. } => "transition",
            Action::SendAdvert(_) => "advert",
            Action::AddVips => "vips",
            Action::Dataplane { .. } => "dataplane",
            Action::SendGarp => "garp",
            Action::Notify { .. } => "notify",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "transition",
            "advert",
            "vips",
            "dataplane",
            "garp",
            "garp",
            "garp",
            "garp",
            "garp",
            "notify"
        ]
    );
    assert_eq!(sent_priorities(&a), [255]);
    assert_eq!(r.next_deadline(), Some(t0 + Duration::from_secs(1)));
}

#[test]
fn rfc9568_6_4_1_non_owner_starts_backup_with_active_down_timer() {
    let (r, t0) = started(100);
    assert_eq!(r.state(), State::Backup);
    assert_eq!(
        r.next_deadline(),
        Some(t0 + timing::active_down(100, 100, 3))
    );
}

#[test]
fn rfc9568_6_4_2_active_down_timer_expiry_makes_the_backup_active() {
    let (mut r, t0) = started(100);
    let a = run_until(&mut r, t0 + Duration::from_secs(4));
    assert_eq!(transitions(&a), [State::Active]);
    assert!(a.iter().any(|x| matches!(
        x,
        Action::Transition {
            reason: Reason::ActiveDown,
            ..
        }
    )));
    assert_eq!(r.state(), State::Active);
}

#[test]
fn rfc9568_6_4_2_backup_accepts_higher_or_equal_and_resets_timer() {
    let (mut r, t0) = started(100);
    let t1 = t0 + Duration::from_secs(3);
    let _ = r.handle(t1, advert_from("10.0.0.2", 100, 100));
    assert_eq!(
        r.next_deadline(),
        Some(t1 + timing::active_down(100, 100, 3))
    );
    assert_eq!(r.active_router(), Some((ip("10.0.0.2"), 100)));
    let t2 = t1 + Duration::from_secs(3);
    let _ = r.handle(t2, advert_from("10.0.0.2", 200, 100));
    assert_eq!(
        r.next_deadline(),
        Some(t2 + timing::active_down(100, 100, 3))
    );
    assert_eq!(r.state(), State::Backup);
}

#[test]
fn rfc9568_6_4_2_backup_learns_the_active_adver_interval() {
    let (mut r, t0) = started(100);
    let a = r.handle(t0, advert_from("10.0.0.2", 200, 10));
    assert_eq!(r.active_interval_cs(), 10);
    assert!(a.contains(&Action::IntervalLearned {
        from: ip("10.0.0.2"),
        interval_cs: 10
    }));
    // Active_Down_Interval is recomputed from the learned 100 ms.
    assert_eq!(
        r.next_deadline(),
        Some(t0 + timing::active_down(100, 10, 3))
    );
}

#[test]
fn rfc9568_6_4_2_priority_zero_sets_the_timer_to_skew_time() {
    let (mut r, t0) = started(100);
    let _ = r.handle(t0, advert_from("10.0.0.2", 200, 100));
    let t1 = t0 + Duration::from_millis(500);
    let _ = r.handle(t1, advert_from("10.0.0.2", 0, 100));
    assert_eq!(r.next_deadline(), Some(t1 + timing::skew(100, 100)));
    let a = run_until(&mut r, t1 + timing::skew(100, 100));
    assert_eq!(transitions(&a), [State::Active]);
}

#[test]
fn rfc9568_6_4_2_preempt_discards_lower_priority_and_takes_over() {
    let (mut r, t0) = started(150);
    let a = r.handle(t0, advert_from("10.0.0.2", 100, 100));
    assert!(a.contains(&Action::Discarded {
        from: ip("10.0.0.2"),
        reason: Discard::LowerPriority
    }));
    assert_eq!(
        r.next_deadline(),
        Some(t0 + timing::active_down(150, 100, 3))
    );
}

#[test]
fn rfc9568_6_4_2_nopreempt_follows_a_lower_priority_active() {
    let mut c = cfg(150);
    c.preempt = false;
    let t0 = Instant::now();
    let mut r = Router::new(c);
    let _ = r.handle(t0, Input::Startup);
    for i in 1..20 {
        let t = t0 + Duration::from_secs(i);
        let a = r.handle(t, advert_from("10.0.0.2", 100, 100));
        assert!(transitions(&a).is_empty());
        let _ = run_until(&mut r, t + Duration::from_millis(999));
    }
    assert_eq!(r.state(), State::Backup);
}

#[test]
fn keepalived_preempt_delay_holds_off_preemption() {
    let mut c = cfg(150);
    c.preempt_delay = Duration::from_secs(5);
    let t0 = Instant::now();
    let mut r = Router::new(c);
    let _ = r.handle(t0, Input::Startup);
    // preempt_delay never stretches the startup down timer.
    assert_eq!(
        r.next_deadline(),
        Some(t0 + timing::active_down(150, 100, 3))
    );
    // A lower-priority Active is followed for 5 s, then discarded.
    for i in 1..=4 {
        let a = r.handle(
            t0 + Duration::from_secs(i),
            advert_from("10.0.0.2", 100, 100),
        );
        assert!(
            !a.iter().any(|x| matches!(x, Action::Discarded { .. })),
            "at {i}s"
        );
    }
    let a = r.handle(
        t0 + Duration::from_secs(6),
        advert_from("10.0.0.2", 100, 100),
    );
    assert!(a.iter().any(|x| matches!(
        x,
        Action::Discarded {
            reason: Discard::LowerPriority,
            ..
        }
    )));
}

/// A lent Adver_Timer (docs/design.md rule 3): the router stops timing
/// its periodic adverts and hands out what they carry; given back, it
/// sends at the due time the borrower names, and a Backup lends nothing.
#[test]
fn a_lent_adver_timer_moves_the_periodic_adverts_to_the_borrower() {
    let (mut b, _) = started(100);
    assert!(
        b.lend_adver_timer().is_none(),
        "a Backup has no Adver_Timer"
    );
    let (mut r, t0) = started(255);
    let lent = r.lend_adver_timer().expect("an Active lends its timer");
    assert_eq!(lent.interval, Duration::from_secs(1));
    assert!(lent.due > t0 && lent.due <= t0 + Duration::from_secs(1));
    let [first, twin] = &lent.adverts;
    assert_eq!(first.as_ref().map(|a| a.priority), Some(255));
    assert!(twin.is_none(), "v2 twin only in mixed mode");
    assert!(r.lend_adver_timer().is_none(), "lent once");
    // While lent: no periodic advert, the timer out of next_deadline (the
    // GARP refresh of the start still runs).
    let a = run_until(&mut r, t0 + Duration::from_millis(5500));
    assert!(sent_adverts(&a).is_empty(), "{a:?}");
    assert!(r
        .next_deadline()
        .is_none_or(|t| t > t0 + Duration::from_millis(5500)));
    // Given back due at 6 s: the next advert leaves then, and every second on.
    let back = t0 + Duration::from_secs(6);
    r.return_adver_timer(back);
    assert_eq!(r.next_deadline(), Some(back));
    let a = run_until(&mut r, t0 + Duration::from_millis(8500));
    assert_eq!(sent_priorities(&a), [255; 3]);
    // Mixed mode lends both adverts, v3 first.
    let mut c = cfg(255);
    c.mixed_v2 = true;
    let mut m = Router::new(c);
    let _ = m.handle(t0, Input::Startup);
    let lent = m.lend_adver_timer().expect("Active");
    let versions: Vec<_> = lent.adverts.iter().flatten().map(|a| a.version).collect();
    assert_eq!(versions, [Version::V3, Version::V2]);
}

#[test]
fn rfc9568_6_4_3_active_advertises_every_interval() {
    let (mut r, t0) = started(255);
    let a = run_until(&mut r, t0 + Duration::from_millis(5500));
    assert_eq!(sent_priorities(&a), [255; 5]);
}

/// A steady Active hands out one advert every interval, built once (no
/// allocation per advert); a new priority or config builds a new one.
#[test]
fn a_steady_active_shares_one_advert_until_priority_or_config_change() {
    let (mut r, t0) = started(200);
    let a = run_until(&mut r, t0 + Duration::from_millis(8500));
    assert_eq!(r.state(), State::Active);
    let sent = sent_adverts(&a);
    assert!(sent.len() >= 4, "{sent:?}");
    assert!(sent
        .windows(2)
        .all(|w| std::sync::Arc::ptr_eq(&w[0], &w[1])));
    let t1 = t0 + Duration::from_millis(8500);
    let _ = r.handle(
        t1,
        Input::Health {
            weight: -10,
            fault: false,
        },
    );
    let after = sent_adverts(&run_until(&mut r, t1 + Duration::from_millis(2500)));
    assert_eq!(after.last().map(|r| r.priority), Some(190));
    assert!(!std::sync::Arc::ptr_eq(&sent[0], after.last().unwrap()));
    let mut c = cfg(200);
    c.vips.push(ip("10.0.0.101"));
    let t2 = t1 + Duration::from_millis(2500);
    let a = r.handle(t2, Input::Reconfigure(Box::new(c)));
    let new = sent_adverts(&a);
    assert_eq!(
        new.last().map(|r| r.addresses.clone()),
        Some(vec![ip("10.0.0.100"), ip("10.0.0.101")]),
        "a reload's new addresses are in the next advert"
    );
}

#[test]
fn rfc9568_6_4_3_higher_priority_sends_the_active_to_backup() {
    let (mut r, t0) = started(100);
    let _ = run_until(&mut r, t0 + Duration::from_secs(4));
    assert_eq!(r.state(), State::Active);
    let t = t0 + Duration::from_secs(5);
    let a = r.handle(t, advert_from("10.0.0.2", 200, 100));
    assert_eq!(transitions(&a), [State::Backup]);
    assert!(a.contains(&Action::RemoveVips));
    assert!(a.contains(&Action::Dataplane {
        active: false,
        accept: false
    }));
    assert!(a.iter().any(|x| matches!(
        x,
        Action::Transition {
            reason: Reason::HigherPriority { priority: 200, .. },
            ..
        }
    )));
    assert_eq!(r.active_router(), Some((ip("10.0.0.2"), 200)));
}

/// RFC 9568 §6.4.3: on this path too the Backup sets Active_Adver_Interval
/// from the advert and its Active_Down_Timer from the learned interval.
#[test]
fn rfc9568_6_4_3_an_active_sent_to_backup_learns_the_new_actives_interval() {
    let (mut r, t0) = started(100);
    let _ = run_until(&mut r, t0 + Duration::from_secs(4));
    let t = t0 + Duration::from_secs(5);
    let _ = r.handle(t, advert_from("10.0.0.2", 200, 300));
    assert_eq!((r.state(), r.active_interval_cs()), (State::Backup, 300));
    let down = timing::active_down(100, 300, 3);
    assert_eq!(
        r.next_deadline(),
        Some(t + down),
        "Active_Down_Interval from 3 s adverts"
    );
}

#[test]
fn rfc9568_6_4_3_equal_priority_tie_broken_by_primary_address() {
    let (mut r, t0) = started(100);
    let _ = run_until(&mut r, t0 + Duration::from_secs(4));
    // 10.0.0.0 < 10.0.0.1 (ours): we stay Active and reassert.
    let a = r.handle(
        t0 + Duration::from_secs(5),
        advert_from("10.0.0.0", 100, 100),
    );
    assert!(transitions(&a).is_empty());
    assert_eq!(sent_priorities(&a), [100]);
    // 10.0.0.2 > 10.0.0.1: we yield. Unsigned big-endian: 10.0.0.200 > 10.0.0.3.
    let a = r.handle(
        t0 + Duration::from_secs(6),
        advert_from("10.0.0.200", 100, 100),
    );
    assert_eq!(transitions(&a), [State::Backup]);
}

#[test]
fn active_answers_a_lower_priority_advert_at_once() {
    let (mut r, t0) = started(255);
    let t = t0 + Duration::from_millis(300);
    let a = r.handle(t, advert_from("10.0.0.2", 100, 100));
    assert_eq!(sent_priorities(&a), [255]);
    assert!(a.contains(&Action::SplitBrain {
        from: ip("10.0.0.2"),
        priority: 100
    }));
    assert_eq!(r.next_deadline(), Some(t + Duration::from_secs(1)));
}

#[test]
fn rfc9568_6_4_3_priority_zero_in_active_sends_an_advert() {
    let (mut r, t0) = started(255);
    let a = r.handle(
        t0 + Duration::from_millis(10),
        advert_from("10.0.0.2", 0, 100),
    );
    assert_eq!(sent_priorities(&a), [255]);
    // ... and resets the Adver_Timer: the next advert is one interval later.
    assert_eq!(
        r.next_deadline(),
        Some(t0 + Duration::from_millis(10) + Duration::from_secs(1))
    );
}

#[test]
fn rfc9568_6_4_3_shutdown_sends_priority_zero_and_removes_vips() {
    let (mut r, t0) = started(255);
    let a = r.handle(t0 + Duration::from_millis(10), Input::Shutdown);
    assert_eq!(sent_priorities(&a), [0]);
    assert!(a.contains(&Action::RemoveVips));
    assert_eq!(r.state(), State::Initialize);
    assert_eq!(r.next_deadline(), None);
}

#[test]
fn rfc9568_6_4_2_shutdown_from_backup_sends_nothing() {
    let (mut r, t0) = started(100);
    assert!(r.next_deadline().is_some(), "the Active_Down_Timer runs");
    let a = r.handle(t0, Input::Shutdown);
    assert!(sent_priorities(&a).is_empty());
    assert!(!a.contains(&Action::RemoveVips));
    // Cancel the Active_Down_Timer, transition to Initialize.
    assert_eq!((r.state(), r.next_deadline()), (State::Initialize, None));
}

fn received(src: &str, prio: u8, ttl: u8, unicast: bool) -> Input {
    match advert_from(src, prio, 100) {
        Input::Advert(mut rx) => {
            rx.ttl = ttl;
            rx.unicast = unicast;
            Input::Advert(rx)
        }
        _ => unreachable!(),
    }
}

#[test]
fn rfc9568_7_1_a_multicast_instance_needs_ttl_255_and_drops_unicast_adverts() {
    let (mut r, t0) = started(100);
    let discarded = |reason| {
        vec![Action::Discarded {
            from: ip("10.0.0.2"),
            reason,
        }]
    };
    assert_eq!(
        r.handle(t0, received("10.0.0.2", 200, 254, false)),
        discarded(Discard::Ttl)
    );
    // A forged advert routed in from off-link to our own address: TTL 64,
    // unicast. Never heard, whatever its priority.
    assert_eq!(
        r.handle(t0, received("10.0.0.2", 255, 64, true)),
        discarded(Discard::Destination)
    );
    // Not even with TTL 255: a multicast instance hears the group only.
    assert_eq!(
        r.handle(t0, received("10.0.0.2", 255, 255, true)),
        discarded(Discard::Destination)
    );
    assert_eq!(r.active_router(), None);
    assert!(r
        .handle(t0, received("10.0.0.2", 200, 255, false))
        .is_empty());
    assert_eq!(r.active_router(), Some((ip("10.0.0.2"), 200)));
}

#[test]
fn keepalived_a_unicast_instance_hears_its_peers_across_routers_and_not_the_group() {
    let mut c = cfg(100);
    c.unicast_peers = vec![ip("10.0.0.2")];
    let t0 = Instant::now();
    let mut r = Router::new(c);
    let _ = r.handle(t0, Input::Startup);
    assert_eq!(
        r.handle(t0, received("10.0.0.2", 200, 255, false)),
        [Action::Discarded {
            from: ip("10.0.0.2"),
            reason: Discard::Destination
        }]
    );
    // Unicast adverts may cross routers: no TTL check.
    assert!(r.handle(t0, received("10.0.0.2", 200, 61, true)).is_empty());
    assert_eq!(r.active_router(), Some((ip("10.0.0.2"), 200)));
}

#[test]
fn an_address_owner_sending_from_the_vip_is_heard() {
    // An RFC owner (FRR, a router, keepalived at priority 255) sends its
    // adverts from the VIP itself.
    let (mut r, t0) = started(100);
    let a = r.handle(t0, advert_from("10.0.0.100", 255, 100));
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(r.active_router(), Some((ip("10.0.0.100"), 255)));
}

#[test]
fn keepalived_preempt_delay_restarts_on_every_entry_to_backup() {
    let mut c = cfg(150);
    c.preempt_delay = Duration::from_secs(5);
    let t0 = Instant::now();
    let mut r = Router::new(c);
    let _ = r.handle(t0, Input::Startup);
    // A lower Active heard for 3 s, then we go Active (its adverts stop) ...
    for i in 0..=3 {
        let _ = r.handle(
            t0 + Duration::from_secs(i),
            advert_from("10.0.0.2", 100, 100),
        );
    }
    let _ = run_until(&mut r, t0 + Duration::from_secs(8));
    assert_eq!(r.state(), State::Active);
    // ... and back to Backup under a higher one that then leaves a lower
    // one behind: the 5 s count from the first lower advert of this stay.
    let t1 = t0 + Duration::from_secs(8);
    let _ = r.handle(t1, advert_from("10.0.0.3", 200, 100));
    assert_eq!(r.state(), State::Backup);
    for i in 1..=4 {
        let a = r.handle(
            t1 + Duration::from_secs(i),
            advert_from("10.0.0.2", 100, 100),
        );
        assert!(
            !a.iter().any(|x| matches!(x, Action::Discarded { .. })),
            "at {i}s: {a:?}"
        );
    }
}

#[test]
fn own_adverts_looped_back_are_ignored() {
    let (mut r, t0) = started(255);
    let a = r.handle(t0, advert_from("10.0.0.1", 255, 100));
    assert_eq!(
        a,
        [Action::Discarded {
            from: ip("10.0.0.1"),
            reason: Discard::Own
        }]
    );
    assert_eq!(r.state(), State::Active);
}

#[test]
fn keepalived_check_unicast_src_drops_adverts_from_outside_the_peers() {
    let mut c = cfg(100);
    c.unicast_peers = vec![ip("10.0.0.3")];
    c.check_unicast_src = true;
    let t0 = Instant::now();
    let mut r = Router::new(c);
    let _ = r.handle(t0, Input::Startup);
    let a = r.handle(t0, received("10.0.0.2", 200, 255, true));
    assert_eq!(
        a,
        [Action::Discarded {
            from: ip("10.0.0.2"),
            reason: Discard::NotPeer
        }]
    );
    let a = r.handle(t0, received("10.0.0.3", 200, 255, true));
    assert!(a.is_empty());
}

fn v2_cfg(prio: u8) -> Config {
    let mut c = cfg(prio);
    c.version = Version::V2;
    c.checksum = crate::wire::vrrp::ChecksumMode::Plain;
    c.auth = Auth::pass("secret");
    c
}

fn v2_advert(src: &str, prio: u8, interval_cs: u16, auth: Auth) -> Input {
    Input::Advert(Received {
        src: ip(src),
        ttl: 255,
        unicast: false,
        advert: Repr {
            version: Version::V2,
            vrid: 51,
            priority: prio,
            interval_cs,
            auth,
            addresses: vec![ip("10.0.0.100")],
        },
    })
}

#[test]
fn rfc3768_7_1_auth_must_match() {
    let t0 = Instant::now();
    let mut r = Router::new(v2_cfg(100));
    let _ = r.handle(t0, Input::Startup);
    let a = r.handle(t0, v2_advert("10.0.0.2", 200, 100, Auth::pass("wrong")));
    assert_eq!(
        a,
        [Action::Discarded {
            from: ip("10.0.0.2"),
            reason: Discard::Auth
        }]
    );
    let a = r.handle(t0, v2_advert("10.0.0.2", 200, 100, Auth::None));
    assert_eq!(
        a,
        [Action::Discarded {
            from: ip("10.0.0.2"),
            reason: Discard::Auth
        }]
    );
    let a = r.handle(t0, v2_advert("10.0.0.2", 200, 100, Auth::pass("secret")));
    assert!(a.is_empty());
}

#[test]
fn rfc3768_7_1_v2_interval_mismatch_is_discarded() {
    let t0 = Instant::now();
    let mut r = Router::new(v2_cfg(100));
    let _ = r.handle(t0, Input::Startup);
    let a = r.handle(t0, v2_advert("10.0.0.2", 200, 200, Auth::pass("secret")));
    assert_eq!(
        a,
        [Action::Discarded {
            from: ip("10.0.0.2"),
            reason: Discard::Interval
        }]
    );
    assert_eq!(r.active_interval_cs(), 100);
}

#[test]
fn rfc3768_v2_adverts_carry_whole_seconds_and_auth() {
    let mut c = v2_cfg(255);
    c.interval_cs = 150; // keepalived rounds v2 fractions down, at least 1 s
    let t0 = Instant::now();
    let mut r = Router::new(c);
    let a = r.handle(t0, Input::Startup);
    let adv = sent_adverts(&a).remove(0);
    assert_eq!(adv.version, Version::V2);
    assert_eq!(adv.interval_cs, 100);
    assert_eq!(adv.auth, Auth::pass("secret"));
}

#[test]
fn v3_router_ignores_v2_adverts_unless_mixed() {
    let (mut r, t0) = started(100);
    let a = r.handle(t0, v2_advert("10.0.0.2", 200, 100, Auth::None));
    assert_eq!(
        a,
        [Action::Discarded {
            from: ip("10.0.0.2"),
            reason: Discard::Version
        }]
    );
}

#[test]
fn rfc9568_8_4_mixed_mode_sends_both_and_hears_v2() {
    let mut c = cfg(255);
    c.mixed_v2 = true;
    let t0 = Instant::now();
    let mut r = Router::new(c);
    let a = r.handle(t0, Input::Startup);
    let versions: Vec<Version> = sent_adverts(&a).iter().map(|r| r.version).collect();
    assert_eq!(versions, [Version::V3, Version::V2]);

    // A mixed Backup follows a v2 Active even of lower priority (never
    // preempts a v2 router), and ignores the v2 twin of a v3 sender.
    let mut c = cfg(200);
    c.mixed_v2 = true;
    let mut b = Router::new(c);
    let _ = b.handle(t0, Input::Startup);
    let a = b.handle(t0, v2_advert("10.0.0.9", 100, 100, Auth::None));
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(b.active_router(), Some((ip("10.0.0.9"), 100)));
    let _ = b.handle(t0, advert_from("10.0.0.2", 250, 100));
    let a = b.handle(t0, v2_advert("10.0.0.2", 250, 100, Auth::None));
    assert_eq!(
        a,
        [Action::Discarded {
            from: ip("10.0.0.2"),
            reason: Discard::MixedDuplicate
        }]
    );
}

#[test]
fn effective_priority_is_configured_plus_weights_clamped() {
    let (mut r, t0) = started(100);
    let _ = r.handle(
        t0,
        Input::Health {
            weight: 200,
            fault: false,
        },
    );
    assert_eq!(r.priority(), 254);
    let _ = r.handle(
        t0,
        Input::Health {
            weight: -200,
            fault: false,
        },
    );
    assert_eq!(r.priority(), 1);
    let (mut owner, _) = started(255);
    let _ = owner.handle(
        t0,
        Input::Health {
            weight: -50,
            fault: false,
        },
    );
    assert_eq!(owner.priority(), 255, "the owner's 255 is never changed");
}

#[test]
fn a_priority_change_goes_out_in_an_advert_at_once() {
    let (mut r, t0) = started(100);
    let _ = run_until(&mut r, t0 + Duration::from_secs(4));
    let t = t0 + Duration::from_millis(4100);
    let a = r.handle(
        t,
        Input::Health {
            weight: -30,
            fault: false,
        },
    );
    assert!(a.contains(&Action::Priority { from: 100, to: 70 }));
    assert_eq!(sent_priorities(&a), [70]);
}

#[test]
fn fault_from_active_sends_priority_zero_and_recovery_returns_to_backup() {
    let (mut r, t0) = started(100);
    let _ = run_until(&mut r, t0 + Duration::from_secs(4));
    let t = t0 + Duration::from_secs(5);
    let a = r.handle(
        t,
        Input::Health {
            weight: 0,
            fault: true,
        },
    );
    assert_eq!(r.state(), State::Fault);
    assert_eq!(sent_priorities(&a), [0]);
    assert!(a.contains(&Action::RemoveVips));
    assert!(a.contains(&Action::Notify {
        state: State::Fault,
        priority: 100
    }));
    assert_eq!(r.next_deadline(), None, "no adverts, no timers in Fault");
    // Adverts are ignored in Fault.
    assert!(transitions(&r.handle(t, advert_from("10.0.0.2", 200, 100))).is_empty());
    let a = r.handle(
        t + Duration::from_secs(1),
        Input::Health {
            weight: 0,
            fault: false,
        },
    );
    assert_eq!(transitions(&a), [State::Backup]);
}

#[test]
fn fault_at_startup_stays_in_fault() {
    let t0 = Instant::now();
    let mut r = Router::new(cfg(255));
    let _ = r.handle(
        t0,
        Input::Health {
            weight: 0,
            fault: true,
        },
    );
    let a = r.handle(t0, Input::Startup);
    assert_eq!(transitions(&a), [State::Fault]);
    let a = r.handle(
        t0,
        Input::Health {
            weight: 0,
            fault: false,
        },
    );
    assert_eq!(transitions(&a), [State::Active]);
}

#[test]
fn rfc9568_7_1_different_address_set_is_diagnosed_once_and_accepted() {
    let (mut r, t0) = started(100);
    let mut rx = match advert_from("10.0.0.2", 200, 100) {
        Input::Advert(rx) => rx,
        _ => unreachable!(),
    };
    rx.advert.addresses = vec![ip("10.1.7.58")];
    let a = r.handle(t0, Input::Advert(rx.clone()));
    assert_eq!(
        a,
        [Action::Conflict {
            from: ip("10.0.0.2"),
            theirs: vec![ip("10.1.7.58")],
            ours: vec![ip("10.0.0.100")]
        }]
    );
    assert_eq!(
        r.active_router(),
        Some((ip("10.0.0.2"), 200)),
        "still accepted"
    );
    let a = r.handle(t0 + Duration::from_secs(1), Input::Advert(rx));
    assert!(
        a.is_empty(),
        "logged once per source and address set: {a:?}"
    );
}

#[test]
fn skip_check_adv_addr_skips_the_accepted_active() {
    let mut c = cfg(100);
    c.skip_check_adv_addr = true;
    let t0 = Instant::now();
    let mut r = Router::new(c);
    let _ = r.handle(t0, Input::Startup);
    let _ = r.handle(t0, advert_from("10.0.0.2", 200, 100));
    let mut rx = match advert_from("10.0.0.2", 200, 100) {
        Input::Advert(rx) => rx,
        _ => unreachable!(),
    };
    rx.advert.addresses = vec![ip("10.9.9.9")];
    assert!(r.handle(t0, Input::Advert(rx)).is_empty());
}

#[test]
fn garp_bursts_follow_the_schedule() {
    let mut c = cfg(255);
    c.garp = GarpSchedule {
        repeat: 3,
        delay: Duration::from_secs(5),
        refresh: Some(Duration::from_secs(60)),
        refresh_repeat: 2,
        interval: Duration::from_millis(10),
        ..GarpSchedule::default()
    };
    let t0 = Instant::now();
    let mut r = Router::new(c);
    let a = r.handle(t0, Input::Startup);
    let garps = |a: &[Action]| a.iter().filter(|x| **x == Action::SendGarp).count();
    assert_eq!(
        garps(&a),
        1,
        "one now, the next two spaced by vrrp_garp_interval"
    );
    assert_eq!(garps(&run_until(&mut r, t0 + Duration::from_millis(25))), 2);
    assert_eq!(
        garps(&run_until(&mut r, t0 + Duration::from_millis(4999))),
        0
    );
    assert_eq!(
        garps(&run_until(&mut r, t0 + Duration::from_millis(5030))),
        3
    );
    assert_eq!(
        garps(&run_until(&mut r, t0 + Duration::from_millis(60_020))),
        2
    );
}

/// keepalived's garp_extra_if: a round every period while Active, none
/// after it stops being Active.
#[test]
fn garp_extra_if_rounds_come_every_period_while_active() {
    let mut c = cfg(255);
    c.garp = GarpSchedule {
        repeat: 1,
        delay: Duration::ZERO,
        extra_if: Some((Duration::from_secs(100), true)),
        ..GarpSchedule::default()
    };
    let t0 = Instant::now();
    let mut r = Router::new(c);
    let _ = r.handle(t0, Input::Startup);
    let extra = |a: &[Action]| {
        a.iter()
            .filter(|x| **x == Action::SendGarpExtra { all: true })
            .count()
    };
    assert_eq!(extra(&run_until(&mut r, t0 + Duration::from_secs(99))), 0);
    assert_eq!(
        extra(&run_until(&mut r, t0 + Duration::from_millis(100_010))),
        1
    );
    assert_eq!(
        extra(&run_until(&mut r, t0 + Duration::from_millis(300_020))),
        2
    );
    let _ = r.handle(t0 + Duration::from_secs(301), Input::Shutdown);
    assert_eq!(extra(&run_until(&mut r, t0 + Duration::from_secs(1000))), 0);
}

#[test]
fn sync_group_moves_together_and_faults_together() {
    let t0 = Instant::now();
    let mut a = cfg(100);
    a.name = "A".into();
    let mut b = Config::new("B", 52, ip("10.0.0.1"), vec![ip("10.0.0.101")]);
    b.priority = 100;
    let mut g = group::SyncGroup::new("G", vec![Router::new(a.clone()), Router::new(b)]);
    let _ = g.handle(t0, 0, Input::Startup);
    // The kernel may take over for a member (VR_TAKEOVER) only when the
    // group would follow its timer: not while the other member has not
    // asked for Active itself.
    assert!(!g.takes_over_on_expiry(0) && !g.takes_over_on_expiry(1));
    let mut alone = group::SyncGroup::new("alone", vec![Router::new(a)]);
    let _ = alone.handle(t0, 0, Input::Startup);
    assert!(alone.takes_over_on_expiry(0), "a lone Backup is eligible");
    let b_hears = |g: &mut group::SyncGroup, at: Instant| {
        g.handle(
            at,
            1,
            Input::Advert(Received {
                src: ip("10.0.0.2"),
                ttl: 255,
                unicast: false,
                advert: Repr {
                    version: Version::V3,
                    vrid: 52,
                    priority: 150,
                    interval_cs: 100,
                    auth: Auth::None,
                    addresses: vec![ip("10.0.0.101")],
                },
            }),
        )
    };
    // B hears a higher-priority Active every second; A hears nobody. A wants
    // Active, B does not: keepalived keeps the whole group Backup (no drag,
    // no cycling) for as long as that lasts.
    let mut out = Vec::new();
    for s in 0..20u32 {
        let at = t0 + Duration::from_millis(500) * s;
        for _ in 0..100 {
            match g.next_deadline() {
                Some(t) if t <= at => out.extend(g.handle(t, 0, Input::Timeout)),
                _ => break,
            }
        }
        out.extend(b_hears(&mut g, at));
    }
    assert!(
        !out.iter().any(|(_, x)| matches!(
            x,
            Action::Transition {
                to: State::Active,
                ..
            }
        )),
        "{out:?}"
    );
    assert!(g.members().iter().all(|m| m.state() == State::Backup));
    // A's timer ran out and it waits, held, for B: B's own expiry moves
    // the group, so B is eligible; A is not (B still hears an Active).
    assert!(g.takes_over_on_expiry(1) && !g.takes_over_on_expiry(0));
    // B's Active goes silent: now every member wants Active, and the group
    // moves as one.
    let quiet = t0 + Duration::from_secs(10);
    let mut out = Vec::new();
    for _ in 0..100 {
        match g.next_deadline() {
            Some(t) if t <= quiet + Duration::from_secs(5) => {
                out.extend(g.handle(t, 0, Input::Timeout))
            }
            _ => break,
        }
    }
    assert_eq!(g.members()[0].state(), State::Active);
    assert_eq!(g.members()[1].state(), State::Active);
    let into_active = out
        .iter()
        .filter(|(_, x)| {
            matches!(
                x,
                Action::Transition {
                    to: State::Active,
                    ..
                }
            )
        })
        .count();
    assert_eq!(into_active, 2, "{out:?}");
    assert!(!g.takes_over_on_expiry(0), "Active already");

    // One member's fault puts the group in Fault, and recovery releases both.
    let t = t0 + Duration::from_secs(5);
    let _ = g.handle(
        t,
        1,
        Input::Health {
            weight: 0,
            fault: true,
        },
    );
    assert_eq!(g.state(), State::Fault);
    assert!(g.members().iter().all(|m| m.state() == State::Fault));
    assert!(!g.takes_over_on_expiry(0) && !g.takes_over_on_expiry(1));
    let _ = g.handle(
        t + Duration::from_secs(1),
        1,
        Input::Health {
            weight: 0,
            fault: false,
        },
    );
    assert!(
        g.members().iter().all(|m| m.state() == State::Backup),
        "{:?}",
        g.members().iter().map(|m| m.state()).collect::<Vec<_>>()
    );
}

#[test]
fn resume_after_a_restart_is_active_at_once_without_garp_or_notify() {
    let t0 = Instant::now();
    let mut r = Router::new(cfg(100));
    let a = r.handle(t0, Input::Resume);
    assert_eq!(r.state(), State::Active);
    assert_eq!(sent_priorities(&a), [100], "an advert at once");
    assert!(a.contains(&Action::AddVips));
    assert!(
        !a.iter()
            .any(|x| matches!(x, Action::SendGarp | Action::Notify { .. })),
        "{a:?}"
    );
    assert!(a.iter().any(|x| matches!(
        x,
        Action::Transition {
            reason: Reason::Resumed,
            ..
        }
    )));
    // With a tracked item down it goes to Fault instead.
    let mut r = Router::new(cfg(100));
    let _ = r.handle(
        t0,
        Input::Health {
            weight: 0,
            fault: true,
        },
    );
    let _ = r.handle(t0, Input::Resume);
    assert_eq!(r.state(), State::Fault);
}

// ---- reload in place (docs/design.md rule 6) -------------------------------------

fn active(prio: u8) -> (Router, Instant) {
    let (mut r, t0) = started(prio);
    let _ = run_until(&mut r, t0 + Duration::from_secs(4));
    assert_eq!(r.state(), State::Active);
    (r, t0 + Duration::from_secs(4))
}

#[test]
fn reload_of_the_same_config_does_nothing() {
    let (mut r, now) = active(150);
    let deadline = r.next_deadline();
    let a = r.handle(now, Input::Reconfigure(Box::new(cfg(150))));
    assert_eq!(a, []);
    assert_eq!(r.state(), State::Active);
    assert_eq!(r.next_deadline(), deadline);
}

#[test]
fn reload_of_an_actives_priority_advertises_it_at_once_without_a_transition() {
    let (mut r, now) = active(150);
    let a = r.handle(now, Input::Reconfigure(Box::new(cfg(160))));
    assert_eq!(transitions(&a), []);
    assert_eq!(sent_priorities(&a), [160]);
    assert!(a.contains(&Action::Priority { from: 150, to: 160 }));
    assert_eq!(r.priority(), 160);
    assert_eq!(r.state(), State::Active);
    // The next advert follows a full interval after this one.
    assert_eq!(r.next_deadline(), Some(now + Duration::from_secs(1)));
}

#[test]
fn reload_of_an_actives_interval_and_addresses_is_advertised_at_once() {
    let (mut r, now) = active(150);
    let mut c = cfg(150);
    c.interval_cs = 50;
    c.vips.push(ip("10.0.0.101"));
    let a = r.handle(now, Input::Reconfigure(Box::new(c)));
    assert_eq!(transitions(&a), []);
    let sent = sent_adverts(&a);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].interval_cs, 50);
    assert_eq!(sent[0].addresses, [ip("10.0.0.100"), ip("10.0.0.101")]);
    assert_eq!(r.next_deadline(), Some(now + Duration::from_millis(500)));
}

#[test]
fn reload_of_accept_mode_reaches_the_dataplane_at_once() {
    let (mut r, now) = active(150);
    let mut c = cfg(150);
    c.accept = false;
    let a = r.handle(now, Input::Reconfigure(Box::new(c)));
    assert_eq!(
        a,
        [Action::Dataplane {
            active: true,
            accept: false
        }]
    );
}

#[test]
fn reload_that_raises_a_backups_priority_preempts_only_by_the_protocol() {
    let (mut r, t0) = started(100);
    let a = r.handle(t0, advert_from("10.0.0.2", 150, 100));
    assert_eq!(transitions(&a), []);
    let now = t0 + Duration::from_millis(500);
    let a = r.handle(now, Input::Reconfigure(Box::new(cfg(200))));
    assert_eq!(transitions(&a), [], "no transition at the reload itself");
    assert_eq!(r.state(), State::Backup);
    // The Active's adverts (150) are now lower: with preempt they no longer
    // reset the down timer, which runs out (RFC 9568 §6.4.2).
    let mut out = Vec::new();
    for i in 1..=5u32 {
        let at = now + Duration::from_secs(1) * i;
        out.extend(run_until(&mut r, at));
        out.extend(r.handle(at, advert_from("10.0.0.2", 150, 100)));
    }
    assert_eq!(transitions(&out)[0], State::Active);
}

#[test]
fn reload_that_lowers_an_actives_priority_leaves_the_move_to_the_backup() {
    let (mut r, now) = active(150);
    let a = r.handle(now, Input::Reconfigure(Box::new(cfg(90))));
    assert_eq!(transitions(&a), []);
    assert_eq!(sent_priorities(&a), [90]);
    // A Backup at 100 that preempts sends its advert: then, and only then,
    // this one steps down.
    let a = r.handle(now, advert_from("10.0.0.2", 100, 100));
    assert_eq!(transitions(&a), [State::Backup]);
}

#[test]
fn keepalived_without_check_unicast_src_hears_a_non_peer_and_reports_it_once() {
    let mut c = cfg(100);
    c.unicast_peers = vec![ip("10.0.0.3")];
    let t0 = Instant::now();
    let mut r = Router::new(c);
    let _ = r.handle(t0, Input::Startup);
    let a = r.handle(t0, received("10.0.0.2", 200, 255, true));
    assert_eq!(
        a,
        [Action::NotAPeer {
            from: ip("10.0.0.2")
        }]
    );
    assert_eq!(r.active_router(), Some((ip("10.0.0.2"), 200)));
    let a = r.handle(t0, received("10.0.0.2", 200, 255, true));
    assert!(a.is_empty(), "reported once: {a:?}");
}

#[test]
fn rfc9568_the_owner_discards_another_owners_adverts_and_stays_active() {
    let (mut r, t0) = started(255);
    let a = r.handle(t0, advert_from("10.0.0.2", 255, 100));
    assert_eq!(
        a,
        [Action::Discarded {
            from: ip("10.0.0.2"),
            reason: Discard::OtherOwner
        }]
    );
    assert_eq!(r.state(), State::Active);
}

#[test]
fn rfc9568_the_owner_always_preempts_even_with_nopreempt() {
    let mut c = cfg(255);
    c.preempt = false;
    let t0 = Instant::now();
    let mut r = Router::new(c);
    let _ = r.handle(t0, Input::Startup);
    // Held in Backup by its sync group, then the group lets go.
    let _ = r.handle(t0, Input::Group(State::Backup));
    assert_eq!(r.state(), State::Backup);
    // A lower-priority Active does not hold the owner back.
    let mut out = Vec::new();
    for i in 0..10u32 {
        let at = t0 + Duration::from_millis(500) * i;
        out.extend(run_until(&mut r, at));
        out.extend(r.handle(at, advert_from("10.0.0.2", 100, 100)));
    }
    assert_eq!(transitions(&out), [State::Active]);
}

#[test]
fn a_lasting_split_brain_is_reported_once_per_period_and_answered_every_time() {
    let (mut r, t0) = started(255);
    let mut reports = 0;
    let mut answers = 0;
    for i in 0..40u32 {
        // A lower-priority Active every 500 ms for 20 s.
        let a = r.handle(
            t0 + Duration::from_millis(500) * i,
            advert_from("10.0.0.2", 100, 100),
        );
        reports += a
            .iter()
            .filter(|x| matches!(x, Action::SplitBrain { .. }))
            .count();
        answers += sent_priorities(&a).len();
    }
    assert_eq!(answers, 40, "every lower advert is answered at once");
    assert_eq!(reports, 2, "reported at 0 s and 10 s only");
}

#[test]
fn a_member_pushed_to_backup_by_its_group_times_with_its_own_interval() {
    let (mut r, t0) = started(100);
    // It learned a 500 ms Active interval, then the group took it Active
    // and back.
    let _ = r.handle(t0, advert_from("10.0.0.2", 200, 50));
    assert_eq!(r.active_interval_cs(), 50);
    let _ = r.handle(t0, Input::Group(State::Active));
    let t1 = t0 + Duration::from_secs(1);
    let _ = r.handle(t1, Input::Group(State::Backup));
    assert_eq!(r.state(), State::Backup);
    assert_eq!(r.active_interval_cs(), 100);
    assert_eq!(
        r.next_deadline(),
        Some(t1 + timing::active_down(100, 100, 3))
    );
}

/// keepalived: an Active that hears a lower-priority Active answers with an
/// advert and a GARP burst (garp_lower_prio_repeat, now and again after
/// garp_lower_prio_delay), so caches the other poisoned point back;
/// lower_prio_no_advert drops the advert, repeat 0 the burst;
/// higher_prio_send_advert sends one last advert before going Backup.
#[test]
fn keepalived_lower_priority_garp_burst_and_advert_switches() {
    let garps = |a: &[Action]| a.iter().filter(|x| **x == Action::SendGarp).count();
    let mut c = cfg(200);
    c.garp.lower_prio_repeat = 3;
    c.garp.lower_prio_delay = Duration::from_secs(2);
    let t0 = Instant::now();
    let mut r = Router::new(c.clone());
    let _ = r.handle(t0, Input::Startup);
    let _ = run_until(&mut r, t0 + Duration::from_secs(10));
    assert_eq!(r.state(), State::Active);
    let t = t0 + Duration::from_millis(10_500);
    let a = r.handle(t, advert_from("10.0.0.2", 100, 100));
    assert_eq!(sent_priorities(&a), [200]);
    assert_eq!(garps(&a), 3, "a burst at once: {a:?}");
    let later = run_until(&mut r, t + Duration::from_millis(2_100));
    assert_eq!(garps(&later), 3, "and another after garp_lower_prio_delay");

    c.lower_prio_no_advert = true;
    c.garp.lower_prio_repeat = 0;
    let mut r = Router::new(c.clone());
    let _ = r.handle(t0, Input::Startup);
    let _ = run_until(&mut r, t0 + Duration::from_secs(10));
    let a = r.handle(t, advert_from("10.0.0.2", 100, 100));
    assert!(sent_priorities(&a).is_empty() && garps(&a) == 0, "{a:?}");

    c.higher_prio_send_advert = true;
    let mut r = Router::new(c);
    let _ = r.handle(t0, Input::Startup);
    let _ = run_until(&mut r, t0 + Duration::from_secs(10));
    let a = r.handle(t, advert_from("10.0.0.2", 250, 100));
    assert_eq!(sent_priorities(&a), [200], "one last advert");
    assert_eq!(transitions(&a), [State::Backup]);
}
