//! virtual_server with lb_kind DR and TUN, forwarded by the XDP program, as
//! a client sees it: two load balancers running xvrrp (VRRP for the VIP),
//! three reals on the same LAN holding the VIP on their loopback (for TUN
//! they decapsulate IPIP with the tests' own XDP program: no ipip module
//! here).

use std::{net::SocketAddr, time::Duration};

use xvrrp_tests::{
    farm::{echo_line, tally, Farm},
    require_root, wait_until,
};

const VIP: &str = "10.77.0.100";
/// The echo service is a virtual_server_group over 10.77.0.100-101 port 7.
const VIP2: &str = "10.77.0.101";

/// A load balancer's config; with `real2_down` its own checker says real2
/// is down (a MISC_CHECK that fails), whatever the other one sees.
fn lb_conf(priority: u8, farm: &Farm, real2_down: bool, kind: &str) -> String {
    let reals = |port: u16| -> String {
        farm.reals
            .iter()
            .enumerate()
            .map(|(k, r)| {
                format!(
                    "    real_server {} {port} {{\n        weight {}\n        TCP_CHECK {{\n            connect_timeout 1\n            retry 1\n            delay_before_retry 0.5\n        }}\n{}    }}\n",
                    r.addr,
                    if k == 2 { 2 } else { 1 },
                    if k == 2 && real2_down {
                        "        MISC_CHECK {\n            misc_path /bin/false\n        }\n"
                    } else {
                        ""
                    }
                )
            })
            .collect()
    };
    format!(
        "vrrp_instance FRONT {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    priority {priority}\n    version 3\n    advert_int 0.1\n    virtual_ipaddress {{\n        {VIP}/24\n        {VIP2}/24\n    }}\n}}\n\
         virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo mh\n    lb_kind {kind}\n    protocol TCP\n{}}}\n\
         virtual_server_group ECHO {{\n    10.77.0.100-101 7\n}}\n\
         virtual_server group ECHO {{\n    delay_loop 1\n    lb_algo mh\n    lb_kind {kind}\n    protocol TCP\n{}}}\n",
        reals(80),
        reals(7)
    )
}

fn alive(a: &xvrrp_tests::lan::Agent) -> usize {
    a.status()
        .ok()
        .and_then(|s| {
            s.virtual_servers
                .first()
                .map(|v| v.reals.iter().filter(|r| r.alive).count())
        })
        .unwrap_or(0)
}

fn forwarding(a: &xvrrp_tests::lan::Agent) -> bool {
    a.status()
        .ok()
        .is_some_and(|s| s.virtual_servers.iter().all(|v| v.forwarding))
}

/// Connections spread over the reals by weight through the Active's XDP
/// program (MACs rewritten, the reals answer the client directly); a real
/// whose server stops leaves the Maglev table and returns; a long-lived TCP
/// connection opened before kill -9 of the Active goes on through the new
/// Active, which picks the same real for it without any state shared.
#[test]
fn dr_in_xdp_spreads_by_weight_and_flows_survive_a_failover() {
    spreads_by_weight_and_flows_survive_a_failover("DR");
}

/// The same with lb_kind TUN: the Active encapsulates in IPIP, the reals
/// decapsulate and answer the client directly.
#[test]
fn tun_in_xdp_spreads_by_weight_and_flows_survive_a_failover() {
    spreads_by_weight_and_flows_survive_a_failover("TUN");
}

/// lb_kind TUN type gue port 6080: UDP/GUE tunnels to the reals.
#[test]
fn tun_gue_in_xdp_spreads_by_weight_and_flows_survive_a_failover() {
    spreads_by_weight_and_flows_survive_a_failover("TUN type gue port 6080");
}

/// lb_kind TUN type gre: GRE tunnels to the reals.
#[test]
fn tun_gre_in_xdp_spreads_by_weight_and_flows_survive_a_failover() {
    spreads_by_weight_and_flows_survive_a_failover("TUN type gre");
}

