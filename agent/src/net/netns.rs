//! keepalived's `net_namespace NAME`: the agent runs in the named network
//! namespace as `ip netns exec NAME` would run it — the network namespace
//! entered, and a private mount namespace with /sys mounted afresh so that
//! /sys/class/net shows that namespace's interfaces. Done first thing, on
//! the one thread that exists then (setns and unshare are per thread: every
//! thread started later inherits them).

use std::fs::File;

use anyhow::Context as _;
use nix::{
    mount::{mount, umount2, MntFlags, MsFlags},
    sched::{setns, unshare, CloneFlags},
};

/// Enters /run/netns/NAME (made by `ip netns add NAME`).
pub fn enter(name: &str) -> anyhow::Result<()> {
    let path = format!("/run/netns/{name}");
    let ns = File::open(&path).with_context(|| {
        format!("net_namespace {name}: cannot open {path} (create it with `ip netns add {name}`)")
    })?;
    setns(ns, CloneFlags::CLONE_NEWNET).with_context(|| format!("net_namespace {name}: setns"))?;
    unshare(CloneFlags::CLONE_NEWNS).context("net_namespace: a private mount namespace")?;
    // Mounts made here stay here (iproute2's netns_switch does the same).
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .context("net_namespace: making / a slave mount")?;
    // /sys shows the namespace that mounted it: mount one for this one.
    let _ = umount2("/sys", MntFlags::MNT_DETACH);
    mount(
        Some(name),
        "/sys",
        Some("sysfs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .context("net_namespace: mounting /sys for the namespace")?;
    Ok(())
}
