//! Health: vrrp_script, track_interface, track_file -> (weight, fault) per
//! instance, with keepalived's arithmetic. Checks run in their own tasks
//! and only report changes; nothing here blocks the election loop.

pub mod exec;
pub mod process;
pub mod script;

use std::{
    collections::BTreeMap,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use tokio::{sync::mpsc, task::JoinHandle};
use tracing::{info, warn};

use crate::{
    config::model::{Config, Instance, Track},
    net::iface,
};

#[derive(Debug)]
pub enum TrackEvent {
    ScriptStarted {
        name: String,
        at: Instant,
    },
    Script {
        name: String,
        outcome: exec::Outcome,
        took: Duration,
    },
    /// Some link changed state: re-read the tracked ones.
    Link,
    /// An interface_up_down_delays delay ran out for this interface.
    LinkSettled(String),
    File {
        name: String,
        value: Option<i64>,
    },
    /// A vrrp_track_process gained or lost its quorum.
    Process {
        name: String,
        up: bool,
        count: u32,
    },
}

/// One tracked item as `xvrrp status` shows it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckStatus {
    /// "script", "interface", "file" or "process".
    pub kind: String,
    pub name: String,
    /// "ok", "failed", "down", "up", or the file's value.
    pub state: String,
    /// What it adds to the priority now.
    pub weight: i32,
    /// It puts the instance in FAULT now.
    pub fault: bool,
    pub script: Option<script::ScriptStatus>,
}

/// All tracked state, fed by the tasks it started.
pub struct Tracker {
    pub scripts: BTreeMap<String, script::Health>,
    pub files: BTreeMap<String, Option<i64>>,
    /// vrrp_track_process: (up, running count) by name.
    pub processes: BTreeMap<String, (bool, u32)>,
    /// interface_up_down_delays: (down, up) per interface, and per
    /// interface the state the trackers see and whether a delay is running.
    delays: BTreeMap<String, (Duration, Duration)>,
    links: BTreeMap<String, (bool, bool)>,
    events: mpsc::Sender<TrackEvent>,
    /// Ends the track_process thread when this tracker goes.
    stop_processes: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.stop_processes
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The vrrp_track_process blocks some instance or group tracks
/// (keepalived tracks only those).
fn used_processes(cfg: &Config) -> Vec<crate::config::model::TrackProcessDef> {
    let used: std::collections::BTreeSet<&String> = cfg
        .instances
        .iter()
        .flat_map(|i| i.track_processes.iter())
        .chain(cfg.groups.iter().flat_map(|g| g.track_processes.iter()))
        .map(|t| &t.name)
        .collect();
    used.into_iter()
        .filter_map(|n| cfg.track_processes.get(n).cloned())
        .collect()
}

fn used_scripts(cfg: &Config) -> Vec<String> {
    let mut used: Vec<String> = cfg
        .instances
        .iter()
        .flat_map(|i| i.track_scripts.iter())
        .chain(cfg.groups.iter().flat_map(|g| g.track_scripts.iter()))
        .map(|t| t.name.clone())
        .collect();
    used.sort();
    used.dedup();
    used
}

impl Tracker {
    /// Starts a runner per vrrp_script in use (keepalived runs only those),
    /// the link monitor and a watcher per track file.
    pub fn start(
        cfg: &Config,
        events: mpsc::Sender<TrackEvent>,
        tasks: &crate::supervise::Tasks,
    ) -> Tracker {
        let mut t = Tracker {
            scripts: BTreeMap::new(),
            files: BTreeMap::new(),
            processes: BTreeMap::new(),
            delays: cfg.link_delays.clone(),
            links: cfg
                .link_delays
                .keys()
                .map(|n| (n.clone(), (iface::is_up(n), false)))
                .collect(),
            events: events.clone(),
            stop_processes: Default::default(),
            tasks: Vec::new(),
        };
        let used = used_processes(cfg);
        if !used.is_empty() {
            match process::start(used, events.clone(), t.stop_processes.clone()) {
                Ok(first) => t.processes = first,
                // Tracked processes then count as down (keepalived cannot
                // track them either without the connector).
                Err(e) => warn!("track_process: {e:#}; tracked processes count as not running"),
            }
        }
        let default_user = cfg.global.script_user.clone().or_else(exec::default_user);
        for name in used_scripts(cfg) {
            let Some(s) = cfg.scripts.get(&name) else {
                continue;
            };
            t.scripts.insert(name.clone(), script::Health::new(s));
            let user = s.user.clone().or_else(|| default_user.clone());
            t.tasks.push(tasks.spawn(
                format!("vrrp_script runner ({name})"),
                script::runner(s.clone(), user, events.clone()),
            ));
        }
        // track_src_ip needs to hear address changes too.
        let addresses = cfg.instances.iter().any(|i| i.track_src_ip);
        match link_monitor(events.clone(), tasks, addresses) {
            Ok(task) => t.tasks.push(task),
            Err(e) => warn!("link monitor: {e}; interface changes are seen only at reload"),
        }
        for f in cfg.track_files.values() {
            if let Some((value, overwrite)) = f.init {
                if overwrite || !f.file.exists() {
                    if let Err(e) = std::fs::write(&f.file, format!("{value}\n")) {
                        warn!("init_file {}: {e}", f.file.display());
                    }
                }
            }
            t.files.insert(f.name.clone(), read_value(&f.file));
            match file_watcher(f.name.clone(), f.file.clone(), events.clone(), tasks) {
                Ok(task) => t.tasks.push(task),
                Err(e) => warn!("watching {}: {e}", f.file.display()),
            }
        }
        t
    }

