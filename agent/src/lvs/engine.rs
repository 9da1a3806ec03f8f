//! The LVS engine: one task owning the pools and the nftables table, one
//! small task per checker (thousands fit in the one tokio runtime: each
//! sleeps between checks). Checker transitions come in; slot maps, notify
//! scripts and log lines go out. Tied to VRRP: a virtual server whose
//! address a vrrp_instance holds forwards only while that instance is
//! Active here (its checkers pause meanwhile with `ha_suspend`); one whose
//! address no instance holds forwards whenever the agent runs, as
//! keepalived's IPVS services do.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::{
    checkers::{self, Outcome},
    nft::{self, SlotTarget, VsRules},
    pool::{self, CheckerState, Destinations, Event, Pool, Real},
};
use crate::{
    config::{
        lvs::{LbKind, VirtualServer, VsTarget},
        model::{Command, Config, ScriptUser},
    },
    track::exec,
};

/// What `xvrrp status` shows of one virtual server.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VsStatus {
    pub name: String,
    pub protocol: String,
    pub lb_kind: String,
    pub lb_algo: String,
    /// Forwarding here now (Active for its VIP, or no instance holds it).
    pub forwarding: bool,
    pub quorum: u32,
    pub quorum_up: bool,
    pub live_weight: u32,
    pub sorry_active: bool,
    pub reals: Vec<RsStatus>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RsStatus {
    pub address: String,
    pub alive: bool,
    /// Listed for new connections, if at weight 0 (inhibit_on_failure).
    pub in_pool: bool,
    pub weight: u32,
    /// Per checker: kind and up/down.
    pub checkers: Vec<(String, bool)>,
    pub packets: u64,
    pub bytes: u64,
}

/// Messages from checker tasks.
#[derive(Debug)]
struct CheckerNews {
    vs: usize,
    real: usize,
    checker: usize,
    up: Option<bool>,
    weight: Option<u32>,
    why: Option<String>,
}

struct Vs {
    cfg: VirtualServer,
    rules: VsRules,
    pool: Pool,
    /// Per real, per checker: up.
    checker_up: Vec<Vec<bool>>,
    /// The instances holding its address; empty: always forwarding.
    owners: Vec<String>,
    forwarding: bool,
    /// Checkers pause while this is false (ha_suspend).
    running: watch::Sender<bool>,
    /// The slot table last written (None: not yet, Some(empty): nothing).
    written: Option<Vec<SlotTarget>>,
}

enum Control {
    Instance(String, bool),
    Stop(tokio::sync::oneshot::Sender<()>, bool),
}

