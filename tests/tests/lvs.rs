//! virtual_server with NAT, as a client sees it: two load balancers running
//! xvrrp (VRRP for the front VIP and the reals' gateway, a virtual server
//! on the front VIP), three real servers with HTTP servers.

use std::time::Duration;

use xvrrp_tests::{
    farm::{tally, Farm},
    require_root, wait_until,
};

const VIP: &str = "10.77.0.100";

/// A load balancer's config; `name` marks the runs of real0's MISC_CHECK
/// (in the file `runs`), which ha_suspend pauses while the host is Backup.
fn lb_conf(priority: u8, farm: &Farm, name: &str) -> String {
    let notify = farm.lan.logs.join("notify.sh");
    let events = farm.lan.logs.join("events");
    let runs = farm.lan.logs.join("runs.sh");
    std::fs::write(
        &notify,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", events.display()),
    )
    .unwrap();
    std::fs::write(
        &runs,
        format!(
            "#!/bin/sh\necho \"$1\" >> {}\n",
            farm.lan.logs.join("runs").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    for f in [&notify, &runs] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let misc = format!(
        "        MISC_CHECK {{\n            misc_path \"{} {name}\"\n        }}\n",
        runs.display()
    );
    let reals: String = farm
        .reals
        .iter()
        .enumerate()
        .map(|(k, r)| {
            format!(
                "    real_server {} 80 {{\n        weight {}\n        notify_up \"{n} {name} up\"\n        notify_down \"{n} {name} down\"\n        TCP_CHECK {{\n            connect_timeout 1\n            retry 1\n            delay_before_retry 0.5\n        }}\n{}    }}\n",
                r.addr,
                if k == 2 { 2 } else { 1 },
                if k == 0 { misc.as_str() } else { "" },
                n = notify.display(),
                name = r.name
            )
        })
        .collect();
    format!(
        "vrrp_sync_group LB {{\n    group {{\n        FRONT\n        BACK\n    }}\n}}\n\
         vrrp_instance FRONT {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    priority {priority}\n    version 3\n    advert_int 0.1\n    virtual_ipaddress {{\n        {VIP}/24\n    }}\n}}\n\
         vrrp_instance BACK {{\n    state BACKUP\n    interface eth1\n    virtual_router_id 52\n    priority {priority}\n    version 3\n    advert_int 0.1\n    virtual_ipaddress {{\n        10.78.0.1/24\n    }}\n}}\n\
         virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo wrr\n    lb_kind NAT\n    protocol TCP\n    ha_suspend\n{reals}}}\n"
    )
}

fn events(farm: &Farm) -> String {
    std::fs::read_to_string(farm.lan.logs.join("events")).unwrap_or_default()
}

fn real_alive(a: &xvrrp_tests::lan::Agent, addr: &str) -> Option<bool> {
    a.status().ok().and_then(|s| {
        s.virtual_servers.first().and_then(|v| {
            v.reals
                .iter()
                .find(|r| r.address.starts_with(addr))
                .map(|r| r.alive)
        })
    })
}

fn forwarding(a: &xvrrp_tests::lan::Agent) -> bool {
    a.status()
        .ok()
        .and_then(|s| s.virtual_servers.first().map(|v| v.forwarding))
        .unwrap_or(false)
}

/// Connections spread by weight; a real whose server stops leaves the pool
/// (notify_down runs) and returns when it serves again (notify_up); the
/// Backup load balancer does not forward and, with ha_suspend, does not
/// check; kill -9 of the Active: the Backup takes over, checks and new
/// connections reach the reals.
#[test]
fn nat_spreads_by_weight_follows_the_checkers_and_survives_a_failover() {
    require_root();
    let mut farm = Farm::new("lvs-nat", 3).unwrap();
    let lb1 = farm
        .lan
        .xvrrp(1, "lb1", &lb_conf(150, &farm, "lb1"))
        .unwrap();
    let lb2 = farm
        .lan
        .xvrrp(2, "lb2", &lb_conf(100, &farm, "lb2"))
        .unwrap();
    let runs_file = farm.lan.logs.join("runs");
    let runs = || std::fs::read_to_string(&runs_file).unwrap_or_default();
    let ready = wait_until(Duration::from_secs(15), || {
        lb1.state("FRONT") == "Active"
            && lb2.state("FRONT") == "Backup"
            && forwarding(&lb1)
            && (0..3).all(|k| real_alive(&lb1, &farm.reals[k].addr.to_string()) == Some(true))
    });
    assert!(
        ready,
        "lb1: {}\nlb2: {}",
        lb1.proc.log_text(),
        lb2.proc.log_text()
    );
    assert!(!forwarding(&lb2), "the Backup forwards");
    // ha_suspend: the Active checks, the Backup's checkers wait.
    assert!(wait_until(Duration::from_secs(5), || runs()
        .matches("lb1")
        .count()
        >= 2));
    assert!(
        !runs().contains("lb2"),
        "a Backup's checker ran under ha_suspend: {}",
        runs()
    );

    // Weights 1, 1, 2 under wrr: exactly 10, 10, 20 of 40 connections.
    let t = tally(&farm.ask(VIP, 80, 40));
    assert_eq!(
        t,
        [
            ("real0".into(), 10),
            ("real1".into(), 10),
            ("real2".into(), 20)
        ]
        .into(),
        "lb1: {}",
        lb1.proc.log_text()
    );

    // real2's server stops: its TCP_CHECK fails twice (retry 1), the real
    // leaves the pool and notify_down runs with exactly its command line.
    farm.serve(2, false).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || real_alive(&lb1, "10.78.0.13")
            == Some(false)),
        "{}",
        lb1.proc.log_text()
    );
    assert!(
        wait_until(Duration::from_secs(5), || events(&farm)
            .contains("real2 down")),
        "events: {}",
        events(&farm)
    );
    let t = tally(&farm.ask(VIP, 80, 20));
    assert_eq!(t, [("real0".into(), 10), ("real1".into(), 10)].into());

    // Back: one success returns it.
    farm.serve(2, true).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || real_alive(&lb1, "10.78.0.13")
            == Some(true)),
        "{}",
        lb1.proc.log_text()
    );
    assert!(wait_until(Duration::from_secs(5), || events(&farm)
        .contains("real2 up")));
    let t = tally(&farm.ask(VIP, 80, 40));
    assert_eq!(t.get("real2"), Some(&20), "{t:?}");

    // The status carries traffic per real.
    let s = lb1.status().unwrap();
    let r0 = &s.virtual_servers[0].reals[0];
    assert!(
        wait_until(Duration::from_secs(5), || lb1.status().is_ok_and(|s| s
            .virtual_servers[0]
            .reals[0]
            .packets
            > 0)),
        "{r0:?}"
    );

    // kill -9 of the Active: lb2 takes over and forwards.
    drop(lb1);
    assert!(
        wait_until(Duration::from_secs(10), || lb2.state("FRONT") == "Active"
            && forwarding(&lb2)),
        "{}",
        lb2.proc.log_text()
    );
    assert!(
        wait_until(Duration::from_secs(5), || runs().contains("lb2")),
        "the new Active's checkers did not resume: {}",
        runs()
    );
    let answers = farm.ask(VIP, 80, 8);
    assert!(
        answers.iter().all(|a| a.starts_with("real")),
        "{answers:?}\nlb2: {}",
        lb2.proc.log_text()
    );
}