    /// After a reload: scripts still in use keep the results they had
    /// (keepalived keeps a tracked script's state across a reload), so a
    /// reload does not move an instance's priority until a script really
    /// changes. Their runners start anew.
    pub fn carry_over(&mut self, old: &Tracker) {
        for (name, h) in &mut self.scripts {
            if let Some(o) = old.scripts.get(name) {
                if o.rise == h.rise && o.fall == h.fall {
                    *h = o.clone();
                }
            }
        }
    }

    /// Applies one event; true when it can change some instance's health.
    pub fn handle(&mut self, ev: TrackEvent) -> bool {
        match ev {
            TrackEvent::ScriptStarted { name, at } => {
                if let Some(h) = self.scripts.get_mut(&name) {
                    h.started = Some(at);
                }
                false
            }
            TrackEvent::Script {
                name,
                outcome,
                took,
            } => {
                let Some(h) = self.scripts.get_mut(&name) else {
                    return false;
                };
                let changed = h.record(outcome, took);
                if changed {
                    info!(script = %name, ?outcome, "vrrp_script is now {}", if h.status.healthy { "healthy" } else { "failed" });
                } else if outcome == exec::Outcome::Timeout {
                    warn!(script = %name, "vrrp_script killed at its timeout ({} ms)", took.as_millis());
                }
                changed
            }
            TrackEvent::Link => {
                self.debounce();
                true
            }
            TrackEvent::LinkSettled(name) => {
                let live = iface::is_up(&name);
                match self.links.get_mut(&name) {
                    Some((seen, running)) => {
                        *running = false;
                        let changed = *seen != live;
                        if changed {
                            info!(interface = %name, "interface_up_down_delays: {} counts now", if live { "up" } else { "down" });
                        }
                        *seen = live;
                        changed
                    }
                    None => false,
                }
            }
            TrackEvent::Process { name, up, count } => {
                let old = self.processes.insert(name, (up, count));
                old.map(|(u, _)| u) != Some(up)
            }
            TrackEvent::File { name, value } => {
                let old = self.files.insert(name.clone(), value);
                if old != Some(value) {
                    info!(track_file = %name, ?value, "track file changed");
                    true
                } else {
                    false
                }
            }
        }
    }