fn spreads_by_weight_and_flows_survive_a_failover(kind: &str) {
    use xvrrp_tests::decap::{self, Tunnel};
    require_root();
    let (tag, tunnel) = match kind {
        "DR" => ("dr", None),
        "TUN" => ("tun", Some(Tunnel::Ipip)),
        "TUN type gre" => ("gre", Some(Tunnel::Gre)),
        "TUN type gue port 6080" => ("gue", Some(Tunnel::Gue(6080))),
        other => panic!("no test tunnel for {other}"),
    };
    let mut farm = Farm::direct(&format!("lvs-{tag}"), 3, &[VIP, VIP2]).unwrap();
    if let Some(t) = tunnel {
        for r in &farm.reals {
            decap::attach(&r.ns, "eth0", t).unwrap();
        }
    }
    let _echo: Vec<_> = (0..3).map(|k| farm.echo(k, 7).unwrap()).collect();
    let lb1 = farm
        .lan
        .xvrrp(1, "lb1", &lb_conf(150, &farm, false, kind))
        .unwrap();
    let lb2 = farm
        .lan
        .xvrrp(2, "lb2", &lb_conf(100, &farm, false, kind))
        .unwrap();
    let ready = wait_until(Duration::from_secs(15), || {
        lb1.state("FRONT") == "Active"
            && lb2.state("FRONT") == "Backup"
            && forwarding(&lb1)
            && alive(&lb1) == 3
            && alive(&lb2) == 3
    });
    assert!(
        ready,
        "lb1: {}\nlb2: {}",
        lb1.proc.log_text(),
        lb2.proc.log_text()
    );
    assert!(!forwarding(&lb2), "the Backup forwards");

    // Weights 1, 1, 2: Maglev gives real2 half the slots; 200 connections
    // from as many source ports land about so.
    let t = tally(&farm.ask(VIP, 80, 200));
    let n = |k: &str| t.get(k).copied().unwrap_or(0);
    assert_eq!(
        n("real0") + n("real1") + n("real2"),
        200,
        "{t:?}\n{:?}\n{}",
        lb1.status()
            .map(|s| s.xdp.first().map(|x| x.counters.clone())),
        lb1.proc.log_text()
    );
    assert!(
        n("real0") > 20 && n("real1") > 20 && n("real2") > n("real0") && n("real2") > n("real1"),
        "{t:?}"
    );
    assert!(
        lb1.xdp_counter("lb_forwarded") > 0,
        "{:?}",
        lb1.status().map(|s| s.counters)
    );
    assert_eq!(
        lb1.xdp_counter("lb_encapsulated") > 0,
        tunnel.is_some(),
        "encapsulated only for TUN"
    );
    // Per-real packets and bytes, as IPVS counts them: every real that
    // answered was sent packets (a connection is 5 or more from the client).
    let counted = |a: &xvrrp_tests::lan::Agent| -> Vec<(u64, u64)> {
        a.status()
            .ok()
            .and_then(|s| {
                s.virtual_servers
                    .first()
                    .map(|v| v.reals.iter().map(|r| (r.packets, r.bytes)).collect())
            })
            .unwrap_or_default()
    };
    assert!(
        wait_until(Duration::from_secs(5), || {
            let c = counted(&lb1);
            c.len() == 3
                && (0..3)
                    .all(|k| c[k].0 >= 5 * n(&format!("real{k}")) as u64 && c[k].1 > c[k].0 * 40)
        }),
        "per-real counters {:?} for {t:?}",
        counted(&lb1)
    );

    // real2's server stops: out of the table, its share to the others.
    farm.serve(2, false).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || alive(&lb1) == 2),
        "{}",
        lb1.proc.log_text()
    );
    let t = tally(&farm.ask(VIP, 80, 40));
    assert_eq!(
        t.get("real0").unwrap_or(&0) + t.get("real1").unwrap_or(&0),
        40,
        "{t:?}"
    );
    farm.serve(2, true).unwrap();
    assert!(wait_until(Duration::from_secs(10), || alive(&lb1) == 3));
    assert!(
        wait_until(Duration::from_secs(5), || tally(&farm.ask(VIP, 80, 20))
            .contains_key("real2")),
        "real2 did not come back"
    );

    // The echo service is a group: its second address reaches the reals too.
    let second: SocketAddr = format!("{VIP2}:7").parse().unwrap();
    let mut group = farm.connect(second, 1, Duration::from_secs(3)).unwrap();
    let via_group = echo_line(&mut group[0], "group");
    assert!(
        via_group.starts_with("real") && via_group.ends_with(" group"),
        "{via_group:?}"
    );

    // A long-lived connection, then kill -9 of the Active.
    let target: SocketAddr = format!("{VIP}:7").parse().unwrap();
    let mut conns = farm.connect(target, 8, Duration::from_secs(1)).unwrap();
    let before: Vec<String> = conns.iter_mut().map(|c| echo_line(c, "before")).collect();
    assert!(before.iter().all(|l| l.ends_with(" before")), "{before:?}");
    lb1.proc.signal(libc::SIGKILL);
    assert!(
        wait_until(Duration::from_secs(5), || lb2.state("FRONT") == "Active"
            && forwarding(&lb2)),
        "{}",
        lb2.proc.log_text()
    );
    // The client's ARP entry follows the new Active's gratuitous ARP.
    assert!(wait_until(Duration::from_secs(5), || farm.lan.hosts[0]
        .neighbour(VIP)
        == Some(farm.lan.hosts[2].mac)));
    let after: Vec<String> = conns.iter_mut().map(|c| echo_line(c, "after")).collect();
    for (b, a) in before.iter().zip(&after) {
        let real = b.split(' ').next().unwrap();
        assert_eq!(
            a,
            &format!("{real} after"),
            "before: {before:?}\nafter: {after:?}"
        );
    }
    assert!(lb2.xdp_counter("lb_forwarded") > 0);
    drop(lb1);
}

