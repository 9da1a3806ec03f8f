//! A LAN in namespaces: a switch namespace holding a bridge, and hosts each
//! with `eth0` on it (10.77.0.N/24, fd77::N/64). Runs xvrrp agents and real
//! keepalived on hosts, and probes from a host who answers ARP/ND for a VIP.

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    time::Duration,
};

use xvrrp::{control::Status, net::probe::Prober};

use crate::{log_dir, sh, unique, wait_until, xvrrp_bin, Netns, Proc};

pub struct Lan {
    pub switch: Netns,
    pub hosts: Vec<Host>,
    pub logs: PathBuf,
}

pub struct Host {
    pub ns: Netns,
    /// Its port on the switch's bridge.
    pub port: String,
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
    pub mac: [u8; 6],
}

impl Lan {
    /// `n` hosts on one bridge. Multicast snooping is off so VRRP and
    /// neighbour discovery multicast reach every port.
    pub fn new(test: &str, n: usize) -> anyhow::Result<Lan> {
        let switch = Netns::new("sw")?;
        switch.ip(&[
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        switch.ip(&["link", "set", "br0", "up"])?;
        let mut hosts = Vec::new();
        for i in 0..n {
            let ns = Netns::new("h")?;
            let (a, b) = (unique("la"), unique("lb"));
            sh(
                "ip",
                &[
                    "link",
                    "add",
                    &a,
                    "netns",
                    &ns.name,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &b,
                    "netns",
                    &switch.name,
                ],
            )?;
            switch.ip(&["link", "set", &b, "master", "br0", "up"])?;
            ns.ip(&["link", "set", &a, "name", "eth0"])?;
            let v4 = Ipv4Addr::new(10, 77, 0, 1 + i as u8);
            let v6: Ipv6Addr = format!("fd77::{}", i + 1).parse()?;
            ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", "eth0"])?;
            ns.ip(&["addr", "add", &format!("{v6}/64"), "dev", "eth0", "nodad"])?;
            ns.ip(&["link", "set", "eth0", "up"])?;
            let mac = ns.mac("eth0")?;
            hosts.push(Host {
                ns,
                port: b.clone(),
                v4,
                v6,
                mac,
            });
        }
        // Link-local addresses need a moment (DAD) before IPv6 adverts can go out.
        for h in &hosts {
            let ready = wait_until(Duration::from_secs(5), || {
                h.ns.ip(&["-6", "addr", "show", "dev", "eth0", "scope", "link"])
                    .is_ok_and(|s| s.contains("fe80") && !s.contains("tentative"))
            });
            anyhow::ensure!(
                ready,
                "{}: no usable IPv6 link-local address after 5 s (DAD)",
                h.ns.name
            );
        }
        Ok(Lan {
            switch,
            hosts,
            logs: log_dir(test),
        })
    }

    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    /// Isolates host `i`'s bridge port: isolated ports do not hear each
    /// other, but still hear (and are heard by) the others.
    pub fn isolate(&self, i: usize, on: bool) -> anyhow::Result<()> {
        let flag = if on { "on" } else { "off" };
        self.switch
            .exec(
                "bridge",
                &["link", "set", "dev", &self.hosts[i].port, "isolated", flag],
            )
            .map(|_| ())
    }

    /// Writes a config file (mode 0644) into this test's log directory.
    pub fn conf(&self, name: &str, text: &str) -> PathBuf {
        let p = self.logs.join(name);
        std::fs::write(&p, text).expect("writing a config");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        p
    }

    /// Starts xvrrp on host `i` with `conf`.
    pub fn xvrrp(&self, i: usize, name: &str, conf: &str) -> anyhow::Result<Agent> {
        self.xvrrp_with(i, name, conf, &[])
    }

    /// Starts xvrrp on host `i` with `conf` and extra `run` arguments.
    pub fn xvrrp_with(
        &self,
        i: usize,
        name: &str,
        conf: &str,
        extra: &[&str],
    ) -> anyhow::Result<Agent> {
        self.xvrrp_env(i, name, conf, extra, &[])
    }

    /// `xvrrp_with` with extra environment variables for the agent.
    pub fn xvrrp_env(
        &self,
        i: usize,
        name: &str,
        conf: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Agent> {
        let path = self.conf(&format!("{name}.conf"), conf);
        let rt = self.logs.join(format!("rt-{name}"));
        let bin = xvrrp_bin();
        let mut args = vec![
            "run",
            "-c",
            path.to_str().expect("UTF-8"),
            "--runtime-dir",
            rt.to_str().expect("UTF-8"),
        ];
        // XVRRP_TEST_XDP_MODE=off runs every scenario on the socket path.
        let mode = std::env::var("XVRRP_TEST_XDP_MODE").ok();
        if let Some(m) = &mode {
            if !extra.contains(&"--xdp-mode") {
                args.extend_from_slice(&["--xdp-mode", m.as_str()]);
            }
        }
        args.extend_from_slice(extra);
        let proc = self.hosts[i].ns.spawn_env(
            bin.to_str().expect("UTF-8 path"),
            &args,
            env,
            &self.logs.join(format!("{name}.log")),
        )?;
        let agent = Agent {
            proc,
            ns: self.hosts[i].ns.name.clone(),
            runtime: rt,
            conf: path,
        };
        anyhow::ensure!(
            agent
                .proc
                .wait_log("xvrrp running", Duration::from_secs(10)),
            "xvrrp {name} did not start:\n{}",
            agent.proc.log_text()
        );
        Ok(agent)
    }

    /// Starts Debian's keepalived on host `i` with `conf`.
    pub fn keepalived(&self, i: usize, name: &str, conf: &str) -> anyhow::Result<Keepalived> {
        let path = self.conf(&format!("{name}.conf"), conf);
        let pid = self.logs.join(format!("{name}.pid"));
        let vpid = self.logs.join(format!("{name}.vrrp.pid"));
        let proc = self.hosts[i].ns.spawn(
            "keepalived",
            &[
                "-n",
                "-l",
                "-D",
                "--no-syslog",
                "-f",
                path.to_str().expect("UTF-8"),
                "-p",
                pid.to_str().expect("UTF-8"),
                "-r",
                vpid.to_str().expect("UTF-8"),
            ],
            &self.logs.join(format!("{name}.log")),
        )?;
        Ok(Keepalived { proc, conf: path })
    }
}

/// Runs in a host's namespace.
impl Host {
    /// Every MAC that answers an ARP request for `vip` within 300 ms.
    pub fn arp_who_has(&self, vip: Ipv4Addr) -> BTreeSet<[u8; 6]> {
        self.who_has(vip.into())
    }

    /// Starts watching who answers this host's ARP for `vip`, asked every
    /// `period`.
    pub fn watch(&self, vip: Ipv4Addr, period: Duration) -> anyhow::Result<crate::watch::ArpWatch> {
        crate::watch::ArpWatch::start(&self.ns.name, self.v4, vip, period)
    }

    /// Every MAC that answers a Neighbor Solicitation for `vip` within 300 ms.
    pub fn nd_who_has(&self, vip: Ipv6Addr) -> BTreeSet<[u8; 6]> {
        self.who_has(vip.into())
    }

    /// A prober that cannot run panics: an empty set must mean "nobody
    /// answered", never "could not ask" (fail-silent tests assert silence).
    fn who_has(&self, target: IpAddr) -> BTreeSet<[u8; 6]> {
        self.ns
            .run(move || Prober::open("eth0")?.who_has(target, Duration::from_millis(300)))
            .unwrap_or_else(|e| panic!("asking who has {target} from {}: {e:#}", self.ns.name))
    }

    /// The MAC the host's neighbour table holds for `addr` (learned from GARP/NA or ARP).
    pub fn neighbour(&self, addr: &str) -> Option<[u8; 6]> {
        let out = self.ns.ip(&["neigh", "show", addr, "dev", "eth0"]).ok()?;
        let mac = out
            .split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)?;
        crate::parse_mac(mac).ok()
    }
}

pub struct Agent {
    pub proc: Proc,
    pub ns: String,
    pub runtime: PathBuf,
    pub conf: PathBuf,
}

impl Agent {
    pub fn status(&self) -> anyhow::Result<Status> {
        let bin = xvrrp_bin();
        let out = sh(
            "ip",
            &[
                "netns",
                "exec",
                &self.ns,
                bin.to_str().expect("UTF-8"),
                "status",
                "--json",
                "--runtime-dir",
                self.runtime.to_str().expect("UTF-8"),
            ],
        )?;
        Ok(serde_json::from_str(&out)?)
    }

    /// One of the agent's counters (`xvrrp status`), 0 when unknown.
    pub fn counter(&self, name: &str) -> u64 {
        self.status()
            .ok()
            .and_then(|s| s.counters.get(name).copied())
            .unwrap_or(0)
    }

    /// One of the XDP program's counters (first interface), 0 when unknown.
    pub fn xdp_counter(&self, name: &str) -> u64 {
        self.status()
            .ok()
            .and_then(|s| s.xdp.first().and_then(|x| x.counters.get(name).copied()))
            .unwrap_or(0)
    }

    /// Whether the agent runs exactly `n` instances, every one in `state`.
    pub fn all_in(&self, n: usize, state: &str) -> bool {
        self.status()
            .is_ok_and(|s| s.instances.len() == n && s.instances.iter().all(|i| i.state == state))
    }

    /// The state of `instance` ("Active", "Backup", …), or "" when unknown.
    pub fn state(&self, instance: &str) -> String {
        self.status()
            .ok()
            .and_then(|s| s.instances.into_iter().find(|i| i.name == instance))
            .map(|i| i.state)
            .unwrap_or_default()
    }

    /// The instance's transition count; panics when the agent cannot say
    /// (two failed status calls must never compare equal).
    pub fn transitions(&self, instance: &str) -> u64 {
        let status = self
            .status()
            .unwrap_or_else(|e| panic!("status of {instance}: {e:#}"));
        status
            .instances
            .into_iter()
            .find(|i| i.name == instance)
            .unwrap_or_else(|| panic!("no instance {instance} in the agent's status"))
            .transitions
    }

    /// Waits up to `limit` for `instance` to be in `state`.
    pub fn wait_state(&self, instance: &str, state: &str, limit: Duration) -> bool {
        wait_until(limit, || self.state(instance) == state)
    }
}

pub struct Keepalived {
    pub proc: Proc,
    /// Its config file (rewrite it and send SIGHUP to reload).
    pub conf: PathBuf,
}

impl Keepalived {
    /// keepalived's last state from its log: "MASTER", "BACKUP", "FAULT" or "".
    pub fn state(&self, instance: &str) -> String {
        let text = self.proc.log_text();
        let prefix = format!("({instance}) Entering ");
        text.lines()
            .rev()
            .find_map(|l| {
                l.split_once(&prefix)
                    .map(|(_, rest)| rest.split_whitespace().next().unwrap_or("").to_owned())
            })
            .unwrap_or_default()
    }

    pub fn wait_state(&self, instance: &str, state: &str, limit: Duration) -> bool {
        wait_until(limit, || self.state(instance) == state)
    }
}
