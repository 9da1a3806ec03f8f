//! The load balancer's figures: the XDP program's cost per packet on the
//! DR path (BPF_PROG_TEST_RUN with repeat, Katran's figure), and how many
//! long-lived connections survive kill -9 of the Active load balancer with
//! DR (XDP, Maglev) and with NAT (nftables + conntrack, not synced).

use std::{net::SocketAddr, time::Duration};

use aya::programs::{TestRun, TestRunOptions};
use xvrrp::dataplane;
use xvrrp_common::LB_ACTIVE;
use xvrrp_tests::{
    farm::{echo_line, Farm},
    lbpkt::{self, frame, ACK, IPPROTO_TCP, IPPROTO_UDP, SYN},
    wait_until,
};

const VIP: &str = "10.77.0.100";

/// ns per packet in the XDP program, per case, averaged by the kernel over
/// `repeat` runs on one CPU.
pub fn xdp_cost(repeat: u32) -> anyhow::Result<Vec<(&'static str, f64, u32)>> {
    lbpkt::pin_to_cpu(0);
    let mut ebpf = dataplane::load()?;
    lbpkt::set_real(&mut ebpf, 0, true);
    lbpkt::set_real(&mut ebpf, 1, true);
    lbpkt::fill(&mut ebpf, 0, Some(0));
    lbpkt::fill(&mut ebpf, 1, Some(1));
    lbpkt::set_service(&mut ebpf, LB_ACTIVE);
    let cases: [(&'static str, Vec<u8>); 4] = [
        (
            "DR, new flow (TCP SYN: Maglev slot, flow remembered)",
            frame(IPPROTO_TCP, 40000, 80, SYN),
        ),
        (
            "DR, established flow (flow table hit)",
            frame(IPPROTO_TCP, 40000, 80, ACK),
        ),
        (
            "TCP to another port (passed to the kernel)",
            frame(IPPROTO_TCP, 40000, 81, ACK),
        ),
        (
            "UDP, not a virtual server (passed)",
            frame(IPPROTO_UDP, 40000, 80, 0),
        ),
    ];
    let mut out = Vec::new();
    for (what, input) in cases {
        out.push(cost_of(&mut ebpf, what, &input, repeat)?);
    }
    // The kernel runs a repeated XDP test on the same buffer: after the
    // first run the frame is IPIP, not the packet under test. TUN is timed
    // one run at a time instead (the kernel's ns per run, averaged).
    // The same DR packet timed that way too, for comparison.
    let syn = frame(IPPROTO_TCP, 40000, 80, SYN);
    let runs = (repeat / 50).max(1);
    let single = |ebpf: &mut aya::Ebpf| -> anyhow::Result<(f64, u32)> {
        let mut total = 0.0;
        let mut verdict = 0;
        for _ in 0..runs {
            let (_, ns, v) = cost_of(ebpf, "", &syn, 1)?;
            total += ns;
            verdict = v;
        }
        Ok((total / f64::from(runs), verdict))
    };
    let (ns, v) = single(&mut ebpf)?;
    out.push(("DR, new flow (single runs averaged)", ns, v));
    lbpkt::set_service(&mut ebpf, LB_ACTIVE | xvrrp_common::LB_TUN);
    let (ns, v) = single(&mut ebpf)?;
    out.push((
        "TUN, new flow (IPIP header pushed; single runs averaged)",
        ns,
        v,
    ));
    Ok(out)
}

fn cost_of(
    ebpf: &mut aya::Ebpf,
    what: &'static str,
    input: &[u8],
    repeat: u32,
) -> anyhow::Result<(&'static str, f64, u32)> {
    let prog = dataplane::program_mut(ebpf)?;
    {
        let mut buf = vec![0u8; input.len() + 64];
        let r = prog.test_run(TestRunOptions {
            data_in: Some(input),
            data_out: Some(&mut buf),
            repeat,
            ..Default::default()
        })?;
        Ok((what, r.duration.as_nanos() as f64, r.return_value))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Dr,
    Tun,
    Nat,
}

impl Path {
    pub fn name(self) -> &'static str {
        match self {
            Path::Dr => "DR (XDP, Maglev)",
            Path::Tun => "TUN (XDP, Maglev, IPIP)",
            Path::Nat => "NAT (nftables + conntrack)",
        }
    }
}

/// `real2_down`: this load balancer's own checker says real2 is down (a
/// MISC_CHECK that fails), whatever the other one sees.
fn conf(path: Path, priority: u8, farm: &Farm, real2_down: bool) -> String {
    let reals: String = farm
        .reals
        .iter()
        .enumerate()
        .map(|(k, r)| {
            format!(
                "    real_server {} 7 {{\n        TCP_CHECK {{\n            connect_timeout 1\n        }}\n{}    }}\n",
                r.addr,
                if k == 2 && real2_down {
                    "        MISC_CHECK {\n            misc_path /bin/false\n        }\n"
                } else {
                    ""
                }
            )
        })
        .collect();
    let front = format!(
        "vrrp_instance FRONT {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    priority {priority}\n    version 3\n    advert_int 0.1\n    virtual_ipaddress {{\n        {VIP}/24\n    }}\n}}\n"
    );
    match path {
        Path::Dr | Path::Tun => format!(
            "{front}virtual_server {VIP} 7 {{\n    delay_loop 1\n    lb_algo mh\n    lb_kind {}\n    protocol TCP\n{reals}}}\n",
            if path == Path::Dr { "DR" } else { "TUN" }
        ),
        Path::Nat => format!(
            "vrrp_sync_group LB {{\n    group {{\n        FRONT\n        BACK\n    }}\n}}\n{front}\
             vrrp_instance BACK {{\n    state BACKUP\n    interface eth1\n    virtual_router_id 52\n    priority {priority}\n    version 3\n    advert_int 0.1\n    virtual_ipaddress {{\n        10.78.0.1/24\n    }}\n}}\n\
             virtual_server {VIP} 7 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n{reals}}}\n"
        ),
    }
}

/// Forwarding with `alive` reals up in every virtual server.
fn forwarding(a: &xvrrp_tests::lan::Agent, alive: usize) -> bool {
    a.status().ok().is_some_and(|s| {
        s.virtual_servers
            .iter()
            .all(|v| v.forwarding && v.reals.iter().filter(|r| r.alive).count() == alive)
    })
}

/// What `failover_kept` saw: connections that kept their real, of all and
/// of those not on real2 (the one the new Active may believe down).
pub struct Kept {
    pub kept: usize,
    pub others_kept: usize,
    pub others: usize,
}

/// `n` long-lived connections through the Active, kill -9 of it, one more
/// line on each through the new Active: how many still answer from the
/// same real. `disagree`: the Backup's checker says real2 is down.
pub fn failover_kept(path: Path, n: usize, disagree: bool) -> anyhow::Result<Kept> {
    anyhow::ensure!(
        !n.is_multiple_of(7),
        "n must be coprime with 7 (the order of the second lines)"
    );
    let farm = match path {
        Path::Dr => Farm::direct("bench-lb-dr", 3, &[VIP])?,
        Path::Tun => {
            let f = Farm::direct("bench-lb-tun", 3, &[VIP])?;
            for r in &f.reals {
                xvrrp_tests::decap::attach(&r.ns, "eth0", xvrrp_tests::decap::Tunnel::Ipip)?;
            }
            f
        }
        Path::Nat => Farm::new("bench-lb-nat", 3)?,
    };
    let _echo = (0..3)
        .map(|k| farm.echo(k, 7))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let lb1 = farm.lan.xvrrp(1, "lb1", &conf(path, 150, &farm, false))?;
    let lb2 = farm
        .lan
        .xvrrp(2, "lb2", &conf(path, 100, &farm, disagree))?;
    anyhow::ensure!(
        wait_until(Duration::from_secs(15), || lb1.state("FRONT") == "Active"
            && forwarding(&lb1, 3)
            && lb2
                .status()
                .is_ok_and(|s| s.virtual_servers.iter().all(|v| v
                    .reals
                    .iter()
                    .filter(|r| r.alive)
                    .count()
                    == 3 - usize::from(disagree)))),
        "the farm did not come up: {}",
        lb1.proc.log_text()
    );
    let target: SocketAddr = format!("{VIP}:7").parse()?;
    let mut conns = farm.connect(target, n, Duration::from_secs(3))?;
    let before: Vec<String> = conns.iter_mut().map(|c| echo_line(c, "before")).collect();
    lb1.proc.signal(libc::SIGKILL);
    anyhow::ensure!(
        wait_until(Duration::from_secs(5), || lb2.state("FRONT") == "Active"
            && forwarding(&lb2, 3 - usize::from(disagree))
            && farm.lan.hosts[0].neighbour(VIP) == Some(farm.lan.hosts[2].mac)),
        "the Backup did not take over: {}",
        lb2.proc.log_text()
    );
    std::thread::sleep(Duration::from_millis(500));
    // After a failover the flows' next packets come in an order unrelated
    // to the one they were opened in (a fixed permutation here: in opening
    // order, a round-robin NAT on the new Active would repeat the old one's
    // choices by coincidence).
    let (mut kept, mut others_kept, mut others) = (0, 0, 0);
    for i in 0..n {
        let k = (i * 7 + 3) % n;
        let real = before[k].split(' ').next().unwrap_or("");
        if !real.is_empty() && echo_line(&mut conns[k], "after") == format!("{real} after") {
            kept += 1;
            if real != "real2" {
                others_kept += 1;
            }
        }
    }
    for line in &before {
        others += usize::from(!line.starts_with("real2"));
    }
    Ok(Kept {
        kept,
        others_kept,
        others,
    })
}

/// A host answering TCP on `n` ports from `base` (one Python process,
/// accepting and closing at once so descriptors never pile up); SIGUSR1
/// closes the first port: that real server dies.
const MANY_REALS: &str = "import resource, selectors, signal, socket, sys\n\
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n\
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))\n\
addr, base, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])\n\
sel = selectors.DefaultSelector()\n\
socks = []\n\
for i in range(n):\n\
\x20   s = socket.socket()\n\
\x20   s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
\x20   s.bind((addr, base + i))\n\
\x20   s.listen(128)\n\
\x20   s.setblocking(False)\n\
\x20   sel.register(s, selectors.EVENT_READ)\n\
\x20   socks.append(s)\n\
def die(*_):\n\
\x20   sel.unregister(socks[0])\n\
\x20   socks[0].close()\n\
signal.signal(signal.SIGUSR1, die)\n\
print('ready', flush=True)\n\
while True:\n\
\x20   for key, _ in sel.select():\n\
\x20       try:\n\
\x20           c, _ = key.fileobj.accept()\n\
\x20           c.close()\n\
\x20       except OSError:\n\
\x20           pass\n";

pub struct CheckerScale {
    pub cpu_s_per_min: f64,
    pub wakeups_per_s: f64,
    pub rss_kib: u64,
    /// From the real's port closing to `xvrrp status` showing it down.
    pub death_to_removal_ms: f64,
}

/// The checker engine alone (`lb_kind TUN`: checked, nothing forwarded)
/// with `n` real servers under TCP_CHECK at delay_loop 1, defaults
/// otherwise (retry 1, delay_before_retry 1 s, connect_timeout 5 s).
pub fn checker_scale(
    n: u16,
    usage: impl Fn(&str, Duration) -> (f64, f64, u64),
) -> anyhow::Result<CheckerScale> {
    const BASE: u16 = 20000;
    let lan = xvrrp_tests::lan::Lan::new(&format!("bench-checkers-{n}"), 2)?;
    let host = lan.host(1).v4.to_string();
    let reals = lan.host(1).ns.spawn(
        "python3",
        &["-c", MANY_REALS, &host, &BASE.to_string(), &n.to_string()],
        &lan.logs.join("reals.log"),
    )?;
    anyhow::ensure!(
        reals.wait_log("ready", Duration::from_secs(60)),
        "the real servers did not start: {}",
        reals.log_text()
    );
    let mut conf = format!(
        "virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind TUN\n    protocol TCP\n"
    );
    for p in 0..n {
        conf.push_str(&format!(
            "    real_server {host} {} {{\n        TCP_CHECK {{\n        }}\n    }}\n",
            BASE + p
        ));
    }
    conf.push_str("}\n");
    let agent = lan.xvrrp(0, "checkers", &conf)?;
    let all_up = |a: &xvrrp_tests::lan::Agent| {
        a.status().is_ok_and(|s| {
            s.virtual_servers
                .first()
                .is_some_and(|v| v.reals.iter().filter(|r| r.alive).count() == n as usize)
        })
    };
    anyhow::ensure!(
        wait_until(Duration::from_secs(60), || all_up(&agent)),
        "the reals did not all come up: {}",
        agent.proc.log_text()
    );
    // Checks settle into their per-second rhythm.
    std::thread::sleep(Duration::from_secs(3));
    let (cpu_s_per_min, wakeups_per_s, rss_kib) =
        usage(&lan.host(0).ns.name, Duration::from_secs(10));
    let first_down = |a: &xvrrp_tests::lan::Agent| {
        a.status().is_ok_and(|s| {
            s.virtual_servers
                .first()
                .and_then(|v| v.reals.first())
                .is_some_and(|r| !r.alive)
        })
    };
    reals.signal(libc::SIGUSR1);
    let t0 = std::time::Instant::now();
    anyhow::ensure!(
        wait_until(Duration::from_secs(30), || first_down(&agent)),
        "the dead real was not removed: {}",
        agent.proc.log_text()
    );
    Ok(CheckerScale {
        cpu_s_per_min,
        wakeups_per_s,
        rss_kib,
        death_to_removal_ms: t0.elapsed().as_secs_f64() * 1000.0,
    })
}