    /// A link changed: an interface with interface_up_down_delays whose
    /// state differs from what the trackers see starts its delay (down or
    /// up); when it runs out the state is read again (a flap back within
    /// the delay changes nothing, as keepalived's debounce timers).
    fn debounce(&mut self) {
        for (name, (seen, running)) in &mut self.links {
            if *running || iface::is_up(name) == *seen {
                continue;
            }
            let (down, up) = self.delays.get(name).copied().unwrap_or_default();
            let delay = if *seen { down } else { up };
            *running = true;
            let (events, name) = (self.events.clone(), name.clone());
            self.tasks.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = events.send(TrackEvent::LinkSettled(name)).await;
            }));
        }
    }

    /// Whether `name` is up as the trackers see it (after its delays).
    fn link_up(&self, name: &str) -> bool {
        match self.links.get(name) {
            Some((seen, _)) => *seen,
            None => iface::is_up(name),
        }
    }

    /// keepalived's sum of weights and FAULT for one instance, with the
    /// trackers of its sync group.
    pub fn health(&self, cfg: &Config, i: &Instance) -> (i32, bool, Vec<CheckStatus>) {
        let group = cfg.groups.iter().find(|g| g.members.contains(&i.name));
        let mut checks = Vec::new();
        // The VRRP interface itself, unless dont_track_primary.
        if !i.dont_track_primary {
            let up = self.link_up(&i.interface);
            checks.push(CheckStatus {
                kind: "interface".into(),
                name: i.interface.clone(),
                state: if up { "up" } else { "down" }.into(),
                weight: 0,
                fault: !up,
                script: None,
            });
        }
        let scripts = i
            .track_scripts
            .iter()
            .chain(group.into_iter().flat_map(|g| g.track_scripts.iter()));
        for t in scripts {
            let Some(def) = cfg.scripts.get(&t.name) else {
                continue;
            };
            let Some(h) = self.scripts.get(&t.name) else {
                continue;
            };
            let mut st = h.status.clone();
            if let Some(at) = h.started {
                let ms = at.elapsed().as_millis() as u64;
                if ms > def.interval.as_millis() as u64 {
                    st.running_ms = Some(ms);
                }
            }
            let (w, fault) = weigh(
                h.status.healthy,
                t.weight.unwrap_or(def.weight),
                def.weight_reverse ^ t.reverse,
            );
            checks.push(CheckStatus {
                kind: "script".into(),
                name: t.name.clone(),
                state: if h.status.healthy { "ok" } else { "failed" }.into(),
                weight: w,
                fault,
                script: Some(st),
            });
        }
        let ifaces = i
            .track_interfaces
            .iter()
            .chain(group.into_iter().flat_map(|g| g.track_interfaces.iter()));
        for t in ifaces {
            let up = self.link_up(&t.name);
            let (w, fault) = weigh(up, t.weight.unwrap_or(0), t.reverse);
            checks.push(CheckStatus {
                kind: "interface".into(),
                name: t.name.clone(),
                state: if up { "up" } else { "down" }.into(),
                weight: w,
                fault,
                script: None,
            });
        }
        // keepalived's unicast_fault_no_peer: unicast meant, no peer given.
        if i.unicast_fault_no_peer && i.unicast_peers.is_empty() {
            checks.push(CheckStatus {
                kind: "config".into(),
                name: "unicast_fault_no_peer".into(),
                state: "no unicast peer".into(),
                weight: 0,
                fault: true,
                script: None,
            });
        }
        // keepalived's track_src_ip: the source address must be on the interface.
        if let (true, Some(src)) = (i.track_src_ip, i.unicast_src_ip) {
            let present = iface::addresses(&i.interface)
                .iter()
                .any(|(a, _)| *a == src);
            checks.push(CheckStatus {
                kind: "address".into(),
                name: src.to_string(),
                state: if present { "present" } else { "missing" }.into(),
                weight: 0,
                fault: !present,
                script: None,
            });
        }
        let processes = i
            .track_processes
            .iter()
            .chain(group.into_iter().flat_map(|g| g.track_processes.iter()));
        for t in processes {
            let Some(def) = cfg.track_processes.get(&t.name) else {
                continue;
            };
            let (up, count) = self.processes.get(&t.name).copied().unwrap_or((false, 0));
            let (w, fault) = weigh(up, t.weight.unwrap_or(def.weight), def.reverse ^ t.reverse);
            checks.push(CheckStatus {
                kind: "process".into(),
                name: t.name.clone(),
                state: format!("{} ({count} running)", if up { "up" } else { "down" }),
                weight: w,
                fault,
                script: None,
            });
        }
        let files = i
            .track_files
            .iter()
            .chain(group.into_iter().flat_map(|g| g.track_files.iter()));
        for t in files {
            let Some(def) = cfg.track_files.get(&t.name) else {
                continue;
            };
            let value = self.files.get(&t.name).copied().flatten().unwrap_or(0);
            let (w, fault) = file_weight(value, t, def.weight, def.reverse);
            checks.push(CheckStatus {
                kind: "file".into(),
                name: t.name.clone(),
                state: value.to_string(),
                weight: w,
                fault,
                script: None,
            });
        }
        let weight = checks.iter().map(|c| c.weight).sum();
        let fault = checks.iter().any(|c| c.fault);
        (weight, fault, checks)
    }
}

/// keepalived's rule for scripts and interfaces: weight 0 -> FAULT when
/// failed; > 0 -> added while healthy; < 0 -> added while failed; `reverse`
/// swaps healthy and failed.
pub fn weigh(healthy: bool, weight: i32, reverse: bool) -> (i32, bool) {
    let good = healthy != reverse;
    match weight {
        0 => (0, !good),
        w if w > 0 => (if good { w } else { 0 }, false),
        w => (if good { 0 } else { w }, false),
    }
}

/// track_file: value × weight; weight 0 -> any non-zero is FAULT; a result
/// below -253 is FAULT.
pub fn file_weight(value: i64, t: &Track, def_weight: i32, def_reverse: bool) -> (i32, bool) {
    let w = t.weight.unwrap_or(def_weight) as i64;
    if w == 0 {
        return (0, value != 0);
    }
    let mut contrib = value.saturating_mul(w);
    if def_reverse ^ t.reverse {
        contrib = -contrib;
    }
    if contrib < -253 {
        return (0, true);
    }
    (contrib.clamp(-253, 253) as i32, false)
}