fn md5_hex(s: &str) -> String {
    let out = xvrrp_tests::sh("sh", &["-c", &format!("printf %s '{s}' | md5sum")]).unwrap();
    out.split_whitespace().next().unwrap().to_owned()
}

/// The checkers and pool rules on one load balancer (no VRRP: a virtual
/// server whose address no instance holds forwards whenever the agent runs):
/// HTTP_GET digest and status_code, alpha, inhibit_on_failure, MISC_CHECK
/// exit codes setting weights, quorum lost to the sorry server and regained,
/// SSL_GET against a TLS server with a test certificate.
#[test]
fn checkers_weights_quorum_and_the_sorry_server() {
    require_root();
    let mut farm = Farm::new("lvs-checks", 3).unwrap();
    farm.without_vrrp(VIP).unwrap();
    let _tls = farm.serve_tls(0).unwrap();
    let logs = farm.lan.logs.clone();
    let notify = logs.join("notify.sh");
    let events = logs.join("events");
    std::fs::write(
        &notify,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", events.display()),
    )
    .unwrap();
    let misc = logs.join("misc.sh");
    std::fs::write(
        &misc,
        format!("#!/bin/sh\nexit $(cat {}/$1.exit)\n", logs.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    for f in [&notify, &misc] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(logs.join("real0.exit"), "0").unwrap();
    std::fs::write(logs.join("real1.exit"), "5").unwrap();
    let digest = md5_hex("real0");
    // keepalived's fifo lines, read by the lvs_notify_fifo_script.
    let fifo_script = logs.join("fifo.sh");
    let fifo_lines = logs.join("fifo-lines");
    std::fs::write(
        &fifo_script,
        format!("#!/bin/sh\ncat \"$1\" >> {}\n", fifo_lines.display()),
    )
    .unwrap();
    std::fs::set_permissions(&fifo_script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let n = notify.display();
    let m = misc.display();
    let http = |k: usize, extra: &str| {
        format!(
            "    real_server 10.78.0.1{} 80 {{\n{extra}        notify_down \"{n} A real{k} down\"\n        HTTP_GET {{\n            url {{\n                path /who\n                digest {digest}\n            }}\n            url {{\n                path /missing\n                status_code 404\n            }}\n            connect_timeout 1\n            retry 0\n        }}\n    }}\n",
            k + 1
        )
    };
    let conf = format!(
        "global_defs {{\n    lvs_notify_fifo {}\n    lvs_notify_fifo_script {}\n}}\n\
         SSL {{\n    certificate {}\n    key {}\n}}\n\
         virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo rr\n{}{}{}}}\n\
         virtual_server {VIP} 81 {{\n    delay_loop 1\n    lb_algo wrr\n\
         real_server 10.78.0.11 80 {{\n MISC_CHECK {{\n misc_path \"{m} real0\"\n misc_dynamic\n }}\n }}\n\
         real_server 10.78.0.12 80 {{\n MISC_CHECK {{\n misc_path \"{m} real1\"\n misc_dynamic\n }}\n }}\n}}\n\
         virtual_server {VIP} 82 {{\n    delay_loop 1\n    lb_algo rr\n    quorum 2\n    sorry_server 10.78.0.13 80\n    quorum_down \"{n} C quorum down\"\n    quorum_up \"{n} C quorum up\"\n\
         real_server 10.78.0.11 80 {{\n TCP_CHECK {{\n connect_timeout 1\n retry 0\n }}\n }}\n\
         real_server 10.78.0.12 80 {{\n TCP_CHECK {{\n connect_timeout 1\n retry 0\n }}\n }}\n}}\n\
         virtual_server {VIP} 443 {{\n    delay_loop 1\n    lb_algo rr\n\
         real_server 10.78.0.11 443 {{\n SSL_GET {{\n url {{\n path /who\n digest {digest}\n }}\n connect_timeout 2\n retry 0\n }}\n }}\n\
         real_server 10.78.0.12 443 {{\n SSL_GET {{\n url {{\n path /who\n }}\n connect_timeout 1\n retry 0\n }}\n }}\n}}\n",
        logs.join("fifo").display(),
        fifo_script.display(),
        // A client certificate for SSL_GET (the test server does not ask).
        logs.join("real0.crt").display(),
        logs.join("real0.key").display(),
        http(0, ""),
        http(1, "        inhibit_on_failure\n"),
        http(2, "        alpha\n"),
    );
    let agent = farm.lan.xvrrp(1, "lb", &conf).unwrap();
    let vs = |i: usize| agent.status().ok().map(|s| s.virtual_servers[i].clone());
    let alive = |i: usize| -> Vec<bool> {
        vs(i)
            .map(|v| v.reals.iter().map(|r| r.alive).collect())
            .unwrap_or_default()
    };
    let ev = || std::fs::read_to_string(&events).unwrap_or_default();

    // A: only real0's page has the digest; real1 (inhibit_on_failure) stays
    // listed at weight 0, real2 (alpha) started down: no notify_down for it.
    assert!(
        wait_until(Duration::from_secs(15), || alive(0) == [true, false, false]),
        "{:?}\n{}",
        vs(0),
        agent.proc.log_text()
    );
    let a = vs(0).unwrap();
    assert!(a.reals[1].in_pool && a.reals[1].weight == 0, "{a:?}");
    assert!(!a.reals[2].in_pool, "{a:?}");
    assert!(
        wait_until(Duration::from_secs(5), || ev().contains("A real1 down")),
        "{}",
        ev()
    );
    assert!(
        !ev().contains("A real2 down"),
        "alpha: started down, no transition: {}",
        ev()
    );
    assert_eq!(tally(&farm.ask(VIP, 80, 6)), [("real0".into(), 6)].into());

    // B: exit 5 under misc_dynamic is up at weight 3.
    assert!(
        wait_until(Duration::from_secs(10), || vs(1)
            .is_some_and(|v| v.reals[1].weight == 3)),
        "{:?}",
        vs(1)
    );
    assert_eq!(
        tally(&farm.ask(VIP, 81, 40)),
        [("real0".into(), 10), ("real1".into(), 30)].into()
    );
    // Exit 1: down.
    std::fs::write(logs.join("real1.exit"), "1").unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || alive(1) == [true, false]),
        "{:?}",
        vs(1)
    );
    assert_eq!(tally(&farm.ask(VIP, 81, 4)), [("real0".into(), 4)].into());

    // D: SSL_GET with the digest over TLS; real1 has no TLS server.
    assert!(
        wait_until(Duration::from_secs(10), || alive(3) == [true, false]),
        "{:?}\n{}",
        vs(3),
        agent.proc.log_text()
    );

    // C: real1's server stops: live weight 1 < quorum 2, the sorry server
    // (real2) takes every new connection; back, and quorum returns.
    assert!(wait_until(Duration::from_secs(10), || alive(2) == [true, true]));
    farm.serve(1, false).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || vs(2)
            .is_some_and(|v| v.sorry_active)),
        "{:?}",
        vs(2)
    );
    assert!(
        wait_until(Duration::from_secs(5), || ev().contains("C quorum down")),
        "{}",
        ev()
    );
    assert_eq!(tally(&farm.ask(VIP, 82, 4)), [("real2".into(), 4)].into());
    farm.serve(1, true).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || vs(2)
            .is_some_and(|v| !v.sorry_active && v.quorum_up)),
        "{:?}",
        vs(2)
    );
    assert!(
        wait_until(Duration::from_secs(5), || ev().contains("C quorum up")),
        "{}",
        ev()
    );
    assert_eq!(
        tally(&farm.ask(VIP, 82, 4)),
        [("real0".into(), 2), ("real1".into(), 2)].into()
    );
}

