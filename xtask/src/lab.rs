//! `cargo xtask lab`: a live demo in network namespaces. Everything it makes
//! carries the `xvlab-` prefix and is removed on exit, also on error.

use std::{
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::Context as _;

use crate::cmd::{self, output, run};

const ROUTER: &str = "xvlab-xvrrp";
const PEER: &str = "xvlab-keepalived";

/// Removes the lab's namespaces (and with them its links and processes).
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        for ns in [ROUTER, PEER] {
            if let Some(pids) = output(Command::new("ip").args(["netns", "pids", ns])) {
                for pid in pids.split_whitespace() {
                    let _ = Command::new("kill").args(["-TERM", pid]).status();
                }
            }
        }
        thread::sleep(Duration::from_millis(300));
        for ns in [ROUTER, PEER] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        eprintln!("lab: cleaned up");
    }
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    run(Command::new("ip").args(args))
}

pub fn main() -> anyhow::Result<()> {
    anyhow::ensure!(
        cmd::is_root(),
        "the lab makes network namespaces: run `sudo -E cargo xtask lab`"
    );
    let bin = cmd::build_agent(false)?;
    // Leftovers of an interrupted run.
    drop(Cleanup);
    let _cleanup = Cleanup;
    ip(&["netns", "add", ROUTER])?;
    ip(&["netns", "add", PEER])?;
    ip(&[
        "link", "add", "xvlab0", "netns", ROUTER, "type", "veth", "peer", "name", "xvlab1",
        "netns", PEER,
    ])?;
    ip(&[
        "-n",
        ROUTER,
        "addr",
        "add",
        "10.123.0.1/24",
        "dev",
        "xvlab0",
    ])?;
    ip(&["-n", PEER, "addr", "add", "10.123.0.2/24", "dev", "xvlab1"])?;
    ip(&["-n", ROUTER, "link", "set", "xvlab0", "up"])?;
    ip(&["-n", PEER, "link", "set", "xvlab1", "up"])?;

    eprintln!("lab: xvrrp's XDP program watches xvlab0 in {ROUTER}");
    let mut agent: Child = Command::new("ip")
        .args(["netns", "exec", ROUTER])
        .arg(&bin)
        .args(["run", "--interface", "xvlab0"])
        .spawn()
        .context("starting xvrrp")?;

    let keepalived = which("keepalived");
    let mut peer = None;
    if let Some(ka) = keepalived {
        let dir = std::env::temp_dir().join("xvlab");
        std::fs::create_dir_all(&dir)?;
        let conf = dir.join("keepalived.conf");
        std::fs::write(
            &conf,
            "vrrp_instance LAB {\n  state MASTER\n  interface xvlab1\n  virtual_router_id 51\n  \
             priority 150\n  advert_int 1\n  virtual_ipaddress {\n    10.123.0.100/24\n  }\n}\n",
        )?;
        eprintln!("lab: a real keepalived in {PEER} advertises VRID 51");
        peer = Some(
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    PEER,
                    &ka,
                    "-n",
                    "-l",
                    "-D",
                    "--no-syslog",
                    "-f",
                ])
                .arg(&conf)
                .arg("-p")
                .arg(dir.join("ka.pid"))
                .arg("-r")
                .arg(dir.join("vrrp.pid"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting keepalived")?,
        );
    } else {
        eprintln!(
            "lab: keepalived is not installed (cargo xtask setup installs it); no peer adverts"
        );
    }
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        thread::sleep(Duration::from_millis(200));
    }
    if let Some(mut p) = peer {
        let _ = p.kill();
        let _ = p.wait();
    }
    // SIGINT the agent: it detaches and prints its counters.
    let _ = Command::new("kill")
        .args(["-INT", &agent.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if agent.try_wait()?.is_some() {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = agent.kill();
    let _ = agent.wait();
    Ok(())
}

fn which(program: &str) -> Option<String> {
    output(Command::new("sh").args(["-c", &format!("command -v {program}")]))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}
