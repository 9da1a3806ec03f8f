//! Status and metrics over a root-only unix socket. The daemon publishes a
//! `Status` snapshot after every event; a connection gets it as JSON and the
//! `xvrrp status` client renders it (table, JSON or Prometheus text).

pub mod render;

use std::{
    collections::BTreeMap,
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::{io::AsyncWriteExt as _, net::UnixListener};

/// What `xvrrp status` shows.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Status {
    pub pid: u32,
    pub config: String,
    pub instances: Vec<InstanceStatus>,
    /// Daemon-wide counters (adverts invalid by reason, unknown VRIDs, …).
    pub counters: BTreeMap<String, u64>,
    /// The XDP program per interface: mode and per-CPU counters summed.
    #[serde(default)]
    pub xdp: Vec<XdpStatus>,
    /// Per interface: whether the host falls silent at layer 2 when the
    /// agent dies (kill -9, crash), and why (docs/design.md rule 4).
    #[serde(default)]
    pub fail_silent: Vec<FailSilent>,
    /// virtual_server: pools, real servers, checkers, traffic.
    #[serde(default)]
    pub virtual_servers: Vec<crate::lvs::engine::VsStatus>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FailSilent {
    pub interface: String,
    pub on: bool,
    pub why: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct XdpStatus {
    pub interface: String,
    pub mode: String,
    /// The attached program's id (`bpftool prog show id N`).
    #[serde(default)]
    pub prog_id: u32,
    pub counters: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InstanceStatus {
    pub name: String,
    pub group: Option<String>,
    pub interface: String,
    pub vrid: u8,
    pub family: String,
    pub version: u8,
    pub state: String,
    pub priority: u8,
    pub configured_priority: u8,
    /// The Active we follow (or ourselves when Active).
    pub active: Option<String>,
    pub last_transition: Option<Transition>,
    pub vips: Vec<String>,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub transitions: u64,
    /// Adverts not used, by reason.
    pub discarded: BTreeMap<String, u64>,
    /// Tracked items: state, last result, run time, weight contributed.
    #[serde(default)]
    pub checks: Vec<crate::track::CheckStatus>,
    /// Lower-priority Actives heard while Active (split brains healed).
    #[serde(default)]
    pub split_brain: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Transition {
    /// Seconds since the Unix epoch.
    pub at: f64,
    pub from: String,
    pub to: String,
    pub reason: String,
}

/// The runtime directory: per network namespace by default, so that agents
/// in different namespaces on one host never collide.
pub fn runtime_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    let ns = std::fs::metadata("/proc/self/ns/net")
        .map(|m| m.ino())
        .unwrap_or(0);
    PathBuf::from(format!("/run/xvrrp/netns-{ns}"))
}

pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join("xvrrp.sock")
}

/// Holds the single-instance lock of a runtime directory.
pub struct Lock {
    _file: nix::fcntl::Flock<std::fs::File>,
}

/// How long `lock` waits for a previous agent to release the lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Creates the runtime directory (0700) and takes its lock.
pub fn lock(dir: &Path) -> anyhow::Result<Lock> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let path = dir.join("xvrrp.lock");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    // A restart may start before the killed agent's exit has released the
    // lock (kill -9 is asynchronous): wait for it a moment, not forever.
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    let file = loop {
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(locked) => break locked,
            Err((f, _)) if std::time::Instant::now() < deadline => {
                file = f;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Err(_) => anyhow::bail!(
                "another xvrrp runs in this network namespace (lock {} is held); stop it first, or give this one its own --runtime-dir",
                path.display()
            ),
        }
    };
    Ok(Lock { _file: file })
}

/// A request for a fresh status, answered by the daemon's loop.
pub type StatusRequest = tokio::sync::oneshot::Sender<Status>;

/// Serves each connection a status built by the daemon's loop on request
/// (never a stale snapshot), until the process exits.
pub async fn serve(
    path: PathBuf,
    requests: tokio::sync::mpsc::Sender<StatusRequest>,
) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(&path);
    let listener =
        UnixListener::bind(&path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    loop {
        let (mut conn, _) = listener.accept().await?;
        let requests = requests.clone();
        tokio::spawn(async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if requests.send(tx).await.is_err() {
                return;
            }
            if let Ok(status) = rx.await {
                let body = serde_json::to_vec(&status).unwrap_or_default();
                let _ = conn.write_all(&body).await;
            }
            let _ = conn.shutdown().await;
        });
    }
}

/// `xvrrp status`: reads the snapshot from the socket.
pub fn fetch(dir: &Path) -> anyhow::Result<Status> {
    use std::io::Read as _;
    let path = socket_path(dir);
    let mut conn = std::os::unix::net::UnixStream::connect(&path).with_context(|| {
        format!(
            "no xvrrp agent answers at {} (is `xvrrp run` running in this network namespace? as root?)",
            path.display()
        )
    })?;
    let mut buf = Vec::new();
    conn.read_to_end(&mut buf)?;
    serde_json::from_slice(&buf).context("the agent's answer is not valid status JSON")
}
