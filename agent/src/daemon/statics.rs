//! keepalived's `static_ipaddress`, `static_routes` and `static_rules`: set
//! when the agent starts whatever the instances' states, reinstated when the
//! kernel dropped them (an interface went down and up), the difference
//! applied on reload, removed at a clean stop. A hitless restart (SIGQUIT)
//! leaves them, as it leaves the VIPs.

use tracing::{error, info};

use crate::{
    config::model::{minus, Config, Entry, Route, Rule},
    net::{iface, rtnl},
};

/// The static entries of one config, addresses resolved to interfaces.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Statics {
    addresses: Vec<rtnl::Address>,
    routes: Vec<Route>,
    rules: Vec<Rule>,
}

impl Statics {
    /// The config's static entries. An address whose interface does not
    /// exist is left out with an error (keepalived waits for it to appear).
    pub fn of(cfg: &Config) -> Statics {
        let mut addresses = Vec::new();
        for a in &cfg.statics.addresses {
            let dev = a
                .dev
                .clone()
                .unwrap_or_else(|| cfg.global.static_interface());
            match iface::ifindex(&dev) {
                Ok(ifindex) => addresses.push(super::build::address(a, ifindex)),
                Err(e) => {
                    error!(addr = %a.addr, "static_ipaddress on {dev}: {e:#}; the address is not set")
                }
            }
        }
        Statics {
            addresses,
            routes: cfg.statics.routes.clone(),
            rules: cfg.statics.rules.clone(),
        }
    }

    /// Sets every entry (present already is fine): addresses first, since a
    /// route's source or gateway may need one, then routes, then rules.
    pub fn apply(&self) {
        for a in &self.addresses {
            match rtnl::add(a) {
                Ok(true) => info!(addr = %a.addr, "static address set"),
                Ok(false) => {}
                Err(e) => error!(addr = %a.addr, "setting static address: {e}"),
            }
        }
        for r in &self.routes {
            match rtnl::add_route(r) {
                Ok(true) => info!(route = %format!("{}/{}", r.dst, r.prefix), "static route set"),
                Ok(false) => {}
                Err(e) => {
                    error!(route = %format!("{}/{}", r.dst, r.prefix), "setting static route: {e}")
                }
            }
        }
        for r in &self.rules {
            if let Err(e) = rtnl::add_rule(r) {
                error!("setting static rule: {e}");
            }
        }
    }

    /// Removes every entry, in the reverse order.
    pub fn remove(&self) {
        for r in &self.rules {
            if let Err(e) = rtnl::remove_rule(r) {
                error!("removing static rule: {e}");
            }
        }
        for r in &self.routes {
            if let Err(e) = rtnl::remove_route(r) {
                error!(route = %format!("{}/{}", r.dst, r.prefix), "removing static route: {e}");
            }
        }
        for a in &self.addresses {
            if let Err(e) = rtnl::remove(a) {
                error!(addr = %a.addr, "removing static address: {e}");
            }
        }
    }

    /// A reload: what the new config no longer has is removed, then the new
    /// set applied (keepalived's clear_diff_static_*).
    pub fn reload(&mut self, new: Statics) {
        let gone = Statics {
            addresses: minus(&self.addresses, &new.addresses),
            routes: minus(&self.routes, &new.routes),
            rules: minus(&self.rules, &new.rules),
        };
        gone.remove();
        new.apply();
        *self = new;
    }
}

impl Entry for rtnl::Address {
    fn without_pos(&self) -> Self {
        self.clone()
    }
}
