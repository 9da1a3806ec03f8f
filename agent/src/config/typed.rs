//! The statement tree -> typed `Config`, with keepalived's defaults. Every
//! problem is recorded with its position; building goes on so that `check`
//! reports all of them.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    str::FromStr,
    time::Duration,
};

use super::{
    diag::{Diagnostic, Diagnostics, Pos},
    keywords::{did_you_mean, unsupported, Unsupported},
    lexer::Token,
    model::*,
    tree::Node,
};

const TOP: &[&str] = &[
    "global_defs",
    "vrrp_script",
    "vrrp_instance",
    "vrrp_sync_group",
    "vrrp_track_file",
    "track_file",
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "static_track_group",
    "net_namespace",
    "vrrp_track_process",
    "interface_up_down_delays",
    "virtual_server",
    "virtual_server_group",
    "SSL",
];

const GLOBAL: &[&str] = &[
    "router_id",
    "vmac_prefix",
    "vmac_addr_prefix",
    "vrrp_version",
    "vrrp_mcast_group4",
    "vrrp_mcast_group6",
    "vrrp_garp_interval",
    "vrrp_gna_interval",
    "vrrp_garp_master_delay",
    "vrrp_garp_master_repeat",
    "vrrp_priority",
    "vrrp_rt_priority",
    "vrrp_rlimit_rttime",
    "vrrp_no_swap",
    "vrrp_garp_lower_prio_delay",
    "vrrp_garp_lower_prio_repeat",
    "vrrp_lower_prio_no_advert",
    "vrrp_higher_prio_send_advert",
    "vrrp_garp_master_refresh",
    "vrrp_garp_master_refresh_repeat",
    "vrrp_skip_check_adv_addr",
    "vrrp_strict",
    "enable_script_security",
    "script_user",
    "vrrp_check_unicast_src",
    "vrrp_startup_delay",
    "v3_checksum_as_v2",
    "vrrp_v3_checksum_as_v2",
    "notify_fifo",
    "notify_fifo_script",
    "vrrp_notify_fifo",
    "vrrp_notify_fifo_script",
    "lvs_notify_fifo",
    "lvs_notify_fifo_script",
    "vrrp_down_timer_adverts",
    "vrrp_min_garp",
    "vrrp_garp_extra_if",
    "startup_script",
    "startup_script_timeout",
    "shutdown_script",
    "shutdown_script_timeout",
    "default_interface",
    "notification_email",
    "notification_email_from",
    "smtp_server",
    "smtp_helo_name",
    "smtp_connect_timeout",
    "smtp_alert",
    "smtp_alert_vrrp",
    "no_email_faults",
];

const SCRIPT: &[&str] = &[
    "script",
    "interval",
    "timeout",
    "weight",
    "rise",
    "fall",
    "user",
    "init_fail",
];

const INSTANCE: &[&str] = &[
    "state",
    "interface",
    "virtual_router_id",
    "priority",
    "advert_int",
    "version",
    "nopreempt",
    "preempt",
    "preempt_delay",
    "accept",
    "no_accept",
    "authentication",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "unicast_src_ip",
    "mcast_src_ip",
    "unicast_peer",
    "track_interface",
    "track_script",
    "track_file",
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "notify_deleted",
    "notify_master_rx_lower_pri",
    "notify",
    "notify_fifo",
    "notify_fifo_script",
    "garp_master_delay",
    "garp_master_repeat",
    "garp_lower_prio_delay",
    "garp_lower_prio_repeat",
    "lower_prio_no_advert",
    "higher_prio_send_advert",
    "garp_master_refresh",
    "garp_master_refresh_repeat",
    "use_vmac",
    "vmac_xmit_base",
    "use_vmac_addr",
    "dont_track_primary",
    "native_ipv6",
    "check_unicast_src",
    "skip_check_adv_addr",
    "strict_mode",
    "down_timer_adverts",
    "v3_checksum_as_v2",
    "mixed_v2_v3",
    "mcast_dst_ip",
    "virtual_routes",
    "virtual_rules",
    "promote_secondaries",
    "smtp_alert",
    "track_process",
    "no_virtual_ipaddress",
    "garp_extra_if",
    "unicast_ttl",
    "unicast_fault_no_peer",
    "track_src_ip",
];

const GROUP: &[&str] = &[
    "group",
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "notify",
    "notify_fifo",
    "track_interface",
    "track_script",
    "track_file",
    "smtp_alert",
    "track_process",
    "sync_group_tracking_weight",
    "global_tracking",
];

const TRACK_FILE: &[&str] = &["file", "weight", "init_file"];

const STATIC_TRACK_GROUP: &[&str] = &["group"];

const TRACK_PROCESS: &[&str] = &[
    "process",
    "param_match",
    "weight",
    "quorum",
    "quorum_max",
    "delay",
    "fork_delay",
    "terminate_delay",
    "full_command",
];

/// The keywords the reader implements, by block (docs/keepalived.md).
#[cfg(test)]
pub(crate) const BLOCKS: &[(&str, &[&str])] = &[
    ("top level", TOP),
    ("global_defs", GLOBAL),
    ("vrrp_script", SCRIPT),
    ("vrrp_instance", INSTANCE),
    ("vrrp_sync_group", GROUP),
    ("vrrp_track_file", TRACK_FILE),
    ("static_track_group", STATIC_TRACK_GROUP),
    ("vrrp_track_process", TRACK_PROCESS),
    ("virtual_server", super::lvs::VIRTUAL_SERVER),
    ("real_server", super::lvs::REAL_SERVER),
    ("TCP_CHECK", super::lvs::CHECKER),
    ("HTTP_GET", super::lvs::HTTP_CHECKER),
    ("url", super::lvs::URL),
    ("MISC_CHECK", super::lvs::MISC_CHECKER),
    ("UDP_CHECK", super::lvs::UDP_CHECKER),
    ("DNS_CHECK", super::lvs::DNS_CHECKER),
    ("FILE_CHECK", super::lvs::FILE_CHECKER),
    ("SMTP_CHECK", super::lvs::SMTP_CHECKER),
    ("SSL", super::lvs::SSL),
];

pub struct Builder<'a> {
    pub diags: &'a mut Diagnostics,
    /// Unsupported keywords reported so far (once each).
    reported: Vec<String>,
}

impl<'a> Builder<'a> {
    pub fn new(diags: &'a mut Diagnostics) -> Builder<'a> {
        Builder {
            diags,
            reported: Vec::new(),
        }
    }

    fn error(&mut self, t: &Token, msg: impl Into<String>, fix: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(&t.pos, &t.text, msg).fix(fix));
    }