/// The handle the daemon holds.
pub struct Engine {
    control: mpsc::UnboundedSender<Control>,
    status: Arc<Mutex<Vec<VsStatus>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Engine {
    /// Sets up the table and starts the checkers; None without virtual
    /// servers. Fails when the table cannot be written (no `nft`).
    pub async fn start(
        config: &Config,
        fifos: Vec<Arc<crate::notify::FifoWriter>>,
        lb_maps: Vec<crate::dataplane::lb::LbMaps>,
    ) -> anyhow::Result<Option<Engine>> {
        if config.virtual_servers.is_empty() {
            return Ok(None);
        }
        let groups: HashMap<&str, &crate::config::lvs::VsGroup> = config
            .vs_groups
            .iter()
            .map(|g| (g.name.as_str(), g))
            .collect();
        let mut vss = Vec::new();
        let mut dr = super::xdp::DrForwarder::new(lb_maps);
        for (i, cfg) in config.virtual_servers.iter().enumerate() {
            let (addrs, marks) = match &cfg.target {
                VsTarget::Addr(a) => (vec![*a], vec![]),
                VsTarget::Fwmark(m) => (vec![], vec![*m]),
                VsTarget::Group(g) => groups
                    .get(g.as_str())
                    .map(|g| (g.addrs.clone(), g.fwmarks.clone()))
                    .unwrap_or_default(),
            };
            let rules = VsRules::new(i, cfg, addrs.clone(), marks);
            for r in &cfg.reals {
                if r.addr.is_ipv6() != rules.v6 {
                    warn!("virtual_server {}: real_server {} is of the other address family: not forwarded (NAT does not translate between IPv4 and IPv6)", cfg.target, r.addr);
                }
            }
            let reals = cfg
                .reals
                .iter()
                .map(|r| {
                    let alpha: Vec<bool> = r.checkers.iter().map(|c| c.alpha).collect();
                    Real::new(r.weight, r.inhibit_on_failure, &alpha)
                })
                .collect();
            let pool = Pool::new(
                reals,
                cfg.quorum,
                cfg.hysteresis,
                cfg.sorry_server.is_some(),
            );
            let owners = owners_of(config, &addrs);
            let checker_up = cfg
                .reals
                .iter()
                .map(|r| r.checkers.iter().map(|c| !c.alpha).collect())
                .collect();
            let in_xdp = matches!(cfg.lb_kind, LbKind::Dr | LbKind::Tun);
            if in_xdp && dr.add(i, cfg, &addrs) {
                info!(
                    "virtual_server {}: lb_kind {}, forwarded by the XDP program (Maglev)",
                    cfg.target,
                    cfg.lb_kind.name()
                );
            } else if cfg.lb_kind != LbKind::Nat {
                // Checked and shown, not forwarded (config warned).
                info!(
                    "virtual_server {}: lb_kind {}: checkers run, nothing forwarded",
                    cfg.target,
                    cfg.lb_kind.name()
                );
            }
            vss.push(Vs {
                cfg: cfg.clone(),
                rules,
                pool,
                checker_up,
                forwarding: owners.is_empty(),
                owners,
                running: watch::channel(true).0,
                written: None,
            });
        }
        let nat: Vec<VsRules> = vss
            .iter()
            .filter(|v| v.cfg.lb_kind == LbKind::Nat)
            .map(|v| v.rules.clone())
            .collect();
        nft::declare(&nft::declarations(&nat)).await?;
        nft::apply(&nft::ruleset(&nat)).await?;
        info!(
            virtual_servers = vss.len(),
            "nftables table inet {} set up for virtual_server NAT",
            nft::TABLE
        );
        let status = Arc::new(Mutex::new(Vec::new()));
        let (control, control_rx) = mpsc::unbounded_channel();
        let (news_tx, news_rx) = mpsc::unbounded_channel();
        let user = config
            .global
            .script_user
            .clone()
            .or_else(exec::default_user);
        let tls = match checkers::http::tls_config(config.global.ssl.as_ref()) {
            Ok(t) => Some(t),
            Err(e) => {
                warn!("SSL_GET checks cannot run: {e:#}");
                None
            }
        };
        for (v, vs) in vss.iter_mut().enumerate() {
            vs.running.send_replace(vs.forwarding || !vs.cfg.ha_suspend);
            for (r, real) in vs.cfg.reals.iter().enumerate() {
                for (c, checker) in real.checkers.iter().enumerate() {
                    let ctx = checkers::Context {
                        script_user: user.clone(),
                        file: match &checker.kind {
                            crate::config::lvs::CheckKind::File { track_file, .. } => {
                                config.track_files.get(track_file).map(|t| t.file.clone())
                            }
                            _ => None,
                        },
                        base_weight: real.weight,
                        tls: tls.clone(),
                    };
                    tokio::spawn(run_checker(
                        v,
                        r,
                        c,
                        checker.clone(),
                        ctx,
                        vs.running.subscribe(),
                        news_tx.clone(),
                    ));
                }
            }
        }
        dr.forget_others().await;
        let mut state = State {
            vss,
            status: status.clone(),
            user,
            fifos,
            dr,
        };
        for v in 0..state.vss.len() {
            state.write_slots(v).await;
        }
        state.publish(None);
        let task = tokio::spawn(state.run(control_rx, news_rx));
        Ok(Some(Engine {
            control,
            status,
            task,
        }))
    }

    /// A vrrp_instance's state here changed.
    pub fn instance(&self, name: &str, active: bool) {
        let _ = self
            .control
            .send(Control::Instance(name.to_owned(), active));
    }

    pub fn status(&self) -> Vec<VsStatus> {
        self.status.lock().expect("lvs status").clone()
    }

    /// A clean stop: omega's scripts, then the table goes. `last`: the
    /// agent stops (the XDP program's DR services go too); otherwise a
    /// reload, whose next engine writes the same Maglev tables over them,
    /// so DR flows go on through it.
    pub async fn stop(self, last: bool) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.control.send(Control::Stop(tx, last)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
        }
        self.task.abort();
        if let Err(e) = nft::remove().await {
            warn!("removing the nftables table inet {}: {e:#}", nft::TABLE);
        }
    }
}

