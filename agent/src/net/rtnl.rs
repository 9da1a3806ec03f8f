//! Addresses and links through rtnetlink (the rust-netlink crates), from
//! the election's synchronous event loop.
//!
//! rtnetlink's handle is async and needs its connection polled. The event
//! loop applies address changes inside a transition (advert, then VIPs, then
//! GARP: keepalived's order) and cannot await there, so one netlink thread
//! per network namespace owns a connection on its own current-thread runtime
//! and the loop waits for each answer, 2 s at most (a lost answer must not
//! hang the agent), as it waited on a socket of its own before.

use std::{
    collections::HashMap,
    future::Future,
    io,
    net::{IpAddr, Ipv4Addr},
    os::unix::fs::MetadataExt as _,
    pin::Pin,
    sync::{Mutex, OnceLock},
    time::Duration,
};

use rtnetlink::{
    packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope},
    Handle,
};

/// How long a caller waits for the kernel's answer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

type Job = Box<dyn FnOnce(Handle) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// The netlink thread of the calling thread's network namespace (setns is
/// per thread; a new thread starts in its creator's namespace).
fn worker() -> io::Result<tokio::sync::mpsc::UnboundedSender<Job>> {
    static WORKERS: OnceLock<Mutex<HashMap<u64, tokio::sync::mpsc::UnboundedSender<Job>>>> =
        OnceLock::new();
    let netns = std::fs::metadata("/proc/thread-self/ns/net")?.ino();
    let mut workers = WORKERS
        .get_or_init(Default::default)
        .lock()
        .expect("rtnl workers");
    if let Some(tx) = workers.get(&netns).filter(|tx| !tx.is_closed()) {
        return Ok(tx.clone());
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("rtnetlink".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return drop(ready_tx.send(Err(e))),
            };
            rt.block_on(async move {
                let (conn, handle, _) = match rtnetlink::new_connection() {
                    Ok(c) => c,
                    Err(e) => return drop(ready_tx.send(Err(e))),
                };
                tokio::spawn(conn);
                let _ = ready_tx.send(Ok(()));
                while let Some(job) = rx.recv().await {
                    job(handle.clone()).await;
                }
            });
        })?;
    ready_rx
        .recv_timeout(REPLY_TIMEOUT)
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "rtnetlink thread did not start"))??;
    workers.insert(netns, tx.clone());
    Ok(tx)
}

/// Runs `request` on the netlink thread and waits for its result.
fn call<T, F>(what: &str, request: impl FnOnce(Handle) -> F + Send + 'static) -> io::Result<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T, rtnetlink::Error>> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let job: Job = Box::new(move |h| {
        Box::pin(async move {
            let _ = tx.send(request(h).await);
        })
    });
    worker()?
        .send(job)
        .map_err(|_| io::Error::other("the rtnetlink thread ended"))?;
    match rx.recv_timeout(REPLY_TIMEOUT) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(rtnetlink::Error::NetlinkError(e))) => Err(e.to_io()),
        Ok(Err(e)) => Err(io::Error::other(format!("{what}: {e}"))),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what}: no answer from the kernel in {REPLY_TIMEOUT:?}"),
        )),
    }
}

/// The raw errno of an rtnetlink failure (0 when it is none).
pub(crate) fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// One address to put on (or take off) an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    pub broadcast: Option<Ipv4Addr>,
    pub label: Option<String>,
    /// RT_SCOPE_*: 0 global, 200 site, 253 link, 254 host.
    pub scope: u8,
}

/// keepalived's scope names (and numbers).
pub fn scope(name: &str) -> Option<u8> {
    match name {
        "global" | "universe" => Some(0),
        "site" => Some(200),
        "link" => Some(253),
        "host" => Some(254),
        "nowhere" => Some(255),
        n => n.parse().ok(),
    }
}

/// The address as rtnetlink's message: local and address the same (a
/// host address, as `ip addr add` makes it), IPv6 without DAD (a VIP moves
/// between hosts: duplicate address detection would hold it back).
fn message(a: &Address) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = if a.addr.is_ipv4() {
        rtnetlink::packet_route::AddressFamily::Inet
    } else {
        rtnetlink::packet_route::AddressFamily::Inet6
    };
    m.header.prefix_len = a.prefix;
    m.header.scope = AddressScope::from(a.scope);
    m.header.index = a.ifindex;
    m.attributes.push(AddressAttribute::Local(a.addr));
    m.attributes.push(AddressAttribute::Address(a.addr));
    if let Some(b) = a.broadcast {
        m.attributes.push(AddressAttribute::Broadcast(b));
    }
    if let Some(l) = &a.label {
        m.attributes.push(AddressAttribute::Label(l.clone()));
    }
    if a.addr.is_ipv6() {
        m.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    m
}

