//! keepalived's `vrrp_track_process`: how many processes of a name (or
//! command line) run, from the kernel's process events connector — fork,
//! exec, comm change and exit as they happen, no polling — with /proc read
//! once at start (and again if the kernel says events were lost). A
//! tracked process is up while quorum <= count <= quorum_max; a change
//! counts after fork_delay (gained) or terminate_delay (lost), as
//! keepalived's timers do.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use proc_connector::{ProcConnector, ProcEvent};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::TrackEvent;
use crate::config::model::{ParamMatch, TrackProcessDef};

/// What a process shows the matcher: its comm and its raw command line
/// (NUL-separated words, as /proc/PID/cmdline).
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub comm: String,
    pub cmdline: Vec<u8>,
}

/// Whether a process is one `def` counts (keepalived's check_process):
/// its comm is the name, or with `full_command` (or parameters) its
/// command line's first word is; parameters compared as `param_match` says.
pub fn matches(def: &TrackProcessDef, seen: &Seen) -> bool {
    let (argv0, params) = match seen.cmdline.iter().position(|&b| b == 0) {
        Some(i) => (&seen.cmdline[..i], &seen.cmdline[i + 1..]),
        None => (&seen.cmdline[..], &[][..]),
    };
    let name_ok = if def.full_command {
        argv0 == def.process.as_bytes()
    } else {
        seen.comm == def.process
    };
    if !name_ok {
        return false;
    }
    let Some(how) = def.param_match else {
        return true;
    };
    // The configured parameters as the kernel writes them: each word
    // followed by a NUL.
    let want: Vec<u8> = def
        .params
        .iter()
        .flat_map(|p| p.bytes().chain(std::iter::once(0)))
        .collect();
    match how {
        ParamMatch::Exact => params == want.as_slice(),
        ParamMatch::Partial => params.starts_with(&want),
        // The last word may be cut short: compare without its NUL.
        ParamMatch::Initial => params.starts_with(&want[..want.len().saturating_sub(1)]),
    }
}

/// One tracked process's count and quorum, with keepalived's delays.
#[derive(Debug, Clone)]
pub struct Quorum {
    pub count: u32,
    pub up: bool,
    /// A change waiting for its delay.
    pending: Option<Instant>,
}

impl Quorum {
    /// The state at start: no delay (keepalived reads /proc and decides).
    pub fn new(def: &TrackProcessDef, count: u32) -> Quorum {
        Quorum {
            count,
            up: in_range(def, count),
            pending: None,
        }
    }

    /// Re-decides after the count changed or time passed; true when `up`
    /// changed. A change back before the delay ran out cancels it.
    pub fn step(&mut self, def: &TrackProcessDef, now: Instant) -> bool {
        let want = in_range(def, self.count);
        if want == self.up {
            self.pending = None;
            return false;
        }
        let delay = if want {
            def.fork_delay
        } else {
            def.terminate_delay
        };
        let due = *self.pending.get_or_insert(now + delay);
        if now >= due {
            self.up = want;
            self.pending = None;
            return true;
        }
        false
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.pending
    }
}

fn in_range(def: &TrackProcessDef, count: u32) -> bool {
    count >= def.quorum && count <= def.quorum_max
}

/// Which tracked processes each running pid counts for, and the counts.
pub struct Table {
    defs: Vec<TrackProcessDef>,
    pids: HashMap<u32, Vec<usize>>,
    pub quorums: Vec<Quorum>,
}

impl Table {
    /// The table from a view of the running processes.
    pub fn new(
        defs: Vec<TrackProcessDef>,
        running: impl IntoIterator<Item = (u32, Seen)>,
    ) -> Table {
        let mut t = Table {
            pids: HashMap::new(),
            quorums: Vec::new(),
            defs,
        };
        let mut counts = vec![0u32; t.defs.len()];
        for (pid, seen) in running {
            let hits = t.hits(&seen);
            for &i in &hits {
                counts[i] += 1;
            }
            if !hits.is_empty() {
                t.pids.insert(pid, hits);
            }
        }
        t.quorums = t
            .defs
            .iter()
            .zip(counts)
            .map(|(d, c)| Quorum::new(d, c))
            .collect();
        t
    }

    fn hits(&self, seen: &Seen) -> Vec<usize> {
        (0..self.defs.len())
            .filter(|&i| matches(&self.defs[i], seen))
            .collect()
    }

    /// `pid` now counts for `hits` (after an exec, a comm change, a fork).
    fn set(&mut self, pid: u32, hits: Vec<usize>) {
        let old = self.pids.remove(&pid).unwrap_or_default();
        for &i in &old {
            self.quorums[i].count -= 1;
        }
        for &i in &hits {
            self.quorums[i].count += 1;
        }
        if !hits.is_empty() {
            self.pids.insert(pid, hits);
        }
    }

    /// A new process: a copy of its parent (same name, same command line)
    /// until it execs.
    pub fn fork(&mut self, parent: u32, child: u32) {
        if let Some(hits) = self.pids.get(&parent).cloned() {
            self.set(child, hits);
        }
    }

