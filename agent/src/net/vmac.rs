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

/// use_vmac's `group` and `netlink_notify_msg`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkOptions {
    /// The interface group of a vmac this agent creates (None: its
    /// parent's, as keepalived copies it so devgroup/iifgroup firewall
    /// rules keep matching).
    pub group: Option<u32>,
    /// keepalived's netlink_notify_msg: the kernel sends no RTM_NEWLINK for
    /// the parent when a macvlan appears on it; setting the parent's group
    /// to what it is makes one, for listeners that need it.
    pub notify_parent: bool,
}

/// A sysfs attribute of a link, trimmed.
fn link_attr(ifname: &str, attr: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/{attr}"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The name of an address vmac (use_vmac_addr, or `use_vmac` on an address
/// line) on `parent`: the macvlan already there with `mac` (a restart or a
/// reload finds its own), else keepalived's first free name: PREFIX.VRID,
/// then PREFIX1.VRID, PREFIX2.VRID… (IPv6 tries PREFIX6.VRID second and
/// skips 6 later), the prefix cut so the name fits 15 characters.
pub fn addr_vmac_name(parent: u32, mac: [u8; 6], ipv6: bool, prefix: &str, vrid: u8) -> String {
    let mac_text = super::probe::format_mac(&mac).to_lowercase();
    if let Ok(dir) = std::fs::read_dir("/sys/class/net") {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if link_attr(&name, "iflink").and_then(|i| i.parse::<u32>().ok()) == Some(parent)
                && link_attr(&name, "ifindex").and_then(|i| i.parse::<u32>().ok()) != Some(parent)
                && link_attr(&name, "address").as_deref() == Some(mac_text.as_str())
            {
                return name;
            }
        }
    }
    let fit = |num: Option<u32>| {
        let tail = format!("{}.{vrid}", num.map(|n| n.to_string()).unwrap_or_default());
        let keep = prefix.len().min(15usize.saturating_sub(tail.len()));
        format!("{}{tail}", &prefix[..keep])
    };
    let mut num: Option<u32> = None;
    loop {
        let name = fit(num);
        if link_attr(&name, "ifindex").is_none()
            && !registry().lock().expect("registry").contains_key(&name)
        {
            return name;
        }
        num = Some(match (ipv6, num) {
            (true, None) => 6,
            (true, Some(6)) => 1,
            (true, Some(5)) => 7,
            (_, None) => 1,
            (_, Some(n)) if n >= 9999 => return name,
            (_, Some(n)) => n + 1,
        });
    }
}

/// A macvlan that lives as long as its last handle.
pub struct Vmac {
    pub name: String,
    pub ifindex: u32,
    pub mac: [u8; 6],
    parent: String,
    parent_index: u32,
    restore: Vec<(String, String)>,
}

impl Vmac {
    /// Creates (or adopts, when it exists with this MAC) the vmac on `parent`.
    pub fn create(
        parent: &str,
        name: &str,
        mac: [u8; 6],
        ipv6: bool,
        options: LinkOptions,
    ) -> anyhow::Result<Vmac> {
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
        if created {
            let parent_group =
                link_attr(parent, "netdev_group").and_then(|g| g.parse::<u32>().ok());
            if let Some(group) = options.group.or(parent_group) {
                rtnl::set_group(ifindex, group)
                    .with_context(|| format!("{name}: setting interface group {group}"))?;
            }
            if options.notify_parent {
                if let Some(group) = parent_group {
                    rtnl::set_group(parent_index, group).with_context(|| {
                        format!("{parent}: netlink_notify_msg (setting its group again)")
                    })?;
                }
            }
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
            mac,
            parent: parent.to_owned(),
            parent_index,
            restore,
        })
    }

    /// The index of the link it sits on.
    pub fn parent_index(&self) -> u32 {
        self.parent_index
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
