//! Notify scripts and fifos, as keepalived calls them: the state's own
//! script (notify_master / notify_backup / notify_fault / notify_stop) with
//! only its configured arguments, then `notify` with four appended:
//! INSTANCE|GROUP, name, MASTER|BACKUP|FAULT|STOP, priority. keepalived
//! runs them unordered; here each instance (and group) has a queue, so they
//! run in order, in the background, each with a timeout.

pub mod mail;

use std::{
    io::Write as _,
    os::unix::fs::OpenOptionsExt as _,
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::{
    config::model::{Command, Fifo, Notify, ScriptUser},
    proto::State,
    track::exec,
};

/// How long one notify script may run.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A notify fifo opened for writing (O_RDWR, so opening never blocks and a
/// reader that comes and goes does not make writes fail).
pub struct FifoWriter {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    _script: Option<tokio::process::Child>,
}

impl FifoWriter {
    /// Creates the fifo when missing and starts its notify_fifo_script.
    pub fn open(f: &Fifo) -> anyhow::Result<Arc<FifoWriter>> {
        if !f.path.exists() {
            nix::unistd::mkfifo(&f.path, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .map_err(|e| anyhow::anyhow!("mkfifo {}: {e}", f.path.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&f.path)?;
        let script = match &f.script {
            Some(cmd) => Some(
                tokio::process::Command::new(&cmd.argv[0])
                    .args(&cmd.argv[1..])
                    .arg(&f.path)
                    .kill_on_drop(true)
                    .spawn()?,
            ),
            None => None,
        };
        Ok(Arc::new(FifoWriter {
            path: f.path.clone(),
            file: Mutex::new(file),
            _script: script,
        }))
    }

    pub fn write(&self, line: &str) {
        let mut f = self.file.lock().expect("fifo lock");
        if let Err(e) = f.write_all(line.as_bytes()) {
            warn!(
                "notify_fifo {}: {e} (line dropped: {})",
                self.path.display(),
                line.trim_end()
            );
        }
    }
}

/// keepalived's fifo line: `INSTANCE "VI_1" MASTER 100` (the state as
/// keepalived names it: MASTER, BACKUP, FAULT, STOP, DELETED,
/// MASTER_RX_LOWER_PRI).
pub fn fifo_line(kind: &str, name: &str, state: &str, priority: u8) -> String {
    format!("{kind} \"{name}\" {state} {priority}\n")
}

struct Job {
    scripts: Vec<(Command, Vec<String>)>,
    line: String,
}

/// The ordered notify queue of one instance or group.
#[derive(Clone)]
pub struct Notifier {
    kind: &'static str,
    name: String,
    notify: Notify,
    queue: mpsc::UnboundedSender<Job>,
    /// Jobs queued or running: shutdown waits (bounded) for them.
    pending: Arc<AtomicUsize>,
    /// smtp_alert: the mailer, and the state last mailed (keepalived mails
    /// a state once, not again for the same state).
    mail: Option<(mail::Mailer, Arc<Mutex<Option<State>>>)>,
}

impl Notifier {
    /// `kind` is "INSTANCE" or "GROUP"; `fifos` get every line.
    pub fn spawn(
        kind: &'static str,
        name: &str,
        notify: &Notify,
        user: Option<ScriptUser>,
        fifos: Vec<Arc<FifoWriter>>,
        mail: Option<mail::Mailer>,
    ) -> Notifier {
        let (queue, mut rx) = mpsc::unbounded_channel::<Job>();
        let label = format!("{kind} {name}");
        let pending = Arc::new(AtomicUsize::new(0));
        let done = pending.clone();
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                for f in &fifos {
                    f.write(&job.line);
                }
                for (cmd, extra) in &job.scripts {
                    let who = cmd.user.as_ref().or(user.as_ref());
                    let (outcome, took) = exec::run(cmd, extra, who, TIMEOUT).await;
                    match outcome {
                        exec::Outcome::Exit(0) => debug!(
                            "{label}: notify `{}` done in {} ms",
                            cmd.text,
                            took.as_millis()
                        ),
                        other => warn!(
                            "{label}: notify `{}` {extra:?} ended with {other:?} after {} ms",
                            cmd.text,
                            took.as_millis()
                        ),
                    }
                }
                done.fetch_sub(1, Ordering::SeqCst);
            }
        });
        Notifier {
            kind,
            name: name.to_owned(),
            notify: notify.clone(),
            queue,
            pending,
            mail: mail.map(|m| (m, Arc::new(Mutex::new(None)))),
        }
    }

    /// Queues the scripts and fifo line for a new state.
    pub fn state(&self, state: State, priority: u8) {
        let specific = match state {
            State::Active => &self.notify.master,
            State::Backup => &self.notify.backup,
            State::Fault => &self.notify.fault,
            State::Initialize => &self.notify.stop,
        };
        self.queue(state.keepalived_name(), specific.as_ref(), priority);
        if let Some((mailer, last)) = &self.mail {
            let mut last = last.lock().expect("mail state lock");
            if *last != Some(state) {
                *last = Some(state);
                mailer.state(self.kind, &self.name, state);
            }
        }
    }

    /// An instance a reload removed, as keepalived notifies it: DELETED
    /// (its notify_deleted script, `notify` with DELETED) when the instance
    /// says `notify_deleted`, else FAULT as keepalived always did — and
    /// nothing when it was in FAULT already.
    pub fn deleted(&self, priority: u8, was_fault: bool) {
        if self.notify.notify_deleted {
            self.queue("DELETED", self.notify.deleted.as_ref(), priority);
            if let Some((mailer, _)) = &self.mail {
                mailer.deleted(self.kind, &self.name);
            }
        } else if !was_fault {
            self.state(State::Fault, priority);
        }
    }

    fn queue(&self, state: &str, specific: Option<&Command>, priority: u8) {
        let mut scripts = Vec::new();
        if let Some(cmd) = specific {
            scripts.push((cmd.clone(), Vec::new()));
        }
        if let Some(cmd) = &self.notify.generic {
            scripts.push((
                cmd.clone(),
                vec![
                    self.kind.to_owned(),
                    self.name.clone(),
                    state.to_owned(),
                    priority.to_string(),
                ],
            ));
        }
        info!(
            "{} {}: {state} (notify: {} script(s))",
            self.kind,
            self.name,
            scripts.len()
        );
        self.pending.fetch_add(1, Ordering::SeqCst);
        let _ = self.queue.send(Job {
            scripts,
            line: fifo_line(self.kind, &self.name, state, priority),
        });
    }

    /// keepalived's notify_master_rx_lower_pri: we are Active and heard a
    /// lower-priority Active. Its own script, and a fifo line.
    pub fn master_rx_lower_pri(&self, priority: u8) {
        let scripts = self
            .notify
            .master_rx_lower_pri
            .iter()
            .map(|c| (c.clone(), Vec::new()))
            .collect();
        self.pending.fetch_add(1, Ordering::SeqCst);
        let line = fifo_line(self.kind, &self.name, "MASTER_RX_LOWER_PRI", priority);
        let _ = self.queue.send(Job { scripts, line });
    }

    /// Jobs (and mails) not finished yet.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
            + self.mail.as_ref().map_or(0, |(m, _)| m.pending() as usize)
    }
}