    /// An unknown keyword in a block whose keywords are `known`.
    pub(super) fn unknown(&mut self, key: &Token, block: &str, known: &[&str]) {
        let known = known.to_vec();
        match unsupported(&key.text) {
            Some(Unsupported::Ignored) => {
                if !self.reported.contains(&key.text) {
                    self.reported.push(key.text.clone());
                    self.diags.push(
                        Diagnostic::warning(
                            &key.pos,
                            &key.text,
                            format!(
                                "keepalived keyword `{}` is not supported by xvrrp and is ignored",
                                key.text
                            ),
                        )
                        .fix("nothing to do; remove it to silence this warning"),
                    );
                }
            }
            Some(Unsupported::NotApplied(why)) => {
                self.diags.push(
                    Diagnostic::warning(
                        &key.pos,
                        &key.text,
                        format!(
                            "keepalived keyword `{}` is not supported by xvrrp: {why}",
                            key.text
                        ),
                    )
                    .fix("check that the host does not depend on it, then remove it"),
                );
            }
            None => {
                let mut all: Vec<&str> = known;
                all.extend_from_slice(TOP);
                // keepalived logs a keyword it does not know and carries on.
                let msg = format!(
                    "unknown keyword `{}` in {block}: ignored (keepalived logs keywords it does not know and carries on; \
                     if keepalived knows this one, what it does is lost with xvrrp)",
                    key.text
                );
                let fix = match did_you_mean(&key.text, &all) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => {
                        "remove it: it is neither an xvrrp nor a keepalived keyword here".into()
                    }
                };
                self.diags.push(
                    Diagnostic::warning(&key.pos, &key.text, msg)
                        .fix(fix)
                        .lenient(),
                );
            }
        }
    }

    // ---- values -------------------------------------------------------------

    pub(super) fn value<'n>(&mut self, n: &'n Node, what: &str) -> Option<&'n Token> {
        let v = n.arg(0);
        if v.is_none() {
            self.error(
                &n.key,
                format!("`{}` needs {what}", n.key.text),
                format!("write `{} <{what}>`", n.key.text),
            );
        }
        v
    }

    pub(super) fn number<T: FromStr + PartialOrd + std::fmt::Display + Copy>(
        &mut self,
        n: &Node,
        lo: T,
        hi: T,
    ) -> Option<T> {
        let t = self.value(n, "a number")?;
        match t.text.parse::<T>() {
            Ok(v) if v >= lo && v <= hi => Some(v),
            Ok(_) => {
                self.error(
                    t,
                    format!("`{}` {} is out of range", n.key.text, t.text),
                    format!("use a value from {lo} to {hi}"),
                );
                None
            }
            Err(_) => {
                self.error(
                    t,
                    format!("`{}` expects a number, not `{}`", n.key.text, t.text),
                    format!("use a number from {lo} to {hi}"),
                );
                None
            }
        }
    }

    fn seconds(&mut self, n: &Node, hi: f64) -> Option<Duration> {
        self.number::<f64>(n, 0.0, hi).map(Duration::from_secs_f64)
    }

    fn addr(&mut self, t: &Token) -> Option<IpAddr> {
        match t.text.parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.error(
                    t,
                    format!("`{}` is not an IP address", t.text),
                    "write an IPv4 (192.0.2.1) or IPv6 (2001:db8::1) address",
                );
                None
            }
        }
    }

    fn no_block(&mut self, n: &Node) {
        if let Some(first) = n.block.as_ref().and_then(|b| b.first()) {
            self.error(
                &first.key,
                format!("`{}` takes no block", n.key.text),
                format!("remove the braces after `{}`", n.key.text),
            );
        }
    }

    /// `script "/path arg"`, `notify_master /path arg`, …
    fn command(&mut self, n: &Node) -> Option<Command> {
        if n.args.is_empty() {
            self.error(
                &n.key,
                format!("`{}` needs a command", n.key.text),
                format!("write `{} \"/path/to/script arg\"`", n.key.text),
            );
            return None;
        }
        let text = n
            .args
            .iter()
            .map(|t| t.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let argv = if n.args.len() == 1 && n.args[0].quoted {
            split_command(&n.args[0].text)
        } else {
            n.args
                .iter()
                .map(|t| t.text.clone())
                .filter(|w| !w.is_empty())
                .collect()
        };
        if argv.is_empty() {
            self.error(
                &n.args[0],
                "empty command",
                "put the script's path inside the quotes",
            );
            return None;
        }
        Some(Command {
            argv,
            text,
            user: None,
            pos: Some(n.key.pos.clone()),
        })
    }

    /// A notify script as keepalived reads it: `SCRIPT [user [group]]`, the
    /// script one word (quoted when it has arguments), then who runs it.
    pub(super) fn notify_command(&mut self, n: &Node) -> Option<Command> {
        if n.args.len() <= 1 {
            return self.command(n);
        }
        let script = Node {
            args: n.args[..1].to_vec(),
            ..n.clone()
        };
        let mut cmd = self.command(&script)?;
        if n.args.len() > 3 {
            self.error(
                &n.args[3],
                format!("`{}` takes a script, a user and a group; `{}` is one word too many", n.key.text, n.args[3].text),
                "quote the script with its arguments: `notify_master \"/path/script arg\" [user [group]]`",
            );
            return None;
        }
        cmd.user = Some(ScriptUser {
            user: n.args[1].text.clone(),
            group: n.args.get(2).map(|g| g.text.clone()),
        });
        Some(cmd)
    }

    /// One virtual_routes line, as keepalived reads it (ip-route syntax).
    fn route(&mut self, n: &Node) -> Option<Route> {
        let words: Vec<&Token> = std::iter::once(&n.key).chain(n.args.iter()).collect();
        let mut r = Route {
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            prefix: 0,
            kind: RouteKind::Unicast,
            via: None,
            or: Vec::new(),
            dev: None,
            src: None,
            scope: None,
            table: None,
            metric: None,
            track_group: None,
            pos: Some(n.key.pos.clone()),
        };
        let mut dst = None;
        let mut k = 0;
        while k < words.len() {
            let w = words[k];
            let next = words.get(k + 1).copied();
            let mut value = |what: &str| -> Option<&Token> {
                if next.is_none() {
                    self.error(
                        w,
                        format!("`{}` in a route needs {what}", w.text),
                        format!("write `{} VALUE`", w.text),
                    );
                }
                next
            };
            match w.text.as_str() {
                "src" => r.src = value("an address").and_then(|t| self.ip(t)),
                "via" | "gw" => r.via = value("an address").and_then(|t| self.ip(t)),
                "or" => {
                    if let Some(a) = value("an address").and_then(|t| self.ip(t)) {
                        r.or.push(a);
                    }
                }
                "dev" => r.dev = value("an interface").map(|t| t.text.clone()),
                "track_group" => r.track_group = value("a group name").map(|t| t.text.clone()),
                "table" => r.table = value("a table number").and_then(|t| self.u32_of(t)),
                "metric" | "preference" | "priority" => {
                    r.metric = value("a number").and_then(|t| self.u32_of(t))
                }
                "scope" => {
                    r.scope = value("a scope").and_then(|t| {
                        let s = crate::net::rtnl::scope(&t.text);
                        if s.is_none() {
                            self.error(
                                t,
                                format!("unknown route scope `{}`", t.text),
                                "use global, site, link, host or a number",
                            );
                        }
                        s
                    })
                }
                "to" => {
                    k += 1;
                    continue;
                }
                "no_track" => {
                    k += 1;
                    continue;
                }
                word if RouteKind::from_word(word).is_some() => {
                    r.kind = RouteKind::from_word(word).expect("checked");
                    k += 1;
                    continue;
                }
                text if dst.is_none() => {
                    dst = self.prefix_of(w, text);
                    k += 1;
                    continue;
                }
                _ => {
                    // Installing a route other than the one written could
                    // send traffic the wrong way: refuse what is not understood.
                    self.error(
                        w,
                        format!("route option `{}` is not supported by xvrrp", w.text),
                        "write the route with src, via/gw (or …), dev, scope, table, metric, blackhole/unreachable/prohibit, no_track",
                    );
                    return None;
                }
            }
            k += 2;
        }
        let Some((addr, prefix)) = dst else {
            self.error(
                &n.key,
                "a route without a destination",
                "write `192.0.2.0/24 via 10.0.0.1`",
            );
            return None;
        };
        r.dst = addr;
        r.prefix = prefix;
        Some(r)
    }

    /// keepalived skips a route or rule line it cannot read and runs the
    /// rest: what `parse` reports becomes a warning (an error under
    /// `--strict`) and the line is left out.
    fn skipped_if_bad<T>(&mut self, parse: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        let before = self.diags.0.len();
        let got = parse(self);
        let mut bad = false;
        for d in &mut self.diags.0[before..] {
            if d.is_error() {
                bad = true;
                d.severity = super::diag::Severity::Warning;
                d.lenient = true;
                d.message
                    .push_str(": the line is skipped, as keepalived skips it");
            }
        }
        if bad {
            None
        } else {
            got
        }
    }

    /// One virtual_rules line, as keepalived reads it (ip-rule syntax).
    fn rule(&mut self, n: &Node, instance_v6: bool) -> Option<Rule> {
        let words: Vec<&Token> = std::iter::once(&n.key).chain(n.args.iter()).collect();
        let mut r = Rule {
            ipv6: instance_v6,
            from: None,
            to: None,
            iif: None,
            oif: None,
            fwmark: None,
            priority: None,
            table: None,
            kind: RouteKind::Unicast,
            track_group: None,
            pos: Some(n.key.pos.clone()),
        };
        let mut k = 0;
        while k < words.len() {
            let w = words[k];
            let next = words.get(k + 1).copied();
            match (w.text.as_str(), next) {
                ("no_track", _) => {}
                (word, _) if RouteKind::from_word(word).is_some() => {
                    r.kind = RouteKind::from_word(word).expect("checked");
                }
                ("from" | "to", Some(v)) => {
                    k += 1;
                    if v.text == "all" {
                        k += 1;
                        continue;
                    }
                    let p = self.prefix_of(v, &v.text.clone());
                    if let Some((a, _)) = p {
                        r.ipv6 = a.is_ipv6();
                    }
                    if w.text == "from" {
                        r.from = p;
                    } else {
                        r.to = p;
                    }
                }
                ("track_group", Some(v)) => {
                    k += 1;
                    r.track_group = Some(v.text.clone());
                }
                ("iif" | "oif", Some(v)) => {
                    k += 1;
                    if w.text == "iif" {
                        r.iif = Some(v.text.clone());
                    } else {
                        r.oif = Some(v.text.clone());
                    }
                }
                ("fwmark" | "table" | "lookup" | "priority" | "preference" | "pref", Some(v)) => {
                    k += 1;
                    let value = self.u32_of(v);
                    match w.text.as_str() {
                        "fwmark" => r.fwmark = value,
                        "table" | "lookup" => r.table = value,
                        _ => r.priority = value,
                    }
                }
                _ => {
                    self.error(
                        w,
                        format!("rule option `{}` is not supported by xvrrp", w.text),
                        "write the rule with from, to, iif, oif, fwmark, priority, table (or blackhole/unreachable/prohibit), no_track",
                    );
                    return None;
                }
            }
            k += 1;
        }
        if r.kind == RouteKind::Unicast && r.table.is_none() {
            self.error(
                &n.key,
                "a rule without a table",
                "add `table N` (or blackhole/unreachable/prohibit)",
            );
            return None;
        }
        Some(r)
    }

    pub(super) fn ip(&mut self, t: &Token) -> Option<IpAddr> {
        match t.text.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.error(
                    t,
                    format!("`{}` is not an IP address", t.text),
                    "write `192.0.2.1` or `2001:db8::1`",
                );
                None
            }
        }
    }

    pub(super) fn u32_of(&mut self, t: &Token) -> Option<u32> {
        match t.text.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(
                    t,
                    format!("`{}` is not a number", t.text),
                    "write a whole number",
                );
                None
            }
        }
    }

    /// `ADDR[/LEN]` (or `default`), the length defaulting to the host's.
    fn prefix_of(&mut self, t: &Token, text: &str) -> Option<(IpAddr, u8)> {
        if text == "default" {
            return Some((IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
        }
        let (a, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let addr: IpAddr = match a.parse() {
            Ok(a) => a,
            Err(_) => {
                self.error(
                    t,
                    format!("`{text}` is not a route destination"),
                    "write `192.0.2.0/24`",
                );
                return None;
            }
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        match len.map(str::parse::<u8>) {
            None => Some((addr, max)),
            Some(Ok(l)) if l <= max => Some((addr, l)),
            _ => {
                self.error(
                    t,
                    format!("bad prefix length in `{text}`"),
                    format!("use /0 to /{max}"),
                );
                None
            }
        }
    }

    fn block<'n>(&mut self, n: &'n Node) -> &'n [Node] {
        if n.block.is_none() {
            self.error(
                &n.key,
                format!("`{}` needs a block", n.key.text),
                format!("write `{} {{ ... }}`", n.key.text),
            );
        }
        n.children()
    }

    fn name<'n>(&mut self, n: &'n Node) -> Option<&'n Token> {
        let t = n.arg(0);
        if t.is_none() {
            self.error(
                &n.key,
                format!("`{}` needs a name", n.key.text),
                format!("write `{} NAME {{`", n.key.text),
            );
        }
        t
    }

    // ---- blocks -------------------------------------------------------------

    pub fn config(&mut self, nodes: &[Node], files: Vec<PathBuf>) -> Config {
        let mut cfg = Config {
            global: Global::default(),
            scripts: BTreeMap::new(),
            track_files: BTreeMap::new(),
            track_processes: BTreeMap::new(),
            instances: Vec::new(),
            groups: Vec::new(),
            statics: Statics::default(),
            link_delays: BTreeMap::new(),
            virtual_servers: Vec::new(),
            vs_groups: Vec::new(),
            files,
        };
        let mut track_groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for n in nodes {
            match n.key.text.as_str() {
                "global_defs" => {
                    let children = self.block(n);
                    self.global(children, &mut cfg.global);
                }
                "vrrp_script" => {
                    if let Some(s) = self.script(n) {
                        if cfg.scripts.contains_key(&s.name) {
                            self.error(
                                &n.key,
                                format!("vrrp_script {} is defined twice", s.name),
                                "rename or remove one of them",
                            );
                        }
                        cfg.scripts.insert(s.name.clone(), s);
                    }
                }
                "vrrp_track_file" | "track_file" => {
                    if let Some(t) = self.track_file_def(n) {
                        cfg.track_files.insert(t.name.clone(), t);
                    }
                }
                "vrrp_instance" => {
                    if let Some(i) = self.instance(n, &cfg.global) {
                        if cfg.instances.iter().any(|o| o.name == i.name) {
                            self.error(
                                &n.key,
                                format!("vrrp_instance {} is defined twice", i.name),
                                "give each instance its own name",
                            );
                        }
                        cfg.instances.push(i);
                    }
                }
                "vrrp_sync_group" => {
                    if let Some(g) = self.group(n) {
                        cfg.groups.push(g);
                    }
                }
                "static_ipaddress" => {
                    for c in self.block(n) {
                        if let Some(v) = self.vip(c) {
                            cfg.statics.addresses.push(v);
                        }
                    }
                }
                "static_routes" => {
                    for c in self.block(n) {
                        if let Some(r) = self.skipped_if_bad(|b| b.route(c)) {
                            cfg.statics.routes.push(r);
                        }
                    }
                }
                "static_rules" => {
                    for c in self.block(n) {
                        if let Some(r) = self.skipped_if_bad(|b| b.rule(c, false)) {
                            cfg.statics.rules.push(r);
                        }
                    }
                }
                "vrrp_track_process" => {
                    if let Some(t) = self.track_process_def(n) {
                        cfg.track_processes.insert(t.name.clone(), t);
                    }
                }
                "interface_up_down_delays" => {
                    for c in self.block(n) {
                        let delay = |b: &mut Self, t: Option<&Token>| match t {
                            None => Some(Duration::ZERO),
                            Some(t) => match t.text.parse::<f64>() {
                                Ok(v) if (0.0..=255.0).contains(&v) => {
                                    Some(Duration::from_secs_f64(v))
                                }
                                _ => {
                                    b.error(
                                        t,
                                        format!("delay `{}` is not 0 to 255 seconds", t.text),
                                        "write `IFNAME DOWN_DELAY [UP_DELAY]` in seconds",
                                    );
                                    None
                                }
                            },
                        };
                        if c.args.is_empty() {
                            continue; // keepalived: "No timeouts specified"
                        }
                        if let (Some(down), Some(up)) =
                            (delay(self, c.arg(0)), delay(self, c.arg(1)))
                        {
                            cfg.link_delays.insert(c.key.text.clone(), (down, up));
                        }
                    }
                }
                "net_namespace" => {
                    cfg.global.net_namespace =
                        self.value(n, "a namespace name").map(|t| t.text.clone())
                }
                "static_track_group" => {
                    if let Some((name, members)) = self.static_track_group(n) {
                        track_groups.insert(name, members);
                    }
                }
                "virtual_server" => {
                    if let Some(vs) = self.virtual_server(n) {
                        cfg.virtual_servers.push(vs);
                    }
                }
                "SSL" => cfg.global.ssl = Some(self.ssl(n)),
                "virtual_server_group" => {
                    if let Some(g) = self.vs_group(n) {
                        cfg.vs_groups.push(g);
                    }
                }
                _ => self.unknown(&n.key, "the top level", TOP),
            }
        }
        self.static_track_groups(&mut cfg, &track_groups);
        self.vs_groups_named(&mut cfg);
        cfg
    }

    /// `static_track_group NAME { group { VI_1 VI_2 } }`.
    fn static_track_group(&mut self, n: &Node) -> Option<(String, Vec<String>)> {
        let name = self.name(n)?.text.clone();
        let mut members = Vec::new();
        for c in self.block(n) {
            match c.key.text.as_str() {
                "group" => members.extend(self.block(c).iter().map(|m| m.key.text.clone())),
                _ => self.unknown(&c.key, "static_track_group", STATIC_TRACK_GROUP),
            }
        }
        Some((name, members))
    }

    /// keepalived's static track groups: each instance of the group named by
    /// a static line's `track_group` tracks that line's interface (goes to
    /// Fault while it is down). A name that is not a group is a warning,
    /// as keepalived only logs it.
    fn static_track_groups(&mut self, cfg: &mut Config, groups: &BTreeMap<String, Vec<String>>) {
        let mut tracked: Vec<(String, String, Pos)> = Vec::new();
        let lines = cfg
            .statics
            .addresses
            .iter()
            .map(|a| {
                (
                    &a.track_group,
                    a.dev
                        .clone()
                        .or_else(|| Some(cfg.global.static_interface())),
                    &a.pos,
                )
            })
            .chain(
                cfg.statics
                    .routes
                    .iter()
                    .map(|r| (&r.track_group, r.dev.clone(), &r.pos)),
            )
            .chain(
                cfg.statics
                    .rules
                    .iter()
                    .map(|r| (&r.track_group, r.iif.clone(), &r.pos)),
            );
        for (group, dev, pos) in lines {
            let (Some(group), Some(pos)) = (group, pos) else {
                continue;
            };
            let Some(dev) = dev else { continue };
            tracked.push((group.clone(), dev, pos.clone()));
        }
        for (group, dev, pos) in tracked {
            let Some(members) = groups.get(&group) else {
                self.diags.push(
                    Diagnostic::warning(&pos, &group, format!("static track group `{group}` is not defined: the line is not tracked"))
                        .fix(format!("define `static_track_group {group} {{ group {{ INSTANCE }} }}` or remove `track_group {group}`"))
                        .lenient(),
                );
                continue;
            };
            for name in members {
                match cfg.instances.iter_mut().find(|i| &i.name == name) {
                    Some(i) if !i.track_interfaces.iter().any(|t| t.name == dev) => {
                        i.track_interfaces.push(Track {
                            name: dev.clone(),
                            weight: None,
                            reverse: false,
                            pos: Some(pos.clone()),
                        })
                    }
                    Some(_) => {}
                    None => self.diags.push(
                        Diagnostic::warning(&pos, name, format!("vrrp instance {name} in static track group {group} does not exist: ignored, as keepalived ignores it"))
                            .fix("name an instance defined in this file")
                            .lenient(),
                    ),
                }
            }
        }
    }

    fn global(&mut self, nodes: &[Node], g: &mut Global) {
        for n in nodes {
            let k = n.key.text.as_str();
            match k {
                "router_id" => g.router_id = self.value(n, "a name").map(|t| t.text.clone()),
                "vmac_prefix" => {
                    g.vmac_prefix = self.value(n, "a name prefix").map(|t| t.text.clone())
                }
                "vmac_addr_prefix" => {
                    g.vmac_addr_prefix = self.value(n, "a name prefix").map(|t| t.text.clone())
                }
                "vrrp_version" => {
                    if let Some(v) = self.number::<u8>(n, 2, 3) {
                        g.vrrp_version = v;
                    }
                }
                "vrrp_mcast_group4" => {
                    if let Some(t) = self.value(n, "an IPv4 multicast address") {
                        match t.text.parse::<Ipv4Addr>() {
                            Ok(a) if a.is_multicast() => g.mcast_group4 = a,
                            _ => self.error(
                                t,
                                format!("`{}` is not an IPv4 multicast address", t.text),
                                "use an address in 224.0.0.0/4, e.g. 224.0.0.18",
                            ),
                        }
                    }
                }
                "vrrp_mcast_group6" => {
                    if let Some(t) = self.value(n, "an IPv6 multicast address") {
                        match t.text.parse::<Ipv6Addr>() {
                            Ok(a) if a.is_multicast() => g.mcast_group6 = a,
                            _ => self.error(
                                t,
                                format!("`{}` is not an IPv6 multicast address", t.text),
                                "use an address in ff00::/8, e.g. ff02::12",
                            ),
                        }
                    }
                }
                // keepalived #2319: Debian's 2.2.7 wrongly rejects 0; 0 = no spacing.
                "vrrp_garp_interval" => {
                    g.garp_interval = self.seconds(n, 1000.0).unwrap_or(g.garp_interval)
                }
                "vrrp_gna_interval" => {
                    g.gna_interval = self.seconds(n, 1000.0).unwrap_or(g.gna_interval)
                }
                "vrrp_garp_master_delay" => {
                    g.garp_master_delay = self.seconds(n, 1000.0).unwrap_or(g.garp_master_delay)
                }
                "vrrp_garp_master_repeat" => {
                    g.garp_master_repeat = self.number(n, 0, 10_000).unwrap_or(g.garp_master_repeat)
                }
                "vrrp_garp_lower_prio_delay" => g.garp_lower_prio_delay = self.seconds(n, 1000.0),
                "vrrp_garp_lower_prio_repeat" => {
                    g.garp_lower_prio_repeat = self.number(n, 0, 10_000)
                }
                "vrrp_priority" => g.scheduling.nice = self.number(n, -20, 19),
                "vrrp_rt_priority" => g.scheduling.rt_priority = self.number(n, 1, 99),
                "vrrp_rlimit_rttime" => {
                    g.scheduling.rlimit_rttime = self.number(n, 1, u64::from(u32::MAX))
                }
                "vrrp_no_swap" => g.scheduling.no_swap = flag(n),
                "vrrp_lower_prio_no_advert" => g.lower_prio_no_advert = flag(n),
                "vrrp_higher_prio_send_advert" => g.higher_prio_send_advert = flag(n),
                "vrrp_garp_master_refresh" => {
                    g.garp_master_refresh = self.seconds(n, 1_000_000.0).filter(|d| !d.is_zero())
                }
                "vrrp_garp_master_refresh_repeat" => {
                    g.garp_master_refresh_repeat = self
                        .number(n, 1, 10_000)
                        .unwrap_or(g.garp_master_refresh_repeat)
                }
                "vrrp_skip_check_adv_addr" => g.skip_check_adv_addr = true,
                "vrrp_strict" => g.strict = true,
                "enable_script_security" => g.enable_script_security = true,
                "script_user" => {
                    if let Some(u) = self.value(n, "a user name") {
                        g.script_user = Some(ScriptUser {
                            user: u.text.clone(),
                            group: n.arg(1).map(|t| t.text.clone()),
                        });
                    }
                }
                "vrrp_check_unicast_src" => g.check_unicast_src = true,
                "vrrp_startup_delay" => {
                    g.startup_delay = self.seconds(n, 3600.0).unwrap_or_default()
                }
                "v3_checksum_as_v2" | "vrrp_v3_checksum_as_v2" => g.v3_checksum_as_v2 = true,
                "notify_fifo" | "vrrp_notify_fifo" | "lvs_notify_fifo" => {
                    if let Some(t) = self.value(n, "a path") {
                        let slot = match k {
                            "notify_fifo" => &mut g.notify_fifo,
                            "vrrp_notify_fifo" => &mut g.vrrp_notify_fifo,
                            _ => &mut g.lvs_notify_fifo,
                        };
                        let script = slot.as_ref().and_then(|f| f.script.clone());
                        *slot = Some(Fifo {
                            path: PathBuf::from(&t.text),
                            script,
                        });
                    }
                }
                "startup_script" => g.startup_script = self.notify_command(n),
                "shutdown_script" => g.shutdown_script = self.notify_command(n),
                "startup_script_timeout" => {
                    g.startup_script_timeout = self
                        .seconds(n, 1000.0)
                        .filter(|d| !d.is_zero())
                        .unwrap_or(g.startup_script_timeout)
                }
                "shutdown_script_timeout" => {
                    g.shutdown_script_timeout = self
                        .seconds(n, 1000.0)
                        .filter(|d| !d.is_zero())
                        .unwrap_or(g.shutdown_script_timeout)
                }
                // keepalived's vrrp_min_garp: one GARP/NA on becoming Active,
                // no delay or refresh — each only where still at its default.
                "vrrp_min_garp" => {
                    if flag(n) {
                        let d = Global::default();
                        if g.garp_master_repeat == d.garp_master_repeat {
                            g.garp_master_repeat = 1;
                        }
                        if g.garp_master_delay == d.garp_master_delay {
                            g.garp_master_delay = Duration::ZERO;
                        }
                    }
                }
                "vrrp_garp_extra_if" => g.garp_extra_if = self.garp_extra_if(n),
                "vrrp_down_timer_adverts" => {
                    g.down_timer_adverts = self.number(n, 1, 100).unwrap_or(g.down_timer_adverts)
                }
                "notify_fifo_script" | "vrrp_notify_fifo_script" | "lvs_notify_fifo_script" => {
                    let cmd = self.command(n);
                    let slot = match k {
                        "notify_fifo_script" => &mut g.notify_fifo,
                        "vrrp_notify_fifo_script" => &mut g.vrrp_notify_fifo,
                        _ => &mut g.lvs_notify_fifo,
                    };
                    match slot {
                        Some(f) => f.script = cmd,
                        None => self.error(
                            &n.key,
                            "notify_fifo_script without notify_fifo",
                            "add `notify_fifo /run/keepalived.fifo` before it",
                        ),
                    }
                }
                "notification_email" => {
                    for c in self.block(n) {
                        if self.mail_address(&c.key) {
                            g.smtp.to.push(c.key.text.clone());
                        }
                    }
                }
                "notification_email_from" => {
                    if let Some(t) = self.value(n, "an address") {
                        if self.mail_address(t) {
                            g.smtp.from = Some(t.text.clone());
                        }
                    }
                }
                "smtp_server" => {
                    if let Some(host) = self.value(n, "a host") {
                        let host = host.text.clone();
                        let port = match n.arg(1) {
                            None => Some(25),
                            Some(p) => {
                                p.text.parse::<u16>().ok().filter(|p| *p > 0).or_else(|| {
                                    self.error(
                                        p,
                                        format!("smtp_server port `{}` is not a port", p.text),
                                        "write `smtp_server 192.0.2.25 25`",
                                    );
                                    None
                                })
                            }
                        };
                        if let Some(port) = port {
                            g.smtp.server = Some((host, port));
                        }
                    }
                }
                "smtp_helo_name" => {
                    g.smtp.helo_name = self.value(n, "a name").map(|t| t.text.clone())
                }
                "smtp_connect_timeout" => {
                    if let Some(d) = self.seconds(n, 3600.0).filter(|d| !d.is_zero()) {
                        g.smtp.connect_timeout = d;
                    }
                }
                "smtp_alert" => g.smtp.alert = Some(flag(n)),
                "smtp_alert_vrrp" => g.smtp.alert_vrrp = Some(flag(n)),
                "no_email_faults" => g.smtp.no_email_faults = true,
                "default_interface" => {
                    g.default_interface = self.value(n, "an interface").map(|t| t.text.clone())
                }
                _ => self.unknown(&n.key, "global_defs", GLOBAL),
            }
            if k != "notification_email" {
                self.no_block(n);
            }
        }
    }

    /// A mail address keepalived would send to; one that is not is left
    /// out with a warning (keepalived would send it to the server as written).
    fn mail_address(&mut self, t: &Token) -> bool {
        match t.text.parse::<lettre::message::Mailbox>() {
            Ok(_) => true,
            Err(e) => {
                self.diags.push(
                    Diagnostic::warning(
                        &t.pos,
                        &t.text,
                        format!(
                            "`{}` is not a mail address ({e}): no mail goes to it",
                            t.text
                        ),
                    )
                    .fix("write `name@example.com` or `Name <name@example.com>`")
                    .lenient(),
                );
                false
            }
        }
    }

    fn script(&mut self, n: &Node) -> Option<VrrpScript> {
        let name = self.name(n)?.text.clone();
        let mut s = VrrpScript {
            name,
            script: None,
            interval: Duration::from_secs(1),
            timeout: Duration::ZERO,
            weight: 0,
            weight_reverse: false,
            rise: 1,
            fall: 1,
            user: None,
            init_fail: false,
            pos: n.key.pos.clone(),
        };
        let mut timeout_set = false;
        for c in self.block(n) {
            match c.key.text.as_str() {
                "script" => s.script = self.command(c),
                "interval" => {
                    s.interval = self
                        .seconds(c, 86_400.0)
                        .filter(|d| !d.is_zero())
                        .unwrap_or(s.interval)
                }
                "timeout" => {
                    if let Some(d) = self.seconds(c, 86_400.0) {
                        s.timeout = d;
                        timeout_set = true;
                    }
                }
                "weight" => {
                    if let Some(w) = self.number::<i32>(c, -253, 253) {
                        s.weight = w;
                    }
                    s.weight_reverse = c.arg(1).is_some_and(|t| t.text == "reverse");
                }
                "rise" => s.rise = self.number(c, 1, 1_000_000).unwrap_or(1),
                "fall" => s.fall = self.number(c, 1, 1_000_000).unwrap_or(1),
                "user" => {
                    if let Some(u) = self.value(c, "a user name") {
                        s.user = Some(ScriptUser {
                            user: u.text.clone(),
                            group: c.arg(1).map(|t| t.text.clone()),
                        });
                    }
                }
                "init_fail" => s.init_fail = true,
                _ => self.unknown(&c.key, "vrrp_script", SCRIPT),
            }
        }
        if !timeout_set {
            s.timeout = s.interval;
        }
        if s.script.is_none() {
            // keepalived: "No script set for vrrp_script NAME - removing".
            self.diags.push(
                Diagnostic::warning(
                    &n.key.pos,
                    &s.name,
                    format!("vrrp_script {} has no `script`: removed, as keepalived removes it (what tracks it is not affected)", s.name),
                )
                .fix("add `script \"/path/to/check\"` inside the block (with `@ID` lines, run with `-i ID`)")
                .lenient(),
            );
            return None;
        }
        Some(s)
    }

    fn track_file_def(&mut self, n: &Node) -> Option<TrackFileDef> {
        let name = self.name(n)?.text.clone();
        let mut t = TrackFileDef {
            name,
            file: PathBuf::new(),
            weight: 1,
            reverse: false,
            init: None,
            pos: n.key.pos.clone(),
        };
        for c in self.block(n) {
            match c.key.text.as_str() {
                "file" => {
                    t.file = self
                        .value(c, "a path")
                        .map(|v| PathBuf::from(&v.text))
                        .unwrap_or_default()
                }
                "weight" => {
                    t.weight = self.number(c, -254, 254).unwrap_or(1);
                    t.reverse = c.arg(1).is_some_and(|a| a.text == "reverse");
                }
                "init_file" => {
                    let value = c
                        .arg(0)
                        .and_then(|v| v.text.parse::<i64>().ok())
                        .unwrap_or(0);
                    let overwrite = c.args.iter().any(|a| a.text == "overwrite");
                    t.init = Some((value, overwrite));
                }
                _ => self.unknown(&c.key, "vrrp_track_file", TRACK_FILE),
            }
        }
        if t.file.as_os_str().is_empty() {
            self.error(
                &n.key,
                format!("track file {} has no `file`", t.name),
                "add `file /path/to/file` inside the block",
            );
        }
        Some(t)
    }

    /// `vrrp_track_process NAME { … }` with keepalived's defaults (quorum 1,
    /// no quorum_max, no delays, the comm compared unless the command line is).
    fn track_process_def(&mut self, n: &Node) -> Option<TrackProcessDef> {
        let name = self.name(n)?.text.clone();
        let mut t = TrackProcessDef::new(&name, "", n.key.pos.clone());
        for c in self.block(n) {
            match c.key.text.as_str() {
                "process" => {
                    if let Some(p) = self.value(c, "a process name") {
                        t.process = p.text.clone();
                        t.params = c.args[1..].iter().map(|a| a.text.clone()).collect();
                        if !t.params.is_empty() {
                            t.param_match.get_or_insert(ParamMatch::Exact);
                            t.full_command = true;
                        }
                    }
                }
                "param_match" => {
                    t.full_command = true;
                    t.param_match = match c.arg(0).map(|a| a.text.as_str()) {
                        None => Some(ParamMatch::Exact),
                        Some("initial") => Some(ParamMatch::Initial),
                        Some("partial") => Some(ParamMatch::Partial),
                        Some(other) => {
                            self.error(
                                &c.args[0],
                                format!("param_match `{other}` is neither initial nor partial"),
                                "write `param_match`, `param_match initial` or `param_match partial`",
                            );
                            t.param_match
                        }
                    }
                }
                "weight" => {
                    if let Some(w) = self.number::<i32>(c, -254, 254) {
                        t.weight = w;
                    }
                    t.reverse = c.arg(1).is_some_and(|a| a.text == "reverse");
                }
                "quorum" => t.quorum = self.number(c, 1, 65535).unwrap_or(t.quorum),
                "quorum_max" => {
                    if let Some(m) = self.number::<u32>(c, 0, 65535) {
                        // keepalived: quorum_max 0 means "no process may run".
                        t.quorum_max = m;
                        if m == 0 {
                            t.quorum = 0;
                        }
                    }
                }
                "delay" | "fork_delay" | "terminate_delay" => {
                    if let Some(d) = self.seconds(c, 3600.0) {
                        if c.key.text != "terminate_delay" {
                            t.fork_delay = d;
                        }
                        if c.key.text != "fork_delay" {
                            t.terminate_delay = d;
                        }
                    }
                }
                "full_command" => t.full_command = true,
                _ => self.unknown(&c.key, "vrrp_track_process", TRACK_PROCESS),
            }
        }
        if t.process.is_empty() {
            // keepalived: "process name not specified", and the block goes.
            self.diags.push(
                Diagnostic::warning(
                    &n.key.pos,
                    &t.name,
                    format!(
                        "vrrp_track_process {} has no `process`: removed, as keepalived removes it",
                        t.name
                    ),
                )
                .fix("add `process NAME` inside the block")
                .lenient(),
            );
            return None;
        }
        if t.quorum > t.quorum_max {
            self.error(
                &n.key,
                format!(
                    "vrrp_track_process {}: quorum {} is above quorum_max {}",
                    t.name, t.quorum, t.quorum_max
                ),
                "make quorum <= quorum_max",
            );
        }
        Some(t)
    }

    /// `track_script { NAME [weight N [reverse]] }` and the like.
    fn tracks(&mut self, n: &Node) -> Vec<Track> {
        let mut out = Vec::new();
        for c in self.block(n) {
            let mut t = Track {
                name: c.key.text.clone(),
                weight: None,
                reverse: false,
                pos: Some(c.key.pos.clone()),
            };
            let mut i = 0;
            while i < c.args.len() {
                match c.args[i].text.as_str() {
                    "weight" => {
                        match c.args.get(i + 1).map(|w| (w, w.text.parse::<i32>())) {
                            Some((_, Ok(w))) if (-254..=254).contains(&w) => t.weight = Some(w),
                            Some((w, _)) => self.error(
                                w,
                                format!("weight `{}` is not a number from -254 to 254", w.text),
                                "write `weight -20` (or a value up to ±254)",
                            ),
                            None => self.error(
                                &c.args[i],
                                "`weight` needs a number",
                                "write `weight -20`",
                            ),
                        }
                        i += 2;
                    }
                    "reverse" => {
                        t.reverse = true;
                        i += 1;
                    }
                    "noreverse" => i += 1,
                    other => {
                        self.error(
                            &c.args[i],
                            format!("unexpected `{other}` after {}", t.name),
                            "only `weight N` and `reverse` may follow the name",
                        );
                        i += 1;
                    }
                }
            }
            out.push(t);
        }
        out
    }

    fn vips(&mut self, n: &Node) -> Vec<Vip> {
        let mut out = Vec::new();
        for c in self.block(n) {
            if let Some(v) = self.vip(c) {
                out.push(v);
            }
        }
        out
    }

    fn vip(&mut self, c: &Node) -> Option<Vip> {
        let (addr_text, prefix_text) = match c.key.text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (c.key.text.as_str(), None),
        };
        let Ok(addr) = addr_text.parse::<IpAddr>() else {
            self.error(
                &c.key,
                format!("`{}` is not an IP address", c.key.text),
                "write `192.0.2.10/24` or `2001:db8::10/64`",
            );
            return None;
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text.map(|p| p.parse::<u8>()) {
            None => max,
            Some(Ok(p)) if p <= max => p,
            Some(_) => {
                self.error(
                    &c.key,
                    format!("bad prefix length in `{}`", c.key.text),
                    format!("use /0 to /{max}"),
                );
                return None;
            }
        };
        let mut vip = Vip {
            addr,
            prefix,
            dev: None,
            label: None,
            brd: None,
            scope: None,
            track_group: None,
            use_vmac: false,
            pos: Some(c.key.pos.clone()),
        };
        let mut i = 0;
        while i < c.args.len() {
            let opt = &c.args[i];
            let val = c.args.get(i + 1);
            match (opt.text.as_str(), val) {
                ("dev", Some(v)) => vip.dev = Some(v.text.clone()),
                ("label", Some(v)) => vip.label = Some(v.text.clone()),
                ("scope", Some(v)) => vip.scope = Some(v.text.clone()),
                ("track_group", Some(v)) => vip.track_group = Some(v.text.clone()),
                ("brd" | "broadcast", Some(v)) => match v.text.parse::<Ipv4Addr>() {
                    Ok(b) => vip.brd = Some(b),
                    // ip-address's `+`/`-`: the host bits set / cleared.
                    Err(_) if matches!(v.text.as_str(), "+" | "-") => match vip.addr {
                        IpAddr::V4(a) => {
                            let mask = u32::MAX
                                .checked_shl(32 - u32::from(vip.prefix))
                                .unwrap_or(0);
                            let net = u32::from(a) & mask;
                            vip.brd = Some(Ipv4Addr::from(if v.text == "+" {
                                net | !mask
                            } else {
                                net
                            }));
                        }
                        IpAddr::V6(_) => self.error(
                            v,
                            "IPv6 addresses have no broadcast",
                            "remove `brd` from the IPv6 address",
                        ),
                    },
                    Err(_) => self.error(
                        v,
                        format!("`{}` is not an IPv4 broadcast address", v.text),
                        "write `brd 192.0.2.255`",
                    ),
                },
                ("use_vmac", _) => {
                    vip.use_vmac = true;
                    i += 1;
                    continue;
                }
                (
                    "no_track" | "home" | "-nodad" | "nodad" | "noprefixroute" | "autojoin"
                    | "mngtmpaddr",
                    _,
                ) => {
                    i += 1;
                    continue;
                }
                // keepalived reads these; xvrrp adds the address without them.
                ("peer" | "preferred_lft", Some(_)) => self.diags.push(
                    Diagnostic::warning(
                        &opt.pos,
                        &opt.text,
                        format!(
                            "address option `{}` is not applied by xvrrp: {} is added without it",
                            opt.text, vip.addr
                        ),
                    )
                    .fix("remove the option, or add the address from a notify script")
                    .lenient(),
                ),
                (
                    "dev" | "label" | "scope" | "brd" | "broadcast" | "peer" | "preferred_lft",
                    None,
                ) => self.error(
                    opt,
                    format!("`{}` needs a value", opt.text),
                    format!("write `{} VALUE`", opt.text),
                ),
                // keepalived logs an unknown option and ignores it.
                (other, _) => {
                    self.diags.push(
                        Diagnostic::warning(
                            &opt.pos,
                            &opt.text,
                            format!("unknown address option `{other}`: ignored, as keepalived ignores it"),
                        )
                        .fix("valid: dev, label, brd, scope, use_vmac, no_track")
                        .lenient(),
                    );
                    i += 1;
                    continue;
                }
            }
            i += 2;
        }
        // keepalived: "use_vmac for a address requires an interface".
        if vip.use_vmac && vip.dev.is_none() {
            self.diags.push(
                Diagnostic::warning(
                    &c.key.pos,
                    &c.key.text,
                    format!(
                        "use_vmac on {} needs `dev`: ignored, as keepalived ignores it",
                        vip.addr
                    ),
                )
                .fix("add `dev IFNAME`, or use the instance's use_vmac / use_vmac_addr")
                .lenient(),
            );
            vip.use_vmac = false;
        }
        Some(vip)
    }

    fn notify_field(&mut self, c: &Node, notify: &mut Notify) -> bool {
        let slot = match c.key.text.as_str() {
            "notify_master" => &mut notify.master,
            "notify_backup" => &mut notify.backup,
            "notify_fault" => &mut notify.fault,
            "notify_stop" => &mut notify.stop,
            "notify_master_rx_lower_pri" => &mut notify.master_rx_lower_pri,
            "notify" => &mut notify.generic,
            "smtp_alert" => {
                notify.smtp_alert = Some(flag(c));
                return true;
            }
            "notify_deleted" => {
                notify.notify_deleted = true;
                if !c.args.is_empty() {
                    notify.deleted = self.notify_command(c);
                }
                return true;
            }
            "notify_fifo" => {
                if let Some(t) = self.value(c, "a path") {
                    notify.fifo = Some(Fifo {
                        path: PathBuf::from(&t.text),
                        script: None,
                    });
                }
                return true;
            }
            "notify_fifo_script" => {
                let cmd = self.command(c);
                match &mut notify.fifo {
                    Some(f) => f.script = cmd,
                    None => self.error(
                        &c.key,
                        "notify_fifo_script without notify_fifo",
                        "add `notify_fifo PATH` before it",
                    ),
                }
                return true;
            }
            _ => return false,
        };
        *slot = self.notify_command(c);
        true
    }

    fn instance(&mut self, n: &Node, global: &Global) -> Option<Instance> {
        let name = self.name(n)?.text.clone();
        let mut i = Instance {
            name,
            state: InitialState::Backup,
            interface: String::new(),
            vrid: 0,
            priority: 100,
            advert_int_cs: 100,
            version: global.vrrp_version,
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept: None,
            auth: None,
            vips: Vec::new(),
            vips_excluded: Vec::new(),
            unicast_src_ip: None,
            unicast_peers: Vec::new(),
            track_interfaces: Vec::new(),
            track_scripts: Vec::new(),
            track_files: Vec::new(),
            track_processes: Vec::new(),
            notify: Notify::default(),
            garp_master_delay: None,
            garp_master_repeat: None,
            garp_lower_prio_delay: None,
            garp_lower_prio_repeat: None,
            lower_prio_no_advert: None,
            higher_prio_send_advert: None,
            garp_master_refresh: None,
            garp_master_refresh_repeat: None,
            use_vmac: None,
            vmac_mac: None,
            garp_extra_if: None,
            peer_ttl: Vec::new(),
            unicast_ttl: None,
            unicast_fault_no_peer: false,
            track_src_ip: false,
            vmac_xmit_base: false,
            use_vmac_addr: false,
            vmac_group: None,
            vmac_netlink_notify: false,
            dont_track_primary: false,
            promote_secondaries: false,
            native_ipv6: false,
            check_unicast_src: global.check_unicast_src,
            skip_check_adv_addr: None,
            strict: None,
            down_timer_adverts: global.down_timer_adverts,
            v3_checksum_as_v2: false,
            no_virtual_ipaddress: false,
            mixed_v2_v3: false,
            mcast_dst_ip: None,
            virtual_routes: Vec::new(),
            virtual_rules: Vec::new(),
            pos: n.key.pos.clone(),
        };
        let mut priority_set = false;
        let mut version_set = false;
        let mut mixed = None;
        let mut advert_int: Option<(f64, Token)> = None;
        let mut vrid_set = false;
        let mut interface_set = false;
        for c in self.block(n) {
            let k = c.key.text.as_str();
            if self.notify_field(c, &mut i.notify) {
                continue;
            }
            match k {
                "state" => match self
                    .value(c, "MASTER or BACKUP")
                    .map(|t| (t, t.text.to_ascii_uppercase()))
                {
                    Some((_, s)) if s == "MASTER" => i.state = InitialState::Master,
                    Some((_, s)) if s == "BACKUP" => i.state = InitialState::Backup,
                    Some((t, _)) => self.error(
                        t,
                        format!("state `{}` is neither MASTER nor BACKUP", t.text),
                        "write `state MASTER` or `state BACKUP`",
                    ),
                    None => {}
                },
                "interface" => {
                    interface_set = true;
                    i.interface = self
                        .value(c, "an interface name")
                        .map(|t| t.text.clone())
                        .unwrap_or_default()
                }
                "virtual_router_id" => {
                    vrid_set = true;
                    if let Some(t) = self.value(c, "a number from 1 to 255") {
                        match t.text.parse::<u32>() {
                            Ok(v) if (1..=255).contains(&v) => i.vrid = v as u8,
                            _ => self.error(
                                t,
                                format!("virtual_router_id `{}` is not from 1 to 255", t.text),
                                "pick a VRID from 1 to 255, unique on this network segment",
                            ),
                        }
                    }
                }
                "priority" => {
                    if let Some(t) = self.value(c, "a number from 1 to 255") {
                        match t.text.parse::<u32>() {
                            Ok(v) if (1..=255).contains(&v) => {
                                i.priority = v as u8;
                                priority_set = true;
                            }
                            _ => self.error(
                                t,
                                format!("priority `{}` is not from 1 to 255", t.text),
                                "use 1-254, or 255 only on the address owner",
                            ),
                        }
                    }
                }
                "advert_int" => {
                    if let Some(t) = self.value(c, "seconds") {
                        match t.text.parse::<f64>() {
                            Ok(v) if v > 0.0 => advert_int = Some((v, t.clone())),
                            _ => self.error(
                                t,
                                format!(
                                    "advert_int `{}` is not a positive number of seconds",
                                    t.text
                                ),
                                "write `advert_int 1` (v3 allows 0.01 to 40.95)",
                            ),
                        }
                    }
                }
                "version" => {
                    if let Some(v) = self.number::<u8>(c, 2, 3) {
                        i.version = v;
                        version_set = true;
                    }
                }
                "nopreempt" => i.preempt = false,
                "preempt" => i.preempt = true,
                "preempt_delay" => i.preempt_delay = self.seconds(c, 1000.0).unwrap_or_default(),
                "accept" => i.accept = Some(true),
                "no_accept" => i.accept = Some(false),
                "authentication" => i.auth = self.authentication(c),
                "virtual_ipaddress" => i.vips = self.vips(c),
                "virtual_ipaddress_excluded" => i.vips_excluded = self.vips(c),
                "unicast_src_ip" | "mcast_src_ip" => {
                    i.unicast_src_ip = self.value(c, "an IP address").and_then(|t| {
                        let t = t.clone();
                        self.addr(&t)
                    })
                }
                "unicast_peer" => {
                    for p in self.block(c) {
                        let Some(a) = self.addr(&p.key) else { continue };
                        i.unicast_peers.push(a);
                        // keepalived's per-peer `min_ttl N` / `max_ttl N`.
                        let (mut lo, mut hi) = (0u8, 255u8);
                        let mut k = 0;
                        while k < p.args.len() {
                            let (opt, val) = (&p.args[k], p.args.get(k + 1));
                            match (opt.text.as_str(), val.map(|v| v.text.parse::<u8>())) {
                                ("min_ttl", Some(Ok(v))) => lo = v,
                                ("max_ttl", Some(Ok(v))) => hi = v,
                                _ => self.error(
                                    opt,
                                    format!("unicast_peer option `{}` is not min_ttl/max_ttl with a value 0-255", opt.text),
                                    "write `192.0.2.2 min_ttl 250 max_ttl 255`",
                                ),
                            }
                            k += 2;
                        }
                        if (lo, hi) != (0, 255) {
                            i.peer_ttl.push((a, lo, hi));
                        }
                    }
                }
                "unicast_ttl" => i.unicast_ttl = self.number(c, 1, 255),
                "unicast_fault_no_peer" => i.unicast_fault_no_peer = true,
                "track_src_ip" => i.track_src_ip = true,
                "track_interface" => i.track_interfaces = self.tracks(c),
                "track_script" => i.track_scripts = self.tracks(c),
                "track_file" => i.track_files = self.tracks(c),
                "track_process" => i.track_processes = self.tracks(c),
                "garp_master_delay" => i.garp_master_delay = self.seconds(c, 1000.0),
                "garp_master_repeat" => i.garp_master_repeat = self.number(c, 0, 10_000),
                "garp_lower_prio_delay" => i.garp_lower_prio_delay = self.seconds(c, 1000.0),
                "garp_lower_prio_repeat" => i.garp_lower_prio_repeat = self.number(c, 0, 10_000),
                "lower_prio_no_advert" => i.lower_prio_no_advert = Some(flag(c)),
                "higher_prio_send_advert" => i.higher_prio_send_advert = Some(flag(c)),
                "garp_master_refresh" => i.garp_master_refresh = self.seconds(c, 1_000_000.0),
                "garp_master_refresh_repeat" => {
                    i.garp_master_refresh_repeat = self.number(c, 1, 10_000)
                }
                "use_vmac" => self.use_vmac(c, &mut i),
                "garp_extra_if" => i.garp_extra_if = self.garp_extra_if(c),
                "vmac_xmit_base" => i.vmac_xmit_base = true,
                "use_vmac_addr" => i.use_vmac_addr = true,
                "dont_track_primary" => i.dont_track_primary = true,
                "promote_secondaries" => i.promote_secondaries = true,
                "native_ipv6" => i.native_ipv6 = true,
                "check_unicast_src" => i.check_unicast_src = true,
                "virtual_rules" => {
                    let v6 = i.is_ipv6();
                    let lines: Vec<Node> = self.block(c).to_vec();
                    for line in &lines {
                        if let Some(r) = self.skipped_if_bad(|b| b.rule(line, v6)) {
                            i.virtual_rules.push(r);
                        }
                    }
                }
                "virtual_routes" => {
                    let lines: Vec<Node> = self.block(c).to_vec();
                    for line in &lines {
                        if let Some(r) = self.skipped_if_bad(|b| b.route(line)) {
                            i.virtual_routes.push(r);
                        }
                    }
                }
                "mcast_dst_ip" => {
                    if let Some(t) = self.value(c, "a multicast address") {
                        match t.text.parse::<IpAddr>() {
                            Ok(a) if a.is_multicast() => i.mcast_dst_ip = Some(a),
                            _ => self.error(
                                t,
                                format!("mcast_dst_ip `{}` is not a multicast address", t.text),
                                "use a group such as 224.0.0.18 or ff02::12, the same on every router",
                            ),
                        }
                    }
                }
                "mixed_v2_v3" => {
                    i.mixed_v2_v3 = true;
                    mixed = Some(c.key.clone());
                }
                "skip_check_adv_addr" => i.skip_check_adv_addr = Some(true),
                "strict_mode" => {
                    i.strict = Some(
                        c.arg(0)
                            .is_none_or(|t| t.text != "off" && t.text != "false"),
                    )
                }
                "down_timer_adverts" => {
                    i.down_timer_adverts = self.number(c, 1, 100).unwrap_or(i.down_timer_adverts)
                }
                "v3_checksum_as_v2" => i.v3_checksum_as_v2 = flag(c),
                "no_virtual_ipaddress" => i.no_virtual_ipaddress = true,
                _ => self.unknown(&c.key, &format!("vrrp_instance {}", i.name), INSTANCE),
            }
        }
        // keepalived: a unicast instance may leave out `interface`; it is
        // the one holding unicast_src_ip (found when the agent starts).
        let unicast_only = i.unicast_src_ip.is_some() && !i.unicast_peers.is_empty();
        if !interface_set && !unicast_only {
            self.error(
                &n.key,
                format!("vrrp_instance {} has no `interface`", i.name),
                "add `interface eth0` (the interface adverts go out on)",
            );
        }
        if !vrid_set {
            self.error(&n.key, format!("vrrp_instance {} has no `virtual_router_id`", i.name), "add `virtual_router_id N` with N from 1 to 255, the same on every router of this VIP");
        }
        // keepalived: priority defaults to 255 (owner) when omitted with state MASTER.
        if !priority_set && i.state == InitialState::Master {
            i.priority = 255;
        }
        // IPv6 instances are always version 3.
        if i.is_ipv6() {
            if version_set && i.version == 2 {
                self.error(
                    &n.key,
                    format!(
                        "vrrp_instance {} has IPv6 addresses but `version 2`",
                        i.name
                    ),
                    "VRRPv2 is IPv4 only: use `version 3`",
                );
            }
            i.version = 3;
        }
        if let Some((secs, t)) = advert_int {
            i.advert_int_cs = self.advert_int(secs, &t, i.version);
        }
        if let Some(key) = mixed {
            self.mixed_v2_v3(&key, &i);
        }
        self.no_track_group_here(&mut i);
        Some(i)
    }

    /// `use_vmac [[name] NAME] [MAC] [netlink_notify_msg] [group G]`, as
    /// keepalived reads it: a word with `:` is the MAC, the other one the name.
    fn use_vmac(&mut self, c: &Node, i: &mut Instance) {
        let mut name = String::new();
        let mut k = 0;
        while k < c.args.len() {
            let a = &c.args[k];
            k += 1;
            match a.text.as_str() {
                "name" => continue,
                "netlink_notify_msg" => i.vmac_netlink_notify = true,
                "group" => {
                    let Some(g) = c.args.get(k) else {
                        self.error(a, "use_vmac `group` needs a group", "write `group 10` or a name from /etc/iproute2/group");
                        continue;
                    };
                    k += 1;
                    match link_group(&g.text) {
                        Some(n) => i.vmac_group = Some(n),
                        None => self.diags.push(
                            Diagnostic::warning(&g.pos, &g.text, format!("use_vmac group `{}` is neither a number nor a name in /etc/iproute2/group: the vmac goes in its parent's group", g.text))
                                .fix("write the group's number, or add the name to /etc/iproute2/group")
                                .lenient(),
                        ),
                    }
                }
                mac if mac.contains(':') => match vmac_mac(mac, i.vrid) {
                    Ok(m) => i.vmac_mac = Some(m),
                    Err(why) => self.error(
                        a,
                        format!("use_vmac MAC `{mac}`: {why}"),
                        "write six (or five, the VRID completing them) hex octets, e.g. 02:00:5e:10:00:01",
                    ),
                },
                other if name.is_empty() => name = other.to_owned(),
                other => self.error(
                    a,
                    format!("use_vmac has its name already; `{other}` is one word too many"),
                    "write `use_vmac [NAME] [MAC]`",
                ),
            }
        }
        i.use_vmac = Some(name);
    }

    /// `[vrrp_]garp_extra_if [all] SECS` (0 turns it off; at most a day).
    fn garp_extra_if(&mut self, n: &Node) -> Option<(Duration, bool)> {
        let all = n.args.iter().any(|a| a.text == "all");
        let Some(t) = n.args.iter().find(|a| a.text != "all") else {
            self.error(
                &n.key,
                format!("`{}` needs a period in seconds", n.key.text),
                format!("write `{} [all] 100`", n.key.text),
            );
            return None;
        };
        match t.text.parse::<f64>() {
            Ok(0.0) => None,
            Ok(v) if v > 0.0 && v <= 86_400.0 => Some((Duration::from_secs_f64(v), all)),
            _ => {
                self.error(
                    t,
                    format!(
                        "`{}` {} is not a period from 0 to 86400 seconds",
                        n.key.text, t.text
                    ),
                    "write e.g. `100` (switch caches often keep 300 s)",
                );
                None
            }
        }
    }

    /// keepalived reads `track_group` on static lines only.
    fn no_track_group_here(&mut self, i: &mut Instance) {
        let lines = i
            .vips
            .iter_mut()
            .chain(i.vips_excluded.iter_mut())
            .map(|v| (&mut v.track_group, &v.pos))
            .chain(
                i.virtual_routes
                    .iter_mut()
                    .map(|r| (&mut r.track_group, &r.pos)),
            )
            .chain(
                i.virtual_rules
                    .iter_mut()
                    .map(|r| (&mut r.track_group, &r.pos)),
            );
        for (group, pos) in lines {
            if let (Some(g), Some(pos)) = (group.take(), pos) {
                self.diags.push(
                    Diagnostic::warning(pos, &g, "`track_group` belongs to static_ipaddress / static_routes / static_rules lines: ignored here")
                        .fix("remove it, or move the line to a static_* block")
                        .lenient(),
                );
            }
        }
    }

    /// RFC 9568 §8.4.2: a mixed router sends v2 and v3 at the configured
    /// rate, so it must be a v3 IPv4 instance whose interval v2 can carry.
    fn mixed_v2_v3(&mut self, key: &Token, i: &Instance) {
        let problem = if i.is_ipv6() {
            Some(("it is IPv6 (VRRPv2 is IPv4 only)", "remove `mixed_v2_v3`"))
        } else if i.version != 3 {
            Some((
                "it is not `version 3`",
                "add `version 3`: a v3 router also speaks v2 to v2 routers",
            ))
        } else if !i.advert_int_cs.is_multiple_of(100) || i.advert_int_cs > 25_500 {
            Some((
                "its advert_int is not whole seconds (1–255), which VRRPv2 cannot carry",
                "use a whole-second `advert_int`, as the v2 routers have",
            ))
        } else {
            None
        };
        if let Some((why, fix)) = problem {
            self.error(
                key,
                format!("vrrp_instance {}: `mixed_v2_v3` but {why}", i.name),
                fix,
            );
        }
    }

    /// v2: whole seconds 1–255 (fractions rounded, at least 1); v3: 0.01–40.95 s.
    fn advert_int(&mut self, secs: f64, t: &Token, version: u8) -> u16 {
        if version == 2 {
            if secs > 255.0 {
                self.error(
                    t,
                    format!("advert_int {} is above 255 s, the VRRPv2 maximum", t.text),
                    "use 1 to 255 seconds",
                );
                return 100;
            }
            let whole = secs.round().max(1.0);
            if whole != secs {
                self.diags.push(
                    Diagnostic::warning(
                        &t.pos,
                        &t.text,
                        format!(
                            "VRRPv2 carries whole seconds: advert_int {} becomes {}",
                            t.text, whole
                        ),
                    )
                    .fix("use `version 3` for sub-second adverts, or write a whole number"),
                );
            }
            (whole as u16) * 100
        } else {
            let cs = (secs * 100.0).round();
            if !(1.0..=4095.0).contains(&cs) {
                self.error(
                    t,
                    format!("advert_int {} is outside VRRPv3's 0.01 to 40.95 s", t.text),
                    "use a value from 0.01 to 40.95",
                );
                return 100;
            }
            cs as u16
        }
    }

    fn authentication(&mut self, n: &Node) -> Option<Authentication> {
        let mut kind = None;
        let mut pass = String::new();
        for c in self.block(n) {
            match c.key.text.as_str() {
                "auth_type" => match self
                    .value(c, "PASS or AH")
                    .map(|t| (t.clone(), t.text.to_ascii_uppercase()))
                {
                    Some((_, s)) if s == "PASS" => kind = Some(AuthType::Pass),
                    Some((_, s)) if s == "AH" => kind = Some(AuthType::Ah),
                    Some((t, _)) => self.error(
                        &t,
                        format!("auth_type `{}` is neither PASS nor AH", t.text),
                        "write `auth_type PASS`",
                    ),
                    None => {}
                },
                "auth_pass" => {
                    if let Some(t) = self.value(c, "a password") {
                        pass = t.text.clone();
                        if pass.len() > 8 {
                            self.diags.push(
                                Diagnostic::warning(&t.pos, &t.text, "auth_pass is longer than 8 characters: only the first 8 are sent (as keepalived does)")
                                    .fix("shorten it to 8 characters to make that visible"),
                            );
                        }
                    }
                }
                _ => self.unknown(&c.key, "authentication", &["auth_type", "auth_pass"]),
            }
        }
        match kind {
            Some(kind) => Some(Authentication { kind, pass }),
            None => {
                self.error(
                    &n.key,
                    "authentication without `auth_type`",
                    "add `auth_type PASS` (or remove the block)",
                );
                None
            }
        }
    }

    fn group(&mut self, n: &Node) -> Option<SyncGroup> {
        let name = self.name(n)?.text.clone();
        let mut g = SyncGroup {
            name,
            members: Vec::new(),
            notify: Notify::default(),
            track_interfaces: Vec::new(),
            track_scripts: Vec::new(),
            track_files: Vec::new(),
            track_processes: Vec::new(),
            tracking_weight: false,
            pos: n.key.pos.clone(),
        };
        for c in self.block(n) {
            if self.notify_field(c, &mut g.notify) {
                continue;
            }
            match c.key.text.as_str() {
                "group" => {
                    for m in self.block(c) {
                        g.members.extend(m.words().map(|t| t.text.clone()));
                    }
                    g.members.extend(c.args.iter().map(|t| t.text.clone()));
                }
                "track_interface" => g.track_interfaces = self.tracks(c),
                "track_script" => g.track_scripts = self.tracks(c),
                "track_file" => g.track_files = self.tracks(c),
                "track_process" => g.track_processes = self.tracks(c),
                "sync_group_tracking_weight" => g.tracking_weight = true,
                // keepalived: "global_tracking is deprecated", and it sets the same.
                "global_tracking" => {
                    g.tracking_weight = true;
                    self.diags.push(
                        Diagnostic::warning(&c.key.pos, &c.key.text, "global_tracking is deprecated (keepalived says so too): read as sync_group_tracking_weight")
                            .fix("write `sync_group_tracking_weight`")
                            .lenient(),
                    );
                }
                // Old syntax: members listed directly in the block.
                name if name.starts_with(|ch: char| ch.is_ascii_alphabetic() || ch == '_')
                    && c.block.is_none()
                    && unsupported(name).is_none()
                    && !GROUP.contains(&name) =>
                {
                    g.members.extend(c.words().map(|t| t.text.clone()));
                }
                _ => self.unknown(&c.key, &format!("vrrp_sync_group {}", g.name), GROUP),
            }
        }
        Some(g)
    }
}