/// The load balancers disagree: the new Active's own checker says real2 is
/// down. Connections to real0 and real1 opened through the old Active keep
/// their real after kill -9 of it: the primary Maglev table is built from
/// every configured real, so both hosts map them alike; only real2's
/// connections (which the new Active believes dead) are sent elsewhere.
#[test]
fn dr_flows_keep_their_real_when_the_new_active_disagrees_about_another_real() {
    require_root();
    let farm = Farm::direct("lvs-dr-split", 3, &[VIP, VIP2]).unwrap();
    let _echo: Vec<_> = (0..3).map(|k| farm.echo(k, 7).unwrap()).collect();
    let lb1 = farm
        .lan
        .xvrrp(1, "lb1", &lb_conf(150, &farm, false, "DR"))
        .unwrap();
    let lb2 = farm
        .lan
        .xvrrp(2, "lb2", &lb_conf(100, &farm, true, "DR"))
        .unwrap();
    let ready = wait_until(Duration::from_secs(15), || {
        lb1.state("FRONT") == "Active" && forwarding(&lb1) && alive(&lb1) == 3 && alive(&lb2) == 2
    });
    assert!(
        ready,
        "lb1: {}\nlb2: {}",
        lb1.proc.log_text(),
        lb2.proc.log_text()
    );
    let target: SocketAddr = format!("{VIP}:7").parse().unwrap();
    let mut conns = farm
        .connect(target, 40, Duration::from_secs(3))
        .unwrap_or_else(|e| {
            panic!(
                "{e:#}\n{:?}\n{}",
                lb1.status()
                    .map(|s| s.xdp.first().map(|x| x.counters.clone())),
                lb1.proc.log_text()
            )
        });
    let before: Vec<String> = conns.iter_mut().map(|c| echo_line(c, "before")).collect();
    let on = |real: &str| before.iter().filter(|l| l.starts_with(real)).count();
    assert!(
        on("real0") > 0 && on("real1") > 0 && on("real2") > 0,
        "{before:?}"
    );
    lb1.proc.signal(libc::SIGKILL);
    assert!(
        wait_until(Duration::from_secs(5), || lb2.state("FRONT") == "Active"
            && forwarding(&lb2)
            && farm.lan.hosts[0].neighbour(VIP) == Some(farm.lan.hosts[2].mac)),
        "{}",
        lb2.proc.log_text()
    );
    let after: Vec<String> = conns.iter_mut().map(|c| echo_line(c, "after")).collect();
    let mut kept = 0;
    for (b, a) in before.iter().zip(&after) {
        let real = b.split(' ').next().unwrap();
        if real != "real2" {
            assert_eq!(
                a,
                &format!("{real} after"),
                "before: {before:?}\nafter: {after:?}"
            );
        }
        kept += usize::from(a == &format!("{real} after"));
    }
    eprintln!(
        "{kept} of {} connections kept their real; {} were on real2, which the new Active believes down",
        before.len(),
        on("real2")
    );
}

