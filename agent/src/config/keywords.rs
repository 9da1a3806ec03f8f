//! keepalived keywords xvrrp knows of but does not act on, and the
//! "did you mean" search for typos.

/// What xvrrp does with a keepalived keyword it does not implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsupported {
    /// Harmless here (mail alerts, SNMP, LVS sync, tuning): accepted, reported once.
    Ignored,
    /// Changes behaviour keepalived would have: loads, but the warning says
    /// xvrrp will not do it.
    NotApplied(&'static str),
}

/// What lvs_sync_daemon would have done, and what stands in for it.
const LVS_SYNC: &str =
    "no connection sync daemon: DR flows survive a failover without one (every load balancer builds the same Maglev tables), NAT connections do not (conntrack state is not copied)";

/// Checkers read but not run yet.
const CHECKER_NOT_RUN: &str =
    "this checker is not run by xvrrp yet: a real server counts as up for it";

/// keepalived keywords, any block, that xvrrp does not implement, and what
/// it does with each (docs/keepalived.md lists them; a test keeps the two
/// in step).
pub const UNSUPPORTED: &[(&str, Unsupported)] = {
    use Unsupported::*;
    &[
        (
            "smtp_alert_checker",
            NotApplied("no mail is sent when a real server goes up or down (keepalived mails on each); use notify_up/notify_down or the fifo"),
        ),
        ("enable_traps", Ignored),
        ("enable_snmp_vrrp", Ignored),
        ("enable_snmp_checker", Ignored),
        ("enable_snmp_rfc", Ignored),
        ("enable_snmp_rfcv2", Ignored),
        ("enable_snmp_rfcv3", Ignored),
        ("enable_snmp_keepalived", Ignored),
        ("snmp_socket", Ignored),
        ("lvs_id", Ignored),
        ("lvs_sync_daemon", NotApplied(LVS_SYNC)),
        ("lvs_sync_daemon_interface", NotApplied(LVS_SYNC)),
        ("lvs_flush", Ignored),
        ("lvs_timeouts", Ignored),
        ("max_auto_priority", Ignored),
        ("checker_no_swap", Ignored),
        ("checker_priority", Ignored),
        ("checker_rt_priority", Ignored),
        ("vrrp_cpu_affinity", Ignored),
        ("process_names", Ignored),
        ("process_name", Ignored),
        ("vrrp_process_name", Ignored),
        ("dynamic_interfaces", Ignored),
        ("linkbeat_use_polling", Ignored),
        ("debug", Ignored),
        ("checker_rlimit_rttime", Ignored),
        ("vrrp_netlink_cmd_rcv_bufs", Ignored),
        ("vrrp_netlink_monitor_rcv_bufs", Ignored),
        ("kernel_rx_buf_size", Ignored),
        ("notify_priority_changes", Ignored),
        ("instance", Ignored),
        ("net_namespace_ipvs", Ignored),
        ("namespace_with_ipsets", Ignored),
        ("uid", Ignored),
        ("gid", Ignored),
        ("script_rlimit", Ignored),
        (
            "vrrp_iptables",
            NotApplied("xvrrp drops traffic to VIPs in XDP, not with iptables/nftables"),
        ),
        (
            "vrrp_ipsets",
            NotApplied("xvrrp drops traffic to VIPs in XDP, not with iptables/nftables"),
        ),
        (
            "nftables",
            NotApplied("xvrrp drops traffic to VIPs in XDP, not with iptables/nftables"),
        ),
        (
            "nftables_priority",
            NotApplied("xvrrp drops traffic to VIPs in XDP, not with iptables/nftables"),
        ),
        (
            "nftables_ifindex",
            NotApplied("xvrrp drops traffic to VIPs in XDP, not with iptables/nftables"),
        ),
        (
            "nftables_counters",
            NotApplied("xvrrp drops traffic to VIPs in XDP, not with iptables/nftables"),
        ),
        (
            "track_bfd",
            NotApplied("this tracker is not implemented by xvrrp; it is not consulted"),
        ),
        (
            "bfd_instance",
            NotApplied("this tracker is not implemented by xvrrp; it is not consulted"),
        ),
        (
            "linkbeat_interfaces",
            NotApplied("this tracker is not implemented by xvrrp; it is not consulted"),
        ),
        (
            "vmac_xmit_base_ipv6",
            NotApplied("not implemented by xvrrp"),
        ),
        ("BFD_CHECK", NotApplied(CHECKER_NOT_RUN)),
    ]
};

/// What xvrrp does with a keepalived keyword it does not implement.
pub fn unsupported(keyword: &str) -> Option<Unsupported> {
    UNSUPPORTED
        .iter()
        .find(|(k, _)| *k == keyword)
        .map(|(_, u)| *u)
}

/// Levenshtein distance (small strings only).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest of `candidates` to `word`, when close enough to be a typo.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 4);
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_keyword() {
        let kws = ["virtual_router_id", "priority", "advert_int", "interface"];
        assert_eq!(
            did_you_mean("virtual_route_id", &kws),
            Some("virtual_router_id")
        );
        assert_eq!(did_you_mean("priorty", &kws), Some("priority"));
        assert_eq!(did_you_mean("colour", &kws), None);
    }

    #[test]
    fn not_applied_and_ignored_are_told_apart() {
        assert!(matches!(
            unsupported("BFD_CHECK"),
            Some(Unsupported::NotApplied(_))
        ));
        assert_eq!(unsupported("enable_snmp_vrrp"), Some(Unsupported::Ignored));
        assert!(matches!(
            unsupported("track_bfd"),
            Some(Unsupported::NotApplied(_))
        ));
        assert_eq!(unsupported("priority"), None);
    }
}
