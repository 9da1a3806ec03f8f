//! NAT on the kernel's own engine: one nftables table, `inet xvrrp`, owned
//! by the agent, driven through `nft`'s JSON interface (libnftables-json(5)).
//!
//! Per virtual server N (and each of its addresses):
//! - a verdict map `vsN` of `SLOTS` slots, each naming a real's chain; the
//!   prerouting rule picks a slot (a counter for rr/wrr, a hash of the
//!   source for sh, a random number otherwise) and jumps. A checker's
//!   change rewrites the map's elements in one transaction, never a rule;
//! - a chain `vsN_rM` per real: DNAT to it (and, with persistence, the
//!   client noted in the real's affinity set `vsN_aM`, which a rule ahead
//!   of the map consults, so a client returns to its real while the entry
//!   lives); `vsN_sorry` for the sorry server;
//! - a counting rule per real in a `forward` filter chain, by conntrack
//!   (both directions of each connection to it: packets and bytes).
//!
//! Replies are un-NATed by conntrack. One exception to JSON: nft 1.0.6's
//! JSON parser cannot declare a map keyed by `numgen`/`jhash` ("Invalid set
//! datatype"; `typeof` is text-only there), so the table and those maps are
//! declared in nft's own syntax, built here from numbers and names only.

use std::{
    fmt::Write as _,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use crate::config::lvs::{LbProtocol, VirtualServer};

pub const TABLE: &str = "xvrrp";
/// Slots per virtual server: divisible by every total weight up to 10 and
/// many beyond (2520 = lcm(1..10)), so weights are exact for those.
pub const SLOTS: usize = 2520;

/// How a virtual server picks a slot for a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// rr, wrr: in turn (`numgen inc`).
    Counter,
    /// sh: by the client's address (`jhash`).
    SourceHash,
    /// Every other scheduler, approximated (`numgen random`).
    Random,
}

impl Pick {
    pub fn of(lb_algo: &str) -> Pick {
        match lb_algo {
            "rr" | "wrr" => Pick::Counter,
            "sh" => Pick::SourceHash,
            _ => Pick::Random,
        }
    }

    fn key(self, v6: bool) -> Value {
        match self {
            Pick::Counter => json!({"numgen": {"mode": "inc", "mod": SLOTS, "offset": 0}}),
            Pick::Random => json!({"numgen": {"mode": "random", "mod": SLOTS, "offset": 0}}),
            Pick::SourceHash => json!({"jhash": {"mod": SLOTS, "offset": 0, "seed": 0,
                "expr": payload(v6, "saddr")}}),
        }
    }
}

/// One virtual server as the table sees it.
#[derive(Debug, Clone)]
pub struct VsRules {
    pub index: usize,
    /// The addresses it listens on (one, or a virtual_server_group's).
    pub addrs: Vec<SocketAddr>,
    pub fwmarks: Vec<u32>,
    pub protocol: LbProtocol,
    pub pick: Pick,
    pub v6: bool,
    pub reals: Vec<SocketAddr>,
    pub sorry: Option<SocketAddr>,
    pub persistence: Option<(Duration, Option<IpAddr>)>,
}

impl VsRules {
    pub fn new(
        index: usize,
        vs: &VirtualServer,
        addrs: Vec<SocketAddr>,
        fwmarks: Vec<u32>,
    ) -> VsRules {
        let v6 = addrs
            .first()
            .map(|a| a.is_ipv6())
            .or_else(|| vs.reals.first().map(|r| r.addr.is_ipv6()))
            .unwrap_or(false);
        VsRules {
            index,
            addrs,
            fwmarks,
            protocol: vs.protocol,
            pick: Pick::of(&vs.lb_algo),
            v6,
            reals: vs.reals.iter().map(|r| r.addr).collect(),
            sorry: vs.sorry_server,
            persistence: vs
                .persistence_timeout
                .map(|t| (t, vs.persistence_granularity)),
        }
    }

    pub fn map(&self) -> String {
        format!("vs{}", self.index)
    }

    pub fn real_chain(&self, r: usize) -> String {
        format!("vs{}_r{r}", self.index)
    }

    pub fn sorry_chain(&self) -> String {
        format!("vs{}_sorry", self.index)
    }

    pub fn affinity_set(&self, r: usize) -> String {
        format!("vs{}_a{r}", self.index)
    }