/// A UDP responder answering every datagram as a DNS server would (the
/// query back with QR set, rcode 0).
const RESPONDER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
while True:
    d, a = s.recvfrom(4096)
    if len(d) >= 12:
        r = bytearray(d)
        r[2] |= 0x80
        r[3] &= 0xf0
        s.sendto(bytes(r), a)
"#;

/// DNS_CHECK, SMTP_CHECK, UDP_CHECK (an ICMP port unreachable takes a real down; a
/// required reply keeps one up), PING_CHECK, FILE_CHECK (value and dynamic
/// weight), and UDP forwarded through NAT.
#[test]
fn dns_udp_ping_smtp_and_file_checkers() {
    require_root();
    let farm = Farm::new("lvs-udp", 2).unwrap();
    farm.without_vrrp(VIP).unwrap();
    let logs = farm.lan.logs.clone();
    // Every check of a closed port gets its ICMP error (the kernel rate
    // limits them otherwise, and UDP_CHECK would see silence as success).
    for r in &farm.reals {
        r.ns.exec("sysctl", &["-qw", "net.ipv4.icmp_ratelimit=0"])
            .unwrap();
    }
    let _responder = farm.reals[0]
        .ns
        .spawn(
            "python3",
            &["-c", RESPONDER, "10.78.0.11"],
            &logs.join("responder.log"),
        )
        .unwrap();
    // SMTP on real0 (Debian's aiosmtpd, discarding mail).
    let _smtpd = farm.reals[0]
        .ns
        .spawn(
            "/usr/bin/python3",
            &[
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                "10.78.0.11:25",
                "-c",
                "aiosmtpd.handlers.Sink",
            ],
            &logs.join("smtpd.log"),
        )
        .unwrap();
    // Listening before the agent's first checks.
    assert!(
        wait_until(Duration::from_secs(10), || farm.reals[0]
            .ns
            .exec("ss", &["-ltnu"])
            .is_ok_and(
                |s| s.contains("10.78.0.11:25") && s.contains("10.78.0.11:53")
            )),
        "aiosmtpd or the responder did not start"
    );
    let (f, g) = (logs.join("f.state"), logs.join("g.state"));
    std::fs::write(&f, "0\n").unwrap();
    std::fs::write(&g, "3\n").unwrap();
    let conf = format!(
        "vrrp_track_file f {{\n file {}\n}}\nvrrp_track_file g {{\n file {}\n}}\n\
         virtual_server {VIP} 53 {{\n delay_loop 1\n lb_algo rr\n protocol UDP\n\
         real_server 10.78.0.11 53 {{\n DNS_CHECK {{\n type A\n name example.org\n connect_timeout 1\n retry 0\n }}\n }}\n\
         real_server 10.78.0.12 53 {{\n DNS_CHECK {{\n connect_timeout 1\n retry 0\n }}\n }}\n}}\n\
         virtual_server {VIP} 54 {{\n delay_loop 1\n lb_algo rr\n protocol UDP\n\
         real_server 10.78.0.11 53 {{\n UDP_CHECK {{\n payload 0102 0000 0001 0000 0000 0000 00 0001 0001\n require_reply 0102\n connect_timeout 1\n retry 0\n }}\n }}\n\
         real_server 10.78.0.12 53 {{\n UDP_CHECK {{\n connect_timeout 1\n retry 0\n }}\n }}\n}}\n\
         virtual_server {VIP} 80 {{\n delay_loop 1\n lb_algo rr\n\
         real_server 10.78.0.11 80 {{\n PING_CHECK {{\n connect_timeout 1\n retry 0\n }}\n }}\n\
         real_server 10.78.0.99 80 {{\n PING_CHECK {{\n connect_timeout 1\n retry 0\n }}\n }}\n}}\n\
         virtual_server {VIP} 81 {{\n delay_loop 1\n lb_algo rr\n\
         real_server 10.78.0.11 80 {{\n FILE_CHECK {{\n track_file f\n }}\n }}\n\
         real_server 10.78.0.12 80 {{\n weight 1\n FILE_CHECK {{\n track_file g\n weight 2\n dynamic\n }}\n }}\n}}\n\
         virtual_server {VIP} 25 {{\n delay_loop 1\n lb_algo rr\n\
         real_server 10.78.0.11 25 {{\n SMTP_CHECK {{\n helo_name lb.test\n connect_timeout 2\n retry 0\n }}\n }}\n\
         real_server 10.78.0.12 25 {{\n SMTP_CHECK {{\n connect_timeout 1\n retry 0\n }}\n }}\n}}\n",
        f.display(),
        g.display()
    );
    let agent = farm.lan.xvrrp(1, "lb", &conf).unwrap();
    let vs = |i: usize| agent.status().ok().map(|s| s.virtual_servers[i].clone());
    let alive = |i: usize| -> Vec<bool> {
        vs(i)
            .map(|v| v.reals.iter().map(|r| r.alive).collect())
            .unwrap_or_default()
    };
    for (i, what) in [
        (0, "DNS_CHECK"),
        (1, "UDP_CHECK"),
        (2, "PING_CHECK"),
        (4, "SMTP_CHECK"),
    ] {
        assert!(
            wait_until(Duration::from_secs(15), || alive(i) == [true, false]),
            "{what}: {:?}\n{}",
            vs(i),
            agent.proc.log_text()
        );
    }
    assert!(
        wait_until(Duration::from_secs(10), || vs(3)
            .is_some_and(|v| v.reals[0].alive && v.reals[1].weight == 7)),
        "FILE_CHECK: {:?}",
        vs(3)
    );
    std::fs::write(&f, "1\n").unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || alive(3) == [false, true]),
        "FILE_CHECK: {:?}",
        vs(3)
    );

    // A DNS query from the client to the VIP is NATed to real0 and answered.
    let answered = farm.lan.hosts[0]
        .ns
        .run(|| {
            let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.connect(format!("{VIP}:53"))?;
            s.send(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01")?;
            let mut buf = [0u8; 512];
            let n = s.recv(&mut buf)?;
            Ok(n >= 12 && buf[..2] == [0x12, 0x34] && buf[2] & 0x80 != 0)
        })
        .unwrap_or(false);
    assert!(answered, "{}", agent.proc.log_text());
}

