//! use_vmac: a macvlan carrying the VRRP virtual MAC (RFC 9568 §7.3), as
//! keepalived makes it: private mode on the VRRP interface, IPv6 address
//! generation random, and keepalived's sysctls on it and on its parent
//! (the parent's are restored when the vmac goes).

use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
};

use anyhow::{bail, Context as _};
use tracing::{info, warn};

use super::rtnl;

fn sysctl_path(ifname: &str, key: &str) -> String {
    format!("/proc/sys/net/ipv4/conf/{ifname}/{key}")
}

/// Sets net.ipv4.conf.IFNAME.KEY; the old value (None when unreadable).
pub fn sysctl(ifname: &str, key: &str, value: &str) -> Option<String> {
    let path = sysctl_path(ifname, key);
    let old = std::fs::read_to_string(&path).ok()?.trim().to_owned();
    if let Err(e) = std::fs::write(&path, value) {
        warn!("setting {path} = {value}: {e}");
    }
    Some(old)
}

/// Live handles per vmac name, and whether this process created it: during a
/// reload the old and the new instance hold the same vmac for a moment, and
/// only the last handle may delete it.
fn registry() -> &'static Mutex<HashMap<String, (usize, bool)>> {
    static LIVE: OnceLock<Mutex<HashMap<String, (usize, bool)>>> = OnceLock::new();
    LIVE.get_or_init(Default::default)
}

/// A macvlan that lives as long as its last handle.
pub struct Vmac {
    pub name: String,
    pub ifindex: u32,
    parent: String,
    restore: Vec<(String, String)>,
}

impl Vmac {
    /// Creates (or adopts, when it exists with this MAC) the vmac on `parent`.
    pub fn create(parent: &str, name: &str, mac: [u8; 6], ipv6: bool) -> anyhow::Result<Vmac> {
        if name.len() > 15 {
            bail!("use_vmac name {name:?} is longer than 15 characters");
        }
        let parent_index = super::iface::ifindex(parent)?;
        let created = rtnl::add_macvlan(name, parent_index, mac)
            .with_context(|| format!("use_vmac {name} on {parent}: creating the macvlan"))?;
        if created {
            info!(
                "created {name} on {parent} with MAC {}",
                super::probe::format_mac(&mac)
            );
        } else {
            let have = super::iface::mac(name)?;
            if have != mac {
                bail!("{name} exists with MAC {} instead of {}: remove it (`ip link del {name}`) or name another with `use_vmac NAME`", super::probe::format_mac(&have), super::probe::format_mac(&mac));
            }
        }
        let ifindex = super::iface::ifindex(name)?;
        if ipv6 && created {
            rtnl::set_addrgenmode_random(ifindex)
                .with_context(|| format!("{name}: setting addrgenmode random"))?;
        }
        rtnl::set_up(ifindex).with_context(|| format!("{name}: setting the vmac up"))?;
        for (k, v) in [
            ("arp_ignore", "1"),
            ("accept_local", "1"),
            ("rp_filter", "0"),
        ] {
            sysctl(name, k, v);
        }
        // … and the parent stops answering for the VIPs the vmac holds.
        let mut restore = Vec::new();
        for (k, v) in [("arp_ignore", "1"), ("arp_filter", "1")] {
            if let Some(old) = sysctl(parent, k, v) {
                restore.push((k.to_owned(), old));
            }
        }
        let mut live = registry().lock().expect("registry");
        let entry = live.entry(name.to_owned()).or_insert((0, false));
        entry.0 += 1;
        entry.1 |= created;
        Ok(Vmac {
            name: name.to_owned(),
            ifindex,
            parent: parent.to_owned(),
            restore,
        })
    }
}

impl Drop for Vmac {
    fn drop(&mut self) {
        let mut live = registry().lock().expect("registry");
        let Some(entry) = live.get_mut(&self.name) else {
            return;
        };
        entry.0 -= 1;
        if entry.0 > 0 {
            return;
        }
        let created = entry.1;
        live.remove(&self.name);
        for (k, v) in &self.restore {
            let _ = std::fs::write(sysctl_path(&self.parent, k), v);
        }
        if created {
            if let Err(e) = rtnl::delete_link(self.ifindex) {
                warn!("{}: deleting the vmac: {e}", self.name);
            }
        }
    }
}
