//! A load-balancer farm in namespaces: the front LAN (`Lan`: host 0 the
//! client, hosts 1 and 2 the load balancers, eth0 on 10.77.0.0/24), and a
//! back segment (its own bridge) joining the load balancers' eth1
//! (10.78.0.2, 10.78.0.3) to real servers (10.78.0.11, .12, …) whose
//! default route is the back gateway VIP 10.78.0.1, as NAT needs. Each real
//! serves HTTP on port 80 (Python's http.server) answering `/who` with its
//! name.
//!
//! `Farm::direct` is the direct-routing farm instead: the reals on the front
//! LAN itself (10.77.0.11, .12, …) with the VIP on their loopback and
//! keepalived's LVS-DR sysctls (arp_ignore 1, arp_announce 2), answering
//! the client directly.

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    path::PathBuf,
    time::Duration,
};

use crate::{lan::Lan, sh, unique, Netns, Proc};

pub const GATEWAY: &str = "10.78.0.1";

pub struct Real {
    pub ns: Netns,
    pub addr: Ipv4Addr,
    pub name: String,
    pub dir: PathBuf,
    pub server: Option<Proc>,
}

pub struct Farm {
    pub lan: Lan,
    /// The NAT farm's back segment (None for `direct`).
    pub back: Option<Netns>,
    pub reals: Vec<Real>,
}