/// persistence_timeout keeps a client on its real under rr; a reload with
/// new weights applies them; a clean stop removes the agent's table.
#[test]
fn persistence_reload_and_a_clean_stop() {
    require_root();
    let farm = Farm::new("lvs-persist", 2).unwrap();
    farm.without_vrrp(VIP).unwrap();
    let lb = &farm.lan.hosts[1].ns;
    let conf = |persist: &str, w1: u32| {
        format!(
            "virtual_server {VIP} 80 {{\n delay_loop 1\n lb_algo rr\n{persist}\
             real_server 10.78.0.11 80 {{\n TCP_CHECK {{\n connect_timeout 1\n }}\n }}\n\
             real_server 10.78.0.12 80 {{\n weight {w1}\n TCP_CHECK {{\n connect_timeout 1\n }}\n }}\n}}\n\
             virtual_server {VIP} 81 {{\n delay_loop 1\n lb_algo wrr\n\
             real_server 10.78.0.11 80 {{\n TCP_CHECK {{\n connect_timeout 1\n }}\n }}\n\
             real_server 10.78.0.12 80 {{\n weight {w1}\n TCP_CHECK {{\n connect_timeout 1\n }}\n }}\n}}\n"
        )
    };
    let mut agent = farm
        .lan
        .xvrrp(1, "lb", &conf(" persistence_timeout 30\n", 1))
        .unwrap();
    let ready = |a: &xvrrp_tests::lan::Agent, w: u32| {
        a.status().is_ok_and(|s| {
            s.virtual_servers.len() == 2
                && s.virtual_servers[1].reals.iter().all(|r| r.alive)
                && s.virtual_servers[1].reals[1].weight == w
        })
    };
    assert!(
        wait_until(Duration::from_secs(10), || ready(&agent, 1)),
        "{}",
        agent.proc.log_text()
    );
    // Without persistence rr alternates; with it one client stays put.
    let t = tally(&farm.ask(VIP, 80, 10));
    assert_eq!(t.len(), 1, "persistence: {t:?}");
    assert_eq!(
        tally(&farm.ask(VIP, 81, 4)),
        [("real0".into(), 2), ("real1".into(), 2)].into()
    );

    // SIGHUP with real1 at weight 3: applied without a restart of the agent.
    std::fs::write(&agent.conf, conf("", 3)).unwrap();
    agent.proc.signal(libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || ready(&agent, 3)),
        "{}",
        agent.proc.log_text()
    );
    assert_eq!(
        tally(&farm.ask(VIP, 81, 8)),
        [("real0".into(), 2), ("real1".into(), 6)].into()
    );

    // A clean stop takes the table away.
    assert!(lb.exec("nft", &["list", "table", "inet", "xvrrp"]).is_ok());
    agent.proc.signal(libc::SIGTERM);
    assert_eq!(
        agent.proc.wait_exit(Duration::from_secs(15)),
        Some(0),
        "{}",
        agent.proc.log_text()
    );
    assert!(
        lb.exec("nft", &["list", "table", "inet", "xvrrp"]).is_err(),
        "the table outlived a clean stop"
    );
}