    /// A process exec'd or renamed itself: looked at again.
    pub fn changed(&mut self, pid: u32, seen: Option<Seen>) {
        let hits = seen.map(|s| self.hits(&s)).unwrap_or_default();
        self.set(pid, hits);
    }

    pub fn exit(&mut self, pid: u32) {
        self.set(pid, Vec::new());
    }

    /// Applies the delays; the tracked processes whose state changed.
    pub fn step(&mut self, now: Instant) -> Vec<usize> {
        let mut changed = Vec::new();
        for (i, (q, d)) in self.quorums.iter_mut().zip(&self.defs).enumerate() {
            if q.step(d, now) {
                changed.push(i);
            }
        }
        changed
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.quorums.iter().filter_map(Quorum::deadline).min()
    }

    pub fn name(&self, i: usize) -> &str {
        &self.defs[i].name
    }
}

/// /proc/PID's comm and command line; None when it is gone.
pub fn read(pid: u32) -> Option<Seen> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    Some(Seen {
        comm: comm.trim_end_matches('\n').to_owned(),
        cmdline,
    })
}

/// Every running process.
pub fn scan() -> Vec<(u32, Seen)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| read(pid).map(|s| (pid, s)))
        .collect()
}

/// The process events connector. The kernel offers it in the initial
/// network namespace only (elsewhere it refuses the subscription): an
/// agent in another one opens it from a thread that enters a namespace
/// where it works — pid 1's, else one of the agent's ancestors' (`ip netns
/// exec` was started from the initial one) — and the socket stays there.
fn connect() -> anyhow::Result<ProcConnector> {
    let first = match ProcConnector::new() {
        Ok(c) => return Ok(c),
        Err(e) => e.to_string(),
    };
    let mut tried = Vec::new();
    for pid in std::iter::once(1).chain(ancestors()) {
        let path = format!("/proc/{pid}/ns/net");
        let got = std::thread::spawn(move || -> Result<ProcConnector, String> {
            let ns = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("entering {path}: {e}"))?;
            ProcConnector::new().map_err(|e| format!("in {path}: {e}"))
        })
        .join()
        .map_err(|_| "the opening thread panicked".to_owned())
        .and_then(|r| r);
        match got {
            Ok(c) => return Ok(c),
            Err(e) => tried.push(e),
        }
    }
    anyhow::bail!(
        "process events connector: {first} here; {}",
        tried.join("; ")
    )
}

/// The agent's parent, its parent, … up to pid 1.
fn ancestors() -> Vec<u32> {
    let mut out = Vec::new();
    let mut pid = std::os::unix::process::parent_id();
    while pid > 1 && out.len() < 32 {
        out.push(pid);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // pid (comm) state ppid …: the comm may hold spaces and parentheses.
        pid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0);
    }
    out
}

/// Starts tracking `defs`: the connector opened, /proc read, the first
/// states returned at once (so the first priority is right) and changes
/// sent as `TrackEvent::Process` from a thread of its own, which ends
/// (within a second) once `stop` is set: the tracker that started it is gone.
pub fn start(
    defs: Vec<TrackProcessDef>,
    events: mpsc::Sender<TrackEvent>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<BTreeMap<String, (bool, u32)>> {
    let conn = connect()?;
    let mut table = Table::new(defs, scan());
    let first = (0..table.quorums.len())
        .map(|i| {
            let q = &table.quorums[i];
            (table.name(i).to_owned(), (q.up, q.count))
        })
        .collect();
    std::thread::Builder::new()
        .name("track_process".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                let wait = table
                    .deadline()
                    .map_or(Duration::from_secs(1), |d| d.saturating_duration_since(now))
                    .min(Duration::from_secs(1));
                match conn.recv_timeout(&mut buf, wait) {
                    Ok(Some(ev)) => apply(&mut table, ev),
                    Ok(None) | Err(proc_connector::Error::Interrupted) => {}
                    Err(proc_connector::Error::Overrun) => {
                        warn!("track_process: the kernel dropped process events; reading /proc again");
                        let quorums = table.quorums.clone();
                        table = Table::new(table.defs.clone(), scan());
                        // Keep the decided states; the counts are new.
                        for (q, old) in table.quorums.iter_mut().zip(quorums) {
                            q.up = old.up;
                            q.pending = old.pending;
                        }
                    }
                    Err(e) => {
                        warn!("track_process: process events connector: {e}; tracked processes keep their last state");
                        return;
                    }
                }
                for i in table.step(Instant::now()) {
                    let q = &table.quorums[i];
                    info!(track_process = %table.name(i), count = q.count, "tracked process is now {}", if q.up { "up" } else { "down" });
                    let ev = TrackEvent::Process {
                        name: table.name(i).to_owned(),
                        up: q.up,
                        count: q.count,
                    };
                    if stop.load(Ordering::Relaxed) || events.blocking_send(ev).is_err() {
                        return;
                    }
                }
            }
        })?;
    Ok(first)
}

