//! keepalived's LVS half as written in keepalived.conf: `virtual_server`,
//! `virtual_server_group`, `real_server` and the checkers, read into typed
//! values with keepalived's defaults and its inheritance (virtual server →
//! real server → checker, resolved after the whole block is read, so the
//! order of lines does not matter, as in keepalived's check_data.c).

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use serde::Serialize;

use super::{
    diag::{Diagnostic, Pos},
    model::Command,
    tree::Node,
    typed::Builder,
};

/// keepalived's `KEEPALIVED_DEFAULT_DELAY`.
pub const DEFAULT_DELAY_LOOP: Duration = Duration::from_secs(60);
/// keepalived's default connect_timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A bare `persistence_timeout` (keepalived's `IPVS_SVC_PERSISTENT_TIMEOUT`).
pub const DEFAULT_PERSISTENCE: Duration = Duration::from_secs(360);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LbProtocol {
    Tcp,
    Udp,
    Sctp,
}

impl LbProtocol {
    pub fn name(self) -> &'static str {
        match self {
            LbProtocol::Tcp => "TCP",
            LbProtocol::Udp => "UDP",
            LbProtocol::Sctp => "SCTP",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LbKind {
    Nat,
    Dr,
    Tun,
}

impl LbKind {
    pub fn name(self) -> &'static str {
        match self {
            LbKind::Nat => "NAT",
            LbKind::Dr => "DR",
            LbKind::Tun => "TUN",
        }
    }
}

/// `lb_kind TUN type T`: how packets are wrapped for the real.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TunType {
    /// IPv4 in IPv4 (the default).
    Ipip,
    /// IPv4 / UDP to `tun_port` / GUE / the packet.
    Gue,
    /// IPv4 / GRE / the packet.
    Gre,
}

/// What a virtual server listens on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum VsTarget {
    Addr(SocketAddr),
    Fwmark(u32),
    Group(String),
}