/// Adds the address. Ok(true) when added, Ok(false) when it was already
/// there (then it is not ours to remove later).
pub fn add(a: &Address) -> io::Result<bool> {
    let msg = message(a);
    let added = call("adding an address", move |h| {
        let mut req = h
            .address()
            .add(msg.header.index, IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        *req.message_mut() = msg;
        req.execute()
    });
    match added {
        Ok(()) => Ok(true),
        Err(e) if errno(&e) == libc::EEXIST => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes the address; gone already is fine.
pub fn remove(a: &Address) -> io::Result<()> {
    let msg = message(a);
    match call("removing an address", move |h| {
        h.address().del(msg).execute()
    }) {
        Ok(()) => Ok(()),
        Err(e) if [libc::EADDRNOTAVAIL, libc::ENOENT, libc::ENODEV].contains(&errno(&e)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates a macvlan (private mode, as keepalived's vmacs) named `name` on
/// `parent` with `mac`. Ok(false) when it exists already.
pub fn add_macvlan(name: &str, parent: u32, mac: [u8; 6]) -> io::Result<bool> {
    use rtnetlink::{packet_route::link::MacVlanMode, LinkMacVlan};
    let msg = LinkMacVlan::new(name, parent, MacVlanMode::Private)
        .address(mac.to_vec())
        .build();
    match call("creating a macvlan", move |h| h.link().add(msg).execute()) {
        Ok(()) => Ok(true),
        Err(e) if errno(&e) == libc::EEXIST => Ok(false),
        Err(e) => Err(e),
    }
}

/// IPv6 addrgenmode random on a link: the virtual MAC must not feed
/// interface identifiers (RFC 9568 §7.4).
pub fn set_addrgenmode_random(ifindex: u32) -> io::Result<()> {
    use rtnetlink::{
        packet_route::link::{AfSpecInet6, AfSpecUnspec, In6AddrGenMode, LinkAttribute},
        LinkUnspec,
    };
    let msg = LinkUnspec::new_with_index(ifindex)
        .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
            vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::Random)],
        )]))
        .build();
    call("setting addrgenmode random", move |h| {
        h.link().set(msg).execute()
    })
}

/// The MAC the kernel's neighbour table holds for `addr` on `ifindex`
/// (reachable, stale, delay, probe or permanent entries; not failed or
/// incomplete ones).
pub fn neighbour_mac(ifindex: u32, addr: IpAddr) -> io::Result<Option<[u8; 6]>> {
    use futures::TryStreamExt as _;
    use rtnetlink::packet_route::neighbour::{
        NeighbourAddress, NeighbourAttribute, NeighbourState,
    };
    call("reading the neighbour table", move |h| async move {
        let mut dump = h.neighbours().get().execute();
        while let Some(n) = dump.try_next().await? {
            if n.header.ifindex != ifindex
                || matches!(
                    n.header.state,
                    NeighbourState::Failed | NeighbourState::Incomplete | NeighbourState::None
                )
            {
                continue;
            }
            let dst = n.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(v)) => Some(IpAddr::V4(*v)),
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(v)) => Some(IpAddr::V6(*v)),
                _ => None,
            });
            if dst != Some(addr) {
                continue;
            }
            let mac = n.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::LinkLayerAddress(m) => <[u8; 6]>::try_from(m.as_slice()).ok(),
                _ => None,
            });
            if mac.is_some() {
                return Ok(mac);
            }
        }
        Ok(None)
    })
}

/// The kernel's route to `addr` (`ip route get ADDR`): the outgoing
/// interface and the gateway, None when on-link.
pub fn route_to(addr: IpAddr) -> io::Result<Option<(u32, Option<IpAddr>)>> {
    use futures::TryStreamExt as _;
    use rtnetlink::{
        packet_route::route::{RouteAddress, RouteAttribute},
        RouteMessageBuilder,
    };
    let prefix = if addr.is_ipv4() { 32 } else { 128 };
    let msg = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(addr, prefix)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?
        .build();
    call("looking up a route", move |h| async move {
        let mut answer = h.route().get(msg).execute();
        let Some(route) = answer.try_next().await? else {
            return Ok(None);
        };
        let oif = route.attributes.iter().find_map(|a| match a {
            RouteAttribute::Oif(i) => Some(*i),
            _ => None,
        });
        let gateway = route.attributes.iter().find_map(|a| match a {
            RouteAttribute::Gateway(RouteAddress::Inet(v)) => Some(IpAddr::V4(*v)),
            RouteAttribute::Gateway(RouteAddress::Inet6(v)) => Some(IpAddr::V6(*v)),
            _ => None,
        });
        Ok(oif.map(|o| (o, gateway)))
    })
}

