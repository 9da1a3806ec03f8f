//! vrrp_script: run every `interval`, `timeout` kills it (a failure), `rise`
//! successes make it healthy, `fall` failures make it failed. Each script
//! has its own task; the election loop only ever receives state changes.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{exec, TrackEvent};
use crate::config::model::{ScriptUser, VrrpScript};

/// What `xvrrp status` shows of a script.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScriptStatus {
    pub healthy: bool,
    pub last: Option<exec::Outcome>,
    /// Duration of the last run, ms.
    pub last_ms: u64,
    /// Running for longer than its interval right now (ms), if so.
    pub running_ms: Option<u64>,
    pub runs: u64,
    pub failures: u64,
    pub timeouts: u64,
}

/// Runs `script` forever, reporting every result on `events` (until the
/// agent stops listening). A script that cannot run is a result (NotRun),
/// not a failure of the runner.
pub async fn runner(
    script: VrrpScript,
    user: Option<ScriptUser>,
    events: mpsc::Sender<TrackEvent>,
) -> anyhow::Result<()> {
    let Some(cmd) = script.script.clone() else {
        return Ok(());
    };
    let mut ticker = tokio::time::interval(script.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let started = Instant::now();
        let _ = events
            .send(TrackEvent::ScriptStarted {
                name: script.name.clone(),
                at: started,
            })
            .await;
        let (outcome, took) = exec::run(
            &cmd,
            &[],
            user.as_ref(),
            script.timeout.max(Duration::from_millis(10)),
        )
        .await;
        if events
            .send(TrackEvent::Script {
                name: script.name.clone(),
                outcome,
                took,
            })
            .await
            .is_err()
        {
            return Ok(());
        }
    }
}

/// rise / fall bookkeeping of one script.
#[derive(Debug, Clone)]
pub struct Health {
    pub rise: u32,
    pub fall: u32,
    pub status: ScriptStatus,
    streak_ok: u32,
    streak_ko: u32,
    pub started: Option<Instant>,
}

impl Health {
    pub fn new(s: &VrrpScript) -> Health {
        Health {
            rise: s.rise,
            fall: s.fall,
            status: ScriptStatus {
                healthy: !s.init_fail,
                ..Default::default()
            },
            streak_ok: 0,
            streak_ko: 0,
            started: None,
        }
    }

    /// Records one run; true when the healthy/failed state changed.
    pub fn record(&mut self, outcome: exec::Outcome, took: Duration) -> bool {
        self.started = None;
        let st = &mut self.status;
        st.runs += 1;
        st.last = Some(outcome);
        st.last_ms = took.as_millis() as u64;
        st.running_ms = None;
        if outcome == exec::Outcome::Timeout {
            st.timeouts += 1;
        }
        let before = st.healthy;
        if outcome.success() {
            self.streak_ok += 1;
            self.streak_ko = 0;
            if self.streak_ok >= self.rise {
                st.healthy = true;
            }
        } else {
            st.failures += 1;
            self.streak_ko += 1;
            self.streak_ok = 0;
            if self.streak_ko >= self.fall {
                st.healthy = false;
            }
        }
        st.healthy != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::exec::Outcome;

    fn script(rise: u32, fall: u32, init_fail: bool) -> VrrpScript {
        VrrpScript {
            name: "s".into(),
            script: None,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            weight: 0,
            weight_reverse: false,
            rise,
            fall,
            user: None,
            init_fail,
            pos: Default::default(),
        }
    }

    #[test]
    fn fall_and_rise_counts() {
        let mut h = Health::new(&script(2, 3, false));
        assert!(h.status.healthy);
        assert!(!h.record(Outcome::Exit(1), Duration::ZERO));
        assert!(!h.record(Outcome::Timeout, Duration::ZERO));
        assert!(
            h.record(Outcome::Exit(2), Duration::ZERO),
            "third failure: fall 3"
        );
        assert!(!h.status.healthy);
        assert!(!h.record(Outcome::Exit(0), Duration::ZERO));
        assert!(
            h.record(Outcome::Exit(0), Duration::ZERO),
            "second success: rise 2"
        );
        assert_eq!(
            (h.status.runs, h.status.failures, h.status.timeouts),
            (5, 3, 1)
        );
    }

    #[test]
    fn init_fail_starts_failed() {
        let mut h = Health::new(&script(1, 1, true));
        assert!(!h.status.healthy);
        assert!(h.record(Outcome::Exit(0), Duration::ZERO));
    }
}
