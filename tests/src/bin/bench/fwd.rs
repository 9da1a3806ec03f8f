//! Figure 11: how fast a load balancer forwards, XDP against the kernel.
//!
//! gen ── l0 [load balancer] l1 ── sink, veth pairs with one queue per CPU.
//! The sender is the kernel's own: the tests' traffic-generator XDP program
//! run by BPF_PROG_TEST_RUN in live-frames mode, one thread per CPU (XDP_TX
//! out of gen's veth, 1,024 UDP flows to VIP:80). The sink drops every
//! frame in XDP and its veth counts them. Everything runs in softirq on the
//! sending CPU, so the rate is what the whole pipeline sustains: the
//! sender-only row (frames dropped as they reach the load balancer) gives
//! its own share, which the other rows exceed by the forwarding's cost plus
//! one more veth hop and the sink's drop (the same for every path).

use std::{os::fd::AsFd as _, time::Duration};

use xvrrp::dataplane::AttachMode;
use xvrrp_tests::{
    lan::Lan,
    lbpkt::{self, IPPROTO_UDP},
    sh, unique, wait_until,
    xdpasm::{self, XDP_DROP, XDP_PASS},
    Netns,
};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FwdPath {
    /// Frames dropped by an XDP program as they reach the load balancer.
    SenderOnly,
    /// xvrrp's XDP program, `lb_kind DR`.
    XdpDr,
    /// nftables `netdev` ingress: MACs rewritten through a jhash map, `fwd`.
    NftFwd,
    /// xvrrp's NAT path: nftables DNAT + conntrack, routed by the kernel.
    Nat,
}

impl FwdPath {
    pub fn name(self) -> &'static str {
        match self {
            FwdPath::SenderOnly => "sender only (dropped on arrival, no forwarding)",
            FwdPath::XdpDr => "xvrrp DR (XDP, Maglev, flow table)",
            FwdPath::NftFwd => "nftables netdev ingress fwd, jhash to the reals' MACs",
            FwdPath::Nat => "xvrrp NAT (nftables DNAT + conntrack, routed)",
        }
    }
}

pub struct FwdRun {
    pub sent: u64,
    pub delivered: u64,
    pub seconds: f64,
    /// Whole-machine busy CPU time over the run, per delivered frame.
    pub cpu_ns_per_frame: f64,
}

impl FwdRun {
    /// Millions of frames delivered per second.
    pub fn mpps(&self) -> f64 {
        self.delivered as f64 / self.seconds / 1e6
    }

    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.delivered)
    }
}

/// Figures 11 and 12's table rows, the sender-only run first; the sender's
/// CPU ns per frame, which the last column subtracts.
pub fn write_rows(md: &mut String, rows: &[(&str, &FwdRun)]) -> f64 {
    use std::fmt::Write as _;
    let sender = rows.first().map_or(0.0, |(_, r)| r.cpu_ns_per_frame);
    for (i, (name, r)) in rows.iter().enumerate() {
        let rest = if i == 0 {
            "—".to_owned()
        } else {
            format!("{:.0}", r.cpu_ns_per_frame - sender)
        };
        let _ = writeln!(
            md,
            "| {name} | {:.2} M | {} of {} | {:.0} | {rest} |",
            r.mpps(),
            r.lost(),
            r.sent,
            r.cpu_ns_per_frame
        );
    }
    sender
}

const VIP: &str = "10.77.0.100";
const REAL_MACS: [&str; 3] = [
    "02:00:00:00:00:a1",
    "02:00:00:00:00:a2",
    "02:00:00:00:00:a3",
];

/// A veth pair with `queues` queues each way, both ends up.
pub fn veth(a: &Netns, ea: &str, b: &Netns, eb: &str, queues: usize) -> anyhow::Result<()> {
    let q = queues.to_string();
    sh(
        "ip",
        &[
            "link",
            "add",
            ea,
            "netns",
            &a.name,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            eb,
            "netns",
            &b.name,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
        ],
    )?;
    a.ip(&["link", "set", ea, "up"])?;
    b.ip(&["link", "set", eb, "up"])?;
    Ok(())
}

pub fn counter(ns: &Netns, ifname: &str, what: &str) -> anyhow::Result<u64> {
    Ok(ns
        .exec(
            "cat",
            &[&format!("/sys/class/net/{ifname}/statistics/{what}")],
        )?
        .trim()
        .parse()?)
}