    fn l4(&self) -> &'static str {
        match self.protocol {
            LbProtocol::Udp => "udp",
            LbProtocol::Sctp => "sctp",
            LbProtocol::Tcp => "tcp",
        }
    }

    /// The client's address as the affinity key (masked by
    /// persistence_granularity).
    fn client_key(&self) -> Value {
        let saddr = payload(self.v6, "saddr");
        match self.persistence {
            Some((_, Some(mask))) => json!({"&": [saddr, mask.to_string()]}),
            _ => saddr,
        }
    }

    /// The matches selecting this virtual server's new connections, one list
    /// per address or fwmark.
    fn selectors(&self) -> Vec<Vec<Value>> {
        let l4 = self.l4();
        let mut out = Vec::new();
        for a in &self.addrs {
            let mut m = vec![
                json!({"match": {"op": "==", "left": payload(self.v6, "daddr"), "right": a.ip().to_string()}}),
            ];
            if a.port() != 0 {
                m.push(json!({"match": {"op": "==", "left": {"payload": {"protocol": l4, "field": "dport"}}, "right": a.port()}}));
            } else {
                m.push(l4proto(l4));
            }
            out.push(m);
        }
        for mark in &self.fwmarks {
            out.push(vec![
                json!({"match": {"op": "==", "left": {"meta": {"key": "mark"}}, "right": mark}}),
                l4proto(l4),
            ]);
        }
        out
    }
}

fn payload(v6: bool, field: &str) -> Value {
    json!({"payload": {"protocol": if v6 { "ip6" } else { "ip" }, "field": field}})
}

fn l4proto(l4: &str) -> Value {
    json!({"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": l4}})
}

fn dnat(v6: bool, to: SocketAddr) -> Value {
    let mut d = json!({"family": if v6 { "ip6" } else { "ip" }, "addr": to.ip().to_string()});
    if to.port() != 0 {
        d["port"] = json!(to.port());
    }
    json!({ "dnat": d })
}

fn obj(kind: &str, mut body: Value) -> Value {
    body["family"] = json!("inet");
    body["table"] = json!(TABLE);
    json!({ kind: body })
}

/// The declarations nft's JSON cannot make (see the module comment): the
/// table, emptied, and each virtual server's slot map. Numbers and names
/// only, built here.
pub fn declarations(vss: &[VsRules]) -> String {
    let mut s = format!("table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n");
    for vs in vss {
        // Every key is a 32-bit integer (numgen, jhash): one declared type.
        let _ = writeln!(
            s,
            "  map {} {{ typeof numgen inc mod {SLOTS} : verdict; }}",
            vs.map()
        );
    }
    s.push_str("}\n");
    s
}

