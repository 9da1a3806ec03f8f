//! Wires it together: config -> sync groups of routers -> one tokio event
//! loop fed by advert sockets, timers, signals; status on the control socket.

pub mod member;
pub mod monitor;
pub mod reload;
pub mod sd_notify;
pub mod supervise;

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context as _};
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::mpsc,
    task::JoinHandle,
};
use tracing::{error, info, warn};
use xvrrp_common::{reason, AdvertRecord};

pub use monitor::run_monitor;

use self::member::{announce_mac, Member, MemberParts, Stats};
use crate::{
    config::{self, model::Instance, proto_config::router_config, Config, LoadOptions},
    control::{self, Status},
    net::{
        advert::{is_group, AdvertRx, AdvertTx, RawAdvert},
        iface,
        packet::PacketSocket,
        rtnl,
    },
    notify::{FifoWriter, Notifier},
    proto::{group::SyncGroup, Action, Input, Received, Router, State},
    track::{TrackEvent, Tracker},
    wire::vrrp::{self, Family},
};

/// `xvrrp run` options.
#[derive(Debug, Clone)]
pub struct Options {
    pub config: PathBuf,
    pub config_id: Option<String>,
    pub runtime_dir: Option<PathBuf>,
    pub xdp_mode: crate::dataplane::AttachMode,
    /// Do not re-adopt the program a previous run left attached: start fresh.
    pub clean: bool,
}

/// A sync group (an instance outside any group is a group of one).
struct Group {
    sg: SyncGroup,
    members: Vec<Member>,
    /// vrrp_sync_group notify (None for a lone instance).
    notifier: Option<Notifier>,
    /// The group state last notified.
    notified: State,
}

struct Daemon {
    opts: Options,
    config: Config,
    groups: Vec<Group>,
    /// (ifindex, family, vrid) -> (group, member)
    index: HashMap<(u32, Family, u8), (usize, usize)>,
    rx: HashMap<(u32, Family), JoinHandle<()>>,
    tx: HashMap<(u32, IpAddr), Arc<AdvertTx>>,
    packet: HashMap<u32, Arc<PacketSocket>>,
    adverts: mpsc::Sender<(u32, RawAdvert)>,
    /// Batches of the XDP program's records (changes, invalid adverts, down timers).
    records: mpsc::Sender<Vec<AdvertRecord>>,
    counters: BTreeMap<String, u64>,
    /// (reason, source) pairs already logged: each bad input is logged once.
    logged: std::collections::HashSet<(String, IpAddr)>,
    tracker: Option<Tracker>,
    track_tx: mpsc::Sender<TrackEvent>,
    fifos: Vec<Arc<FifoWriter>>,
    /// The XDP program per interface (ifindex), None where it could not attach.
    xdp: HashMap<u32, Option<Arc<std::sync::Mutex<crate::dataplane::Dataplane>>>>,
    /// Times the event loop woke (the wake-up metric of DESIGN.md rule 3).
    wakeups: u64,
    /// Background tasks, supervised: one failing ends the agent.
    tasks: supervise::Tasks,
    /// Per interface: whether a killed agent's host falls silent, and why.
    fail_silent: BTreeMap<String, (bool, String)>,
    /// When the kernel-timer safety sweep runs next (its own schedule,
    /// whatever else wakes the loop).
    sweep_at: Instant,
}

/// Exit status after SIGQUIT (EX_TEMPFAIL): the unit restarts on it.
pub const RESTART_EXIT_CODE: i32 = 75;

/// How often the loop looks at kernel-timed Backups anyway, in case a
/// kernel timer were lost: bounds the harm, costs one wake-up a second.
const KERNEL_TIMER_SWEEP: Duration = Duration::from_secs(1);

/// Loads the config or says every error.
fn load(opts: &Options) -> anyhow::Result<Config> {
    let (cfg, diags) = config::load(
        &opts.config,
        &LoadOptions {
            config_id: opts.config_id.clone(),
        },
    );
    for d in diags.warnings() {
        warn!("{d}");
    }
    match cfg {
        Some(c) => Ok(c),
        None => {
            for d in diags.errors() {
                error!("{d}");
            }
            bail!(
                "{} has {} error(s) (above); `xvrrp check -c {}` lists them",
                opts.config.display(),
                diags.errors().count(),
                opts.config.display()
            )
        }
    }
}

/// Writes each member's configuration (priority, Active or not) into the
/// XDP program's maps.
fn provision_xdp(groups: &mut [Group]) {
    for g in groups {
        let priorities: Vec<(u8, bool)> =
            g.sg.members()
                .iter()
                .map(|r| (r.priority(), r.state() == State::Active))
                .collect();
        for (m, (p, active)) in g.members.iter_mut().zip(priorities) {
            m.provision_xdp(p, active);
        }
    }
}

