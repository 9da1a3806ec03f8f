//! use_vmac: a macvlan carrying the VRRP virtual MAC (RFC 9568 §7.3), as
//! keepalived makes it: private mode on the VRRP interface, IPv6 address
//! generation random, and keepalived's sysctls on it and on its parent
//! (the parent's are restored when the vmac goes).

use std::{
    collections::HashMap,
    io,
    sync::{Mutex, OnceLock},
};

use anyhow::{bail, Context as _};
use tracing::{info, warn};

use super::rtnl::{attr, finish, transact, CREATE_EXCL};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINK: u16 = 5;
const IFLA_LINKINFO: u16 = 18;
const IFLA_AF_SPEC: u16 = 26;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_MACVLAN_MODE: u16 = 1;
const MACVLAN_MODE_PRIVATE: u32 = 1;
const IFLA_INET6_ADDR_GEN_MODE: u16 = 8;
const IN6_ADDR_GEN_MODE_RANDOM: u8 = 3;
const NLA_F_NESTED: u16 = 0x8000;

fn ifinfo(m: &mut Vec<u8>, index: u32, flags: u32, change: u32) {
    m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    m.extend_from_slice(&(index as i32).to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&change.to_ne_bytes());
}

fn nested(kind: u16, build: impl FnOnce(&mut Vec<u8>)) -> (u16, Vec<u8>) {
    let mut inner = Vec::new();
    build(&mut inner);
    (kind | NLA_F_NESTED, inner)
}

fn create_request(name: &str, parent: u32, mac: [u8; 6]) -> Vec<u8> {
    let mut m = vec![0u8; 16];
    ifinfo(&mut m, 0, 0, 0);
    let mut n = name.as_bytes().to_vec();
    n.push(0);
    attr(&mut m, IFLA_IFNAME, &n);
    attr(&mut m, IFLA_LINK, &parent.to_ne_bytes());
    attr(&mut m, IFLA_ADDRESS, &mac);
    let (data_kind, data) = nested(IFLA_INFO_DATA, |d| {
        attr(d, IFLA_MACVLAN_MODE, &MACVLAN_MODE_PRIVATE.to_ne_bytes())
    });
    let (info_kind, info) = nested(IFLA_LINKINFO, |i| {
        attr(i, IFLA_INFO_KIND, b"macvlan");
        attr(i, data_kind, &data);
    });
    attr(&mut m, info_kind, &info);
    finish(m, RTM_NEWLINK, CREATE_EXCL)
}

/// IPv6 link-local from a random interface id, not from the virtual MAC
/// that every router of the VRID shares.
fn addrgenmode_random(ifindex: u32) -> Vec<u8> {
    let mut m = vec![0u8; 16];
    ifinfo(&mut m, ifindex, 0, 0);
    let (inet6_kind, inet6) = nested(libc::AF_INET6 as u16, |i| {
        attr(i, IFLA_INET6_ADDR_GEN_MODE, &[IN6_ADDR_GEN_MODE_RANDOM])
    });
    let (spec_kind, spec) = nested(IFLA_AF_SPEC, |s| attr(s, inet6_kind, &inet6));
    attr(&mut m, spec_kind, &spec);
    finish(m, RTM_NEWLINK, 0)
}

fn errno(e: i32, what: &str) -> io::Result<()> {
    match e {
        0 => Ok(()),
        e => Err(io::Error::other(format!(
            "{what}: {}",
            io::Error::from_raw_os_error(e)
        ))),
    }
}

fn sysctl_path(ifname: &str, key: &str) -> String {
    format!("/proc/sys/net/ipv4/conf/{ifname}/{key}")
}

fn sysctl(ifname: &str, key: &str, value: &str) -> Option<String> {
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
        let mut created = true;
        match transact(&create_request(name, parent_index, mac))? {
            0 => info!(
                "created {name} on {parent} with MAC {}",
                super::probe::format_mac(&mac)
            ),
            libc::EEXIST => {
                let have = super::iface::mac(name)?;
                if have != mac {
                    bail!("{name} exists with MAC {} instead of {}: remove it (`ip link del {name}`) or name another with `use_vmac NAME`", super::probe::format_mac(&have), super::probe::format_mac(&mac));
                }
                created = false;
            }
            e => errno(e, "creating the macvlan")
                .with_context(|| format!("use_vmac {name} on {parent}"))?,
        }
        let ifindex = super::iface::ifindex(name)?;
        if ipv6 && created {
            errno(
                transact(&addrgenmode_random(ifindex))?,
                "setting addrgenmode random",
            )?;
        }
        let mut up = vec![0u8; 16];
        ifinfo(&mut up, ifindex, libc::IFF_UP as u32, libc::IFF_UP as u32);
        errno(
            transact(&finish(up, RTM_NEWLINK, 0))?,
            "setting the vmac up",
        )?;
        // keepalived's settings: the vmac answers ARP only for its own
        // addresses, accepts our own multicast back, no reverse-path filter …
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
            let mut m = vec![0u8; 16];
            ifinfo(&mut m, self.ifindex, 0, 0);
            if let Err(e) =
                transact(&finish(m, RTM_DELLINK, 0)).and_then(|e| errno(e, "deleting the vmac"))
            {
                warn!("{}: {e}", self.name);
            }
        }
    }
}
