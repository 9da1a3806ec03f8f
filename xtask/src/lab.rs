//! `cargo xtask lab`: the live demo. Two xvrrp routers and a client on a
//! bridge (plus a keepalived router when keepalived is installed), their
//! states shown live; the Active is killed with -9, then the next one stops
//! gracefully; the client's view of who answered ARP for the VIP, and when,
//! is printed as a timeline. Everything it makes is named `xvlab-*` and is
//! removed on exit, also on error.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

use crate::cmd::{self, output, run};

const SWITCH: &str = "xvlab-sw";
const VIP: &str = "10.123.0.100";

struct Router {
    name: &'static str,
    ns: String,
    addr: String,
    prio: u8,
    keepalived: bool,
}

/// Removes every `xvlab-*` namespace (and with it links and processes).
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let list = output(Command::new("ip").args(["netns", "list"])).unwrap_or_default();
        for ns in list
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with("xvlab-"))
        {
            if let Some(pids) = output(Command::new("ip").args(["netns", "pids", ns])) {
                for pid in pids.split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn mac_of(ns: &str) -> String {
    output(Command::new("ip").args(["netns", "exec", ns, "cat", "/sys/class/net/eth0/address"]))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn host(ns: &str, n: usize, addr: &str) -> anyhow::Result<()> {
    ip(&["netns", "add", ns])?;
    ip(&["-n", ns, "link", "set", "lo", "up"])?;
    let (a, b) = (format!("xvl{n}a"), format!("xvl{n}b"));
    ip(&[
        "link", "add", &a, "netns", ns, "type", "veth", "peer", "name", &b, "netns", SWITCH,
    ])?;
    ip(&["-n", SWITCH, "link", "set", &b, "master", "br0", "up"])?;
    ip(&["-n", ns, "link", "set", &a, "name", "eth0"])?;
    ip(&[
        "-n",
        ns,
        "addr",
        "add",
        &format!("{addr}/24"),
        "dev",
        "eth0",
    ])?;
    ip(&["-n", ns, "link", "set", "eth0", "up"])
}

fn conf(dir: &Path, r: &Router) -> anyhow::Result<PathBuf> {
    let p = dir.join(format!("{}.conf", r.name));
    std::fs::write(
        &p,
        format!(
            "vrrp_instance LAB {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority {}\n  advert_int 1\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n",
            r.prio
        ),
    )?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))?;
    Ok(p)
}

/// The router's state: from `xvrrp status`, or keepalived's log.
fn state(bin: &Path, dir: &Path, r: &Router) -> String {
    if r.keepalived {
        let log = std::fs::read_to_string(dir.join(format!("{}.log", r.name))).unwrap_or_default();
        return log
            .lines()
            .rev()
            .find_map(|l| {
                l.split_once("(LAB) Entering ")
                    .map(|(_, s)| s.split_whitespace().next().unwrap_or("").to_owned())
            })
            .map(|s| match s.as_str() {
                "MASTER" => "Active".into(),
                "BACKUP" => "Backup".into(),
                other => other.to_owned(),
            })
            .unwrap_or_else(|| "starting".into());
    }
    let rt = dir.join(format!("rt-{}", r.name));
    output(
        Command::new("ip")
            .args(["netns", "exec", &r.ns])
            .arg(bin)
            .args(["status", "--json", "--runtime-dir"])
            .arg(&rt),
    )
    .and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok())
    .and_then(|v| v["instances"][0]["state"].as_str().map(str::to_owned))
    .unwrap_or_else(|| "down".into())
}

fn pid_in(ns: &str, needle: &str) -> Option<String> {
    let pids = output(Command::new("ip").args(["netns", "pids", ns]))?;
    pids.split_whitespace()
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.contains(needle))
        })
        .map(str::to_owned)
}