/// Plugs `host` into the bridge `br0` of `switch` as `ifname` with `addr`.
fn plug(switch: &Netns, host: &Netns, ifname: &str, addr: &str) -> anyhow::Result<()> {
    let (a, b) = (unique("fa"), unique("fb"));
    sh(
        "ip",
        &[
            "link",
            "add",
            &a,
            "netns",
            &host.name,
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
    host.ip(&["link", "set", &a, "name", ifname])?;
    host.ip(&["addr", "add", addr, "dev", ifname, "nodad"])?;
    host.ip(&["link", "set", ifname, "up"])?;
    Ok(())
}

impl Real {
    /// Real `k` (named realK), its HTTP directory answering `/who` with the name.
    fn new(ns: Netns, addr: Ipv4Addr, k: usize, logs: &std::path::Path) -> anyhow::Result<Real> {
        let name = format!("real{k}");
        let dir = logs.join(&name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("who"), &name)?;
        Ok(Real {
            ns,
            addr,
            name,
            dir,
            server: None,
        })
    }

    /// Waits until something listens on this real's `port` (10 s at most).
    fn listening(&self, port: u16, what: &str) -> anyhow::Result<()> {
        let target: SocketAddr = format!("{}:{port}", self.addr).parse()?;
        let up = crate::wait_until(Duration::from_secs(10), || {
            self.ns
                .run(move || {
                    Ok(TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok())
                })
                .unwrap_or(false)
        });
        anyhow::ensure!(up, "{}'s {what} did not start", self.name);
        Ok(())
    }
}

impl Farm {
    /// The client, two load balancers (forwarding on) and `reals` servers.
    pub fn new(test: &str, reals: usize) -> anyhow::Result<Farm> {
        let lan = Lan::new(test, 3)?;
        let back = Netns::new("bk")?;
        back.ip(&[
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        back.ip(&["link", "set", "br0", "up"])?;
        for (i, addr) in [(1, "10.78.0.2/24"), (2, "10.78.0.3/24")] {
            let lb = &lan.hosts[i].ns;
            plug(&back, lb, "eth1", addr)?;
            lb.exec("sysctl", &["-qw", "net.ipv4.ip_forward=1"])?;
        }
        // The client reaches the back only through the VIP (no route).
        let mut out = Vec::new();
        for k in 0..reals {
            let ns = Netns::new("rs")?;
            let addr = Ipv4Addr::new(10, 78, 0, 11 + k as u8);
            plug(&back, &ns, "eth0", &format!("{addr}/24"))?;
            ns.ip(&["route", "add", "default", "via", GATEWAY])?;
            out.push(Real::new(ns, addr, k, &lan.logs)?);
        }
        let mut farm = Farm {
            lan,
            back: Some(back),
            reals: out,
        };
        for k in 0..reals {
            farm.serve(k, true)?;
        }
        Ok(farm)
    }

    /// The direct-routing farm: client and two load balancers as in `new`,
    /// `reals` servers on the same LAN holding the `vips` on their loopback.
    pub fn direct(test: &str, reals: usize, vips: &[&str]) -> anyhow::Result<Farm> {
        let lan = Lan::new(test, 3)?;
        let mut out = Vec::new();
        for k in 0..reals {
            let ns = Netns::new("rs")?;
            let addr = Ipv4Addr::new(10, 77, 0, 11 + k as u8);
            plug(&lan.switch, &ns, "eth0", &format!("{addr}/24"))?;
            // fd77::11, ::12, … on the LAN's IPv6 prefix too.
            let v6 = format!("fd77::{}/64", 11 + k);
            ns.ip(&["addr", "add", &v6, "dev", "eth0", "nodad"])?;
            ns.ip(&["link", "set", "lo", "up"])?;
            for vip in vips {
                let len = if vip.contains(':') { 128 } else { 32 };
                ns.ip(&["addr", "add", &format!("{vip}/{len}"), "dev", "lo"])?;
            }
            for key in ["all", "eth0"] {
                ns.exec(
                    "sysctl",
                    &["-qw", &format!("net.ipv4.conf.{key}.arp_ignore=1")],
                )?;
                ns.exec(
                    "sysctl",
                    &["-qw", &format!("net.ipv4.conf.{key}.arp_announce=2")],
                )?;
            }
            out.push(Real::new(ns, addr, k, &lan.logs)?);
        }
        let mut farm = Farm {
            lan,
            back: None,
            reals: out,
        };
        for k in 0..reals {
            farm.serve(k, true)?;
        }
        Ok(farm)
    }

    /// A TCP echo server on real `k`'s `port` (any address: the VIP too),
    /// for connections that must outlive a failover.
    pub fn echo(&self, k: usize, port: u16) -> anyhow::Result<Proc> {
        let real = &self.reals[k];
        let script = format!(
            "import socketserver\n\
             class H(socketserver.StreamRequestHandler):\n\
             \x20   def handle(self):\n\
             \x20       for line in self.rfile:\n\
             \x20           self.wfile.write(b'{name} ' + line)\n\
             socketserver.ThreadingTCPServer.allow_reuse_address = True\n\
             socketserver.ThreadingTCPServer.request_queue_size = 128\n\
             socketserver.ThreadingTCPServer(('0.0.0.0', {port}), H).serve_forever()\n",
            name = real.name
        );
        let proc = real.ns.spawn(
            "python3",
            &["-c", &script],
            &self.lan.logs.join(format!("{}-echo.log", real.name)),
        )?;
        real.listening(port, "echo server")?;
        Ok(proc)
    }

    /// One load balancer (host 1) without VRRP: `vip` and the reals'
    /// gateway set by hand, as a virtual server no instance holds expects.
    pub fn without_vrrp(&self, vip: &str) -> anyhow::Result<()> {
        let lb = &self.lan.hosts[1].ns;
        lb.ip(&["addr", "add", &format!("{vip}/24"), "dev", "eth0"])?;
        lb.ip(&["addr", "add", &format!("{GATEWAY}/24"), "dev", "eth1"])?;
        Ok(())
    }

    /// A real in 10.79.0.0/24 behind real `via` of a `direct` farm, which
    /// becomes its router (forwarding on, the VIPs off its loopback: a
    /// router drops packets from its own addresses); the new real holds
    /// `vips` on its loopback and serves HTTP on eth0. Its index in `reals`.
    pub fn routed_real(&mut self, via: usize, vips: &[&str]) -> anyhow::Result<usize> {
        let k = self.reals.len();
        let router = &self.reals[via].ns;
        for vip in vips {
            router.ip(&["addr", "del", &format!("{vip}/32"), "dev", "lo"])?;
        }
        router.exec("sysctl", &["-qw", "net.ipv4.ip_forward=1"])?;
        let ns = Netns::new("rr")?;
        let addr = Ipv4Addr::new(10, 79, 0, 11 + k as u8);
        let (_, end) = crate::veth(router, &["10.79.0.1/24"], &ns, &[&format!("{addr}/24")])?;
        for args in [
            &["link", "set", &end, "down"][..],
            &["link", "set", &end, "name", "eth0"],
            &["link", "set", "eth0", "up"],
            &["route", "add", "default", "via", "10.79.0.1"],
        ] {
            ns.ip(args)?;
        }
        for vip in vips {
            ns.ip(&["addr", "add", &format!("{vip}/32"), "dev", "lo"])?;
        }
        self.reals.push(Real::new(ns, addr, k, &self.lan.logs)?);
        self.serve(k, true)?;
        Ok(k)
    }

    /// Starts (or stops) real `k`'s HTTP server; started means listening.
    pub fn serve(&mut self, k: usize, on: bool) -> anyhow::Result<()> {
        let logs = self.lan.logs.clone();
        let real = &mut self.reals[k];
        if !on {
            real.server = None; // killed on drop
            return Ok(());
        }
        let log = logs.join(format!("{}-http.log", real.name));
        let dir = real.dir.to_str().expect("UTF-8").to_owned();
        // Any address of both families (Python's http.server makes `::`
        // dual-stack): a direct-routing real answers on the VIP.
        real.server = Some(real.ns.spawn(
            "python3",
            &[
                "-m",
                "http.server",
                "80",
                "--bind",
                "::",
                "--directory",
                &dir,
            ],
            &log,
        )?);
        real.listening(80, "HTTP server")?;
        Ok(())
    }

    /// Starts an HTTPS server on real `k`'s port 443 (a self-signed test
    /// certificate made with openssl), serving the same files.
    pub fn serve_tls(&mut self, k: usize) -> anyhow::Result<Proc> {
        let logs = self.lan.logs.clone();
        let real = &self.reals[k];
        let (cert, key) = (
            logs.join(format!("{}.crt", real.name)),
            logs.join(format!("{}.key", real.name)),
        );
        sh(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                &format!("/CN={}", real.name),
                "-keyout",
                key.to_str().expect("UTF-8"),
                "-out",
                cert.to_str().expect("UTF-8"),
            ],
        )?;
        let script = format!(
            "import functools, http.server, ssl\n\
             h = functools.partial(http.server.SimpleHTTPRequestHandler, directory={dir:?})\n\
             s = http.server.ThreadingHTTPServer(({addr:?}, 443), h)\n\
             c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
             c.load_cert_chain({cert:?}, {key:?})\n\
             s.socket = c.wrap_socket(s.socket, server_side=True)\n\
             s.serve_forever()\n",
            dir = real.dir.to_str().expect("UTF-8"),
            addr = real.addr.to_string(),
            cert = cert.to_str().expect("UTF-8"),
            key = key.to_str().expect("UTF-8"),
        );
        let proc = real.ns.spawn(
            "python3",
            &["-c", &script],
            &logs.join(format!("{}-https.log", real.name)),
        )?;
        real.listening(443, "HTTPS server")?;
        Ok(proc)
    }

    /// `n` HTTP requests from the client to `vip:port`, each on a new
    /// connection: the name of the real that answered each (or "" when none
    /// did within a second).
    pub fn ask(&self, vip: &str, port: u16, n: usize) -> Vec<String> {
        let target = SocketAddr::new(vip.parse().expect("address"), port);
        self.lan.hosts[0]
            .ns
            .run(move || {
                Ok((0..n)
                    .map(|_| who(target).unwrap_or_default())
                    .collect::<Vec<_>>())
            })
            .unwrap_or_default()
    }
}

impl Farm {
    /// `n` TCP connections from the client to `target`, each given
    /// `connect` to be accepted and 2 s per answer: long-lived connections
    /// for `echo_line`.
    pub fn connect(
        &self,
        target: SocketAddr,
        n: usize,
        connect: Duration,
    ) -> anyhow::Result<Vec<BufReader<TcpStream>>> {
        self.lan.hosts[0].ns.run(move || {
            (0..n)
                .map(|_| {
                    let s = TcpStream::connect_timeout(&target, connect)?;
                    s.set_read_timeout(Some(Duration::from_secs(2)))?;
                    Ok(BufReader::new(s))
                })
                .collect()
        })
    }
}

/// One line through an open connection to `Farm::echo`: the answer (the
/// real's name and the line), or "" when the connection is gone.
pub fn echo_line(s: &mut BufReader<TcpStream>, text: &str) -> String {
    if s.get_mut()
        .write_all(format!("{text}\n").as_bytes())
        .is_err()
    {
        return String::new();
    }
    let mut got = String::new();
    let _ = s.read_line(&mut got);
    got.trim().to_owned()
}

/// One `GET /who` on a new connection.
fn who(target: SocketAddr) -> anyhow::Result<String> {
    let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET /who HTTP/1.0\r\nHost: vip\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    let body = body
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or("")
        .trim()
        .to_owned();
    Ok(body)
}

/// How many of `answers` came from each name, sorted by name.
pub fn tally(answers: &[String]) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for a in answers {
        *m.entry(a.clone()).or_insert(0) += 1;
    }
    m
}