/// Splits a command as keepalived does: on blanks, with '…' grouping.
pub fn split_command(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut has = false;
    for ch in text.chars() {
        match ch {
            '\'' => {
                in_quote = !in_quote;
                has = true;
            }
            c if c.is_whitespace() && !in_quote => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => {
                cur.push(c);
                has = true;
            }
        }
    }
    if has {
        out.push(cur);
    }
    out
}

/// keepalived's optional boolean argument: absent, `true`, `yes`, `on` or
/// `1` set it; `false`, `no`, `off` or `0` clear it.
/// An interface group as `ip link … group` takes it: a number, or a name
/// from iproute2's group file (`default` is 0).
fn link_group(text: &str) -> Option<u32> {
    if let Ok(n) = text.parse() {
        return Some(n);
    }
    if text == "default" {
        return Some(0);
    }
    ["/etc/iproute2/group", "/usr/share/iproute2/group"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| t.lines().map(str::to_owned).collect::<Vec<_>>())
        .find_map(|l| {
            let mut w = l.split_whitespace();
            let num = w.next()?.parse().ok()?;
            (w.next()? == text).then_some(num)
        })
}

/// use_vmac's MAC: six octets, or five with the VRID as the sixth; not
/// multicast, not the RFC's own 00:00:5e:00:01/02 range (keepalived's rules).
fn vmac_mac(text: &str, vrid: u8) -> Result<[u8; 6], &'static str> {
    let octets: Vec<&str> = text.trim_end_matches(':').split(':').collect();
    if !(5..=6).contains(&octets.len()) {
        return Err("not five or six octets");
    }
    let mut mac = [0u8; 6];
    mac[5] = vrid;
    for (slot, o) in mac.iter_mut().zip(&octets) {
        *slot = u8::from_str_radix(o, 16).map_err(|_| "not hexadecimal octets")?;
    }
    if mac[0] & 1 != 0 {
        return Err("a multicast address");
    }
    if mac[..4] == [0, 0, 0x5e, 0] && (mac[4] == 1 || mac[4] == 2) {
        return Err("the RFC's virtual router MAC range; leave the MAC out to use it");
    }
    Ok(mac)
}

pub(super) fn flag(n: &Node) -> bool {
    n.arg(0).is_none_or(|t| {
        !matches!(
            t.text.to_ascii_lowercase().as_str(),
            "false" | "no" | "off" | "0"
        )
    })
}