/// Everything else: chains, rules, affinity sets, in one transaction.
pub fn ruleset(vss: &[VsRules]) -> Value {
    let mut cmds = vec![
        obj(
            "chain",
            json!({"name": "prerouting", "type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"}),
        ),
        obj(
            "chain",
            json!({"name": "forward", "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}),
        ),
    ];
    for vs in vss {
        let l4 = vs.l4();
        for (r, real) in vs.reals.iter().enumerate() {
            if real.is_ipv6() != vs.v6 {
                continue; // refused by the engine with a warning
            }
            if let Some((timeout, _)) = vs.persistence {
                let ty = match (vs.v6, matches!(vs.persistence, Some((_, Some(_))))) {
                    (false, _) => "ipv4_addr",
                    (true, _) => "ipv6_addr",
                };
                cmds.push(obj(
                    "set",
                    json!({"name": vs.affinity_set(r), "type": ty,
                    "flags": ["timeout"], "timeout": timeout.as_secs().max(1), "size": 65535}),
                ));
            }
            let chain = vs.real_chain(r);
            cmds.push(obj("chain", json!({"name": chain})));
            let mut expr = vec![l4proto(l4)];
            if vs.persistence.is_some() {
                expr.push(json!({"set": {"op": "update", "elem": vs.client_key(), "set": format!("@{}", vs.affinity_set(r))}}));
            }
            expr.push(json!({"counter": null}));
            expr.push(dnat(vs.v6, *real));
            cmds.push(obj("rule", json!({"chain": chain, "expr": expr})));
            // Packets and bytes of every connection to this real, both ways.
            for sel in connection_selectors(vs) {
                let mut e = sel;
                e.push(json!({"match": {"op": "==", "left": {"ct": {"key": format!("{} saddr", if vs.v6 { "ip6" } else { "ip" }), "dir": "reply"}}, "right": real.ip().to_string()}}));
                if real.port() != 0 {
                    e.push(json!({"match": {"op": "==", "left": {"ct": {"key": "proto-src", "dir": "reply"}}, "right": real.port()}}));
                }
                e.push(json!({"counter": null}));
                cmds.push(obj("rule", json!({"chain": "forward", "expr": e, "comment": format!("vs{} r{r}", vs.index)})));
            }
        }
        if let Some(sorry) = vs.sorry {
            cmds.push(obj("chain", json!({"name": vs.sorry_chain()})));
            cmds.push(obj(
                "rule",
                json!({"chain": vs.sorry_chain(), "expr": [l4proto(l4), dnat(vs.v6, sorry)]}),
            ));
        }
        for sel in vs.selectors() {
            if vs.persistence.is_some() {
                for (r, real) in vs.reals.iter().enumerate() {
                    if real.is_ipv6() != vs.v6 {
                        continue;
                    }
                    let mut e = sel.clone();
                    e.push(json!({"match": {"op": "==", "left": vs.client_key(), "right": format!("@{}", vs.affinity_set(r))}}));
                    e.push(json!({"goto": {"target": vs.real_chain(r)}}));
                    cmds.push(obj("rule", json!({"chain": "prerouting", "expr": e})));
                }
            }
            let mut e = sel;
            e.push(json!({"vmap": {"key": vs.pick.key(vs.v6), "data": format!("@{}", vs.map())}}));
            cmds.push(obj("rule", json!({"chain": "prerouting", "expr": e})));
        }
    }
    json!({ "nftables": cmds.into_iter().map(|c| json!({"add": c})).collect::<Vec<_>>() })
}

/// The original-direction matches of connections to a virtual server.
fn connection_selectors(vs: &VsRules) -> Vec<Vec<Value>> {
    let fam = if vs.v6 { "ip6" } else { "ip" };
    let mut out: Vec<Vec<Value>> = vs
        .addrs
        .iter()
        .map(|a| {
            let mut m = vec![
                l4proto(vs.l4()),
                json!({"match": {"op": "==", "left": {"ct": {"key": format!("{fam} daddr"), "dir": "original"}}, "right": a.ip().to_string()}}),
            ];
            if a.port() != 0 {
                m.push(json!({"match": {"op": "==", "left": {"ct": {"key": "proto-dst", "dir": "original"}}, "right": a.port()}}));
            }
            m
        })
        .collect();
    if !vs.fwmarks.is_empty() {
        out.push(vec![
            l4proto(vs.l4()),
            json!({"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}),
        ]);
    }
    out
}

/// Where each slot sends a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotTarget {
    Real(usize),
    Sorry,
}

/// The map's new contents, replacing the old in one transaction (flush and
/// add are atomic together): an empty table forwards nothing.
pub fn slots(vs: &VsRules, table: &[SlotTarget]) -> Value {
    let mut cmds =
        vec![json!({"flush": {"map": {"family": "inet", "table": TABLE, "name": vs.map()}}})];
    if !table.is_empty() {
        let elem: Vec<Value> = table
            .iter()
            .enumerate()
            .map(|(slot, t)| {
                let target = match t {
                    SlotTarget::Real(r) => vs.real_chain(*r),
                    SlotTarget::Sorry => vs.sorry_chain(),
                };
                json!([slot, {"goto": {"target": target}}])
            })
            .collect();
        cmds.push(json!({"add": {"element": {"family": "inet", "table": TABLE, "name": vs.map(), "elem": elem}}}));
    }
    json!({ "nftables": cmds })
}

/// Forget the clients stuck to a real (it went down, or forwarding stops).
pub fn forget_affinity(vs: &VsRules, r: usize) -> Option<Value> {
    vs.persistence.map(|_| {
        json!({"nftables": [{"flush": {"set": {"family": "inet", "table": TABLE, "name": vs.affinity_set(r)}}}]})
    })
}

/// `nft -j -f -` with `doc`.
pub async fn apply(doc: &Value) -> anyhow::Result<()> {
    run(&["-j", "-f", "-"], doc.to_string()).await
}

/// `nft -f -` with the declarations.
pub async fn declare(text: &str) -> anyhow::Result<()> {
    run(&["-f", "-"], text.to_owned()).await
}

/// Removes the table (a clean stop); absent already is fine.
pub async fn remove() -> anyhow::Result<()> {
    run(
        &["-f", "-"],
        format!("table inet {TABLE}\ndelete table inet {TABLE}\n"),
    )
    .await
}

async fn run(args: &[&str], input: String) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new("nft")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("running `nft` (Debian package nftables) for virtual_server NAT")?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(input.as_bytes()).await?;
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .context("nft did not answer within 10 s")??;
    if !out.status.success() {
        bail!(
            "nft {} refused the table update: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Packets and bytes per (virtual server, real).
pub type Counters = std::collections::HashMap<(usize, usize), (u64, u64)>;

/// The counting rules' counters, by their comments.
pub async fn counters() -> anyhow::Result<Counters> {
    let out = tokio::process::Command::new("nft")
        .args(["-j", "list", "chain", "inet", TABLE, "forward"])
        .output()
        .await
        .context("running `nft`")?;
    if !out.status.success() {
        bail!("nft list: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(parse_counters(&serde_json::from_slice(&out.stdout)?))
}

pub fn parse_counters(doc: &Value) -> Counters {
    let mut m = Counters::new();
    for item in doc["nftables"].as_array().into_iter().flatten() {
        let rule = &item["rule"];
        let Some(comment) = rule["comment"].as_str() else {
            continue;
        };
        let Some((v, r)) = comment.split_once(' ') else {
            continue;
        };
        let (Some(v), Some(r)) = (
            v.strip_prefix("vs").and_then(|v| v.parse().ok()),
            r.strip_prefix('r').and_then(|r| r.parse().ok()),
        ) else {
            continue;
        };
        for e in rule["expr"].as_array().into_iter().flatten() {
            if let Some(c) = e.get("counter") {
                let entry = m.entry((v, r)).or_insert((0, 0));
                entry.0 += c["packets"].as_u64().unwrap_or(0);
                entry.1 += c["bytes"].as_u64().unwrap_or(0);
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vs() -> VsRules {
        VsRules {
            index: 0,
            addrs: vec!["192.0.2.80:80".parse().unwrap()],
            fwmarks: vec![],
            protocol: LbProtocol::Tcp,
            pick: Pick::Counter,
            v6: false,
            reals: vec![
                "10.0.0.1:8080".parse().unwrap(),
                "10.0.0.2:8080".parse().unwrap(),
            ],
            sorry: Some("10.0.0.9:80".parse().unwrap()),
            persistence: None,
        }
    }

    #[test]
    fn the_schedulers_nft_expresses_are_picked_exactly() {
        assert_eq!(Pick::of("rr"), Pick::Counter);
        assert_eq!(Pick::of("wrr"), Pick::Counter);
        assert_eq!(Pick::of("sh"), Pick::SourceHash);
        assert_eq!(Pick::of("wlc"), Pick::Random);
        assert_eq!(
            declarations(&[vs()]),
            "table inet xvrrp\ndelete table inet xvrrp\ntable inet xvrrp {\n  map vs0 { typeof numgen inc mod 2520 : verdict; }\n}\n"
        );
    }

    #[test]
    fn a_checker_change_rewrites_the_map_only() {
        let doc = slots(&vs(), &[SlotTarget::Real(1), SlotTarget::Sorry]);
        let cmds = doc["nftables"].as_array().unwrap();
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[0]["flush"]["map"]["name"], "vs0");
        assert_eq!(
            cmds[1]["add"]["element"]["elem"][0],
            json!([0, {"goto": {"target": "vs0_r1"}}])
        );
        assert_eq!(
            cmds[1]["add"]["element"]["elem"][1],
            json!([1, {"goto": {"target": "vs0_sorry"}}])
        );
        // Nothing alive: the map is only flushed.
        assert_eq!(slots(&vs(), &[])["nftables"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn counters_are_read_by_comment() {
        let doc = json!({"nftables": [
            {"rule": {"comment": "vs0 r1", "expr": [{"counter": {"packets": 3, "bytes": 180}}]}},
            {"rule": {"comment": "vs0 r1", "expr": [{"counter": {"packets": 1, "bytes": 60}}]}},
            {"rule": {"expr": [{"counter": {"packets": 9, "bytes": 9}}]}},
        ]});
        assert_eq!(parse_counters(&doc)[&(0, 1)], (4, 240));
    }
}