impl std::fmt::Display for VsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VsTarget::Addr(a) => write!(f, "{a}"),
            VsTarget::Fwmark(m) => write!(f, "fwmark {m}"),
            VsTarget::Group(g) => write!(f, "group {g}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServer {
    pub target: VsTarget,
    pub protocol: LbProtocol,
    pub delay_loop: Duration,
    /// lb_algo / lvs_sched as written (keepalived's default `wlc`).
    pub lb_algo: String,
    pub lb_kind: LbKind,
    /// `lb_kind TUN type T`: ipip (the default), gue or gre.
    pub tun_type: TunType,
    /// `lb_kind TUN type gue port N`: the outer UDP destination port.
    pub tun_port: u16,
    pub persistence_timeout: Option<Duration>,
    pub persistence_granularity: Option<IpAddr>,
    pub quorum: u32,
    pub hysteresis: u32,
    pub quorum_up: Option<Command>,
    pub quorum_down: Option<Command>,
    pub sorry_server: Option<SocketAddr>,
    pub sorry_server_inhibit: bool,
    pub alpha: bool,
    pub omega: bool,
    pub ha_suspend: bool,
    pub virtualhost: Option<String>,
    pub reals: Vec<RealServer>,
    #[serde(skip)]
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealServer {
    pub addr: SocketAddr,
    pub weight: u32,
    pub inhibit_on_failure: bool,
    pub notify_up: Option<Command>,
    pub notify_down: Option<Command>,
    pub alpha: bool,
    pub checkers: Vec<Checker>,
}

/// One checker, with every inherited value resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checker {
    pub kind: CheckKind,
    /// Where the check connects (the real's address and port by default).
    pub connect: SocketAddr,
    pub bindto: Option<IpAddr>,
    pub bind_port: Option<u16>,
    pub connect_timeout: Duration,
    /// Failures beyond the first before the checker goes down.
    pub retry: u32,
    pub delay_before_retry: Duration,
    /// The first check waits a random time up to this.
    pub warmup: Duration,
    pub delay_loop: Duration,
    /// Starts failed (keepalived's pessimistic start).
    pub alpha: bool,
    #[serde(skip)]
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum CheckKind {
    Tcp,
    Http {
        tls: bool,
        urls: Vec<Url>,
        virtualhost: Option<String>,
        /// `http_protocol 1.1` (keepalived's default is 1.0).
        http11: bool,
        /// SSL_GET `enable_sni`: the name sent (sni_name, else virtualhost).
        sni: Option<String>,
    },
    Misc {
        command: Command,
        /// None: the virtual server's delay_loop (keepalived's default).
        timeout: Option<Duration>,
        dynamic: bool,
    },
    /// ICMP echo.
    Ping,
    /// A datagram; down on an ICMP error, or without the reply asked for.
    Udp {
        payload: Vec<u8>,
        /// require_reply: None not required; Some(pattern) (possibly
        /// empty): required and matching (None in a nibble: any value).
        require_reply: Option<Vec<(u8, u8)>>,
        min_reply_length: usize,
        max_reply_length: usize,
    },
    /// A DNS query: up on an answer with its id, QR set and rcode 0.
    Dns {
        qtype: u16,
        name: String,
    },
    /// A track_file's value (read every delay_loop).
    File {
        track_file: String,
        dynamic: bool,
        weight: i64,
        reverse: bool,
    },
    /// An SMTP greeting and EHLO from each target (the real, or each `host`
    /// block's connect_ip/connect_port).
    Smtp {
        helo_name: Option<String>,
        hosts: Vec<SocketAddr>,
    },
    /// Read, not run yet: each is named in a warning when the file loads.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Url {
    pub path: String,
    /// MD5 of the body, lower-case hex.
    pub digest: Option<String>,
    /// Accepted status codes: ranges, keepalived's default 200-299.
    pub status: Vec<(u16, u16)>,
    pub virtualhost: Option<String>,
    /// keepalived's `regex`: the body must match (with `regex_no_match`:
    /// must not).
    pub regex: Option<String>,
    pub regex_no_match: bool,
}

impl VirtualServer {
    /// Its script slots: quorum_up/quorum_down and the reals'
    /// notify_up/notify_down (MISC_CHECK commands are `misc_commands`).
    pub fn scripts_mut(&mut self) -> Vec<&mut Option<Command>> {
        let mut v = vec![&mut self.quorum_up, &mut self.quorum_down];
        for r in &mut self.reals {
            v.push(&mut r.notify_up);
            v.push(&mut r.notify_down);
        }
        v
    }

    /// Every command it may run, notify and MISC_CHECK alike.
    pub fn commands(&self) -> impl Iterator<Item = &Command> {
        [&self.quorum_up, &self.quorum_down]
            .into_iter()
            .flatten()
            .chain(self.reals.iter().flat_map(|r| {
                [&r.notify_up, &r.notify_down].into_iter().flatten().chain(
                    r.checkers.iter().filter_map(|c| match &c.kind {
                        CheckKind::Misc { command, .. } => Some(command),
                        _ => None,
                    }),
                )
            }))
    }
}

/// Values a virtual server or real server hands down to what it holds.
#[derive(Debug, Clone, Default)]
struct Inherited {
    delay_loop: Option<Duration>,
    connect_timeout: Option<Duration>,
    retry: Option<u32>,
    delay_before_retry: Option<Duration>,
    warmup: Option<Duration>,
    alpha: Option<bool>,
    inhibit_on_failure: Option<bool>,
    virtualhost: Option<String>,
}

impl Inherited {
    /// `self` over `parent` where set.
    fn over(&self, parent: &Inherited) -> Inherited {
        Inherited {
            delay_loop: self.delay_loop.or(parent.delay_loop),
            connect_timeout: self.connect_timeout.or(parent.connect_timeout),
            retry: self.retry.or(parent.retry),
            delay_before_retry: self.delay_before_retry.or(parent.delay_before_retry),
            warmup: self.warmup.or(parent.warmup),
            alpha: self.alpha.or(parent.alpha),
            inhibit_on_failure: self.inhibit_on_failure.or(parent.inhibit_on_failure),
            virtualhost: self.virtualhost.clone().or(parent.virtualhost.clone()),
        }
    }
}

/// The keywords each block implements (docs/keepalived.md lists them).
pub(crate) const VIRTUAL_SERVER: &[&str] = &[
    "delay_loop",
    "lb_algo",
    "lvs_sched",
    "lb_kind",
    "lvs_method",
    "protocol",
    "persistence_timeout",
    "persistence_granularity",
    "quorum",
    "hysteresis",
    "quorum_up",
    "quorum_down",
    "sorry_server",
    "sorry_server_inhibit",
    "alpha",
    "omega",
    "inhibit_on_failure",
    "ha_suspend",
    "virtualhost",
    "retry",
    "delay_before_retry",
    "warmup",
    "connect_timeout",
    "real_server",
];

pub(crate) const REAL_SERVER: &[&str] = &[
    "weight",
    "inhibit_on_failure",
    "notify_up",
    "notify_down",
    "alpha",
    "retry",
    "delay_before_retry",
    "warmup",
    "connect_timeout",
    "delay_loop",
    "virtualhost",
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "MISC_CHECK",
    "PING_CHECK",
    "UDP_CHECK",
    "DNS_CHECK",
    "FILE_CHECK",
    "SMTP_CHECK",
];

pub(crate) const CHECKER: &[&str] = &[
    "connect_ip",
    "connect_port",
    "bindto",
    "bind_port",
    "connect_timeout",
    "retry",
    "nb_get_retry",
    "delay_before_retry",
    "warmup",
    "delay_loop",
    "alpha",
];

pub(crate) const HTTP_CHECKER: &[&str] = &[
    "url",
    "virtualhost",
    "http_protocol",
    "enable_sni",
    "sni_name",
];

pub(crate) const URL: &[&str] = &[
    "path",
    "digest",
    "status_code",
    "virtualhost",
    "regex",
    "regex_no_match",
];

pub(crate) const MISC_CHECKER: &[&str] = &["misc_path", "misc_timeout", "misc_dynamic"];

pub(crate) const UDP_CHECKER: &[&str] = &[
    "payload",
    "require_reply",
    "min_reply_length",
    "max_reply_length",
];

pub(crate) const DNS_CHECKER: &[&str] = &["type", "name"];

pub(crate) const FILE_CHECKER: &[&str] = &["track_file", "dynamic", "weight"];

pub(crate) const SMTP_CHECKER: &[&str] = &["helo_name", "host"];

/// Checkers keepalived has that xvrrp reads but does not run yet.
const NOT_RUN: &[&str] = &["BFD_CHECK"];

/// The checkers run.
const RUN: &[&str] = &[
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "MISC_CHECK",
    "PING_CHECK",
    "UDP_CHECK",
    "DNS_CHECK",
    "FILE_CHECK",
    "SMTP_CHECK",
];

/// `virtual_server_group NAME { IP PORT | IP-RANGE PORT | fwmark N }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VsGroup {
    pub name: String,
    pub addrs: Vec<SocketAddr>,
    pub fwmarks: Vec<u32>,
}

/// keepalived's top-level `SSL { password ca certificate key }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SslOptions {
    pub ca: Option<std::path::PathBuf>,
    pub certificate: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
}

pub(crate) const SSL: &[&str] = &["password", "ca", "certificate", "key"];

