//! One vrrp_instance -> the election's `proto::Config`, keepalived's
//! defaults applied.

use std::net::IpAddr;

use super::model::{AuthType, Global, Instance};
use crate::{
    proto::{self, GarpSchedule},
    wire::vrrp::{Auth, ChecksumMode, Family, Version},
};

/// `primary` is the interface's address of the VIPs' family (or
/// unicast_src_ip): the advert source and tie-breaker.
pub fn router_config(i: &Instance, g: &Global, primary: IpAddr) -> proto::Config {
    let v6 = i.is_ipv6();
    let strict = i.strict.unwrap_or(g.strict);
    let owner = i.priority == 255;
    let garp_interval = if v6 { g.gna_interval } else { g.garp_interval };
    proto::Config {
        name: i.name.clone(),
        vrid: i.vrid,
        family: if v6 { Family::V6 } else { Family::V4 },
        version: if i.version == 2 && !v6 {
            Version::V2
        } else {
            Version::V3
        },
        mixed_v2: i.mixed_v2_v3 && !v6,
        priority: i.priority,
        interval_cs: i.advert_int_cs,
        preempt: i.preempt,
        preempt_delay: i.preempt_delay,
        // keepalived: accept on unless vrrp_strict, which keeps it only for owners.
        accept: i.accept.unwrap_or(!strict) || owner,
        auth: match &i.auth {
            Some(a) if a.kind == AuthType::Pass && i.version == 2 => Auth::pass(&a.pass),
            _ => Auth::None,
        },
        vips: i.vips.iter().map(|v| v.addr).collect(),
        primary,
        unicast_peers: i.unicast_peers.clone(),
        peer_ttl: i.peer_ttl.clone(),
        down_timer_adverts: i.down_timer_adverts,
        skip_check_adv_addr: i.skip_check_adv_addr.unwrap_or(g.skip_check_adv_addr),
        check_unicast_src: i.check_unicast_src,
        // keepalived includes the pseudo-header in v3/IPv4 unless v3_checksum_as_v2.
        checksum: if (g.v3_checksum_as_v2 || i.v3_checksum_as_v2) && !v6 {
            ChecksumMode::Plain
        } else {
            ChecksumMode::PseudoHeader
        },
        garp: GarpSchedule {
            repeat: i.garp_master_repeat.unwrap_or(g.garp_master_repeat),
            delay: i.garp_master_delay.unwrap_or(g.garp_master_delay),
            refresh: i
                .garp_master_refresh
                .or(g.garp_master_refresh)
                .filter(|d| !d.is_zero()),
            refresh_repeat: i
                .garp_master_refresh_repeat
                .unwrap_or(g.garp_master_refresh_repeat),
            interval: garp_interval,
            extra_if: i.garp_extra_if.or(g.garp_extra_if),
            // keepalived: these default to the garp_master values.
            lower_prio_repeat: i
                .garp_lower_prio_repeat
                .or(g.garp_lower_prio_repeat)
                .unwrap_or(i.garp_master_repeat.unwrap_or(g.garp_master_repeat)),
            lower_prio_delay: i
                .garp_lower_prio_delay
                .or(g.garp_lower_prio_delay)
                .unwrap_or(i.garp_master_delay.unwrap_or(g.garp_master_delay)),
        },
        lower_prio_no_advert: i.lower_prio_no_advert.unwrap_or(g.lower_prio_no_advert),
        higher_prio_send_advert: i
            .higher_prio_send_advert
            .unwrap_or(g.higher_prio_send_advert),
    }
}