/// Busy time of the whole machine so far (/proc/stat, all CPUs), ns.
fn machine_busy_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …, in USER_HZ (100).
    let busy: u64 = f.iter().take(8).sum::<u64>()
        - f.get(3).copied().unwrap_or(0)
        - f.get(4).copied().unwrap_or(0);
    busy * 10_000_000
}

/// A two-armed load balancer, as keepalived users build one: a VRRP
/// instance on each arm in a sync group (the XDP program is on both: the
/// reals' arm is where DR frames leave through the devmap).
fn conf(lb_kind: &str, l0: &str, l1: &str) -> String {
    let reals: String = (11..14)
        .map(|i| format!("    real_server 10.78.0.{i} 80 {{\n    }}\n"))
        .collect();
    format!(
        "vrrp_sync_group LB {{\n    group {{\n        FRONT\n        BACK\n    }}\n}}\n\
         vrrp_instance FRONT {{\n    state BACKUP\n    interface {l0}\n    virtual_router_id 51\n    priority 150\n    version 3\n    advert_int 0.1\n    virtual_ipaddress {{\n        {VIP}/24\n    }}\n}}\n\
         vrrp_instance BACK {{\n    state BACKUP\n    interface {l1}\n    virtual_router_id 52\n    priority 150\n    version 3\n    advert_int 0.1\n    virtual_ipaddress {{\n        10.78.0.254/24\n    }}\n}}\n\
         virtual_server {VIP} 80 {{\n    lb_algo mh\n    lb_kind {lb_kind}\n    protocol UDP\n{reals}}}\n"
    )
}

/// `per_cpu` frames from each CPU through `path`.
pub fn forwarding_rate(path: FwdPath, per_cpu: u32) -> anyhow::Result<FwdRun> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let lan = Lan::new("bench-fwd", 1)?;
    let lb = &lan.host(0).ns;
    let gen = Netns::new("fgen")?;
    let sink = Netns::new("fsink")?;
    let tag = unique("f");
    let (g, l0, l1, s) = (
        format!("{tag}g"),
        format!("{tag}i"),
        format!("{tag}o"),
        format!("{tag}s"),
    );
    veth(&gen, &g, lb, &l0, cpus)?;
    veth(lb, &l1, &sink, &s, cpus)?;
    gen.ip(&["addr", "add", "10.77.0.3/24", "dev", &g])?;
    lb.ip(&["addr", "add", "10.77.0.2/24", "dev", &l0])?;
    lb.ip(&["addr", "add", "10.78.0.1/24", "dev", &l1])?;
    for (i, mac) in REAL_MACS.iter().enumerate() {
        let real = format!("10.78.0.{}", 11 + i);
        sink.ip(&["addr", "add", &format!("{real}/24"), "dev", &s])?;
        // The sink drops everything, ARP included: the reals' MACs are
        // known beforehand, as in a farm with static neighbours.
        lb.ip(&[
            "neigh",
            "replace",
            &real,
            "lladdr",
            mac,
            "dev",
            &l1,
            "nud",
            "permanent",
        ])?;
    }
    lb.exec("sysctl", &["-qw", "net.ipv4.ip_forward=1"])?;
    xdpasm::attach(
        &sink,
        &s,
        xdpasm::load("sink", &xdpasm::verdict(XDP_DROP))?,
        AttachMode::Driver,
    )?;
    let mut _agent = None;
    match path {
        FwdPath::SenderOnly => xdpasm::attach(
            lb,
            &l0,
            xdpasm::load("drop", &xdpasm::verdict(XDP_DROP))?,
            AttachMode::Driver,
        )?,
        FwdPath::NftFwd => {
            // An XDP program that passes everything: veth hands frames
            // sent by XDP to a peer only when the peer runs XDP (or GRO).
            xdpasm::attach(
                lb,
                &l0,
                xdpasm::load("pass", &xdpasm::verdict(XDP_PASS))?,
                AttachMode::Driver,
            )?;
            let l1_mac = xvrrp::net::probe::format_mac(&lb.mac(&l1)?);
            let map = REAL_MACS
                .iter()
                .enumerate()
                .map(|(i, m)| format!("{i} : {m}"))
                .collect::<Vec<_>>()
                .join(", ");
            let rules = format!(
                "table netdev xvrrp_bench {{\n    chain ingress {{\n        type filter hook ingress device \"{l0}\" priority 0; policy accept;\n        ip daddr {VIP} udp dport 80 ether saddr set {l1_mac} ether daddr set jhash ip saddr . udp sport mod 3 map {{ {map} }} fwd to \"{l1}\"\n    }}\n}}\n"
            );
            let file = lan.logs.join("fwd.nft");
            std::fs::write(&file, rules)?;
            lb.exec("nft", &["-f", file.to_str().expect("UTF-8")])?;
        }
        FwdPath::XdpDr | FwdPath::Nat => {
            let kind = if path == FwdPath::XdpDr { "DR" } else { "NAT" };
            let a = lan.xvrrp_with(0, "lb", &conf(kind, &l0, &l1), &["--xdp-mode", "driver"])?;
            anyhow::ensure!(
                wait_until(Duration::from_secs(15), || a.state("FRONT") == "Active"
                    && a.status().is_ok_and(|st| st
                        .virtual_servers
                        .iter()
                        .all(|v| v.forwarding && v.reals.iter().all(|r| r.alive)))),
                "the load balancer did not come up: {}",
                a.proc.log_text()
            );
            // The reals' MACs into the XDP maps (DR) / the NAT rules.
            std::thread::sleep(Duration::from_millis(500));
            _agent = Some(a);
        }
    }
    let mut frame = lbpkt::frame(IPPROTO_UDP, 1024, 80, 0);
    frame[..6].copy_from_slice(&lb.mac(&l0)?);
    frame[6..12].copy_from_slice(&gen.mac(&g)?);
    let (counted_ns, counted_if) = match path {
        FwdPath::SenderOnly => (lb, &l0),
        _ => (&sink, &s),
    };
    blast(&gen, &g, &frame, per_cpu, None, (counted_ns, counted_if))
}

