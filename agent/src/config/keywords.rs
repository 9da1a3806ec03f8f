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
    /// LVS / health checkers: a separate keepalived must keep doing these.
    Lvs,
}

/// keepalived keywords, any block, that xvrrp does not implement.
pub fn unsupported(keyword: &str) -> Option<Unsupported> {
    use Unsupported::*;
    Some(match keyword {
        "notification_email" | "notification_email_from" | "smtp_server" | "smtp_connect_timeout"
        | "smtp_helo_name" | "smtp_alert" | "smtp_alert_vrrp" | "smtp_alert_checker" | "enable_traps"
        | "enable_snmp_vrrp" | "enable_snmp_checker" | "enable_snmp_rfc" | "enable_snmp_rfcv2"
        | "enable_snmp_rfcv3" | "enable_snmp_keepalived" | "snmp_socket" | "lvs_id"
        | "lvs_sync_daemon" | "lvs_sync_daemon_interface" | "lvs_flush" | "lvs_timeouts"
        | "max_auto_priority" | "vrrp_no_swap" | "checker_no_swap" | "vrrp_priority"
        | "checker_priority" | "vrrp_rt_priority" | "checker_rt_priority" | "vrrp_cpu_affinity"
        | "process_names" | "process_name" | "vrrp_process_name" | "dynamic_interfaces"
        | "linkbeat_use_polling" | "debug" | "vrrp_rlimit_rttime" | "checker_rlimit_rttime"
        | "vrrp_netlink_cmd_rcv_bufs" | "vrrp_netlink_monitor_rcv_bufs" | "kernel_rx_buf_size"
        | "no_email_faults" | "global_tracking" | "vrrp_min_garp" | "notify_priority_changes"
        | "instance" | "net_namespace_ipvs" | "namespace_with_ipsets"
        | "default_interface" | "uid" | "gid" | "script_rlimit" => Ignored,
        "vrrp_iptables" | "vrrp_ipsets" | "nftables" | "nftables_priority" | "nftables_ifindex"
        | "nftables_counters" => NotApplied("xvrrp drops traffic to VIPs in XDP, not with iptables/nftables"),
        "virtual_routes" | "static_routes" | "virtual_rules" | "static_rules" => {
            NotApplied("xvrrp does not install routes or rules on transitions; keep them in your network configuration")
        }
        "net_namespace" => NotApplied("xvrrp runs in the namespace it is started in: `ip netns exec NAME xvrrp run`"),
        "static_ipaddress" => NotApplied("xvrrp does not add static addresses; configure them with your network configuration"),
        "track_process" | "vrrp_track_process" | "track_bfd" | "bfd_instance" | "track_src_ip"
        | "linkbeat_interfaces" => NotApplied("this tracker is not implemented by xvrrp; it is not consulted"),
        "unicast_ttl" | "unicast_fault_no_peer" | "vmac_xmit_base_ipv6" => {
            NotApplied("not implemented by xvrrp")
        }
        "virtual_server" | "virtual_server_group" | "real_server" | "HTTP_GET" | "SSL_GET" | "TCP_CHECK"
        | "SMTP_CHECK" | "MISC_CHECK" | "DNS_CHECK" | "UDP_CHECK" | "PING_CHECK" | "BFD_CHECK"
        | "FILE_CHECK" => Lvs,
        _ => return None,
    })
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
    fn lvs_and_ignored_are_told_apart() {
        assert_eq!(unsupported("virtual_server"), Some(Unsupported::Lvs));
        assert_eq!(unsupported("smtp_alert"), Some(Unsupported::Ignored));
        assert!(matches!(
            unsupported("virtual_routes"),
            Some(Unsupported::NotApplied(_))
        ));
        assert_eq!(unsupported("priority"), None);
    }
}