/// Removes from each interface's program what no configured instance
/// owns: a re-adopted program keeps the maps of the run before, whose
/// config may have had a VIP or a virtual router this one has not (it must
/// not be answered for, nor its adverts checked).
fn reconcile_xdp(groups: &[Group]) {
    let mut wanted: HashMap<
        *const std::sync::Mutex<crate::dataplane::Dataplane>,
        (Vec<_>, Vec<_>),
    > = HashMap::new();
    let mut planes = Vec::new();
    for m in groups.iter().flat_map(|g| &g.members) {
        let Some(xdp) = &m.xdp else { continue };
        let entry = wanted.entry(Arc::as_ptr(xdp)).or_insert_with(|| {
            planes.push(xdp.clone());
            Default::default()
        });
        entry.0.extend(m.xdp_keys());
        entry.1.push(m.vr_key());
    }
    for xdp in planes {
        let (vips, vrs) = &wanted[&Arc::as_ptr(&xdp)];
        let mut dp = xdp.lock().expect("dataplane lock");
        for k in dp.vip_keys().into_iter().filter(|k| !vips.contains(k)) {
            info!(
                interface = dp.interface(),
                "removing a VIP of the previous run's config from the XDP program"
            );
            dp.remove_vip(&k);
        }
        for k in dp.vr_keys().into_iter().filter(|k| !vrs.contains(k)) {
            info!(
                interface = dp.interface(),
                vrid = k.vrid,
                "removing a virtual router of the previous run's config from the XDP program"
            );
            dp.remove_vr(&k);
        }
    }
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let config = load(&opts)?;
    let dir = control::runtime_dir(opts.runtime_dir.as_deref());
    let _lock = control::lock(&dir)?;
    let (status_tx, mut status_requests) = mpsc::channel::<control::StatusRequest>(16);
    let (tasks, mut failures) = supervise::Tasks::new();
    let server = tasks.spawn(
        "control server",
        control::serve(control::socket_path(&dir), status_tx),
    );
    let (adverts_tx, mut adverts) = mpsc::channel(1024);
    let (records_tx, mut records) = mpsc::channel(1024);
    let (track_tx, mut track_rx) = mpsc::channel(1024);
    let mut d = Daemon {
        opts,
        config: Config {
            instances: vec![],
            groups: vec![],
            scripts: Default::default(),
            track_files: Default::default(),
            files: vec![],
            global: Default::default(),
        },
        groups: Vec::new(),
        index: HashMap::new(),
        rx: HashMap::new(),
        tx: HashMap::new(),
        packet: HashMap::new(),
        adverts: adverts_tx,
        records: records_tx,
        counters: BTreeMap::new(),
        logged: Default::default(),
        tracker: None,
        track_tx,
        fifos: Vec::new(),
        xdp: HashMap::new(),
        wakeups: 0,
        tasks,
        fail_silent: BTreeMap::new(),
        sweep_at: Instant::now() + KERNEL_TIMER_SWEEP,
    };
    let mut groups = d.build(&config)?;
    // Groups a crashed run left Active in the re-adopted dataplane, same config.
    let mut resume: Vec<bool> = groups
        .iter()
        .map(|g| g.members.iter().all(|m| m.can_resume()))
        .collect();
    provision_xdp(&mut groups);
    reconcile_xdp(&groups);
    d.tracker = Some(Tracker::start(&config, d.track_tx.clone()));
    d.config = config;
    d.groups = groups;
    d.reindex();
    if !d.config.global.startup_delay.is_zero() {
        info!(
            "vrrp_startup_delay: waiting {:?} before starting",
            d.config.global.startup_delay
        );
        tokio::time::sleep(d.config.global.startup_delay).await;
        // The lease may have run out meanwhile: then a Backup has taken
        // over, and this one starts fresh.
        for (g, resumed) in d.groups.iter().zip(resume.iter_mut()) {
            let fresh = g.members.iter().all(|m| {
                m.xdp
                    .as_ref()
                    .is_some_and(|x| x.lock().expect("dataplane lock").lease_fresh())
            });
            if *resumed && !fresh {
                info!(group = %g.sg.name, "the lease ran out during vrrp_startup_delay: starting fresh, not resuming");
                *resumed = false;
            }
        }
    }
    for (g, resumed) in d.groups.iter_mut().zip(&resume) {
        for m in &mut g.members {
            if *resumed {
                info!(instance = %m.instance.name, "resuming as Active from the re-adopted dataplane (restart: no transition, no GARP)");
            } else {
                m.remove_stale_vips();
            }
        }
    }
    let now = Instant::now();
    d.health(now);
    for (g, resumed) in resume.iter().enumerate() {
        d.feed(
            g,
            now,
            0,
            if *resumed {
                Input::Resume
            } else {
                Input::Startup
            },
        );
    }
    // After vrrp_startup_delay, neighbours may have aged out the VIPs'
    // entries: a resumed Active announces them once.
    if !d.config.global.startup_delay.is_zero() {
        for (g, resumed) in d.groups.iter_mut().zip(&resume) {
            if *resumed {
                for (m, r) in g.members.iter_mut().zip(g.sg.members()) {
                    m.execute(&crate::proto::Action::SendGarp, r);
                }
            }
        }
    }
    let resumed = resume.iter().filter(|r| **r).count();
    info!(
        instances = d.groups.iter().map(|g| g.members.len()).sum::<usize>(),
        runtime = %dir.display(),
        resumed_groups = resumed,
        "xvrrp running: started in {:.1} ms{}",
        started.elapsed().as_secs_f64() * 1e3,
        if resumed > 0 { " (restart: Active groups resumed)" } else { "" }
    );
    sd_notify::notify("READY=1");

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigquit = signal(SignalKind::quit())?;
    let mut watchdog = sd_notify::watchdog_interval().map(tokio::time::interval);
    loop {
        d.wakeups += 1;
        let next = d.next_deadline();
        let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(
            next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
        ));
        let tick = async {
            match watchdog.as_mut() {
                Some(w) => {
                    w.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => d.timeouts(Instant::now()),
            Some((ifindex, raw)) = adverts.recv() => d.advert(ifindex, raw),
            Some(batch) = records.recv() => d.records(batch),
            Some(ev) = track_rx.recv() => {
                if d.tracker.as_mut().is_some_and(|t| t.handle(ev)) {
                    d.health(Instant::now());
                }
            }
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => d.reload(),
            _ = sigquit.recv() => {
                // Hitless restart: leave everything as it is (attached XDP
                // state, VIPs, vmacs, no priority 0) and let the next run of
                // the same config resume it before the lease runs out.
                info!("SIGQUIT: exiting for a restart; the XDP program stays attached and Active VIPs stay up");
                sd_notify::notify("STOPPING=1");
                let _ = std::fs::remove_file(control::socket_path(&dir));
                std::process::exit(RESTART_EXIT_CODE);
            }
            Some(f) = failures.recv() => {
                error!(
                    "{} failed: {}; exiting with status {} so the service manager restarts the agent \
                     (the dataplane, VIPs and vmacs stay as they are: the restart resumes without a transition)",
                    f.task, f.error, supervise::TASK_FAILED_EXIT_CODE
                );
                sd_notify::notify("STOPPING=1");
                let _ = std::fs::remove_file(control::socket_path(&dir));
                std::process::exit(supervise::TASK_FAILED_EXIT_CODE);
            }
            _ = tick => sd_notify::notify("WATCHDOG=1"),
            Some(reply) = status_requests.recv() => {
                let _ = reply.send(d.status());
            }
        }
    }
    sd_notify::notify("STOPPING=1");
    info!("stopping: priority-0 adverts from Active instances, removing VIPs");
    let now = Instant::now();
    for g in 0..d.groups.len() {
        d.feed(g, now, 0, Input::Shutdown);
    }
    for g in &mut d.groups {
        for m in &mut g.members {
            m.remove_vips();
        }
    }
    // notify_stop and friends: give the queues a bounded moment to finish.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && d.groups.iter().any(|g| {
            g.members.iter().any(|m| m.notifier.pending() > 0)
                || g.notifier.as_ref().is_some_and(|n| n.pending() > 0)
        })
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.abort();
    let _ = std::fs::remove_file(control::socket_path(&dir));
    // A clean stop takes the XDP programs off (a crash or restart leaves them).
    for dp in d.xdp.values().flatten() {
        let mut dp = dp.lock().expect("dataplane lock");
        match dp.detach() {
            Ok(()) => info!(interface = dp.interface(), "XDP program detached"),
            Err(e) => warn!(interface = dp.interface(), "detaching XDP: {e:#}"),
        }
    }
    drop(d); // vmacs go, parents' sysctls come back
    Ok(())
}