/// The vrrp_instances whose virtual_ipaddress holds one of `addrs`.
fn owners_of(config: &Config, addrs: &[SocketAddr]) -> Vec<String> {
    config
        .instances
        .iter()
        .filter(|i| {
            i.vips
                .iter()
                .chain(&i.vips_excluded)
                .any(|v| addrs.iter().any(|a| a.ip() == v.addr))
        })
        .map(|i| i.name.clone())
        .collect()
}

struct State {
    vss: Vec<Vs>,
    status: Arc<Mutex<Vec<VsStatus>>>,
    user: Option<ScriptUser>,
    /// notify_fifo and lvs_notify_fifo.
    fifos: Vec<Arc<crate::notify::FifoWriter>>,
    /// lb_kind DR virtual servers, in the XDP program.
    dr: super::xdp::DrForwarder,
}

impl State {
    async fn run(
        mut self,
        mut control: mpsc::UnboundedReceiver<Control>,
        mut news: mpsc::UnboundedReceiver<CheckerNews>,
    ) {
        let mut active: BTreeMap<String, bool> = BTreeMap::new();
        let mut counters = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                Some(c) = control.recv() => match c {
                    Control::Instance(name, is_active) => {
                        active.insert(name, is_active);
                        for v in 0..self.vss.len() {
                            let vs = &mut self.vss[v];
                            if vs.owners.is_empty() {
                                continue;
                            }
                            let fwd = vs.owners.iter().any(|o| active.get(o).copied().unwrap_or(false));
                            if fwd != vs.forwarding {
                                vs.forwarding = fwd;
                                info!(
                                    "virtual_server {}: {}",
                                    vs.cfg.target,
                                    if fwd { "forwarding (this host is Active for its address)" } else { "not forwarding (this host is not Active for its address)" }
                                );
                                vs.running.send_replace(fwd || !vs.cfg.ha_suspend);
                                self.write_slots(v).await;
                            }
                        }
                        self.publish(None);
                    }
                    Control::Stop(done, last) => {
                        self.omega().await;
                        if last {
                            self.dr.clear().await;
                        }
                        let _ = done.send(());
                        return;
                    }
                },
                Some(n) = news.recv() => {
                    self.news(n).await;
                    self.publish(None);
                }
                _ = counters.tick() => {
                    if self.dr.refresh_due() || self.dr.waiting() {
                        for v in 0..self.vss.len() {
                            if self.dr.handles(v) {
                                self.write_dr(v).await;
                            }
                        }
                    }
                    // NAT's from nftables' counting rules, DR/TUN's from
                    // the XDP program's per-real counters.
                    let mut c = nft::counters().await.unwrap_or_default();
                    c.extend(self.dr.stats().await);
                    self.publish(Some(&c));
                }
            }
        }
    }

    async fn news(&mut self, n: CheckerNews) {
        let vs = &mut self.vss[n.vs];
        let mut events = Vec::new();
        if let Some(w) = n.weight {
            if vs.pool.reals[n.real].dynamic_weight != Some(w) {
                info!(
                    "virtual_server {}: real_server {} weight set to {w} by its checker (misc_dynamic or FILE_CHECK dynamic)",
                    vs.cfg.target, vs.cfg.reals[n.real].addr
                );
                events.extend(vs.pool.set_weight(n.real, w));
            }
        }
        if let Some(up) = n.up {
            vs.checker_up[n.real][n.checker] = up;
            let kind = checker_name(&vs.cfg.reals[n.real].checkers[n.checker].kind);
            if up {
                info!(
                    "virtual_server {}: {kind} of real_server {} succeeded",
                    vs.cfg.target, vs.cfg.reals[n.real].addr
                );
            } else {
                warn!(
                    "virtual_server {}: {kind} of real_server {} failed: {}",
                    vs.cfg.target,
                    vs.cfg.reals[n.real].addr,
                    n.why.as_deref().unwrap_or("down")
                );
            }
            events.extend(vs.pool.checker(n.real, n.checker, up));
        }
        for e in &events {
            self.event(n.vs, e);
        }
        self.write_slots(n.vs).await;
    }

    /// Logs and scripts for one pool event, as keepalived runs them:
    /// notify_up/notify_down and quorum_up/quorum_down with exactly the
    /// configured command line, fire-and-forget.
    fn event(&mut self, v: usize, e: &Event) {
        let vs = &self.vss[v];
        let target = &vs.cfg.target;
        let (cmd, line) = match e {
            Event::RealUp(r) => (
                vs.cfg.reals[*r].notify_up.clone(),
                format!(
                    "real_server {} of virtual_server {target} up: back in the pool",
                    vs.cfg.reals[*r].addr
                ),
            ),
            Event::RealDown(r) => {
                let real = &vs.cfg.reals[*r];
                if let Some(doc) = nft::forget_affinity(&vs.rules, *r) {
                    tokio::spawn(async move {
                        let _ = nft::apply(&doc).await;
                    });
                }
                (
                    real.notify_down.clone(),
                    format!(
                        "real_server {} of virtual_server {target} down: {}",
                        real.addr,
                        if real.inhibit_on_failure {
                            "weight 0 (inhibit_on_failure)"
                        } else {
                            "removed from the pool"
                        }
                    ),
                )
            }
            Event::QuorumUp => (
                vs.cfg.quorum_up.clone(),
                format!(
                    "virtual_server {target}: gained quorum {}+{}={} <= {}",
                    vs.cfg.quorum,
                    vs.cfg.hysteresis,
                    vs.cfg.quorum + vs.cfg.hysteresis,
                    vs.pool.live_weight()
                ),
            ),
            Event::QuorumDown => (
                vs.cfg.quorum_down.clone(),
                format!(
                    "virtual_server {target}: lost quorum {}-{}={} > {}{}",
                    vs.cfg.quorum,
                    vs.cfg.hysteresis,
                    vs.cfg.quorum.saturating_sub(vs.cfg.hysteresis),
                    vs.pool.live_weight(),
                    if vs.cfg.sorry_server.is_some() {
                        ": the sorry server takes new connections"
                    } else {
                        ""
                    }
                ),
            ),
        };
        info!("{line}");
        let fifo = fifo_line(&vs.cfg, e);
        for f in &self.fifos {
            f.write(&fifo);
        }
        if let Some(cmd) = cmd {
            self.spawn_script(cmd);
        }
    }

    fn spawn_script(&self, cmd: Command) {
        let user = cmd.user.clone().or_else(|| self.user.clone());
        tokio::spawn(async move {
            let (outcome, _) = exec::run(&cmd, &[], user.as_ref(), Duration::from_secs(30)).await;
            if !outcome.success() {
                warn!("`{}` ended with {outcome:?}", cmd.text);
            }
        });
    }

    /// keepalived's omega: at shutdown, quorum_down and every alive real's
    /// notify_down, each waited for (1 s at most, as keepalived).
    async fn omega(&mut self) {
        for vs in &self.vss {
            if !vs.cfg.omega {
                continue;
            }
            let mut cmds = Vec::new();
            for (r, real) in vs.cfg.reals.iter().enumerate() {
                if vs.pool.reals[r].alive() {
                    cmds.extend(real.notify_down.clone());
                }
            }
            if vs.pool.quorum_up {
                cmds.extend(vs.cfg.quorum_down.clone());
            }
            for cmd in cmds {
                let user = cmd.user.clone().or_else(|| self.user.clone());
                let _ = exec::run(&cmd, &[], user.as_ref(), Duration::from_secs(1)).await;
            }
        }
    }

    /// Writes a virtual server's slot map when what it should hold changed.
    async fn write_slots(&mut self, v: usize) {
        if self.dr.handles(v) {
            return self.write_dr(v).await;
        }
        let vs = &mut self.vss[v];
        if vs.cfg.lb_kind != LbKind::Nat {
            return;
        }
        let table: Vec<SlotTarget> = if !vs.forwarding {
            Vec::new()
        } else {
            match vs.pool.destinations() {
                Destinations::Sorry => vec![SlotTarget::Sorry; nft::SLOTS],
                Destinations::Reals(w) => {
                    let usable: Vec<(usize, u32)> = w
                        .into_iter()
                        .filter(|(r, _)| vs.cfg.reals[*r].addr.is_ipv6() == vs.rules.v6)
                        .collect();
                    pool::slot_table(&usable, nft::SLOTS)
                        .into_iter()
                        .map(SlotTarget::Real)
                        .collect()
                }
            }
        };
        if vs.written.as_ref() == Some(&table) {
            return;
        }
        if !vs.forwarding {
            for r in 0..vs.cfg.reals.len() {
                if let Some(doc) = nft::forget_affinity(&vs.rules, r) {
                    let _ = nft::apply(&doc).await;
                }
            }
        }
        match nft::apply(&nft::slots(&vs.rules, &table)).await {
            Ok(()) => vs.written = Some(table),
            Err(e) => warn!("virtual_server {}: {e:#}", vs.cfg.target),
        }
    }

    /// A DR/TUN virtual server's reals and weights into the XDP program;
    /// without quorum its sorry server alone, forwarded the same way (as
    /// keepalived puts it in the IPVS service with the service's lb_kind).
    async fn write_dr(&mut self, v: usize) {
        let vs = &self.vss[v];
        let reals = match vs.pool.destinations() {
            Destinations::Reals(w) => w
                .into_iter()
                .map(|(r, weight)| (r, vs.cfg.reals[r].addr, weight))
                .collect(),
            Destinations::Sorry => vs
                .cfg
                .sorry_server
                .map(|addr| vec![(vs.cfg.reals.len(), addr, 1)])
                .unwrap_or_default(),
        };
        let all = vs
            .cfg
            .reals
            .iter()
            .enumerate()
            .map(|(r, real)| (r, real.addr, vs.pool.reals[r].effective_weight()))
            .collect();
        let want = super::xdp::Want {
            forwarding: vs.forwarding,
            all,
            reals,
        };
        let target = vs.cfg.target.to_string();
        self.dr.write(v, &target, want).await;
    }

    fn publish(&self, counters: Option<&nft::Counters>) {
        let mut status = self.status.lock().expect("lvs status");
        let old = std::mem::take(&mut *status);
        for (v, vs) in self.vss.iter().enumerate() {
            let dest = vs.pool.destinations();
            let reals = vs
                .cfg
                .reals
                .iter()
                .enumerate()
                .map(|(r, real)| {
                    let (packets, bytes) = counters
                        .and_then(|c| c.get(&(v, r)).copied())
                        .or_else(|| {
                            old.get(v)
                                .and_then(|o| o.reals.get(r))
                                .map(|o| (o.packets, o.bytes))
                        })
                        .unwrap_or((0, 0));
                    let listed = match &dest {
                        Destinations::Reals(w) => w.iter().find(|(i, _)| *i == r).map(|(_, w)| *w),
                        Destinations::Sorry => None,
                    };
                    let weight = listed.unwrap_or(0);
                    RsStatus {
                        address: real.addr.to_string(),
                        alive: vs.pool.reals[r].alive(),
                        in_pool: listed.is_some(),
                        weight,
                        checkers: real
                            .checkers
                            .iter()
                            .zip(&vs.checker_up[r])
                            .map(|(c, up)| (checker_name(&c.kind).to_owned(), *up))
                            .collect(),
                        packets,
                        bytes,
                    }
                })
                .collect();
            status.push(VsStatus {
                name: vs.cfg.target.to_string(),
                protocol: vs.cfg.protocol.name().to_owned(),
                lb_kind: vs.cfg.lb_kind.name().to_owned(),
                lb_algo: vs.cfg.lb_algo.clone(),
                forwarding: vs.forwarding,
                quorum: vs.cfg.quorum,
                quorum_up: vs.pool.quorum_up,
                live_weight: vs.pool.live_weight(),
                sorry_active: dest == Destinations::Sorry,
                reals,
            });
        }
    }
}