/// A TUN real behind a router, as TUN exists for: the load balancer sends
/// the IPIP packet to the gateway its route to the real names (the
/// gateway's MAC, the real's address in the outer header); the real
/// decapsulates and answers the client through its own router.
#[test]
fn tun_reaches_a_real_behind_a_router() {
    use xvrrp_tests::decap::{self, Tunnel};
    require_root();
    let mut farm = Farm::direct("lvs-tun-gw", 1, &[VIP]).unwrap();
    let k = farm.routed_real(0, &[VIP]).unwrap();
    let remote = farm.reals[k].addr;
    decap::attach(&farm.reals[k].ns, "eth0", Tunnel::Ipip).unwrap();
    let lb = &farm.lan.hosts[1].ns;
    lb.ip(&["route", "add", "10.79.0.0/24", "via", "10.77.0.11"])
        .unwrap();
    let conf = format!(
        "vrrp_instance FRONT {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    priority 150\n    version 3\n    advert_int 0.1\n    virtual_ipaddress {{\n        {VIP}/24\n    }}\n}}\n\
         virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo mh\n    lb_kind TUN\n    protocol TCP\n    real_server {remote} 80 {{\n        TCP_CHECK {{\n            connect_timeout 1\n        }}\n    }}\n}}\n"
    );
    let lb1 = farm.lan.xvrrp(1, "lb1", &conf).unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || lb1.state("FRONT") == "Active"
            && forwarding(&lb1)
            && alive(&lb1) == 1),
        "{}",
        lb1.proc.log_text()
    );
    let t = tally(&farm.ask(VIP, 80, 20));
    assert_eq!(
        t.get(&farm.reals[k].name).copied(),
        Some(20),
        "{t:?}\n{}",
        lb1.proc.log_text()
    );
    assert!(lb1.xdp_counter("lb_encapsulated") >= 20);
}

