//! Figure 12: ARP requests for a VIP from the kernel's own packet
//! generator (the bench's traffic-generator XDP program in live-frames
//! mode on every CPU, as figure 11), answered by xvrrp's XDP program in
//! driver mode or by the kernel (keepalived leaves ARP to it). The sender's
//! veth runs an XDP program that counts and drops the answers (and lets
//! veth hand XDP-sent frames to it at all).

use std::time::Duration;

use xvrrp::dataplane::AttachMode;
use xvrrp_tests::{
    lan::Lan,
    wait_until,
    xdpasm::{self, XDP_DROP, XDP_PASS},
    Netns,
};

use super::fwd::{blast, veth, FwdRun, Pace};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ArpPath {
    /// Requests dropped by an XDP program as they arrive: the sender's share.
    SenderOnly,
    /// xvrrp Active for the VIP, its XDP program answering in driver mode.
    Xvrrp,
    /// The VIP on the interface, the kernel answering (what keepalived does).
    Kernel,
}

impl ArpPath {
    pub fn name(self) -> &'static str {
        match self {
            ArpPath::SenderOnly => "sender only (requests dropped on arrival)",
            ArpPath::Xvrrp => "xvrrp (XDP, driver mode)",
            ArpPath::Kernel => "the kernel (keepalived's path)",
        }
    }
}

const VIP: [u8; 4] = [10, 79, 0, 100];

/// `per_cpu` ARP requests for the VIP from each CPU, at the generator's
/// highest rate or `pace`'s; answers counted where the requests came from
/// (requests, for the sender-only row).
pub fn arp_answers(path: ArpPath, per_cpu: u32, pace: Option<Pace>) -> anyhow::Result<FwdRun> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let lan = Lan::new("bench-arpflood", 1)?;
    let host = &lan.host(0).ns;
    let gen = Netns::new("agen")?;
    let tag = xvrrp_tests::unique("a");
    let (g, r) = (format!("{tag}g"), format!("{tag}r"));
    veth(&gen, &g, host, &r, cpus)?;
    gen.ip(&["addr", "add", "10.79.0.3/24", "dev", &g])?;
    host.ip(&["addr", "add", "10.79.0.2/24", "dev", &r])?;
    xdpasm::attach(
        &gen,
        &g,
        xdpasm::load("answers", &xdpasm::verdict(XDP_DROP))?,
        AttachMode::Driver,
    )?;
    let mut _agent = None;
    match path {
        ArpPath::SenderOnly => xdpasm::attach(
            host,
            &r,
            xdpasm::load("drop", &xdpasm::verdict(XDP_DROP))?,
            AttachMode::Driver,
        )?,
        ArpPath::Kernel => {
            host.ip(&["addr", "add", "10.79.0.100/24", "dev", &r])?;
            // veth hands XDP-sent frames only to a peer running XDP (or GRO).
            xdpasm::attach(
                host,
                &r,
                xdpasm::load("pass", &xdpasm::verdict(XDP_PASS))?,
                AttachMode::Driver,
            )?;
        }
        ArpPath::Xvrrp => {
            let conf = format!(
                "vrrp_instance VI {{\n    state BACKUP\n    interface {r}\n    virtual_router_id 51\n    priority 150\n    version 3\n    advert_int 0.1\n    virtual_ipaddress {{\n        10.79.0.100/24\n    }}\n}}\n"
            );
            let a = lan.xvrrp_with(0, "responder", &conf, &["--xdp-mode", "driver"])?;
            anyhow::ensure!(
                wait_until(Duration::from_secs(15), || a.state("VI") == "Active"),
                "xvrrp did not become Active: {}",
                a.proc.log_text()
            );
            _agent = Some(a);
        }
    }
    let gen_mac = gen.mac(&g)?;
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&gen_mac);
    frame.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    frame.extend_from_slice(&gen_mac);
    frame.extend_from_slice(&[10, 79, 0, 3]);
    frame.extend_from_slice(&[0; 6]);
    frame.extend_from_slice(&VIP);
    let counted = match path {
        ArpPath::SenderOnly => (host, r.as_str()),
        _ => (&gen, g.as_str()),
    };
    blast(&gen, &g, &frame, per_cpu, pace, counted)
}
