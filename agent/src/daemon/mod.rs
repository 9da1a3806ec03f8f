//! Wires it together: config -> sync groups of routers -> one tokio event
//! loop fed by advert sockets, timers, signals; status on the control socket.

mod build;
mod deadline;
mod events;
pub mod member;
pub mod monitor;
pub mod reload;
mod rounds;
pub mod sd_notify;
mod statics;
mod status;

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

use self::build::provision_xdp;

use self::member::{Member, MemberParts, Stats};
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

/// An advert receiver: its task and socket (to join a reload's new group).
struct Receiver {
    task: JoinHandle<()>,
    socket: Arc<AdvertRx>,
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
    rx: HashMap<(u32, Family), Receiver>,
    /// Socket path with use_vmac: vmac ifindex -> its base interface's.
    vmac_base: HashMap<u32, u32>,
    /// (base ifindex, family, vrid) of the instances that hear adverts on
    /// their vmac (their copies on the base interface are ignored).
    heard_on_vmac: std::collections::HashSet<(u32, Family, u8)>,
    /// Advert senders by (ifindex, source, unicast TTL).
    tx: HashMap<(u32, IpAddr, u8), Arc<AdvertTx>>,
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
    /// What renews each interface's XDP lease (per lease length), shared by
    /// the adverts of every instance on it (`Daemon::renewal_for`).
    renewals: HashMap<(u32, std::time::Duration), crate::net::advert::AfterSent>,
    /// Every Active's Adver_Timer between inputs: a round of adverts is a
    /// walk over this table (docs/design.md rule 3).
    rounds: rounds::Rounds,
    /// Each interface's advert fan-out (None where it could not attach).
    fanouts: HashMap<u32, Option<rounds::SharedFanout>>,
    /// Times the event loop woke (the wake-up metric of docs/design.md rule 3).
    wakeups: u64,
    /// The election's actions for one input, carried out in order (kept:
    /// no allocation per input).
    actions: Vec<(usize, crate::proto::Action)>,
    /// Background tasks, supervised: one failing ends the agent.
    tasks: crate::supervise::Tasks,
    /// Per interface: whether a killed agent's host falls silent, and why.
    fail_silent: BTreeMap<String, (bool, String)>,
    /// smtp_alert's mail sender (None without smtp_server and recipients).
    mailer: Option<crate::notify::mail::Mailer>,
    /// static_ipaddress / static_routes / static_rules as set.
    statics: statics::Statics,
    /// virtual_server: the LVS engine (None without virtual servers, or
    /// when its table could not be set up).
    lvs: Option<crate::lvs::engine::Engine>,
    /// The state each instance's engine was last told (Active or not).
    lvs_told: HashMap<String, bool>,
    /// A reload changed the virtual servers: the engine restarts with these.
    lvs_reload: Option<Config>,
    /// When the kernel-timer safety sweep runs next (its own schedule,
    /// whatever else wakes the loop).
    sweep_at: Instant,
    /// When the loop must wake for each group (`events::Wake`).
    wake: Vec<events::Wake>,
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
            ..Default::default()
        },
    );
    for d in diags.warnings() {
        warn!("{d}");
    }
    match cfg {
        Some(mut c) => {
            unicast_interfaces(&mut c)?;
            Ok(c)
        }
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

/// keepalived lets a unicast instance leave out `interface`: it is the
/// one that holds the instance's unicast_src_ip.
fn unicast_interfaces(cfg: &mut Config) -> anyhow::Result<()> {
    for i in cfg.instances.iter_mut().filter(|i| i.interface.is_empty()) {
        let src = i
            .unicast_src_ip
            .expect("the reader requires it without `interface`");
        let found = nix::ifaddrs::getifaddrs()
            .context("listing the interfaces' addresses")?
            .find(|a| {
                a.address.as_ref().is_some_and(|s| {
                    s.as_sockaddr_in().map(|v| IpAddr::V4(v.ip())) == Some(src)
                        || s.as_sockaddr_in6().map(|v| IpAddr::V6(v.ip())) == Some(src)
                })
            })
            .map(|a| a.interface_name);
        match found {
            Some(name) => {
                info!(instance = %i.name, interface = %name, "no `interface`: using the one holding unicast_src_ip {src}");
                i.interface = name;
            }
            None => bail!(
                "vrrp_instance {} has no `interface` and its unicast_src_ip {src} is on none: \
                 add `interface IFNAME` or put {src} on the interface adverts leave from",
                i.name
            ),
        }
    }
    Ok(())
}

/// The config's mail sender; a bad address is said once and mail is off.
fn mailer(cfg: &Config) -> Option<crate::notify::mail::Mailer> {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into());
    // keepalived's router_id defaults to the host name.
    let router_id = cfg.global.router_id.clone().unwrap_or_else(|| host.clone());
    match crate::notify::mail::Mailer::start(&cfg.global.smtp, &router_id, &host) {
        Ok(m) => m,
        Err(e) => {
            error!("smtp alerts off: {e:#}");
            None
        }
    }
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let config = load(&opts)?;
    raise_open_files_limit(&config);
    let dir = control::runtime_dir(opts.runtime_dir.as_deref());
    let _lock = control::lock(&dir)?;
    let (status_tx, mut status_requests) = mpsc::channel::<control::StatusRequest>(16);
    let (tasks, mut failures) = crate::supervise::Tasks::new();
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
            statics: Default::default(),
            link_delays: Default::default(),
            scripts: Default::default(),
            track_files: Default::default(),
            track_processes: Default::default(),
            virtual_servers: vec![],
            vs_groups: vec![],
            files: vec![],
            global: Default::default(),
        },
        groups: Vec::new(),
        index: HashMap::new(),
        rx: HashMap::new(),
        vmac_base: HashMap::new(),
        heard_on_vmac: Default::default(),
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
        renewals: HashMap::new(),
        rounds: Default::default(),
        fanouts: HashMap::new(),
        wakeups: 0,
        actions: Vec::new(),
        tasks,
        fail_silent: BTreeMap::new(),
        sweep_at: Instant::now() + KERNEL_TIMER_SWEEP,
        wake: Vec::new(),
        statics: Default::default(),
        mailer: None,
        lvs: None,
        lvs_told: HashMap::new(),
        lvs_reload: None,
    };
    d.mailer = mailer(&config);
    let mut groups = d.build(&config)?;
    // Groups a crashed run left Active in the re-adopted dataplane, same config.
    let mut resume: Vec<bool> = groups
        .iter()
        .map(|g| g.members.iter().all(|m| m.can_resume()))
        .collect();
    provision_xdp(&mut groups);
    d.tracker = Some(Tracker::start(&config, d.track_tx.clone(), &d.tasks));
    d.statics = statics::Statics::of(&config);
    d.statics.apply();
    d.config = config;
    d.groups = groups;
    d.reconcile_xdp();
    d.reindex();
    d.attach_fanouts();
    let fifos = crate::notify::lvs_fifos(&d.config.global, &mut d.fifos);
    d.lvs = start_lvs(&d.config, fifos, d.lb_maps()).await;
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
    startup_script(&d.config, resume.iter().any(|r| *r)).await;
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
    // Once started: the XDP program's verifier and the first tables ran
    // under the normal policy.
    crate::sched::apply(&d.config.global.scheduling);
    sd_notify::notify("READY=1");

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigquit = signal(SignalKind::quit())?;
    let mut watchdog = sd_notify::watchdog_interval().map(tokio::time::interval);
    let mut deadline = deadline::Deadline::new().context("creating the event loop's timerfd")?;
    let mut deadline_failed = 0u64;
    loop {
        // What the last round queued (every instance due at once) leaves in
        // one system call per socket.
        for tx in d.tx.values() {
            flush(tx);
        }
        d.wakeups += 1;
        let next = d.next_deadline();
        let armed = match deadline.set(next) {
            Ok(()) => true,
            Err(e) => {
                // Never seen; tokio's timer then wakes this turn.
                deadline_failed += 1;
                if deadline_failed.is_power_of_two() {
                    warn!(
                        failed = deadline_failed,
                        "arming the event loop's timerfd: {e}"
                    );
                }
                false
            }
        };
        let sleep = async {
            if armed {
                deadline.fired().await
            } else {
                tokio::time::sleep_until(tokio::time::Instant::from_std(
                    next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
                ))
                .await
            }
        };
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
                // An interface that went down and up lost its routes (and
                // IPv6 addresses): keepalived reinstates statics. Only link
                // changes can do that, tracked interface or not.
                let link = matches!(ev, TrackEvent::Link);
                if d.tracker.as_mut().is_some_and(|t| t.handle(ev)) {
                    d.health(Instant::now());
                }
                if link {
                    d.statics.apply();
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
                    f.task, f.error, crate::supervise::TASK_FAILED_EXIT_CODE
                );
                sd_notify::notify("STOPPING=1");
                let _ = std::fs::remove_file(control::socket_path(&dir));
                std::process::exit(crate::supervise::TASK_FAILED_EXIT_CODE);
            }
            _ = tick => sd_notify::notify("WATCHDOG=1"),
            Some(reply) = status_requests.recv() => {
                let _ = reply.send(d.status());
            }
        }
        if let Some(cfg) = d.lvs_reload.take() {
            if let Some(old) = d.lvs.take() {
                old.stop(false).await;
            }
            let fifos = crate::notify::lvs_fifos(&cfg.global, &mut d.fifos);
            d.lvs = start_lvs(&cfg, fifos, d.lb_maps()).await;
            d.lvs_told.clear();
            d.tell_lvs();
        }
    }
    sd_notify::notify("STOPPING=1");
    info!("stopping: priority-0 adverts from Active instances, removing VIPs");
    let now = Instant::now();
    for g in 0..d.groups.len() {
        d.feed(g, now, 0, Input::Shutdown);
    }
    for tx in d.tx.values() {
        flush(tx);
    }
    for g in &mut d.groups {
        for m in &mut g.members {
            m.remove_vips();
        }
    }
    d.statics.remove();
    if let Some(lvs) = d.lvs.take() {
        lvs.stop(true).await;
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
    let config = d.config.clone();
    drop(d); // vmacs go, parents' sysctls come back
             // keepalived's shutdown_script: after everything is put back, bounded.
    if let Some(cmd) = &config.global.shutdown_script {
        let who = cmd.user.clone().or_else(|| build::script_user(&config));
        let (outcome, took) = crate::track::exec::run(
            cmd,
            &[],
            who.as_ref(),
            config.global.shutdown_script_timeout,
        )
        .await;
        info!(
            "shutdown_script `{}`: {outcome:?} after {} ms",
            cmd.text,
            took.as_millis()
        );
    }
    Ok(())
}