/// One kernel event. Threads (pid != tgid) are not processes: ignored.
fn apply(table: &mut Table, ev: ProcEvent) {
    match ev {
        ProcEvent::Fork {
            parent_tgid,
            child_pid,
            child_tgid,
            ..
        } if child_pid == child_tgid => table.fork(parent_tgid, child_pid),
        ProcEvent::Exec { pid, tgid, .. } | ProcEvent::Comm { pid, tgid, .. } if pid == tgid => {
            table.changed(pid, read(pid))
        }
        ProcEvent::Exit { pid, tgid, .. } if pid == tgid => table.exit(pid),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(process: &str) -> TrackProcessDef {
        TrackProcessDef::new(process, process, Default::default())
    }

    fn seen(comm: &str, cmdline: &[&str]) -> Seen {
        Seen {
            comm: comm.into(),
            cmdline: cmdline.iter().flat_map(|w| w.bytes().chain([0])).collect(),
        }
    }

    #[test]
    fn names_and_parameters_match_as_keepalived_s() {
        let nginx = seen("nginx", &["/usr/sbin/nginx", "-c", "/etc/nginx/a.conf"]);
        assert!(matches(&def("nginx"), &nginx), "comm");
        assert!(
            !matches(&def("/usr/sbin/nginx"), &nginx),
            "comm, not the path"
        );
        let mut d = def("/usr/sbin/nginx");
        d.full_command = true;
        assert!(matches(&d, &nginx), "full_command: the first word");
        d.params = vec!["-c".into(), "/etc/nginx/a.conf".into()];
        d.param_match = Some(ParamMatch::Exact);
        assert!(matches(&d, &nginx));
        d.params = vec!["-c".into()];
        assert!(!matches(&d, &nginx), "exact: all of them");
        d.param_match = Some(ParamMatch::Partial);
        assert!(matches(&d, &nginx), "partial: whole leading words");
        d.params = vec!["-c".into(), "/etc/nginx/a".into()];
        assert!(!matches(&d, &nginx), "partial: the last word whole");
        d.param_match = Some(ParamMatch::Initial);
        assert!(matches(&d, &nginx), "initial: the last word may be cut");
    }

    #[test]
    fn quorum_counts_forks_execs_and_exits() {
        let mut d = def("worker");
        d.quorum = 2;
        d.quorum_max = 3;
        let mut t = Table::new(
            vec![d],
            [
                (10, seen("worker", &["worker"])),
                (11, seen("bash", &["bash"])),
            ],
        );
        assert_eq!((t.quorums[0].count, t.quorums[0].up), (1, false));
        let now = Instant::now();
        t.fork(10, 12);
        assert_eq!(t.step(now), [0]);
        assert!(t.quorums[0].up);
        t.fork(11, 13);
        assert_eq!(t.quorums[0].count, 2, "a bash's child is not a worker");
        t.changed(13, Some(seen("worker", &["worker"])));
        t.fork(10, 14);
        assert_eq!(t.quorums[0].count, 4);
        assert_eq!(t.step(now), [0], "above quorum_max: down");
        t.exit(14);
        t.exit(14);
        assert_eq!(t.quorums[0].count, 3, "an exit counts once");
        assert_eq!(t.step(now), [0]);
        t.changed(12, Some(seen("other", &["other"])));
        t.changed(13, None);
        assert_eq!(t.quorums[0].count, 1);
        assert_eq!(t.step(now), [0]);
        assert!(!t.quorums[0].up);
    }

    #[test]
    fn delays_hold_a_change_and_a_change_back_cancels_it() {
        let mut d = def("p");
        d.fork_delay = Duration::from_secs(2);
        d.terminate_delay = Duration::from_secs(5);
        let t0 = Instant::now();
        let mut t = Table::new(vec![d], [(1, seen("p", &["p"]))]);
        assert!(t.quorums[0].up);
        t.exit(1);
        assert!(t.step(t0).is_empty(), "terminate_delay holds it up");
        assert_eq!(t.deadline(), Some(t0 + Duration::from_secs(5)));
        assert!(t.step(t0 + Duration::from_secs(4)).is_empty());
        t.changed(2, Some(seen("p", &["p"])));
        assert!(
            t.step(t0 + Duration::from_secs(4)).is_empty(),
            "back in time: cancelled"
        );
        assert_eq!(t.deadline(), None);
        t.exit(2);
        let t1 = t0 + Duration::from_secs(10);
        assert!(t.step(t1).is_empty());
        assert_eq!(t.step(t1 + Duration::from_secs(5)), [0]);
        assert!(!t.quorums[0].up);
        t.changed(3, Some(seen("p", &["p"])));
        assert!(t.step(t1 + Duration::from_secs(6)).is_empty(), "fork_delay");
        assert_eq!(t.step(t1 + Duration::from_secs(8)), [0]);
    }
}