/// Opens the fifos named in `n` and the global ones (notify_fifo and
/// vrrp_notify_fifo both get every VRRP line, as keepalived writes them),
/// reusing `open`; a path named twice gets each line once.
pub fn fifos(
    n: &Notify,
    global: &crate::config::model::Global,
    open: &mut Vec<Arc<FifoWriter>>,
) -> Vec<Arc<FifoWriter>> {
    open_each(
        [
            global.notify_fifo.as_ref(),
            global.vrrp_notify_fifo.as_ref(),
            n.fifo.as_ref(),
        ],
        open,
    )
}

/// The fifos virtual_server lines go to: notify_fifo and lvs_notify_fifo.
pub fn lvs_fifos(
    global: &crate::config::model::Global,
    open: &mut Vec<Arc<FifoWriter>>,
) -> Vec<Arc<FifoWriter>> {
    open_each(
        [global.notify_fifo.as_ref(), global.lvs_notify_fifo.as_ref()],
        open,
    )
}

/// Each named fifo once, reusing one already `open` (its script runs once).
fn open_each<'a>(
    named: impl IntoIterator<Item = Option<&'a Fifo>>,
    open: &mut Vec<Arc<FifoWriter>>,
) -> Vec<Arc<FifoWriter>> {
    let mut out: Vec<Arc<FifoWriter>> = Vec::new();
    for f in named.into_iter().flatten() {
        if out.iter().any(|w| w.path == f.path) {
            continue;
        }
        if let Some(w) = open.iter().find(|w| w.path == f.path) {
            out.push(w.clone());
            continue;
        }
        match FifoWriter::open(f) {
            Ok(w) => {
                open.push(w.clone());
                out.push(w);
            }
            Err(e) => warn!("notify_fifo {}: {e}", f.path.display()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_lines_are_keepalived_s() {
        assert_eq!(
            fifo_line("INSTANCE", "VI_1", State::Active.keepalived_name(), 100),
            "INSTANCE \"VI_1\" MASTER 100\n"
        );
        assert_eq!(
            fifo_line("GROUP", "G", State::Fault.keepalived_name(), 0),
            "GROUP \"G\" FAULT 0\n"
        );
        assert_eq!(
            fifo_line("INSTANCE", "VI_1", State::Initialize.keepalived_name(), 90),
            "INSTANCE \"VI_1\" STOP 90\n"
        );
    }
}