impl Builder<'_> {
    /// The top-level `SSL` block.
    pub(crate) fn ssl(&mut self, n: &Node) -> SslOptions {
        let mut o = SslOptions::default();
        for c in self.block_of(n) {
            let path = |b: &mut Self| b.text(c, "a file").map(std::path::PathBuf::from);
            match c.key.text.as_str() {
                "ca" => o.ca = path(self),
                "certificate" => o.certificate = path(self),
                "key" => o.key = path(self),
                "password" => self.warn(
                    c,
                    "SSL password: encrypted private keys are not supported by xvrrp's TLS (rustls); the key must be unencrypted",
                    "decrypt it once: `openssl pkey -in KEY -out KEY.plain`, and name that",
                ),
                _ => self.unknown(&c.key, "SSL", SSL),
            }
        }
        if o.certificate.is_some() != o.key.is_some() {
            self.fail(
                n,
                "SSL needs both `certificate` and `key` (or neither)",
                "add the missing one",
            );
        }
        o
    }

    /// A `virtual_server group NAME` must name a virtual_server_group
    /// (keepalived refuses the virtual server otherwise).
    pub(crate) fn vs_groups_named(&mut self, cfg: &mut super::model::Config) {
        // A FILE_CHECK naming no track_file is dropped, with a warning (the
        // real is judged by its other checkers).
        let files: Vec<String> = cfg.track_files.keys().cloned().collect();
        for vs in &mut cfg.virtual_servers {
            for r in &mut vs.reals {
                let diags = &mut *self.diags;
                r.checkers.retain(|c| match &c.kind {
                    CheckKind::File { track_file, .. } if !files.contains(track_file) => {
                        diags.push(
                            Diagnostic::warning(&c.pos, track_file, format!("FILE_CHECK of real_server {}: no vrrp_track_file {track_file}; the checker is ignored", r.addr))
                                .fix(format!("define `vrrp_track_file {track_file} {{ file PATH }}`"))
                                .lenient(),
                        );
                        false
                    }
                    _ => true,
                });
            }
        }
        let names: Vec<String> = cfg.vs_groups.iter().map(|g| g.name.clone()).collect();
        cfg.virtual_servers.retain(|vs| match &vs.target {
            VsTarget::Group(g) if !names.contains(g) => {
                self.diags.push(
                    Diagnostic::error(
                        &vs.pos,
                        g,
                        format!("virtual_server group {g}: no virtual_server_group {g}"),
                    )
                    .fix(format!(
                        "define `virtual_server_group {g} {{ IP PORT }}` or name an existing group"
                    )),
                );
                false
            }
            _ => true,
        });
    }

    /// `virtual_server IP PORT { … }` / `virtual_server fwmark N { … }` /
    /// `virtual_server group NAME { … }`.
    pub(crate) fn virtual_server(&mut self, n: &Node) -> Option<VirtualServer> {
        let target = match (n.arg(0), n.arg(1)) {
            (Some(k), Some(m)) if k.text == "fwmark" => VsTarget::Fwmark(self.u32_token(m)?),
            (Some(k), Some(g)) if k.text == "group" => VsTarget::Group(g.text.clone()),
            (Some(a), Some(p)) => {
                let ip = self.ip_token(a)?;
                VsTarget::Addr(SocketAddr::new(ip, self.port_token(p)?))
            }
            (Some(a), None) => {
                let ip = self.ip_token(a)?;
                // keepalived: a virtual server without a port takes port 0
                // (all ports) only with persistence; take it as written.
                VsTarget::Addr(SocketAddr::new(ip, 0))
            }
            _ => {
                self.fail(
                    n,
                    "`virtual_server` needs an address and port, `fwmark N` or `group NAME`",
                    "write `virtual_server 192.0.2.10 80 {`",
                );
                return None;
            }
        };
        let mut vs = VirtualServer {
            target,
            protocol: LbProtocol::Tcp,
            delay_loop: DEFAULT_DELAY_LOOP,
            lb_algo: "wlc".into(),
            lb_kind: LbKind::Nat,
            tun_type: TunType::Ipip,
            tun_port: 0,
            persistence_timeout: None,
            persistence_granularity: None,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            sorry_server: None,
            sorry_server_inhibit: false,
            alpha: false,
            omega: false,
            ha_suspend: false,
            virtualhost: None,
            reals: Vec::new(),
            pos: n.key.pos.clone(),
        };
        let mut inh = Inherited::default();
        let children = self.block_of(n);
        // First the virtual server's own lines, then its real servers (the
        // values they inherit may come after them in the file).
        for c in children {
            match c.key.text.as_str() {
                "real_server" => {}
                "delay_loop" => inh.delay_loop = self.secs(c),
                "connect_timeout" => inh.connect_timeout = self.secs(c),
                "retry" => inh.retry = self.count(c),
                "delay_before_retry" => inh.delay_before_retry = self.secs(c),
                "warmup" => inh.warmup = self.secs(c),
                "alpha" => inh.alpha = Some(super::typed::flag(c)),
                "inhibit_on_failure" => inh.inhibit_on_failure = Some(super::typed::flag(c)),
                "virtualhost" => inh.virtualhost = self.text(c, "a host name"),
                "lb_algo" | "lvs_sched" => {
                    if let Some(a) = self.text(c, "a scheduler (rr, wrr, lc, wlc, sh, mh, …)") {
                        vs.lb_algo = a;
                    }
                }
                "lb_kind" | "lvs_method" => {
                    vs.lb_kind = match c.arg(0).map(|t| t.text.to_ascii_uppercase()).as_deref() {
                        Some("NAT") => LbKind::Nat,
                        Some("DR") => LbKind::Dr,
                        Some("TUN") => {
                            self.tunnel(c, &mut vs);
                            LbKind::Tun
                        }
                        _ => {
                            self.fail(c, "`lb_kind` is NAT, DR or TUN", "write `lb_kind NAT`");
                            vs.lb_kind
                        }
                    }
                }
                "protocol" => {
                    vs.protocol = match c.arg(0).map(|t| t.text.to_ascii_uppercase()).as_deref() {
                        Some("TCP") => LbProtocol::Tcp,
                        Some("UDP") => LbProtocol::Udp,
                        Some("SCTP") => LbProtocol::Sctp,
                        _ => {
                            self.fail(c, "`protocol` is TCP, UDP or SCTP", "write `protocol TCP`");
                            vs.protocol
                        }
                    }
                }
                "persistence_timeout" => {
                    vs.persistence_timeout = match c.arg(0) {
                        None => Some(DEFAULT_PERSISTENCE),
                        Some(_) => self.secs(c),
                    }
                }
                "persistence_granularity" => {
                    vs.persistence_granularity = c.arg(0).and_then(|t| self.ip_token(t))
                }
                "quorum" => vs.quorum = self.count(c).unwrap_or(vs.quorum),
                "hysteresis" => vs.hysteresis = self.count(c).unwrap_or(vs.hysteresis),
                "quorum_up" => vs.quorum_up = self.cmd(c),
                "quorum_down" => vs.quorum_down = self.cmd(c),
                "sorry_server" => {
                    vs.sorry_server = match (c.arg(0), c.arg(1)) {
                        (Some(a), p) => {
                            let ip = self.ip_token(a);
                            let port = p.map_or(Some(0), |p| self.port_token(p));
                            ip.zip(port).map(|(ip, port)| SocketAddr::new(ip, port))
                        }
                        _ => {
                            self.fail(
                                c,
                                "`sorry_server` needs an address",
                                "write `sorry_server 192.0.2.99 80`",
                            );
                            None
                        }
                    }
                }
                "sorry_server_inhibit" => vs.sorry_server_inhibit = super::typed::flag(c),
                "omega" => vs.omega = super::typed::flag(c),
                "ha_suspend" => vs.ha_suspend = super::typed::flag(c),
                _ => self.unknown(&c.key, "virtual_server", VIRTUAL_SERVER),
            }
        }
        vs.delay_loop = inh.delay_loop.unwrap_or(DEFAULT_DELAY_LOOP);
        vs.alpha = inh.alpha.unwrap_or(false);
        vs.virtualhost = inh.virtualhost.clone();
        for c in children.iter().filter(|c| c.key.text == "real_server") {
            if let Some(rs) = self.real_server(c, &vs, &inh) {
                vs.reals.push(rs);
            }
        }
        if matches!(vs.lb_kind, LbKind::Dr | LbKind::Tun) {
            // Marks are set by netfilter, after XDP has seen the packet.
            let in_xdp = !matches!(vs.target, VsTarget::Fwmark(_));
            if !in_xdp {
                self.warn(
                    n,
                    format!(
                        "virtual_server {}: lb_kind {} is forwarded in XDP for addresses and ports; a fwmark is set by netfilter after XDP, so this one is not forwarded (its checkers run)",
                        vs.target,
                        vs.lb_kind.name()
                    ),
                    "use `virtual_server IP PORT` (or a group of them), or `lb_kind NAT` for a fwmark",
                );
            } else if !matches!(vs.lb_algo.as_str(), "mh" | "sh") {
                self.warn(
                    n,
                    format!(
                        "virtual_server {}: lb_algo {} is approximated by weighted Maglev hashing in XDP (the same real for a flow on every load balancer); mh and sh are exact",
                        vs.target, vs.lb_algo
                    ),
                    "use `lb_algo mh` to say what runs, or keep the approximation",
                );
            }
        }
        if vs.lb_kind == LbKind::Nat && !matches!(vs.lb_algo.as_str(), "rr" | "wrr" | "sh") {
            let known = [
                "lc", "wlc", "lblc", "lblcr", "mh", "dh", "fo", "ovf", "sed", "nq", "twos",
            ];
            self.warn(
                n,
                if known.contains(&vs.lb_algo.as_str()) {
                    format!(
                        "virtual_server {}: lb_algo {} is approximated by weighted random choice (nftables numgen); rr, wrr and sh are exact",
                        vs.target, vs.lb_algo
                    )
                } else {
                    format!(
                        "virtual_server {}: lb_algo `{}` is not an IPVS scheduler; weighted random choice is used",
                        vs.target, vs.lb_algo
                    )
                },
                "use rr, wrr or sh for an exact schedule, or keep the approximation",
            );
        }
        if vs.protocol == LbProtocol::Sctp {
            self.warn(
                n,
                format!("virtual_server {}: SCTP is not forwarded yet", vs.target),
                "use TCP or UDP",
            );
        }
        let total: u32 = vs.reals.iter().map(|r| r.weight).sum();
        if vs.quorum > total.max(1) {
            // keepalived clamps it too (check_data.c), with a warning.
            self.warn(
                n,
                format!(
                    "virtual_server {}: quorum {} is above the reals' total weight {total}; set to {total}",
                    vs.target, vs.quorum
                ),
                "lower `quorum`",
            );
            vs.quorum = total.max(1);
        }
        if vs.hysteresis >= vs.quorum {
            self.warn(
                n,
                format!(
                    "virtual_server {}: hysteresis {} must be below quorum {}; set to {}",
                    vs.target,
                    vs.hysteresis,
                    vs.quorum,
                    vs.quorum - 1
                ),
                "lower `hysteresis`",
            );
            vs.hysteresis = vs.quorum - 1;
        }
        Some(vs)
    }

    fn real_server(
        &mut self,
        n: &Node,
        vs: &VirtualServer,
        vs_inh: &Inherited,
    ) -> Option<RealServer> {
        let Some(a) = n.arg(0) else {
            self.fail(
                n,
                "`real_server` needs an address",
                "write `real_server 192.0.2.21 80 {`",
            );
            return None;
        };
        let ip = self.ip_token(a)?;
        let port = match n.arg(1) {
            Some(p) => self.port_token(p)?,
            // keepalived: the virtual server's port.
            None => match &vs.target {
                VsTarget::Addr(a) => a.port(),
                _ => 0,
            },
        };
        let mut rs = RealServer {
            addr: SocketAddr::new(ip, port),
            weight: 1,
            inhibit_on_failure: false,
            notify_up: None,
            notify_down: None,
            alpha: false,
            checkers: Vec::new(),
        };
        let mut inh = Inherited::default();
        let children = self.block_of(n);
        for c in children {
            match c.key.text.as_str() {
                "weight" => rs.weight = self.count(c).unwrap_or(1),
                "notify_up" => rs.notify_up = self.cmd(c),
                "notify_down" => rs.notify_down = self.cmd(c),
                "delay_loop" => inh.delay_loop = self.secs(c),
                "connect_timeout" => inh.connect_timeout = self.secs(c),
                "retry" => inh.retry = self.count(c),
                "delay_before_retry" => inh.delay_before_retry = self.secs(c),
                "warmup" => inh.warmup = self.secs(c),
                "alpha" => inh.alpha = Some(super::typed::flag(c)),
                "inhibit_on_failure" => inh.inhibit_on_failure = Some(super::typed::flag(c)),
                "virtualhost" => inh.virtualhost = self.text(c, "a host name"),
                k if RUN.contains(&k) || NOT_RUN.contains(&k) => {}
                _ => self.unknown(&c.key, "real_server", REAL_SERVER),
            }
        }
        let inh = inh.over(vs_inh);
        rs.alpha = inh.alpha.unwrap_or(false);
        rs.inhibit_on_failure = inh.inhibit_on_failure.unwrap_or(false);
        for c in children {
            let k = c.key.text.as_str();
            if NOT_RUN.contains(&k) {
                self.warn(
                    c,
                    format!(
                        "real_server {}: {k} is not run by xvrrp yet; the real counts as up for it",
                        rs.addr
                    ),
                    "use TCP_CHECK, HTTP_GET, SSL_GET or MISC_CHECK for this real meanwhile",
                );
                continue;
            }
            if let Some(ch) = self.checker(c, &rs, vs, &inh) {
                rs.checkers.push(ch);
            }
        }
        Some(rs)
    }

    fn checker(
        &mut self,
        n: &Node,
        rs: &RealServer,
        vs: &VirtualServer,
        parent: &Inherited,
    ) -> Option<Checker> {
        let name = n.key.text.as_str();
        if !RUN.contains(&name) {
            return None;
        }
        let mut inh = Inherited::default();
        let mut connect_ip = None;
        let mut connect_port = None;
        let mut bindto = None;
        let mut bind_port = None;
        let mut urls = Vec::new();
        let mut misc: Option<Command> = None;
        let mut misc_timeout = None;
        let mut misc_dynamic = false;
        let mut udp_payload = Vec::new();
        let mut require_reply = None;
        let mut min_reply = 0usize;
        let mut max_reply = 255usize;
        let mut dns_type = 6u16; // SOA, keepalived's default
        let mut dns_name = ".".to_owned();
        let mut track_file = None;
        let mut file_dynamic = false;
        let mut file_weight = 0i64;
        let mut file_reverse = false;
        let mut helo_name = None;
        let mut smtp_hosts: Vec<(Option<IpAddr>, Option<u16>)> = Vec::new();
        let mut http11 = false;
        let mut enable_sni = false;
        let mut sni_name = None;
        for c in self.block_of(n) {
            match c.key.text.as_str() {
                "connect_ip" => connect_ip = c.arg(0).and_then(|t| self.ip_token(t)),
                "connect_port" => connect_port = c.arg(0).and_then(|t| self.port_token(t)),
                "bindto" => bindto = c.arg(0).and_then(|t| self.ip_token(t)),
                "bind_port" => bind_port = c.arg(0).and_then(|t| self.port_token(t)),
                "connect_timeout" => inh.connect_timeout = self.secs(c),
                "retry" | "nb_get_retry" => inh.retry = self.count(c),
                "delay_before_retry" => inh.delay_before_retry = self.secs(c),
                "warmup" => inh.warmup = self.secs(c),
                "delay_loop" => inh.delay_loop = self.secs(c),
                "alpha" => inh.alpha = Some(super::typed::flag(c)),
                "url" if name != "TCP_CHECK" && name != "MISC_CHECK" => {
                    if let Some(u) = self.url(c) {
                        urls.push(u);
                    }
                }
                "virtualhost" if name == "HTTP_GET" || name == "SSL_GET" => {
                    inh.virtualhost = self.text(c, "a host name")
                }
                "http_protocol" if name == "HTTP_GET" || name == "SSL_GET" => {
                    http11 = match c.arg(0).map(|t| t.text.as_str()) {
                        Some("1.1") => true,
                        Some("1.0") | Some("1.0C") | Some("1.0c") => false,
                        _ => {
                            self.fail(
                                c,
                                "`http_protocol` is 1.0, 1.0C or 1.1",
                                "write `http_protocol 1.1`",
                            );
                            false
                        }
                    }
                }
                "enable_sni" if name == "SSL_GET" || name == "HTTP_GET" => {
                    enable_sni = super::typed::flag(c)
                }
                "sni_name" if name == "SSL_GET" || name == "HTTP_GET" => {
                    sni_name = self.text(c, "a server name")
                }
                "payload" if name == "UDP_CHECK" => {
                    udp_payload = hex_pattern(&words(c)).into_iter().map(|(_, v)| v).collect()
                }
                "require_reply" if name == "UDP_CHECK" => {
                    require_reply = Some(hex_pattern(&words(c)))
                }
                "min_reply_length" if name == "UDP_CHECK" => {
                    min_reply = self.count(c).unwrap_or(0) as usize
                }
                "max_reply_length" if name == "UDP_CHECK" => {
                    max_reply = self.count(c).unwrap_or(255) as usize
                }
                "type" if name == "DNS_CHECK" => {
                    let t = c.arg(0).map(|t| t.text.to_ascii_uppercase());
                    dns_type = match t.as_deref() {
                        Some("A") => 1,
                        Some("NS") => 2,
                        Some("CNAME") => 5,
                        Some("SOA") => 6,
                        Some("MX") => 15,
                        Some("TXT") => 16,
                        Some("AAAA") => 28,
                        _ => {
                            self.fail(
                                c,
                                "DNS_CHECK `type` is A, NS, CNAME, SOA, MX, TXT or AAAA",
                                "write `type A`",
                            );
                            dns_type
                        }
                    }
                }
                "name" if name == "DNS_CHECK" => {
                    dns_name = self.text(c, "a domain name").unwrap_or(dns_name)
                }
                "track_file" if name == "FILE_CHECK" => {
                    track_file = self.text(c, "a track_file name")
                }
                "dynamic" if name == "FILE_CHECK" => file_dynamic = super::typed::flag(c),
                "weight" if name == "FILE_CHECK" => {
                    file_weight = self
                        .number::<i64>(c, -2_147_483_647, 2_147_483_647)
                        .unwrap_or(0);
                    file_reverse = c.arg(1).is_some_and(|t| t.text == "reverse");
                }
                "helo_name" if name == "SMTP_CHECK" => helo_name = self.text(c, "a host name"),
                "host" if name == "SMTP_CHECK" => {
                    let mut h = (None, None);
                    for hc in self.block_of(c) {
                        match hc.key.text.as_str() {
                            "connect_ip" => h.0 = hc.arg(0).and_then(|t| self.ip_token(t)),
                            "connect_port" => h.1 = hc.arg(0).and_then(|t| self.port_token(t)),
                            // keepalived's per-host connection options: the
                            // checker's own apply to every host.
                            "bindto" | "bind_port" | "bind_if" | "connect_timeout" | "fwmark" => {
                                self.warn(hc, format!("SMTP_CHECK host: a per-host `{}` is not applied; the checker's own settings are", hc.key.text), "set it in the SMTP_CHECK block")
                            }
                            _ => self.unknown(&hc.key, "host", &["connect_ip", "connect_port"]),
                        }
                    }
                    smtp_hosts.push(h);
                }
                "misc_path" if name == "MISC_CHECK" => misc = self.cmd(c),
                "misc_timeout" if name == "MISC_CHECK" => misc_timeout = self.secs(c),
                "misc_dynamic" if name == "MISC_CHECK" => misc_dynamic = super::typed::flag(c),
                _ => {
                    let known: Vec<&str> = CHECKER
                        .iter()
                        .chain(match name {
                            "HTTP_GET" | "SSL_GET" => HTTP_CHECKER,
                            "MISC_CHECK" => MISC_CHECKER,
                            "UDP_CHECK" => UDP_CHECKER,
                            "DNS_CHECK" => DNS_CHECKER,
                            "FILE_CHECK" => FILE_CHECKER,
                            "SMTP_CHECK" => SMTP_CHECKER,
                            _ => &[],
                        })
                        .copied()
                        .collect();
                    self.unknown(&c.key, name, &known)
                }
            }
        }
        let inh = inh.over(parent);
        // keepalived's per-checker defaults: MISC_CHECK retries 0 times,
        // DNS_CHECK 3 times, the others once; HTTP/SSL wait 3 s between
        // retries, DNS_CHECK delay_loop, others 1 s.
        let default_retry = match name {
            "MISC_CHECK" => 0,
            "DNS_CHECK" => 3,
            _ => 1,
        };
        let delay_loop = inh.delay_loop.unwrap_or(vs.delay_loop);
        let default_dbr = match name {
            "HTTP_GET" | "SSL_GET" => Duration::from_secs(3),
            "DNS_CHECK" => delay_loop,
            _ => Duration::from_secs(1),
        };
        let kind = match name {
            "TCP_CHECK" => CheckKind::Tcp,
            "HTTP_GET" | "SSL_GET" => {
                if urls.is_empty() {
                    self.fail(
                        n,
                        format!("{name} has no `url` block"),
                        "add `url { path / }`",
                    );
                    return None;
                }
                CheckKind::Http {
                    tls: name == "SSL_GET",
                    urls,
                    virtualhost: inh.virtualhost.clone(),
                    http11,
                    sni: enable_sni
                        .then(|| sni_name.clone().or(inh.virtualhost.clone()))
                        .flatten(),
                }
            }
            "PING_CHECK" => CheckKind::Ping,
            "SMTP_CHECK" => CheckKind::Smtp {
                helo_name,
                // keepalived's SMTP_CHECK defaults to port 25; without host
                // blocks the checker's own target is the one host.
                hosts: if smtp_hosts.is_empty() {
                    vec![(None, None)]
                } else {
                    smtp_hosts
                }
                .iter()
                .map(|(ip, port)| {
                    SocketAddr::new(
                        ip.or(connect_ip).unwrap_or(rs.addr.ip()),
                        port.or(connect_port).unwrap_or(25),
                    )
                })
                .collect(),
            },
            "UDP_CHECK" => CheckKind::Udp {
                payload: udp_payload,
                require_reply,
                min_reply_length: min_reply,
                max_reply_length: max_reply,
            },
            "DNS_CHECK" => CheckKind::Dns {
                qtype: dns_type,
                name: dns_name,
            },
            "FILE_CHECK" => {
                let Some(track_file) = track_file else {
                    self.fail(
                        n,
                        "FILE_CHECK has no `track_file`",
                        "add `track_file NAME` naming a vrrp_track_file block",
                    );
                    return None;
                };
                CheckKind::File {
                    track_file,
                    dynamic: file_dynamic,
                    weight: file_weight,
                    reverse: file_reverse,
                }
            }
            _ => {
                let Some(command) = misc else {
                    self.fail(
                        n,
                        "MISC_CHECK has no `misc_path`",
                        "add `misc_path \"/path/to/check arg\"`",
                    );
                    return None;
                };
                CheckKind::Misc {
                    command,
                    timeout: misc_timeout,
                    dynamic: misc_dynamic,
                }
            }
        };
        Some(Checker {
            kind,
            connect: SocketAddr::new(
                connect_ip.unwrap_or(rs.addr.ip()),
                connect_port.unwrap_or(rs.addr.port()),
            ),
            bindto,
            bind_port,
            connect_timeout: inh
                .connect_timeout
                .unwrap_or(super::lvs::DEFAULT_CONNECT_TIMEOUT),
            retry: inh.retry.unwrap_or(default_retry),
            delay_before_retry: inh.delay_before_retry.unwrap_or(default_dbr),
            warmup: inh.warmup.unwrap_or(delay_loop),
            delay_loop,
            alpha: inh.alpha.unwrap_or(false),
            pos: n.key.pos.clone(),
        })
    }

    fn url(&mut self, n: &Node) -> Option<Url> {
        let mut u = Url {
            path: String::new(),
            digest: None,
            status: Vec::new(),
            virtualhost: None,
            regex: None,
            regex_no_match: false,
        };
        for c in self.block_of(n) {
            match c.key.text.as_str() {
                "path" => u.path = self.text(c, "a path").unwrap_or_default(),
                "digest" => {
                    let d = self.text(c, "an MD5 digest (32 hex digits)")?;
                    if d.len() != 32 || !d.chars().all(|ch| ch.is_ascii_hexdigit()) {
                        self.fail(
                            c,
                            format!("digest `{d}` is not 32 hex digits"),
                            "write the MD5 of the page, as `genhash` prints it",
                        );
                        return None;
                    }
                    u.digest = Some(d.to_ascii_lowercase());
                }
                "status_code" => {
                    for t in &c.args {
                        let range = match t.text.split_once('-') {
                            Some((a, b)) => a.parse().ok().zip(b.parse().ok()),
                            None => t.text.parse().ok().map(|v| (v, v)),
                        };
                        match range {
                            Some((a, b)) if (100..=999).contains(&a) && a <= b && b <= 999 => {
                                u.status.push((a, b))
                            }
                            _ => self.fail(
                                c,
                                format!("status_code `{}` is not a code or range", t.text),
                                "write `status_code 200` or `status_code 200-299 301`",
                            ),
                        }
                    }
                }
                "virtualhost" => u.virtualhost = self.text(c, "a host name"),
                "regex" => {
                    let r = self.text(c, "a regular expression")?;
                    if let Err(e) = regex_lite::Regex::new(&r) {
                        self.fail(
                            c,
                            format!("regex `{r}`: {e}"),
                            "write a valid regular expression",
                        );
                        return None;
                    }
                    u.regex = Some(r);
                }
                "regex_no_match" => u.regex_no_match = super::typed::flag(c),
                _ => self.unknown(&c.key, "url", URL),
            }
        }
        if u.path.is_empty() {
            self.fail(n, "`url` has no `path`", "add `path /`");
            return None;
        }
        // keepalived: no status_code given means 200-299, digest or not.
        if u.status.is_empty() {
            u.status.push((200, 299));
        }
        Some(u)
    }

    /// `virtual_server_group NAME { 192.0.2.1 80  192.0.2.2-5 80  fwmark 1 }`.
    pub(crate) fn vs_group(&mut self, n: &Node) -> Option<VsGroup> {
        let name = n.arg(0)?.text.clone();
        let mut g = VsGroup {
            name,
            addrs: Vec::new(),
            fwmarks: Vec::new(),
        };
        for c in self.block_of(n) {
            if c.key.text == "fwmark" {
                if let Some(m) = c.arg(0).and_then(|t| self.u32_token(t)) {
                    g.fwmarks.push(m);
                }
                continue;
            }
            let port = match c.arg(0) {
                Some(p) => match self.port_token(p) {
                    Some(p) => p,
                    None => continue,
                },
                None => 0,
            };
            // `192.0.2.1-10`: the last octet (last group for IPv6) ranges.
            let (first, last) = match c.key.text.rsplit_once('-') {
                Some((a, end)) if !a.contains('/') => (a, Some(end)),
                _ => (c.key.text.as_str(), None),
            };
            let Some(ip) = first.parse::<IpAddr>().ok() else {
                self.fail(
                    c,
                    format!("`{}` is not an address or range", c.key.text),
                    "write `192.0.2.1 80`, `192.0.2.1-10 80` or `fwmark 1`",
                );
                continue;
            };
            let count = match (ip, last) {
                (_, None) => 1,
                (IpAddr::V4(a), Some(end)) => match end.parse::<u8>() {
                    Ok(e) if e >= a.octets()[3] => u32::from(e - a.octets()[3]) + 1,
                    _ => {
                        self.fail(
                            c,
                            format!("range end `{end}` is below the start"),
                            "write `192.0.2.1-10 80`",
                        );
                        continue;
                    }
                },
                (IpAddr::V6(a), Some(end)) => match u16::from_str_radix(end, 16) {
                    Ok(e) if e >= a.segments()[7] => u32::from(e - a.segments()[7]) + 1,
                    _ => {
                        self.fail(
                            c,
                            format!("range end `{end}` is below the start"),
                            "write `2001:db8::1-a 80`",
                        );
                        continue;
                    }
                },
            };
            for k in 0..count {
                let a = match ip {
                    IpAddr::V4(a) => IpAddr::V4((u32::from(a) + k).into()),
                    IpAddr::V6(a) => IpAddr::V6((u128::from(a) + u128::from(k)).into()),
                };
                g.addrs.push(SocketAddr::new(a, port));
            }
        }
        Some(g)
    }

    // ---- small readers ----------------------------------------------------

    fn block_of<'n>(&mut self, n: &'n Node) -> &'n [Node] {
        n.children()
    }

    /// keepalived's `lb_kind TUN [type ipip|gue|gre] [port N]
    /// [nocsum|csum|remcsum]`, with its rules (check_parser.c): gue needs a
    /// port and only gue takes one; ipip takes no checksum option.
    fn tunnel(&mut self, c: &Node, vs: &mut VirtualServer) {
        let words: Vec<String> = c.args.iter().skip(1).map(|t| t.text.clone()).collect();
        let (mut kind, mut port, mut csum) = (TunType::Ipip, None, None);
        let mut i = 0;
        while i < words.len() {
            let next = words.get(i + 1).map(String::as_str);
            match words[i].as_str() {
                "type" => {
                    kind =
                        match next {
                            Some("ipip") => TunType::Ipip,
                            Some("gue") => TunType::Gue,
                            Some("gre") => TunType::Gre,
                            _ => return self.fail(
                                c,
                                format!("unknown tunnel type {:?}", next.unwrap_or("")),
                                "write `lb_kind TUN type ipip`, `type gue port N` or `type gre`",
                            ),
                        };
                    i += 1;
                }
                "port" => {
                    match next.and_then(|p| p.parse::<u16>().ok()).filter(|p| *p > 0) {
                        Some(p) => port = Some(p),
                        None => {
                            return self.fail(
                                c,
                                format!("invalid gue tunnel port {:?}", next.unwrap_or("")),
                                "write `lb_kind TUN type gue port N` with N in 1..65535",
                            )
                        }
                    }
                    i += 1;
                }
                w @ ("nocsum" | "csum" | "remcsum") => csum = Some(w.to_owned()),
                other => return self.fail(
                    c,
                    format!("invalid tunnel option {other:?}"),
                    "the options are `type ipip|gue|gre`, `port N`, `nocsum`, `csum`, `remcsum`",
                ),
            }
            i += 1;
        }
        if (kind == TunType::Gue) != port.is_some() {
            return self.fail(
                c,
                "gue tunnels require a port, and only gue tunnels take one",
                "write `lb_kind TUN type gue port N`, or drop `port`",
            );
        }
        match (kind, csum.as_deref()) {
            (TunType::Ipip, Some(w)) if w != "nocsum" => {
                return self.fail(
                    c,
                    "ipip tunnels have no checksum option",
                    format!("drop `{w}`"),
                )
            }
            (TunType::Gre, Some("remcsum")) => {
                return self.fail(
                    c,
                    "gre tunnels have no remote checksum option",
                    "drop `remcsum` (or write `csum`)",
                )
            }
            (_, Some(w @ ("csum" | "remcsum"))) => self.warn(
                c,
                format!(
                    "lb_kind TUN {w}: xvrrp's XDP program sends tunnel packets without a checksum (as `nocsum`, IPVS's default); a real whose tunnel requires checksums drops them"
                ),
                "write `nocsum`, or let the reals' tunnels accept packets without a checksum",
            ),
            _ => {}
        }
        vs.tun_type = kind;
        vs.tun_port = port.unwrap_or(0);
    }

    fn fail(&mut self, n: &Node, msg: impl Into<String>, fix: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(&n.key.pos, &n.key.text, msg).fix(fix));
    }

    fn warn(&mut self, n: &Node, msg: impl Into<String>, fix: impl Into<String>) {
        self.diags.push(
            Diagnostic::warning(&n.key.pos, &n.key.text, msg)
                .fix(fix)
                .lenient(),
        );
    }

    fn secs(&mut self, n: &Node) -> Option<Duration> {
        self.number::<f64>(n, 0.0, 86_400.0)
            .map(Duration::from_secs_f64)
    }

    fn count(&mut self, n: &Node) -> Option<u32> {
        self.number::<u32>(n, 0, 65_535)
    }

    fn text(&mut self, n: &Node, what: &str) -> Option<String> {
        self.value(n, what).map(|t| t.text.clone())
    }

    fn cmd(&mut self, n: &Node) -> Option<Command> {
        self.notify_command(n)
    }

    fn ip_token(&mut self, t: &crate::config::lexer::Token) -> Option<IpAddr> {
        self.ip(t)
    }

    fn u32_token(&mut self, t: &crate::config::lexer::Token) -> Option<u32> {
        self.u32_of(t)
    }

    fn port_token(&mut self, t: &crate::config::lexer::Token) -> Option<u16> {
        match t.text.parse::<u16>() {
            Ok(p) => Some(p),
            Err(_) => {
                self.diags.push(
                    Diagnostic::error(&t.pos, &t.text, format!("`{}` is not a port", t.text))
                        .fix("write a port number from 0 to 65535"),
                );
                None
            }
        }
    }
}

/// A statement's argument words.
fn words(n: &Node) -> Vec<String> {
    n.args.iter().map(|t| t.text.clone()).collect()
}

/// keepalived's free-form hex strings (`Ab12f 3 456` is AB 12 0F 03 45 06):
/// each word is read two digits at a time, an odd last digit alone; `x`
/// ignores a nibble (require_reply). Bytes as (mask, value).
pub fn hex_pattern(words: &[String]) -> Vec<(u8, u8)> {
    let nib = |c: char| -> (u8, u8) {
        match c.to_digit(16) {
            Some(d) => (0xf, d as u8),
            None => (0, 0), // x / X: any
        }
    };
    let mut out = Vec::new();
    for w in words {
        let chars: Vec<char> = w.chars().collect();
        for pair in chars.chunks(2) {
            let (m1, v1) = nib(pair[0]);
            match pair.get(1) {
                Some(&c2) => {
                    let (m2, v2) = nib(c2);
                    out.push(((m1 << 4) | m2, (v1 << 4) | v2));
                }
                None => out.push((m1, v1)),
            }
        }
    }
    out
}
