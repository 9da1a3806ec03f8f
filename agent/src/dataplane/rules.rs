//! The one table of advert rules the XDP program applies, derived from the
//! election's configuration (docs/design.md rule 3): what the kernel judges it
//! judges as `proto` does (version, v2 authentication and Adver Int, the
//! address set), and what it cannot judge — unicast peers, RFC 9568 §8.4
//! mixed v2/v3 — it leaves to the agent's socket (`VR_SOCKET`). The test
//! `the_kernel_and_the_election_accept_the_same_adverts` feeds the same
//! frames to both and compares verdicts.

use xvrrp_common::{
    VrConfig, VR_ACTIVE, VR_AUTH_PASS, VR_DOWN_TIMER, VR_PREEMPT, VR_SOCKET, VR_TAKEOVER,
};

use crate::{
    proto,
    wire::vrrp::{Auth, Version},
};

/// The agent, not the kernel, judges this router's adverts.
pub fn judged_on_socket(cfg: &proto::Config) -> bool {
    !cfg.unicast_peers.is_empty() || cfg.mixed_v2
}

/// The kernel times this router's Active_Down interval (with XDP attached):
/// it judges its adverts, and no rule it does not know (preempt_delay)
/// bends the timer's reset.
pub fn kernel_times_down(cfg: &proto::Config) -> bool {
    cfg.preempt_delay.is_zero() && !judged_on_socket(cfg)
}

/// The VRS entry for a router at effective `priority`, Active or not;
/// `takeover`: the election would go Active the moment the Active_Down
/// timer fires, so the kernel may start answering for the VIPs then
/// (`Daemon::takeover_eligible` decides; only with the kernel's timer).
pub fn vr_config(cfg: &proto::Config, priority: u8, active: bool, takeover: bool) -> VrConfig {
    let (auth, mut flags) = match (cfg.version, cfg.auth) {
        (Version::V2, Auth::Pass(p)) => (p, VR_AUTH_PASS),
        _ => ([0; 8], 0),
    };
    // The address owner always preempts.
    if cfg.preempt || cfg.is_owner() {
        flags |= VR_PREEMPT;
    }
    if kernel_times_down(cfg) {
        flags |= VR_DOWN_TIMER;
        if takeover && !active {
            flags |= VR_TAKEOVER;
        }
    }
    if active {
        flags |= VR_ACTIVE;
    }
    if judged_on_socket(cfg) {
        flags |= VR_SOCKET;
    }
    VrConfig {
        auth,
        flags,
        addr_count: cfg.vips.len() as u8,
        priority,
        down_adverts: cfg.down_timer_adverts.min(255) as u8,
        addr_sum: super::addr_sum(&cfg.vips),
        // RFC 9568 §8.4 mixed mode hears both.
        version: if cfg.mixed_v2 {
            0
        } else {
            cfg.version.number()
        },
        _pad: 0,
        // RFC 3768 §7.1: a v2 router drops adverts with another interval,
        // in whole seconds (as `proto` compares them).
        interval_cs: match cfg.version {
            Version::V2 => (cfg.interval_cs / 100).max(1) * 100,
            Version::V3 => 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> proto::Config {
        proto::Config::new(
            "VI_1",
            51,
            "10.0.0.2".parse().unwrap(),
            vec!["10.0.0.100".parse().unwrap()],
        )
    }

    /// The kernel takes over only a Backup whose Active_Down timer it
    /// keeps itself: not an Active, not with preempt_delay or unicast
    /// peers (no kernel timer there), and only when the agent says so.
    #[test]
    fn the_takeover_flag_needs_a_kernel_timed_backup() {
        let c = config();
        assert_ne!(vr_config(&c, 100, false, true).flags & VR_TAKEOVER, 0);
        assert_eq!(vr_config(&c, 100, false, false).flags & VR_TAKEOVER, 0);
        assert_eq!(vr_config(&c, 100, true, true).flags & VR_TAKEOVER, 0);
        let mut delayed = config();
        delayed.preempt_delay = std::time::Duration::from_secs(5);
        assert_eq!(vr_config(&delayed, 100, false, true).flags & VR_TAKEOVER, 0);
        let mut unicast = config();
        unicast.unicast_peers = vec!["10.0.0.3".parse().unwrap()];
        assert_eq!(vr_config(&unicast, 100, false, true).flags & VR_TAKEOVER, 0);
    }
}