/// keepalived's `virtual_server fwmark N`: the operator's own nftables rule
/// marks the packets (here: to the VIP's port 8080), the virtual server
/// takes every marked packet to its reals; and a `virtual_server_group`
/// over an address range reaches the same reals on each of its addresses.
#[test]
fn fwmark_and_group_virtual_servers_forward_through_nat() {
    require_root();
    let farm = Farm::new("lvs-fwmark", 2).unwrap();
    farm.without_vrrp(VIP).unwrap();
    let lb = &farm.lan.hosts[1].ns;
    lb.ip(&["addr", "add", "10.77.0.101/24", "dev", "eth0"])
        .unwrap();
    lb.exec(
        "nft",
        &["add table ip operator; \
             add chain ip operator pre { type filter hook prerouting priority -150; }; \
             add rule ip operator pre ip daddr 10.77.0.100 tcp dport 8080 meta mark set 5"],
    )
    .unwrap();
    let reals: String = farm
        .reals
        .iter()
        .map(|r| {
            format!(
                "    real_server {} 80 {{\n        TCP_CHECK {{\n            connect_timeout 1\n        }}\n    }}\n",
                r.addr
            )
        })
        .collect();
    let conf = format!(
        "virtual_server fwmark 5 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n{reals}}}\n\
         virtual_server_group WEB {{\n    10.77.0.100-101 81\n}}\n\
         virtual_server group WEB {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n{reals}}}\n"
    );
    let a = farm.lan.xvrrp(1, "lb", &conf).unwrap();
    let up = wait_until(Duration::from_secs(15), || {
        a.status().is_ok_and(|s| {
            s.virtual_servers.len() == 2
                && s.virtual_servers
                    .iter()
                    .all(|v| v.forwarding && v.reals.iter().all(|r| r.alive))
        })
    });
    assert!(up, "{}", a.proc.log_text());
    let t = tally(&farm.ask(VIP, 8080, 4));
    assert_eq!(
        t,
        [("real0".into(), 2), ("real1".into(), 2)].into(),
        "marked packets: {}",
        a.proc.log_text()
    );
    for addr in [VIP, "10.77.0.101"] {
        let t = tally(&farm.ask(addr, 81, 2));
        assert_eq!(
            t,
            [("real0".into(), 1), ("real1".into(), 1)].into(),
            "group address {addr}"
        );
    }
}