/// A fixed rate: this many frames from each CPU every this long.
pub type Pace = (u32, Duration);

/// `per_cpu` copies of `frame` sent out of `g` in `gen` from every CPU by
/// the traffic-generator program in live-frames mode: as fast as it goes
/// (`pace` None), or a burst of `pace.0` every `pace.1` (each live-frames
/// run waits tens of milliseconds in the kernel, sleeping, so bursts are
/// the finest pacing it has; a packet socket costs a whole CPU at 250 k
/// frames/s here, too much to measure beside); what `counted`'s interface
/// received meanwhile, the time and the machine's busy CPU.
pub fn blast(
    gen: &Netns,
    g: &str,
    frame: &[u8],
    per_cpu: u32,
    pace: Option<Pace>,
    counted: (&Netns, &str),
) -> anyhow::Result<FwdRun> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let before = counter(counted.0, counted.1, "rx_packets")?;
    let busy0 = machine_busy_ns();
    let t0 = std::time::Instant::now();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let senders: Vec<_> = (0..cpus)
            .map(|cpu| {
                let (frame, g) = (frame.to_vec(), g.to_owned());
                scope.spawn(move || {
                    gen.run(move || {
                        lbpkt::pin_to_cpu(cpu);
                        let prog = xdpasm::load("trafficgen", &xdpasm::trafficgen(&frame)?)?;
                        let index = xvrrp::net::iface::ifindex(&g)?;
                        let Some((chunk, every)) = pace else {
                            return xdpasm::send_live(prog.as_fd(), index, &frame, per_cpu);
                        };
                        let (mut left, mut next) = (per_cpu, std::time::Instant::now());
                        while left > 0 {
                            let n = chunk.min(left);
                            xdpasm::send_live(prog.as_fd(), index, &frame, n)?;
                            left -= n;
                            next += every;
                            std::thread::sleep(
                                next.saturating_duration_since(std::time::Instant::now()),
                            );
                        }
                        Ok(Duration::ZERO)
                    })
                })
            })
            .collect();
        for s in senders {
            s.join()
                .map_err(|_| anyhow::anyhow!("a sender panicked"))??;
        }
        Ok(())
    })?;
    let seconds = t0.elapsed().as_secs_f64();
    let busy = machine_busy_ns() - busy0;
    // Frames still in a ring arrive within a few ms.
    std::thread::sleep(Duration::from_millis(100));
    let delivered = counter(counted.0, counted.1, "rx_packets")? - before;
    Ok(FwdRun {
        sent: u64::from(per_cpu) * cpus as u64,
        delivered,
        seconds,
        cpu_ns_per_frame: busy as f64 / delivered.max(1) as f64,
    })
}