/// keepalived's startup_script: run before VRRP starts and waited for (up
/// to startup_script_timeout). A restart resuming Active groups does not
/// wait — their lease would run out — and runs it beside them instead.
async fn startup_script(cfg: &Config, resuming: bool) {
    let Some(cmd) = cfg.global.startup_script.clone() else {
        return;
    };
    let who = cmd.user.clone().or_else(|| build::script_user(cfg));
    let timeout = cfg.global.startup_script_timeout;
    let run = async move {
        let (outcome, took) = crate::track::exec::run(&cmd, &[], who.as_ref(), timeout).await;
        info!(
            "startup_script `{}`: {outcome:?} after {} ms",
            cmd.text,
            took.as_millis()
        );
    };
    if resuming {
        info!(
            "startup_script runs beside the resumed Active groups (a restart does not wait for it)"
        );
        tokio::spawn(run);
    } else {
        run.await;
    }
}

/// Sends a socket's queued adverts; what failed is a warning.
fn flush(tx: &crate::net::advert::AdvertTx) {
    for (dst, e) in tx.flush() {
        warn!(ifindex = tx.ifindex, %dst, "sending advert: {e}");
    }
}

/// Each TCP/HTTP/… check holds a socket while it runs, and thousands of
/// real servers checked every second need as many at once: the soft limit
/// on open files (1024 under systemd) goes up to the hard one when the
/// config has real servers.
fn raise_open_files_limit(config: &Config) {
    let reals: usize = config.virtual_servers.iter().map(|v| v.reals.len()).sum();
    if reals == 0 {
        return;
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 || lim.rlim_cur >= lim.rlim_max {
            return;
        }
        let want = lim.rlim_max;
        lim.rlim_cur = want;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
            info!(reals, "open files limit raised to {want} for the checkers");
        }
    }
    let have = lim.rlim_cur as usize;
    if reals * 2 > have {
        warn!(
            reals,
            "open files limit {have}: fewer than two per real server, checks may fail with EMFILE (raise LimitNOFILE)"
        );
    }
}

/// The LVS half, when the config has virtual servers. A table that cannot
/// be set up (no `nft`) leaves VRRP running, with the error logged.
async fn start_lvs(
    config: &Config,
    fifos: Vec<Arc<FifoWriter>>,
    lb_maps: Vec<crate::dataplane::lb::LbMaps>,
) -> Option<crate::lvs::engine::Engine> {
    match crate::lvs::engine::Engine::start(config, fifos, lb_maps).await {
        Ok(e) => e,
        Err(e) => {
            error!(
                "virtual_server: not forwarding: {e:#} (install Debian's nftables; VRRP runs on)"
            );
            None
        }
    }
}
