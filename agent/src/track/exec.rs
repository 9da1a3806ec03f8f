//! Running a configured command the way keepalived does: exec'd directly
//! (through /bin/sh when it is shell syntax), in its own process group, as
//! the script user, killed with its whole group at the timeout.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use crate::config::model::{Command, ScriptUser};

/// How one run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    Exit(i32),
    Signal(i32),
    /// Killed at its timeout.
    Timeout,
    /// Could not be started (missing, not executable, bad user).
    NotRun,
}

impl Outcome {
    pub fn success(self) -> bool {
        self == Outcome::Exit(0)
    }
}

/// uid/gid of a user name (and optional group), from the user database
/// (NSS: may block on a directory service, so callers on the event loop use
/// `lookup_off_loop`).
pub fn lookup(user: &ScriptUser) -> Option<(u32, u32)> {
    let pw = nix::unistd::User::from_name(&user.user).ok()??;
    let gid = match &user.group {
        Some(g) => nix::unistd::Group::from_name(g).ok()??.gid,
        None => pw.gid,
    };
    Some((pw.uid.as_raw(), gid.as_raw()))
}

/// `lookup` on tokio's blocking pool, off the event loop.
pub async fn lookup_off_loop(user: &ScriptUser) -> Option<(u32, u32)> {
    let u = user.clone();
    tokio::task::spawn_blocking(move || lookup(&u))
        .await
        .ok()
        .flatten()
}

/// keepalived runs scripts as `keepalived_script` when that user exists.
pub fn default_user() -> Option<ScriptUser> {
    let u = ScriptUser {
        user: "keepalived_script".into(),
        group: None,
    };
    lookup(&u).map(|_| u)
}

fn is_shell(cmd: &Command) -> bool {
    cmd.text
        .contains(['<', '>', '|', '&', ';', '$', '`', '*', '?'])
        || cmd.argv.first().is_some_and(|a| a.contains(['<', '>']))
}

/// Runs `cmd` (plus `extra` arguments) to completion or `timeout`.
pub async fn run(
    cmd: &Command,
    extra: &[String],
    user: Option<&ScriptUser>,
    timeout: Duration,
) -> (Outcome, Duration) {
    let started = Instant::now();
    let mut c = if is_shell(cmd) {
        let mut c = tokio::process::Command::new("/bin/sh");
        let mut text = cmd.text.clone();
        for e in extra {
            text.push_str(" '");
            text.push_str(&e.replace('\'', "'\\''"));
            text.push('\'');
        }
        c.arg("-c").arg(text);
        c
    } else {
        let mut c = tokio::process::Command::new(&cmd.argv[0]);
        c.args(&cmd.argv[1..]).args(extra);
        c
    };
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    c.process_group(0);
    if let Some(u) = user {
        match lookup_off_loop(u).await {
            Some((uid, gid)) => {
                c.uid(uid).gid(gid);
            }
            None => return (Outcome::NotRun, started.elapsed()),
        }
    }
    let mut child = match c.spawn() {
        Ok(ch) => ch,
        Err(_) => return (Outcome::NotRun, started.elapsed()),
    };
    let pid = child.id();
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => {
            use std::os::unix::process::ExitStatusExt as _;
            let o = match (status.code(), status.signal()) {
                (Some(code), _) => Outcome::Exit(code),
                (None, Some(sig)) => Outcome::Signal(sig),
                _ => Outcome::NotRun,
            };
            (o, started.elapsed())
        }
        Ok(Err(_)) => (Outcome::NotRun, started.elapsed()),
        Err(_) => {
            if let Some(pid) = pid {
                // The whole group: a shell's children die with it.
                // SAFETY: kill(2) on the process group we created.
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            }
            let _ = child.wait().await;
            (Outcome::Timeout, started.elapsed())
        }
    }
}