pub fn main() -> anyhow::Result<()> {
    anyhow::ensure!(
        cmd::is_root(),
        "the lab makes network namespaces: run `sudo -E cargo xtask lab`"
    );
    let bin = cmd::build_agent(false)?;
    drop(Cleanup); // leftovers of an interrupted run
    let _cleanup = Cleanup;
    let dir = cmd::root().join("target/lab");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;

    ip(&["netns", "add", SWITCH])?;
    ip(&[
        "-n",
        SWITCH,
        "link",
        "add",
        "br0",
        "type",
        "bridge",
        "mcast_snooping",
        "0",
    ])?;
    ip(&["-n", SWITCH, "link", "set", "br0", "up"])?;
    let have_keepalived = output(Command::new("sh").args(["-c", "command -v keepalived"]))
        .is_some_and(|s| !s.trim().is_empty());
    let mut routers = vec![
        Router {
            name: "xvrrp-1",
            ns: "xvlab-r1".into(),
            addr: "10.123.0.1".into(),
            prio: 150,
            keepalived: false,
        },
        Router {
            name: "xvrrp-2",
            ns: "xvlab-r2".into(),
            addr: "10.123.0.2".into(),
            prio: 100,
            keepalived: false,
        },
    ];
    if have_keepalived {
        routers.push(Router {
            name: "keepalived",
            ns: "xvlab-ka".into(),
            addr: "10.123.0.3".into(),
            prio: 50,
            keepalived: true,
        });
    } else {
        eprintln!("lab: keepalived is not installed (`cargo xtask setup` installs it): two xvrrp routers only");
    }
    for (n, r) in routers.iter().enumerate() {
        host(&r.ns, n, &r.addr)?;
    }
    host("xvlab-client", 9, "10.123.0.10")?;

    let mut children: Vec<Child> = Vec::new();
    for r in &routers {
        let c = conf(&dir, r)?;
        let log = std::fs::File::create(dir.join(format!("{}.log", r.name)))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &r.ns]);
        if r.keepalived {
            cmd.args(["keepalived", "-n", "-l", "-D", "--no-syslog", "-f"])
                .arg(&c)
                .arg("-p")
                .arg(dir.join("ka.pid"))
                .arg("-r")
                .arg(dir.join("ka-vrrp.pid"));
        } else {
            cmd.arg(&bin)
                .args(["run", "-c"])
                .arg(&c)
                .arg("--runtime-dir")
                .arg(dir.join(format!("rt-{}", r.name)));
        }
        children.push(
            cmd.stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting {}", r.name))?,
        );
    }
    let macs: BTreeMap<String, &str> = routers.iter().map(|r| (mac_of(&r.ns), r.name)).collect();
    println!(
        "\nlab: VIP {VIP} on a bridge; routers (priority): {}",
        routers
            .iter()
            .map(|r| format!("{} ({}) {}", r.name, r.prio, mac_of(&r.ns)))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // The client asks who has the VIP every 100 ms, for the whole run.
    let probe_log = dir.join("probe.log");
    let mut probe = Command::new("ip")
        .args(["netns", "exec", "xvlab-client"])
        .arg(&bin)
        .args([
            "probe",
            "-i",
            "eth0",
            VIP,
            "--every-ms",
            "100",
            "--count",
            "0",
        ])
        .stdout(std::fs::File::create(&probe_log)?)
        .stderr(Stdio::null())
        .spawn()?;
    let t0 = Instant::now();
    let mut last = String::new();
    let mut show = |secs: u64| {
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            let line = routers
                .iter()
                .map(|r| format!("{}={}", r.name, state(&bin, &dir, r)))
                .collect::<Vec<_>>()
                .join("  ");
            if line != last {
                println!("  +{:>5.1}s  {line}", t0.elapsed().as_secs_f64());
                last = line;
            }
            thread::sleep(Duration::from_millis(200));
        }
    };
    println!("\nlab: starting; states as they change:");
    show(7);
    let active = routers
        .iter()
        .find(|r| state(&bin, &dir, r) == "Active")
        .map(|r| (r.name, r.ns.clone()));
    let Some((name, ns)) = active else {
        bail!("no Active router after 7 s; logs in {}", dir.display())
    };
    println!(
        "\nlab: +{:.1}s kill -9 {name} (the Active)",
        t0.elapsed().as_secs_f64()
    );
    if let Some(pid) = pid_in(&ns, "xvrrp") {
        run(Command::new("kill").args(["-9", &pid]))?;
    }
    show(6);
    if let Some(r) = routers.iter().find(|r| !r.keepalived && r.name != name) {
        println!(
            "\nlab: +{:.1}s SIGTERM {} (graceful: priority 0, VIPs removed)",
            t0.elapsed().as_secs_f64(),
            r.name
        );
        if let Some(pid) = pid_in(&r.ns, "xvrrp") {
            run(Command::new("kill").args(["-TERM", &pid]))?;
        }
        show(4);
    }
    let _ = probe.kill();
    let _ = probe.wait();
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }

    println!("\nlab: who answered the client's ARP for {VIP} (probe every 100 ms):");
    let text = std::fs::read_to_string(&probe_log)?;
    let mut prev: Option<String> = None;
    for line in text.lines() {
        let Some((t, m)) = line.split_once(' ') else {
            continue;
        };
        let t: f64 = t.trim_start_matches('+').parse().unwrap_or(0.0);
        let named = if m == "-" {
            "nobody".to_owned()
        } else {
            m.split(',')
                .map(|mac| format!("{} [{mac}]", macs.get(mac).copied().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(" + ")
        };
        if prev.as_ref() != Some(&named) {
            println!("  +{t:>6.2}s  {named}");
            prev = Some(named);
        }
    }
    println!(
        "\nlab: after kill -9 the dead router keeps its VIP on the interface, but its XDP program (attached through rtnetlink, no bpffs needed) \
         drops ARP for it once the agent's lease runs out (fail silent, docs/design.md rule 4): \
         one answer at a time.\nlab: logs in {}",
        dir.display()
    );
    Ok(())
}