pub fn read_value(path: &Path) -> Option<i64> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// rtnetlink subscribed to RTMGRP_LINK: every link change wakes a
/// re-check of the tracked interfaces (the tracker reads their state
/// afresh, so what a message said, or a message lost to ENOBUFS under a
/// storm, needs no parsing here). Supervised: a monitor that stops seeing
/// changes ends the agent.
fn link_monitor(
    events: mpsc::Sender<TrackEvent>,
    tasks: &crate::supervise::Tasks,
    addresses: bool,
) -> std::io::Result<JoinHandle<()>> {
    use futures::StreamExt as _;
    use netlink_sys::AsyncSocket as _;
    let (mut conn, _handle, mut messages) = rtnetlink::new_connection()?;
    conn.socket_mut()
        .socket_mut()
        .bind(&netlink_sys::SocketAddr::new(
            0,
            (libc::RTMGRP_LINK
                | if addresses {
                    libc::RTMGRP_IPV4_IFADDR | libc::RTMGRP_IPV6_IFADDR
                } else {
                    0
                }) as u32,
        ))?;
    Ok(tasks.spawn("link monitor".to_owned(), async move {
        let mut conn = std::pin::pin!(conn);
        loop {
            tokio::select! {
                () = &mut conn => anyhow::bail!("the rtnetlink connection ended"),
                message = messages.next() => {
                    if message.is_none() {
                        anyhow::bail!("the rtnetlink link messages ended");
                    }
                    if events.send(TrackEvent::Link).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }))
}

/// Reads `fd` whenever it is readable (the bytes are only a wake-up) and
/// sends what `event` makes of it. Supervised: a descriptor that fails
/// ends the agent (a tracker that stops seeing changes is worse).
fn spawn_reader(
    fd: OwnedFd,
    events: mpsc::Sender<TrackEvent>,
    tasks: &crate::supervise::Tasks,
    name: String,
    mut event: impl FnMut() -> Option<TrackEvent> + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let afd = crate::net::async_fd(fd)?;
    Ok(tasks.spawn(name, async move {
        let mut buf = [0u8; 8192];
        loop {
            let mut guard = afd.readable().await?;
            match nix::unistd::read(afd.get_ref(), &mut buf) {
                Err(nix::errno::Errno::EAGAIN) => {
                    guard.clear_ready();
                    continue;
                }
                // Netlink lost messages: what they said is read afresh below.
                Ok(_) | Err(nix::errno::Errno::ENOBUFS) => {}
                Err(e) => anyhow::bail!("reading: {e}"),
            }
            if let Some(ev) = event() {
                if events.send(ev).await.is_err() {
                    return Ok(());
                }
            }
        }
    }))
}

/// inotify on the file's directory (the file may be replaced or created).
fn file_watcher(
    name: String,
    path: PathBuf,
    events: mpsc::Sender<TrackEvent>,
    tasks: &crate::supervise::Tasks,
) -> std::io::Result<JoinHandle<()>> {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    inotify.add_watch(
        &dir,
        AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MODIFY,
    )?;
    let fd = OwnedFd::from(inotify);
    // Any event in the directory: re-read (cheap, and rename-safe).
    let task = format!("track_file watcher ({name})");
    spawn_reader(fd, events, tasks, task, move || {
        Some(TrackEvent::File {
            name: name.clone(),
            value: read_value(&path),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(w: Option<i32>, reverse: bool) -> Track {
        Track {
            name: "t".into(),
            weight: w,
            reverse,
            pos: None,
        }
    }

    #[test]
    fn keepalived_weights() {
        assert_eq!(
            weigh(false, 0, false),
            (0, true),
            "weight 0: failed = FAULT"
        );
        assert_eq!(weigh(true, 0, false), (0, false));
        assert_eq!(
            weigh(true, 20, false),
            (20, false),
            "positive: added while healthy"
        );
        assert_eq!(weigh(false, 20, false), (0, false));
        assert_eq!(
            weigh(false, -20, false),
            (-20, false),
            "negative: added while failed"
        );
        assert_eq!(weigh(true, -20, false), (0, false));
        assert_eq!(weigh(true, -20, true), (-20, false), "reverse swaps");
        assert_eq!(weigh(true, 0, true), (0, true));
    }

    #[test]
    fn track_file_arithmetic() {
        assert_eq!(file_weight(3, &track(None, false), 10, false), (30, false));
        assert_eq!(
            file_weight(3, &track(Some(-5), false), 10, false),
            (-15, false)
        );
        assert_eq!(file_weight(3, &track(None, true), 10, false), (-30, false));
        assert_eq!(
            file_weight(1, &track(Some(0), false), 10, false),
            (0, true),
            "weight 0: non-zero = FAULT"
        );
        assert_eq!(
            file_weight(0, &track(Some(0), false), 10, false),
            (0, false)
        );
        assert_eq!(
            file_weight(-300, &track(None, false), 1, false),
            (0, true),
            "below -253 = FAULT"
        );
    }
}