impl Daemon {
    /// Builds groups (with sockets) for `cfg`; sockets are shared and reused.
    fn build(&mut self, cfg: &Config) -> anyhow::Result<Vec<Group>> {
        reload::layout(cfg)
            .into_iter()
            .map(|(name, members)| self.group(cfg, name, &members))
            .collect()
    }

    fn group(
        &mut self,
        cfg: &Config,
        name: Option<&str>,
        instances: &[&Instance],
    ) -> anyhow::Result<Group> {
        let notifier = name
            .and_then(|n| cfg.groups.iter().find(|g| g.name == n))
            .map(|g| {
                let fifos = crate::notify::fifos(
                    &g.notify,
                    cfg.global.notify_fifo.as_ref(),
                    &mut self.fifos,
                );
                Notifier::spawn("GROUP", &g.name, &g.notify, script_user(cfg), fifos)
            });
        let mut members = Vec::new();
        let mut routers = Vec::new();
        for i in instances {
            let m = self
                .member(cfg, name, i)
                .with_context(|| format!("vrrp_instance {}", i.name))?;
            routers.push(Router::new(m.proto.clone()));
            members.push(m);
        }
        Ok(Group {
            sg: SyncGroup::new(name.unwrap_or(&instances[0].name), routers),
            members,
            notifier,
            notified: State::Initialize,
        })
    }

