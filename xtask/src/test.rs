//! `cargo xtask test`: the whole suite, privileged tests included. It fails
//! (never skips) when it cannot run something.

use anyhow::bail;

use crate::cmd::{self, cargo, run};

pub fn main(filter: Option<&str>) -> anyhow::Result<()> {
    if !cmd::is_root() {
        bail!(
            "the integration tests need root (network namespaces, XDP, raw sockets): \
             run `sudo -E cargo xtask test`"
        );
    }
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        // The bench binary and the fuzz bodies are behind features.
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The namespace tests run the agent as it ships (release): a debug
    // build sending 25,500 adverts/s (255 VRs at 10 ms) takes most of a
    // core, and a 36 ms stall of it on a noisy 2-vCPU machine is a real
    // Active_Down expiry on the Backup under test.
    let agent = cmd::build_agent(true)?;
    // The package test installs this (tests/tests/package.rs).
    let deb = crate::deb::build()?;
    let mut test = cargo();
    test.env("XVRRP_BIN", &agent)
        .env("XVRRP_DEB", &deb)
        .args(["test", "--workspace"]);
    if let Some(f) = filter {
        test.arg(f);
        return run(&mut test);
    }
    run(&mut test)?;
    // The socket path (no XDP) must pass the same scenarios.
    run(cargo()
        .env("XVRRP_BIN", &agent)
        .env("XVRRP_TEST_XDP_MODE", "off")
        .args([
            "test",
            "-p",
            "xvrrp-tests",
            "--test",
            "agent",
            "--test",
            "interop",
            "--test",
            "health",
            "--test",
            "chaos",
        ]))?;
    crate::fuzz::main(FUZZ_SECONDS_IN_TEST)
}

/// Each fuzz target runs this long in `cargo xtask test` (a smoke run; use
/// `cargo xtask fuzz --seconds N` for real campaigns).
const FUZZ_SECONDS_IN_TEST: u32 = 10;