/// keepalived's fifo lines: `VS [192.0.2.1]:tcp:80 UP` and
/// `RS [10.0.0.2]:tcp:80 [192.0.2.1]:tcp:80 DOWN` (a group's virtual
/// server is `[NAME]:PORT`, a fwmark's `FWM N`).
pub fn fifo_line(vs: &VirtualServer, e: &Event) -> String {
    let proto = vs.protocol.name().to_ascii_lowercase();
    let trio = |a: &SocketAddr| format!("[{}]:{proto}:{}", a.ip(), a.port());
    let vs_name = match &vs.target {
        VsTarget::Addr(a) => trio(a),
        VsTarget::Fwmark(m) => format!("FWM {m}"),
        VsTarget::Group(g) => format!("[{g}]:0"),
    };
    match e {
        Event::RealUp(r) | Event::RealDown(r) => format!(
            "RS {} {vs_name} {}\n",
            trio(&vs.reals[*r].addr),
            if matches!(e, Event::RealUp(_)) {
                "UP"
            } else {
                "DOWN"
            }
        ),
        Event::QuorumUp => format!("VS {vs_name} UP\n"),
        Event::QuorumDown => format!("VS {vs_name} DOWN\n"),
    }
}

fn checker_name(k: &crate::config::lvs::CheckKind) -> &'static str {
    use crate::config::lvs::CheckKind::*;
    match k {
        Tcp => "TCP_CHECK",
        Http { tls: false, .. } => "HTTP_GET",
        Http { tls: true, .. } => "SSL_GET",
        Misc { .. } => "MISC_CHECK",
        Ping => "PING_CHECK",
        Udp { .. } => "UDP_CHECK",
        Dns { .. } => "DNS_CHECK",
        File { .. } => "FILE_CHECK",
        Smtp { .. } => "SMTP_CHECK",
        Other(_) => "other",
    }
}