/// For a veth, whether its peer (in whatever namespace) runs an XDP
/// program: only then does veth deliver the frames this end's driver-mode
/// XDP_TX sends (or with GRO on the peer, which rtnetlink does not show).
/// None: not a veth.
pub fn veth_peer_has_xdp(ifindex: u32) -> io::Result<Option<bool>> {
    use futures::TryStreamExt as _;
    use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkXdp, XdpAttached};
    call("looking at a veth's peer", move |h| async move {
        let Some(me) = h
            .link()
            .get()
            .match_index(ifindex)
            .execute()
            .try_next()
            .await?
        else {
            return Ok(None);
        };
        let veth = me.attributes.iter().any(|a| {
            matches!(a, LinkAttribute::LinkInfo(infos)
                if infos.iter().any(|i| matches!(i, LinkInfo::Kind(InfoKind::Veth))))
        });
        let peer = me.attributes.iter().find_map(|a| match a {
            LinkAttribute::Link(p) => Some(*p),
            _ => None,
        });
        let (true, Some(peer)) = (veth, peer) else {
            return Ok(None);
        };
        let netns = me.attributes.iter().find_map(|a| match a {
            LinkAttribute::LinkNetNsId(n) => Some(*n),
            _ => None,
        });
        let mut req = h.link().get().match_index(peer);
        if let Some(n) = netns {
            req.message_mut()
                .attributes
                .push(LinkAttribute::IfNetnsId(n));
        }
        let Some(other) = req.execute().try_next().await? else {
            return Ok(Some(false));
        };
        Ok(Some(other.attributes.iter().any(|a| {
            matches!(a, LinkAttribute::Xdp(x)
                if x.iter().any(|x| matches!(x, LinkXdp::Attached(m) if *m != XdpAttached::None)))
        })))
    })
}

/// Sets a link's interface group (IFLA_GROUP, `ip link set … group`).
pub fn set_group(ifindex: u32, group: u32) -> io::Result<()> {
    use rtnetlink::packet_route::link::LinkAttribute;
    let msg = rtnetlink::LinkUnspec::new_with_index(ifindex)
        .append_extra_attribute(LinkAttribute::Group(group))
        .build();
    call("setting a link's group", move |h| {
        h.link().set(msg).execute()
    })
}

/// Sets a link up.
pub fn set_up(ifindex: u32) -> io::Result<()> {
    let msg = rtnetlink::LinkUnspec::new_with_index(ifindex).up().build();
    call("setting a link up", move |h| h.link().set(msg).execute())
}

/// Deletes a link.
pub fn delete_link(ifindex: u32) -> io::Result<()> {
    call("deleting a link", move |h| h.link().del(ifindex).execute())
}

/// A route rtnetlink's builder refused (a family mix-up).
fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}

/// A route as rtnetlink's message, its `dev` resolved to an index.
fn route_message(
    r: &crate::config::model::Route,
) -> io::Result<rtnetlink::packet_route::route::RouteMessage> {
    use crate::config::model::RouteKind;
    use rtnetlink::{
        packet_route::route::{RouteProtocol, RouteScope, RouteType},
        RouteMessageBuilder,
    };
    let oif = r.dev.as_deref().and_then(|d| super::iface::ifindex(d).ok());
    let mut b = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(r.dst, r.prefix)
        .map_err(invalid)?
        // keepalived's own protocol number, so `ip route` says who added it.
        .protocol(RouteProtocol::KeepAlived);
    match (r.via, r.or.is_empty()) {
        (Some(via), true) => b = b.gateway(via).map_err(invalid)?,
        // `via A or B`: one next hop per gateway (multipath).
        (Some(via), false) => {
            let mut hops = Vec::new();
            for gw in std::iter::once(via).chain(r.or.iter().copied()) {
                let family = if gw.is_ipv4() {
                    rtnetlink::packet_route::AddressFamily::Inet
                } else {
                    rtnetlink::packet_route::AddressFamily::Inet6
                };
                let mut hop = rtnetlink::RouteNextHopBuilder::new(family)
                    .via(gw)
                    .map_err(invalid)?;
                if let Some(i) = oif {
                    hop = hop.interface(i);
                }
                hops.push(hop.build());
            }
            b = b.multipath(hops);
        }
        (None, _) => {}
    }
    if let Some(src) = r.src {
        b = b.pref_source(src).map_err(invalid)?;
    }
    // (A multipath route carries the interface in each next hop.)
    if let Some(i) = oif.filter(|_| r.or.is_empty()) {
        b = b.output_interface(i);
    }
    if let Some(t) = r.table {
        b = b.table_id(t);
    }
    if let Some(m) = r.metric {
        b = b.priority(m);
    }
    b = b.kind(match r.kind {
        RouteKind::Unicast => RouteType::Unicast,
        RouteKind::Blackhole => RouteType::BlackHole,
        RouteKind::Unreachable => RouteType::Unreachable,
        RouteKind::Prohibit => RouteType::Prohibit,
    });
    // ip-route's default scope: link for a unicast route without a gateway,
    // universe otherwise.
    let scope = r.scope.map(RouteScope::from).unwrap_or(
        if r.kind == RouteKind::Unicast && r.via.is_none() {
            RouteScope::Link
        } else {
            RouteScope::Universe
        },
    );
    Ok(b.scope(scope).build())
}

