//! `cargo xtask fuzz`: every cargo-fuzz target of agent/fuzz, one after the
//! other, each bounded in time. A crash fails the run and leaves its input
//! under agent/fuzz/artifacts/.

use std::process::Command;

use crate::cmd::{root, run};

pub const TARGETS: &[&str] = &["vrrp", "frame", "icmpv6", "config"];

pub fn main(seconds: u32) -> anyhow::Result<()> {
    for target in TARGETS {
        run(Command::new("cargo")
            .current_dir(root().join("agent"))
            // Only host code is fuzzed: skip building the XDP object.
            .env("AYA_BUILD_SKIP", "1")
            .args(["+nightly", "fuzz", "run", target, "--"])
            .arg(format!("-max_total_time={seconds}")))?;
    }
    Ok(())
}
