//! Running commands from xtask, loudly.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _};

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent")
        .to_path_buf()
}

/// Runs `cmd` with its output on the terminal; fails when it fails.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("+ {}", show(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("starting {}", show(cmd)))?;
    if !status.success() {
        bail!("{} failed ({status})", show(cmd));
    }
    Ok(())
}

/// Runs `cmd` and returns its stdout, or None when it fails or is missing.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

pub fn is_root() -> bool {
    // SAFETY-free: read the effective uid from /proc to avoid a libc dependency.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Builds the agent (XDP program embedded); the binary's path.
pub fn build_agent(release: bool) -> anyhow::Result<PathBuf> {
    let mut c = cargo();
    c.args(["build", "-p", "xvrrp"]);
    if release {
        c.arg("--release");
    }
    run(&mut c)?;
    let bin = root()
        .join("target")
        .join(if release { "release" } else { "debug" })
        .join("xvrrp");
    if release {
        // The release profile strips the DWARF into xvrrp.dwp beside it.
        let size = std::fs::metadata(&bin)?.len();
        eprintln!(
            "xtask: {} is {:.1} MB stripped (debug info in xvrrp.dwp)",
            bin.display(),
            size as f64 / 1e6
        );
        anyhow::ensure!(
            size <= RELEASE_SIZE_LIMIT,
            "the release binary is {size} bytes, above the {RELEASE_SIZE_LIMIT}-byte budget: \
             check the release profile (strip, lto) and the XDP object's DWARF strip in agent/build.rs"
        );
    }
    Ok(bin)
}

/// The installed binary's budget (README): both halves of keepalived.
pub const RELEASE_SIZE_LIMIT: u64 = 9_000_000;

/// Builds the agent and runs it as root (aya's `cargo xtask run` convention).
pub fn run_agent(release: bool, args: &[String]) -> anyhow::Result<()> {
    let bin = build_agent(release)?;
    let mut c = if is_root() {
        Command::new(&bin)
    } else {
        let mut s = Command::new("sudo");
        s.arg("-E").arg(&bin);
        s
    };
    c.args(args);
    run(&mut c)
}
