//! `cargo xtask bench`: builds the agent and the benchmark in release mode
//! and runs it as root (tests/src/bin/xvrrp-bench.rs does the work: xvrrp
//! against keepalived in namespaces, docs/bench/RESULTS.md and SVG plots).

use anyhow::bail;

use crate::cmd::{self, cargo, run};

pub fn main(args: &[String]) -> anyhow::Result<()> {
    if !cmd::is_root() {
        bail!(
            "the benchmark needs root (network namespaces, XDP): run `sudo -E cargo xtask bench`"
        );
    }
    if std::process::Command::new("keepalived")
        .arg("--version")
        .output()
        .is_err()
    {
        bail!(
            "keepalived is not installed: run `cargo xtask setup` (it installs Debian's package)"
        );
    }
    let agent = cmd::build_agent(true)?;
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "xvrrp-tests",
        "--features",
        "bench",
        "--bin",
        "xvrrp-bench",
    ]))?;
    let bench = cmd::root().join("target/release/xvrrp-bench");
    run(std::process::Command::new(bench)
        .env("XVRRP_BIN", agent)
        .current_dir(cmd::root())
        .args(args))
}