/// One checker's life: a random warmup, then checks on keepalived's
/// schedule, pausing while `running` is false (ha_suspend). Only changes
/// are sent on.
async fn run_checker(
    vs: usize,
    real: usize,
    checker: usize,
    c: crate::config::lvs::Checker,
    ctx: checkers::Context,
    mut running: watch::Receiver<bool>,
    news: mpsc::UnboundedSender<CheckerNews>,
) {
    let mut state = CheckerState::new(c.alpha, c.retry, c.delay_loop, c.delay_before_retry);
    if !c.warmup.is_zero() {
        let spread = rand_below(c.warmup.as_micros() as u64);
        tokio::time::sleep(Duration::from_micros(spread)).await;
    }
    let mut weight = None;
    loop {
        while !*running.borrow() {
            if running.changed().await.is_err() {
                return;
            }
        }
        let outcome = checkers::check(&c, &ctx).await;
        let new_weight = match outcome {
            Outcome::UpWeight(w) => Some(w),
            _ => None,
        };
        let (change, delay) = state.result(outcome.ok());
        let weight_change = new_weight.filter(|w| weight != Some(*w));
        if new_weight.is_some() {
            weight = new_weight;
        }
        if change.is_some() || weight_change.is_some() {
            let why = match &outcome {
                Outcome::Down(why) => Some(why.clone()),
                _ => None,
            };
            if news
                .send(CheckerNews {
                    vs,
                    real,
                    checker,
                    up: change,
                    weight: weight_change,
                    why,
                })
                .is_err()
            {
                return;
            }
        }
        tokio::time::sleep(delay).await;
    }
}

/// A number below `n` (warmup spread).
fn rand_below(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    super::random_u64() % n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_lines_are_keepalived_s() {
        let text = "virtual_server 192.0.2.1 80 {\n real_server 10.0.0.2 8080 {\n }\n}\n";
        let (cfg, d) =
            crate::config::parse_str(text, std::path::Path::new("m.conf"), &Default::default());
        let cfg = cfg.unwrap_or_else(|| panic!("{d}"));
        let vs = &cfg.virtual_servers[0];
        assert_eq!(
            fifo_line(vs, &Event::RealDown(0)),
            "RS [10.0.0.2]:tcp:8080 [192.0.2.1]:tcp:80 DOWN\n"
        );
        assert_eq!(
            fifo_line(vs, &Event::QuorumUp),
            "VS [192.0.2.1]:tcp:80 UP\n"
        );
    }
}
