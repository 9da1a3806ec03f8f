//! Test topology helpers: network namespaces with unique names that are torn
//! down on drop (so also when a test panics), processes killed on drop, and
//! raw frames sent from inside a namespace. Every wait here is bounded.

use std::{
    fs::File,
    os::fd::AsRawFd as _,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

pub mod capture;
pub mod decap;
pub mod farm;
pub mod impair;
pub mod lan;
pub mod lbpkt;
pub mod watch;
pub mod xdpasm;

/// A xorshift64 generator: fixed seeds make "random" test traffic the same
/// on every run.
pub fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

/// Fails loudly when not root: these tests need namespaces and BPF.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!(
            "the integration tests need root (network namespaces, BPF): run `sudo cargo xtask test`"
        );
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A short unique tag for names in this test process: `<pid%100000><seq>`.
pub fn unique(tag: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{}{}{}", tag, std::process::id() % 100_000, n)
}

/// Runs a command to completion; an error carries its stderr.
pub fn sh(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A network namespace, deleted (with every interface in it) on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> anyhow::Result<Netns> {
        let name = format!("xvt-{}", unique(tag));
        sh("ip", &["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `ip -n NAME ARGS...`
    pub fn ip(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        sh("ip", &full)
    }

    /// Runs a command inside the namespace to completion.
    pub fn exec(&self, program: &str, args: &[&str]) -> anyhow::Result<String> {
        let mut full = vec!["netns", "exec", self.name.as_str(), program];
        full.extend_from_slice(args);
        sh("ip", &full)
    }

    /// Starts a long-running process inside the namespace, output to `log`.
    pub fn spawn(&self, program: &str, args: &[&str], log: &PathBuf) -> anyhow::Result<Proc> {
        self.spawn_env(program, args, &[], log)
    }

    /// `spawn` with extra environment variables.
    pub fn spawn_env(
        &self,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
        log: &PathBuf,
    ) -> anyhow::Result<Proc> {
        let out = File::create(log)?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .envs(env.iter().copied())
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {program} in {}", self.name))?;
        Ok(Proc {
            child: Some(child),
            log: log.clone(),
        })
    }

    /// Runs `f` on a thread that has entered this namespace; sockets and BPF
    /// attachments it makes belong to the namespace.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let name = self.name.clone();
        thread::spawn(move || {
            enter_netns(&name)?;
            f()
        })
        .join()
        .map_err(|_| anyhow::anyhow!("namespace thread panicked"))?
    }

    /// The interface's MAC address.
    pub fn mac(&self, ifname: &str) -> anyhow::Result<[u8; 6]> {
        let text = self.exec("cat", &[&format!("/sys/class/net/{ifname}/address")])?;
        parse_mac(text.trim())
    }
}

/// Moves the calling thread into the network namespace `name`: sockets and
/// BPF attachments it makes from then on belong to the namespace.
pub fn enter_netns(name: &str) -> anyhow::Result<()> {
    let path = format!("/run/netns/{name}");
    let file = File::open(&path).with_context(|| format!("opening {path}"))?;
    // SAFETY: a valid namespace fd; affects only this thread.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!("setns {path}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// `XVRRP_TEST_XDP_MODE=off`: the scenarios run on the agent's socket path.
pub fn socket_path() -> bool {
    std::env::var("XVRRP_TEST_XDP_MODE").is_ok_and(|m| m == "off")
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
            .map(|out| {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            });
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

pub fn parse_mac(s: &str) -> anyhow::Result<[u8; 6]> {
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .with_context(|| format!("MAC {s:?}"))?;
    parts
        .try_into()
        .map_err(|_| anyhow::anyhow!("MAC {s:?} is not 6 bytes"))
}

/// A veth pair between two namespaces, both ends up. Returns the end names.
pub fn veth(
    a: &Netns,
    a_addrs: &[&str],
    b: &Netns,
    b_addrs: &[&str],
) -> anyhow::Result<(String, String)> {
    let base = unique("v");
    let (ea, eb) = (format!("{base}a"), format!("{base}b"));
    anyhow::ensure!(ea.len() <= 15, "interface name {ea} too long");
    sh(
        "ip",
        &[
            "link", "add", &ea, "netns", &a.name, "type", "veth", "peer", "name", &eb, "netns",
            &b.name,
        ],
    )?;
    for (ns, end, addrs) in [(a, &ea, a_addrs), (b, &eb, b_addrs)] {
        for addr in addrs {
            ns.ip(&["addr", "add", addr, "dev", end, "nodad"])?;
        }
        ns.ip(&["link", "set", end, "up"])?;
    }
    Ok((ea, eb))
}

/// A child process killed (SIGKILL) and reaped on drop.
pub struct Proc {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends a signal (libc number).
    pub fn signal(&self, sig: i32) {
        if let Some(child) = &self.child {
            // `ip netns exec` execs the program, so the pid is the program's.
            // SAFETY: plain kill(2).
            unsafe { libc::kill(child.id() as i32, sig) };
        }
    }

    /// Waits up to `limit` for the process to exit; its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status.code().unwrap_or(-1));
            }
            // Short polls: a restart test restarts the agent as soon as the
            // old one is gone (the budget at 10 ms adverts is ~30 ms).
            thread::sleep(Duration::from_millis(1));
        }
        None
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `limit` for `needle` to appear in the log.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> bool {
        wait_until(limit, || self.log_text().contains(needle))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The xvrrp binary: $XVRRP_BIN, else the workspace's target/debug/xvrrp.
pub fn xvrrp_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("XVRRP_BIN") {
        return p.into();
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/xvrrp");
    assert!(
        p.exists(),
        "{} not built: run `cargo build -p xvrrp` (cargo xtask test does)",
        p.display()
    );
    p
}

/// A directory for logs of one test, under the target directory.
pub fn log_dir(test: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/test-logs")
        .join(unique(test));
    std::fs::create_dir_all(&d).expect("creating the log directory");
    d
}