/// Adds a virtual route; Ok(false) when it exists already.
pub fn add_route(r: &crate::config::model::Route) -> io::Result<bool> {
    let msg = route_message(r)?;
    match call("adding a route", move |h| h.route().add(msg).execute()) {
        Ok(()) => Ok(true),
        Err(e) if errno(&e) == libc::EEXIST => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes a virtual route; gone already is fine.
pub fn remove_route(r: &crate::config::model::Route) -> io::Result<()> {
    let msg = route_message(r)?;
    match call("removing a route", move |h| h.route().del(msg).execute()) {
        Ok(()) => Ok(()),
        Err(e) if [libc::ESRCH, libc::ENOENT, libc::ENODEV].contains(&errno(&e)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A rule as rtnetlink's message.
fn rule_message(r: &crate::config::model::Rule) -> rtnetlink::packet_route::rule::RuleMessage {
    use crate::config::model::RouteKind;
    use rtnetlink::packet_route::{
        rule::{RuleAction, RuleAttribute, RuleMessage},
        AddressFamily,
    };
    let mut m = RuleMessage::default();
    m.header.family = if r.ipv6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    m.header.action = match r.kind {
        RouteKind::Unicast => RuleAction::ToTable,
        RouteKind::Blackhole => RuleAction::Blackhole,
        RouteKind::Unreachable => RuleAction::Unreachable,
        RouteKind::Prohibit => RuleAction::Prohibit,
    };
    if let Some((a, len)) = r.from {
        m.header.src_len = len;
        m.attributes.push(RuleAttribute::Source(a));
    }
    if let Some((a, len)) = r.to {
        m.header.dst_len = len;
        m.attributes.push(RuleAttribute::Destination(a));
    }
    if let Some(t) = r.table {
        // The header holds tables below 256; the attribute any.
        m.header.table = u8::try_from(t).unwrap_or(0);
        m.attributes.push(RuleAttribute::Table(t));
    }
    if let Some(p) = r.priority {
        m.attributes.push(RuleAttribute::Priority(p));
    }
    if let Some(f) = r.fwmark {
        m.attributes.push(RuleAttribute::FwMark(f));
    }
    if let Some(i) = &r.iif {
        m.attributes.push(RuleAttribute::Iifname(i.clone()));
    }
    if let Some(o) = &r.oif {
        m.attributes.push(RuleAttribute::Oifname(o.clone()));
    }
    m
}

/// Adds a virtual rule; Ok(false) when it exists already.
pub fn add_rule(r: &crate::config::model::Rule) -> io::Result<bool> {
    let msg = rule_message(r);
    let added = call("adding a rule", move |h| {
        let mut req = h.rule().add();
        *req.message_mut() = msg;
        req.execute()
    });
    match added {
        Ok(()) => Ok(true),
        Err(e) if errno(&e) == libc::EEXIST => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes a virtual rule; gone already is fine.
pub fn remove_rule(r: &crate::config::model::Rule) -> io::Result<()> {
    let msg = rule_message(r);
    match call("removing a rule", move |h| h.rule().del(msg).execute()) {
        Ok(()) => Ok(()),
        Err(e) if [libc::ENOENT, libc::ESRCH].contains(&errno(&e)) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_becomes_rtnetlinks_message() {
        let a = Address {
            ifindex: 7,
            addr: "192.0.2.8".parse().unwrap(),
            prefix: 24,
            broadcast: Some(Ipv4Addr::new(192, 0, 2, 255)),
            label: Some("eth0:1".into()),
            scope: 253,
        };
        let m = message(&a);
        assert_eq!((m.header.index, m.header.prefix_len), (7, 24));
        assert_eq!(m.header.scope, AddressScope::Link);
        assert!(m.attributes.contains(&AddressAttribute::Local(a.addr)));
        assert!(m
            .attributes
            .contains(&AddressAttribute::Label("eth0:1".into())));
        let v6 = message(&Address {
            addr: "fe80::1".parse().unwrap(),
            broadcast: None,
            label: None,
            ..a
        });
        assert!(v6
            .attributes
            .contains(&AddressAttribute::Flags(AddressFlags::Nodad)));
        assert_eq!(scope("link"), Some(253));
        assert_eq!(scope("17"), Some(17));
    }
}