    fn member(
        &mut self,
        cfg: &Config,
        group: Option<&str>,
        i: &Instance,
    ) -> anyhow::Result<Member> {
        let ifindex = iface::ifindex(&i.interface)?;
        let v6 = i.is_ipv6();
        let family = if v6 { Family::V6 } else { Family::V4 };
        if i.state == config::model::InitialState::Master && i.priority != 255 {
            info!(
                instance = %i.name,
                "state MASTER with priority {}: starting as Backup, Active after Active_Down_Interval of silence (RFC 9568; keepalived waits about one advert interval)",
                i.priority
            );
        }
        if let std::collections::hash_map::Entry::Vacant(e) = self.rx.entry((ifindex, family)) {
            let groups = match family {
                Family::V4 => vec![IpAddr::from(cfg.global.mcast_group4)],
                Family::V6 => vec![IpAddr::from(cfg.global.mcast_group6)],
            };
            let rx = AdvertRx::open(&i.interface, ifindex, family, &groups)?;
            let chan = self.adverts.clone();
            e.insert(self.tasks.spawn(
                format!("advert receiver ({} {family:?})", i.interface),
                async move {
                    // Transient errors (ENOBUFS, an interface flap) are retried;
                    // a socket that keeps failing takes the agent down.
                    let mut failed_in_a_row = 0u32;
                    loop {
                        match rx.recv().await {
                            Ok(raw) => {
                                failed_in_a_row = 0;
                                if chan.send((ifindex, raw)).await.is_err() {
                                    return Ok(());
                                }
                            }
                            Err(e) if failed_in_a_row < 100 => {
                                failed_in_a_row += 1;
                                warn!(ifindex, "receiving adverts: {e}");
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                            Err(e) => {
                                anyhow::bail!("receiving adverts failed 100 times in a row: {e}")
                            }
                        }
                    }
                },
            ));
        }
        let v6_vmac = v6;
        let vmac = match &i.use_vmac {
            Some(name) => {
                let name = if name.is_empty() {
                    format!("vrrp.{}", i.vrid)
                } else {
                    name.clone()
                };
                Some(crate::net::vmac::Vmac::create(
                    &i.interface,
                    &name,
                    crate::wire::ethernet::virtual_mac(v6_vmac, i.vrid),
                    v6_vmac,
                )?)
            }
            None => None,
        };
        let (vip_if, vip_index) = match &vmac {
            Some(v) => (v.name.clone(), v.ifindex),
            None => (i.interface.clone(), ifindex),
        };
        let packet = match self.packet.get(&vip_index) {
            Some(p) => p.clone(),
            None => {
                let p = Arc::new(PacketSocket::open(&vip_if, false)?);
                self.packet.insert(vip_index, p.clone());
                p
            }
        };
        let parts = self.member_parts(cfg, i, ifindex, vmac.as_ref())?;
        let forwarding = std::fs::read_to_string(format!(
            "/proc/sys/net/ipv6/conf/{}/forwarding",
            i.interface
        ))
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
        Ok(Member {
            instance: i.clone(),
            group: group.map(str::to_owned),
            proto: parts.proto,
            ifindex,
            mac: announce_mac(iface::mac(&i.interface)?, i.use_vmac.is_some(), v6, i.vrid),
            vips: parts.vips,
            added: Vec::new(),
            tx: parts.tx,
            packet,
            stats: Stats::default(),
            last_transition: None,
            router_flag: forwarding,
            vmac,
            notifier: self.notifier(cfg, i),
            health: None,
            checks: Vec::new(),
            xdp: self.xdp_for(&i.interface, ifindex),
            provisioned: None,
            kernel_armed: false,
            last_fed_ns: 0,
            lease: parts.lease,
        })
    }

    /// An instance's notify scripts and fifos.
    fn notifier(&mut self, cfg: &Config, i: &Instance) -> Notifier {
        let fifos =
            crate::notify::fifos(&i.notify, cfg.global.notify_fifo.as_ref(), &mut self.fifos);
        Notifier::spawn("INSTANCE", &i.name, &i.notify, script_user(cfg), fifos)
    }

    /// What an instance's config decides once its interfaces exist: the
    /// election's config, the advert sender, the addresses, the lease.
    /// Shared by a start and a reload in place.
    fn member_parts(
        &mut self,
        cfg: &Config,
        i: &Instance,
        ifindex: u32,
        vmac: Option<&crate::net::vmac::Vmac>,
    ) -> anyhow::Result<MemberParts> {
        let v6 = i.is_ipv6();
        let vip_addrs: Vec<IpAddr> = i.vips.iter().map(|v| v.addr).collect();
        let source = match i.unicast_src_ip {
            Some(a) => a,
            None => iface::primary(&i.interface, v6, &vip_addrs).ok_or_else(|| {
                anyhow!(
                    "{} has no {} address to send adverts from; add one, or set unicast_src_ip",
                    i.interface,
                    if v6 { "IPv6 link-local" } else { "IPv4" }
                )
            })?,
        };
        let proto = router_config(i, &cfg.global, source);
        // With use_vmac, IPv4 adverts leave through the vmac (source MAC the
        // virtual MAC, RFC 9568 §7.2) unless vmac_xmit_base; IPv6 ones from
        // the base's link-local.
        let (tx_if, tx_index) = match vmac {
            Some(v) if !i.vmac_xmit_base && !v6 => (v.name.clone(), v.ifindex),
            _ => (i.interface.clone(), ifindex),
        };
        let tx = match self.tx.get(&(tx_index, source)) {
            Some(t) => t.clone(),
            None => {
                let t = Arc::new(AdvertTx::open(&tx_if, tx_index, source)?);
                self.tx.insert((tx_index, source), t.clone());
                t
            }
        };
        let vip_index = vmac.map_or(ifindex, |v| v.ifindex);
        let mut vips = Vec::new();
        // virtual_ipaddress_excluded: managed like VIPs, never advertised.
        for v in i.vips.iter().chain(&i.vips_excluded) {
            let dev_index = match &v.dev {
                Some(dev) => iface::ifindex(dev)?,
                None => vip_index,
            };
            vips.push(rtnl::Address {
                ifindex: dev_index,
                addr: v.addr,
                prefix: v.prefix,
                broadcast: v.brd,
                label: v.label.clone(),
                scope: v.scope.as_deref().and_then(rtnl::scope).unwrap_or(0),
            });
        }
        Ok(MemberParts {
            proto,
            tx,
            vips,
            lease: lease_length(cfg, &i.interface),
            notifier: None,
        })
    }

    /// The XDP program on `interface`, attached (or re-adopted) the first time;
    /// when it cannot attach, says why once and the socket path carries on.
    fn xdp_for(
        &mut self,
        interface: &str,
        ifindex: u32,
    ) -> Option<Arc<std::sync::Mutex<crate::dataplane::Dataplane>>> {
        if let Some(x) = self.xdp.get(&ifindex) {
            return x.clone();
        }
        let mode = self.opts.xdp_mode;
        let got = if mode == crate::dataplane::AttachMode::Off {
            warn!(
                interface,
                "XDP off (--xdp-mode off): ARP/ND answered by the kernel, adverts on sockets; \
                 NO FAIL SILENT: if this agent is killed, the kernel keeps answering ARP/ND for \
                 VIPs left on {interface} beside the new Active"
            );
            self.fail_silent.insert(
                interface.to_owned(),
                (
                    false,
                    "--xdp-mode off: the kernel answers ARP/ND for the VIPs".into(),
                ),
            );
            None
        } else {
            match crate::dataplane::Dataplane::attach(interface, mode, !self.opts.clean) {
                Ok(mut dp) => {
                    info!(
                        interface,
                        mode = %dp.mode(),
                        prog_id = dp.prog_id(),
                        readopted = dp.resumed(),
                        "XDP attached through rtnetlink: ARP/ND for Active VIPs answered in the kernel; \
                         fail silent on (the program outlives the agent and drops requests for the VIPs once its lease runs out)"
                    );
                    self.fail_silent.insert(
                        interface.to_owned(),
                        (true, "XDP attached through rtnetlink, lease-gated".into()),
                    );
                    // Changes, invalid adverts and down timers come as records.
                    match dp.take_events() {
                        Ok(mut events) => {
                            let tx = self.records.clone();
                            self.tasks.spawn(
                                format!("XDP record reader ({interface})"),
                                async move {
                                    loop {
                                        let batch = events.next_batch().await?;
                                        if tx.send(batch).await.is_err() {
                                            return Ok(());
                                        }
                                    }
                                },
                            );
                        }
                        Err(e) => warn!(interface, "XDP records: {e:#}"),
                    }
                    Some(Arc::new(std::sync::Mutex::new(dp)))
                }
                Err(e) => {
                    warn!(
                        interface,
                        "XDP could not attach ({e:#}); falling back to the socket path (kernel ARP/ND); \
                         NO FAIL SILENT on {interface}: if this agent is killed, the kernel keeps \
                         answering ARP/ND for VIPs left there"
                    );
                    self.fail_silent.insert(
                        interface.to_owned(),
                        (false, format!("XDP could not attach: {e:#}")),
                    );
                    None
                }
            }
        };
        self.xdp.insert(ifindex, got.clone());
        got
    }

    fn reindex(&mut self) {
        self.index.clear();
        for (g, group) in self.groups.iter().enumerate() {
            for (m, member) in group.members.iter().enumerate() {
                self.index.insert(
                    (member.ifindex, member.proto.family, member.proto.vrid),
                    (g, m),
                );
            }
        }
    }

    /// Feeds an input to group `g` (member `m`) and carries out the actions.
    fn feed(&mut self, g: usize, now: Instant, m: usize, input: Input) {
        let group = &mut self.groups[g];
        let actions = group.sg.handle(now, m, input);
        for (i, action) in actions {
            let router = &group.sg.members()[i];
            group.members[i].execute(&action, router);
            if let Action::Conflict { .. } = action {
                *self.counters.entry("vrid_conflict".into()).or_default() += 1;
            }
        }
        for (member, router) in group.members.iter_mut().zip(group.sg.members()) {
            member.provision_xdp(router.priority(), router.state() == State::Active);
            if router.state() != State::Backup {
                member.kernel_armed = false;
            }
        }
        // vrrp_sync_group notify: once per group state (priority 0, as keepalived).
        let state = group.sg.state();
        if state != group.notified {
            group.notified = state;
            if let Some(n) = &group.notifier {
                n.state(state, 0);
            }
        }
    }

    /// Recomputes every instance's (weight, fault) from the trackers and
    /// tells the election what changed.
    fn health(&mut self, now: Instant) {
        let Some(tracker) = &self.tracker else { return };
        let mut inputs = Vec::new();
        for (g, group) in self.groups.iter_mut().enumerate() {
            for (m, member) in group.members.iter_mut().enumerate() {
                let (weight, fault, checks) = tracker.health(&self.config, &member.instance);
                member.checks = checks;
                if member.health != Some((weight, fault)) {
                    member.health = Some((weight, fault));
                    inputs.push((g, m, Input::Health { weight, fault }));
                }
            }
        }
        for (g, m, input) in inputs {
            self.feed(g, now, m, input);
        }
    }

    /// When the loop must wake next. A group whose members are all Backups
    /// with the kernel timing their Active_Down interval has no deadline
    /// here: the kernel's record wakes us (a slow sweep guards the kernel).
    fn next_deadline(&self) -> Option<Instant> {
        let mut watched = false;
        let next = self
            .groups
            .iter()
            .filter_map(|g| {
                let kernel = g
                    .members
                    .iter()
                    .zip(g.sg.members())
                    .all(|(m, r)| m.kernel_armed && r.state() == State::Backup);
                watched |= kernel;
                if kernel {
                    None
                } else {
                    g.sg.next_deadline()
                }
            })
            .min();
        let sweep = watched.then_some(self.sweep_at);
        next.into_iter().chain(sweep).min()
    }

    fn timeouts(&mut self, now: Instant) {
        // The safety sweep looks at every kernel-timed Backup on its own
        // schedule: a kernel expiry record lost (ring full) still leads to
        // a takeover within KERNEL_TIMER_SWEEP.
        let sweep = now >= self.sweep_at;
        if sweep {
            self.sweep_at = now + KERNEL_TIMER_SWEEP;
        }
        self.refresh_from_kernel(now, sweep);
        for g in 0..self.groups.len() {
            if self.groups[g].sg.next_deadline().is_some_and(|t| t <= now) {
                self.feed(g, now, 0, Input::Timeout);
            }
        }
    }

    /// Before a down timer is judged: each Backup that is due (every one on
    /// a sweep) on an XDP interface gets the last advert the kernel saw
    /// (LAST, with its arrival time), so a timer that fires while adverts
    /// still arrive is re-armed, not obeyed.
    fn refresh_from_kernel(&mut self, now: Instant, all: bool) {
        let mut inputs = Vec::new();
        for (g, group) in self.groups.iter_mut().enumerate() {
            if !all && group.sg.next_deadline().is_none_or(|t| t > now) {
                continue;
            }
            for (m, (member, router)) in
                group.members.iter_mut().zip(group.sg.members()).enumerate()
            {
                if router.state() != State::Backup {
                    continue;
                }
                let Some(xdp) = &member.xdp else { continue };
                let key = member.vr_key();
                let Some(last) = xdp.lock().expect("dataplane lock").last(&key) else {
                    continue;
                };
                if last.ts_ns <= member.last_fed_ns {
                    continue;
                }
                member.last_fed_ns = last.ts_ns;
                member.kernel_armed = member.kernel_rearms(last.priority, router.priority());
                let src = crate::dataplane::address(key.family, &last.src);
                let unicast = !member.proto.unicast_peers.is_empty();
                let rx = member.kernel_advert(
                    src,
                    last.version,
                    last.priority,
                    last.interval_cs,
                    unicast,
                );
                inputs.push((g, m, crate::dataplane::instant_of(last.ts_ns), rx));
            }
        }
        for (g, m, at, rx) in inputs {
            self.feed(g, at, m, Input::Advert(rx));
        }
    }

    /// Records from the XDP programs: adverts the election must know about,
    /// invalid adverts (each reason and source logged once), down timers.
    fn records(&mut self, batch: Vec<AdvertRecord>) {
        for rec in batch {
            let family = if rec.family == xvrrp_common::FAMILY_V6 {
                Family::V6
            } else {
                Family::V4
            };
            let src = crate::dataplane::address(rec.family, &rec.src);
            if rec.reason == reason::DOWN_EXPIRED || rec.reason == reason::TIMER_FAILED {
                if rec.reason == reason::TIMER_FAILED {
                    self.count_once("kernel_timer_failed", src, || {
                        format!(
                            "the XDP program could not arm VRID {}'s down timer ({}); the agent times it until the kernel can again",
                            rec.vrid,
                            std::io::Error::from_raw_os_error(rec.detail.into())
                        )
                    });
                }
                if let Some(&(g, m)) = self.index.get(&(rec.ifindex, family, rec.vrid)) {
                    self.groups[g].members[m].kernel_armed = false;
                }
                continue;
            }
            if rec.reason & reason::INVALID != 0 {
                let name = xvrrp_common::counter::NAMES
                    .get(rec.detail as usize)
                    .copied()
                    .unwrap_or("invalid");
                self.count_once(name, src, || {
                    format!("VRRP packet from {src} dropped in XDP: {name} (counted per packet in `xvrrp status`)")
                });
                continue;
            }
            if rec.reason & reason::UNCONFIGURED != 0 {
                continue; // passed on to the socket, which reports it
            }
            let Some(&(g, m)) = self.index.get(&(rec.ifindex, family, rec.vrid)) else {
                continue;
            };
            let member = &mut self.groups[g].members[m];
            member.last_fed_ns = member.last_fed_ns.max(rec.ts_ns);
            let rx = member.kernel_advert(
                src,
                rec.version,
                rec.priority,
                rec.interval_cs,
                rec.unicast != 0,
            );
            self.feed(
                g,
                crate::dataplane::instant_of(rec.ts_ns),
                m,
                Input::Advert(rx),
            );
            let group = &mut self.groups[g];
            let router = &group.sg.members()[m];
            let member = &mut group.members[m];
            member.kernel_armed = router.state() == State::Backup
                && member.kernel_rearms(rec.priority, router.priority());
        }
    }

    fn count_once(&mut self, reason: &str, from: IpAddr, msg: impl FnOnce() -> String) {
        *self.counters.entry(reason.to_owned()).or_default() += 1;
        if self.logged.len() < 10_000 && self.logged.insert((reason.to_owned(), from)) {
            warn!(
                "{} (further ones from {from} are counted, not logged)",
                msg()
            );
        }
    }

    /// One advert off a socket: checked, parsed, dispatched to its instance.
    fn advert(&mut self, ifindex: u32, raw: RawAdvert) {
        let family = Family::of(&raw.src);
        let packet = match vrrp::Packet::new_checked(&raw.payload[..], family) {
            Ok(p) => p,
            Err(e) => {
                let reason = format!("invalid_{}", e.reason());
                return self.count_once(&reason, raw.src, || {
                    format!("bad VRRP packet from {}: {e}", raw.src)
                });
            }
        };
        let ep = vrrp::Endpoints {
            src: raw.src,
            dst: raw.dst,
        };
        match packet.verify_checksum(&ep) {
            Ok(vrrp::ChecksumMode::Plain) => *self.counters.entry("checksum_plain".into()).or_default() += 1,
            Ok(vrrp::ChecksumMode::PseudoHeader) => *self.counters.entry("checksum_pseudo_header".into()).or_default() += 1,
            Err(e) => {
                return self.count_once("invalid_checksum", raw.src, || {
                    format!("VRRP advert from {} for VRID {}: {e} (a v3 peer with another checksum form, or corruption)", raw.src, packet.vrid())
                })
            }
        }
        let advert = match vrrp::Repr::parse(&packet) {
            Ok(r) => r,
            Err(e) => {
                let reason = format!("invalid_{}", e.reason());
                return self.count_once(&reason, raw.src, || {
                    format!("bad VRRP advert from {}: {e}", raw.src)
                });
            }
        };
        let Some(&(g, m)) = self.index.get(&(ifindex, family, advert.vrid)) else {
            let vrid = advert.vrid;
            return self.count_once("unknown_vrid", raw.src, || {
                format!("advert for VRID {vrid} from {}, which no instance here uses (another cluster on this segment?)", raw.src)
            });
        };
        self.groups[g].members[m].stats.received += 1;
        let rx = Received {
            src: raw.src,
            ttl: raw.ttl,
            unicast: !is_group(&raw.dst),
            advert,
        };
        self.feed(g, Instant::now(), m, Input::Advert(rx));
    }

    /// SIGHUP (DESIGN.md rule 6): instances whose identity is unchanged
    /// carry on and take the new values in place; removed ones stop
    /// (priority 0), new ones start. A config that does not load, or whose
    /// new parts cannot be built, is refused and the running one carries on.
    fn reload(&mut self) {
        let began = Instant::now();
        info!("SIGHUP: reloading {}", self.opts.config.display());
        let refuse = |e: anyhow::Error| {
            error!("reload refused, the running configuration stays: {e:#}");
        };
        let cfg = match load(&self.opts) {
            Ok(c) => c,
            Err(e) => return refuse(e),
        };
        let layout = reload::layout(&cfg);
        let old_shapes: Vec<reload::Shape> = self
            .groups
            .iter()
            .map(|g| reload::Shape {
                name: g.members.first().and_then(|m| m.group.clone()),
                members: g
                    .members
                    .iter()
                    .map(|m| reload::Identity::of(&m.instance))
                    .collect(),
            })
            .collect();
        let plan = reload::plan(&old_shapes, &reload::shapes(&layout));
        // Everything that can fail, before anything changes.
        let mut fresh: Vec<Option<Group>> = Vec::new();
        let mut updates: Vec<Vec<MemberParts>> = Vec::new();
        for ((name, members), fate) in layout.iter().zip(&plan.fates) {
            match *fate {
                reload::Fate::Start => match self.group(&cfg, *name, members) {
                    Ok(g) => {
                        fresh.push(Some(g));
                        updates.push(Vec::new());
                    }
                    Err(e) => return refuse(e),
                },
                reload::Fate::InPlace { old } => {
                    let mut parts = Vec::new();
                    for (j, i) in members.iter().enumerate() {
                        let (ifindex, vmac) = {
                            let m = &mut self.groups[old].members[j];
                            (m.ifindex, m.vmac.take())
                        };
                        let got = self.member_parts(&cfg, i, ifindex, vmac.as_ref());
                        self.groups[old].members[j].vmac = vmac;
                        match got.with_context(|| format!("vrrp_instance {}", i.name)) {
                            Ok(mut p) => {
                                let before = &self.groups[old].members[j].instance;
                                if reload::without_positions(before).notify
                                    != reload::without_positions(i).notify
                                {
                                    p.notifier = Some(self.notifier(&cfg, i));
                                }
                                parts.push(p);
                            }
                            Err(e) => return refuse(e),
                        }
                    }
                    fresh.push(None);
                    updates.push(parts);
                }
            }
        }
        let now = Instant::now();
        let mut old: Vec<Option<Group>> = std::mem::take(&mut self.groups)
            .into_iter()
            .map(Some)
            .collect();
        // Stop what went away (or changed identity).
        self.groups = plan.stop.iter().filter_map(|k| old[*k].take()).collect();
        for g in 0..self.groups.len() {
            info!(group = %self.groups[g].sg.name, "reload: stopping (removed, or its interface, VRID or family changed)");
            self.feed(g, now, 0, Input::Shutdown);
            for m in &mut self.groups[g].members {
                m.remove_vips();
                m.clear_xdp();
                if let Some(xdp) = &m.xdp {
                    xdp.lock().expect("dataplane lock").remove_vr(&m.vr_key());
                }
            }
        }
        let mut started = Vec::new();
        self.groups = plan
            .fates
            .iter()
            .enumerate()
            .map(|(n, fate)| match *fate {
                reload::Fate::InPlace { old: k } => old[k].take().expect("each kept once"),
                reload::Fate::Start => {
                    started.push(n);
                    fresh[n].take().expect("built above")
                }
            })
            .collect();
        // Change in place.
        let mut in_place = 0;
        for (n, parts) in updates.into_iter().enumerate() {
            let (name, members) = &layout[n];
            if matches!(plan.fates[n], reload::Fate::Start) {
                continue;
            }
            if let Some(gcfg) = name.and_then(|gn| cfg.groups.iter().find(|g| g.name == gn)) {
                let old_cfg = self.config.groups.iter().find(|g| g.name == gcfg.name);
                if old_cfg.map(|o| &o.notify) != Some(&gcfg.notify) {
                    let fifos = crate::notify::fifos(
                        &gcfg.notify,
                        cfg.global.notify_fifo.as_ref(),
                        &mut self.fifos,
                    );
                    self.groups[n].notifier = Some(Notifier::spawn(
                        "GROUP",
                        &gcfg.name,
                        &gcfg.notify,
                        script_user(&cfg),
                        fifos,
                    ));
                }
            }
            for (j, (i, p)) in members.iter().zip(parts).enumerate() {
                let member = &self.groups[n].members[j];
                let changed = reload::changes(&member.instance, i);
                if !changed.is_empty() {
                    info!(instance = %i.name, "reload: {} changed: applied in place, no transition", changed.join(", "));
                }
                let proto = p.proto.clone();
                let group = &mut self.groups[n];
                group.members[j].reconfigure(
                    (*i).clone(),
                    name.map(str::to_owned),
                    p,
                    &group.sg.members()[j],
                );
                self.feed(n, now, j, Input::Reconfigure(Box::new(proto)));
                in_place += 1;
            }
        }
        provision_xdp(&mut self.groups);
        let mut tracker = Tracker::start(&cfg, self.track_tx.clone());
        if let Some(old) = &self.tracker {
            tracker.carry_over(old);
        }
        self.tracker = Some(tracker);
        self.config = cfg;
        self.reindex();
        reconcile_xdp(&self.groups);
        self.health(now);
        for g in &started {
            info!(group = %self.groups[*g].sg.name, "reload: starting (new, or its interface, VRID or family changed)");
            self.feed(*g, now, 0, Input::Startup);
        }
        // Receivers for interfaces no longer used.
        let used: Vec<(u32, Family)> = self
            .groups
            .iter()
            .flat_map(|g| g.members.iter().map(|m| (m.ifindex, m.proto.family)))
            .collect();
        self.rx.retain(|k, h| {
            let keep = used.contains(k);
            if !keep {
                h.abort();
            }
            keep
        });
        info!(
            in_place,
            started = started.len(),
            stopped = plan.stop.len(),
            "reload done in {:.1} ms",
            began.elapsed().as_secs_f64() * 1e3
        );
    }

    fn status(&mut self) -> Status {
        if let Some(t) = &self.tracker {
            for g in &mut self.groups {
                for m in &mut g.members {
                    m.checks = t.health(&self.config, &m.instance).2;
                }
            }
        }
        Status {
            pid: std::process::id(),
            config: self.opts.config.display().to_string(),
            instances: self
                .groups
                .iter()
                .flat_map(|g| {
                    g.members
                        .iter()
                        .zip(g.sg.members())
                        .map(|(m, r)| m.status(r))
                })
                .collect(),
            counters: {
                let mut c = self.counters.clone();
                c.insert("wakeups".into(), self.wakeups);
                c
            },
            xdp: self
                .xdp
                .values()
                .flatten()
                .map(|x| {
                    let dp = x.lock().expect("dataplane lock");
                    control::XdpStatus {
                        interface: dp.interface().to_owned(),
                        mode: dp.mode().to_string(),
                        counters: dp
                            .counters()
                            .map(|c| c.named().map(|(k, v)| (k.to_owned(), v)).collect())
                            .unwrap_or_default(),
                    }
                })
                .collect(),
            fail_silent: self
                .fail_silent
                .iter()
                .map(|(interface, (on, why))| control::FailSilent {
                    interface: interface.clone(),
                    on: *on,
                    why: why.clone(),
                })
                .collect(),
        }
    }
}

/// The fail-silent lease of an interface's program: the shortest
/// Active_Down_Interval a Backup of any instance there can have
/// (down_timer_adverts x advert interval; the skew only lengthens it), so a
/// dead agent's host is silent before any Backup takes over. Renewed after
/// every advert really sent.
fn lease_length(cfg: &Config, interface: &str) -> Duration {
    cfg.instances
        .iter()
        .filter(|o| o.interface == interface)
        .map(|o| crate::proto::timing::interval(o.advert_int_cs) * o.down_timer_adverts.max(1))
        .min()
        .unwrap_or(Duration::from_secs(3))
}

/// Who scripts run as: script_user, else keepalived_script when it exists.
fn script_user(cfg: &Config) -> Option<crate::config::model::ScriptUser> {
    cfg.global
        .script_user
        .clone()
        .or_else(crate::track::exec::default_user)
}