/// keepalived's sorry server with lb_kind DR: quorum 2 over two reals of
/// weight 1; one real's server stops, quorum is lost, and every new
/// connection goes to the sorry server, forwarded by the XDP program like
/// the reals; the real returns and the sorry server leaves.
#[test]
fn dr_sorry_server_takes_over_when_quorum_is_lost() {
    require_root();
    let mut farm = Farm::direct("lvs-dr-sorry", 3, &[VIP]).unwrap();
    let real = |k: usize| {
        format!(
            "    real_server {} 80 {{\n        TCP_CHECK {{\n            connect_timeout 1\n            retry 1\n            delay_before_retry 0.5\n        }}\n    }}\n",
            farm.reals[k].addr
        )
    };
    let conf = format!(
        "vrrp_instance FRONT {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    priority 150\n    version 3\n    advert_int 0.1\n    virtual_ipaddress {{\n        {VIP}/24\n    }}\n}}\n\
         virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo mh\n    lb_kind DR\n    protocol TCP\n    quorum 2\n    sorry_server {} 80\n{}{}}}\n",
        farm.reals[2].addr,
        real(0),
        real(1)
    );
    let lb1 = farm.lan.xvrrp(1, "lb1", &conf).unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || lb1.state("FRONT") == "Active"
            && forwarding(&lb1)
            && alive(&lb1) == 2),
        "{}",
        lb1.proc.log_text()
    );
    let t = tally(&farm.ask(VIP, 80, 40));
    assert_eq!(
        t.get("real2"),
        None,
        "the sorry server while quorum holds: {t:?}"
    );
    assert_eq!(t.values().sum::<usize>(), 40, "{t:?}");

    farm.serve(1, false).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || alive(&lb1) == 1),
        "{}",
        lb1.proc.log_text()
    );
    // The pool switches to the sorry server at the same check.
    std::thread::sleep(Duration::from_millis(300));
    let t = tally(&farm.ask(VIP, 80, 40));
    assert_eq!(t.get("real2"), Some(&40), "quorum lost: {t:?}");

    farm.serve(1, true).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || alive(&lb1) == 2),
        "{}",
        lb1.proc.log_text()
    );
    std::thread::sleep(Duration::from_millis(300));
    let t = tally(&farm.ask(VIP, 80, 40));
    assert_eq!(t.get("real2"), None, "quorum back: {t:?}");
    assert_eq!(t.values().sum::<usize>(), 40, "{t:?}");
}

/// lb_kind DR over IPv6: a virtual server on an IPv6 address (no VRRP for
/// it here: a virtual server no instance holds always forwards), three
/// reals on the LAN with the VIP on their loopback (IPv6 answers neighbour
/// solicitations only for addresses of the interface asked on, so no
/// arp_ignore is needed); connections spread over all three by the XDP
/// program, counted per real.
#[test]
fn dr_over_ipv6() {
    require_root();
    const VIP6: &str = "fd77::100";
    let farm = Farm::direct("lvs-dr6", 3, &[VIP, VIP6]).unwrap();
    let lb = &farm.lan.hosts[1].ns;
    // Deprecated (preferred_lft 0), as IPv6 VIPs are held: never chosen as
    // the source of the load balancer's own connections (its checks), whose
    // answers would go to the reals' own copy of the VIP instead.
    lb.ip(&[
        "addr",
        "add",
        &format!("{VIP6}/64"),
        "dev",
        "eth0",
        "nodad",
        "preferred_lft",
        "0",
    ])
    .unwrap();
    let reals: String = (0..3)
        .map(|k| {
            format!(
                "    real_server fd77::{} 80 {{\n        TCP_CHECK {{\n            connect_timeout 1\n        }}\n    }}\n",
                11 + k
            )
        })
        .collect();
    let conf = format!(
        "vrrp_instance FRONT {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    priority 150\n    version 3\n    advert_int 0.1\n    virtual_ipaddress {{\n        {VIP}/24\n    }}\n}}\n\
         virtual_server {VIP6} 80 {{\n    delay_loop 1\n    lb_algo mh\n    lb_kind DR\n    protocol TCP\n{reals}}}\n"
    );
    let lb1 = farm.lan.xvrrp(1, "lb1", &conf).unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || forwarding(&lb1)
            && alive(&lb1) == 3),
        "{}",
        lb1.proc.log_text()
    );
    let t = tally(&farm.ask(VIP6, 80, 60));
    assert_eq!(
        t.values().sum::<usize>(),
        60,
        "{t:?}\n{}",
        lb1.proc.log_text()
    );
    assert_eq!(t.len(), 3, "all three reals: {t:?}");
    assert!(lb1.xdp_counter("lb_forwarded") >= 60 * 3);
    assert!(
        wait_until(Duration::from_secs(5), || lb1.status().is_ok_and(|s| s
            .virtual_servers
            .first()
            .is_some_and(|v| v.reals.iter().all(|r| r.packets > 0)))),
        "per-real counters"
    );
}
