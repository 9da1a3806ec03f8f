//! `xvrrp status` output: a table, JSON, or Prometheus text.

use std::fmt::Write as _;

use super::Status;

pub fn table(s: &Status) -> String {
    let header = [
        "INSTANCE",
        "INTERFACE",
        "VRID",
        "STATE",
        "PRIO(EFF/CONF)",
        "ACTIVE",
        "LAST TRANSITION",
        "VIPS",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    for i in &s.instances {
        rows.push(vec![
            i.name.clone(),
            i.interface.clone(),
            i.vrid.to_string(),
            i.state.clone(),
            format!("{}/{}", i.priority, i.configured_priority),
            i.active.clone().unwrap_or_else(|| "-".into()),
            i.last_transition
                .as_ref()
                .map(|t| {
                    format!(
                        "{:.0}s ago: {}->{} ({})",
                        (now - t.at).max(0.0),
                        t.from,
                        t.to,
                        t.reason
                    )
                })
                .unwrap_or_else(|| "-".into()),
            i.vips.join(","),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    let checks: Vec<String> = s
        .instances
        .iter()
        .flat_map(|i| i.checks.iter().map(move |c| (i, c)))
        .map(|(i, c)| {
            let mut line = format!("  {} {} {}: {}", i.name, c.kind, c.name, c.state);
            if let Some(sc) = &c.script {
                if let Some(last) = &sc.last {
                    let _ = write!(line, ", last {last:?} in {} ms", sc.last_ms);
                }
                if let Some(ms) = sc.running_ms {
                    let _ = write!(line, ", RUNNING FOR {ms} ms (slow or hanging)");
                }
                let _ = write!(
                    line,
                    ", {} runs, {} failed, {} timed out",
                    sc.runs, sc.failures, sc.timeouts
                );
            }
            if c.weight != 0 {
                let _ = write!(line, ", weight {:+}", c.weight);
            }
            if c.fault {
                line.push_str(", FAULT");
            }
            line
        })
        .collect();
    for x in &s.xdp {
        let nonzero: Vec<String> = x
            .counters
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(
            out,
            "xdp {} ({}, program {}): {}",
            x.interface,
            x.mode,
            x.prog_id,
            nonzero.join(" ")
        );
    }
    for f in &s.fail_silent {
        let _ = writeln!(
            out,
            "fail silent on {}: {} ({})",
            f.interface,
            if f.on { "yes" } else { "NO" },
            f.why
        );
    }
    if !checks.is_empty() {
        let _ = writeln!(out, "checks:\n{}", checks.join("\n"));
    }
    for v in &s.virtual_servers {
        let _ = writeln!(
            out,
            "virtual_server {} {} {} {}: {}, quorum {} ({}, live weight {}){}",
            v.name,
            v.protocol,
            v.lb_kind,
            v.lb_algo,
            if v.forwarding {
                "forwarding"
            } else {
                "not forwarding"
            },
            v.quorum,
            if v.quorum_up { "up" } else { "DOWN" },
            v.live_weight,
            if v.sorry_active { ", SORRY SERVER" } else { "" }
        );
        for r in &v.reals {
            let checks: Vec<String> = r
                .checkers
                .iter()
                .map(|(k, up)| format!("{k} {}", if *up { "up" } else { "DOWN" }))
                .collect();
            let _ = writeln!(
                out,
                "  real_server {}: {}, weight {}, {} packets, {} bytes{}{}",
                r.address,
                if r.alive { "up" } else { "DOWN" },
                r.weight,
                r.packets,
                r.bytes,
                if checks.is_empty() { "" } else { "; " },
                checks.join(", ")
            );
        }
    }
    out
}

pub fn json(s: &Status) -> String {
    serde_json::to_string_pretty(s).expect("serializable")
}

/// The metrics, rendered by prometheus-client (OpenMetrics text: label
/// values escaped, counters named `_total`) from one status snapshot.
pub fn metrics(s: &Status) -> String {
    use prometheus_client::{
        encoding::text::encode,
        metrics::{counter::Counter, family::Family, gauge::Gauge},
        registry::Registry,
    };
    type Labels = Vec<(&'static str, String)>;
    let mut registry = Registry::default();
    let gauge = |registry: &mut Registry, name: &str, help: &str| {
        let f = Family::<Labels, Gauge>::default();
        registry.register(name, help, f.clone());
        f
    };
    let counter = |registry: &mut Registry, name: &str, help: &str| {
        let f = Family::<Labels, Counter>::default();
        registry.register(name, help, f.clone());
        f
    };
    let inst = |i: &super::InstanceStatus| vec![("instance", i.name.clone())];

    let state = gauge(
        &mut registry,
        "xvrrp_state",
        "1 for the instance's current state.",
    );
    let priority = gauge(&mut registry, "xvrrp_priority", "Effective priority.");
    let transitions = counter(&mut registry, "xvrrp_transitions", "State transitions.");
    let sent = counter(&mut registry, "xvrrp_adverts_sent", "Adverts sent.");
    let received = counter(
        &mut registry,
        "xvrrp_adverts_received",
        "Adverts received for this instance.",
    );
    let split = counter(
        &mut registry,
        "xvrrp_split_brain",
        "Lower-priority Actives heard while Active (split brains healed).",
    );
    let discarded = counter(
        &mut registry,
        "xvrrp_adverts_discarded",
        "Adverts not used, by reason.",
    );
    let runs = counter(&mut registry, "xvrrp_check_runs", "Script check runs.");
    let failures = counter(
        &mut registry,
        "xvrrp_check_failures",
        "Script check failures (timeouts included).",
    );
    let timeouts = counter(
        &mut registry,
        "xvrrp_check_timeouts",
        "Script checks killed at their timeout.",
    );
    let weight = gauge(
        &mut registry,
        "xvrrp_check_weight",
        "What each tracked item adds to the priority now.",
    );
    for i in &s.instances {
        for st in ["Initialize", "Backup", "Active", "Fault"] {
            let mut l = inst(i);
            l.push(("state", st.to_owned()));
            state.get_or_create(&l).set(i64::from(i.state == st));
        }
        priority.get_or_create(&inst(i)).set(i64::from(i.priority));
        transitions.get_or_create(&inst(i)).inc_by(i.transitions);
        sent.get_or_create(&inst(i)).inc_by(i.adverts_sent);
        received.get_or_create(&inst(i)).inc_by(i.adverts_received);
        split.get_or_create(&inst(i)).inc_by(i.split_brain);
        for (reason, n) in &i.discarded {
            let mut l = inst(i);
            l.push(("reason", reason.clone()));
            discarded.get_or_create(&l).inc_by(*n);
        }
        for c in &i.checks {
            let mut l = inst(i);
            l.push(("kind", c.kind.clone()));
            l.push(("check", c.name.clone()));
            weight.get_or_create(&l).set(i64::from(c.weight));
            if let Some(sc) = &c.script {
                let mut l = inst(i);
                l.push(("check", c.name.clone()));
                runs.get_or_create(&l).inc_by(sc.runs);
                failures.get_or_create(&l).inc_by(sc.failures);
                timeouts.get_or_create(&l).inc_by(sc.timeouts);
            }
        }
    }
    let xdp = counter(
        &mut registry,
        "xvrrp_xdp",
        "XDP program counters, every branch, per interface.",
    );
    for x in &s.xdp {
        for (k, v) in &x.counters {
            xdp.get_or_create(&vec![
                ("interface", x.interface.clone()),
                ("counter", k.clone()),
            ])
            .inc_by(*v);
        }
    }
    let fail_silent = gauge(
        &mut registry,
        "xvrrp_fail_silent",
        "1 when a killed agent's host stops answering ARP/ND for its VIPs (XDP attached, lease-gated), 0 when it does not.",
    );
    for f in &s.fail_silent {
        fail_silent
            .get_or_create(&vec![("interface", f.interface.clone())])
            .set(i64::from(f.on));
    }
    let events = counter(
        &mut registry,
        "xvrrp_events",
        "Daemon-wide events (invalid adverts by reason, checksum forms, unknown VRIDs).",
    );
    for (k, v) in &s.counters {
        events.get_or_create(&vec![("event", k.clone())]).inc_by(*v);
    }
    let rs_up = gauge(
        &mut registry,
        "xvrrp_real_server_up",
        "virtual_server real server alive (1) or down (0).",
    );
    let rs_weight = gauge(
        &mut registry,
        "xvrrp_real_server_weight",
        "Weight new connections get (0: none).",
    );
    let rs_packets = counter(
        &mut registry,
        "xvrrp_real_server_packets",
        "Packets of connections NATed to the real server, both ways.",
    );
    let rs_bytes = counter(
        &mut registry,
        "xvrrp_real_server_bytes",
        "Bytes of connections NATed to the real server, both ways.",
    );
    let vs_quorum = gauge(
        &mut registry,
        "xvrrp_virtual_server_quorum_up",
        "Quorum held (1) or lost (0).",
    );
    for v in &s.virtual_servers {
        vs_quorum
            .get_or_create(&vec![("virtual_server", v.name.clone())])
            .set(i64::from(v.quorum_up));
        for r in &v.reals {
            let l = vec![
                ("virtual_server", v.name.clone()),
                ("real_server", r.address.clone()),
            ];
            rs_up.get_or_create(&l).set(i64::from(r.alive));
            rs_weight.get_or_create(&l).set(i64::from(r.weight));
            rs_packets.get_or_create(&l).inc_by(r.packets);
            rs_bytes.get_or_create(&l).inc_by(r.bytes);
        }
    }
    let mut out = String::new();
    encode(&mut out, &registry).expect("writing to a String");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::InstanceStatus;

    #[test]
    fn renders_every_format() {
        let mut s = Status::default();
        s.instances.push(InstanceStatus {
            name: "VI_1".into(),
            interface: "eth0".into(),
            vrid: 51,
            state: "Active".into(),
            priority: 90,
            configured_priority: 100,
            vips: vec!["192.0.2.8/24".into()],
            transitions: 2,
            ..Default::default()
        });
        s.instances[0].discarded.insert("ttl".into(), 3);
        s.counters.insert("invalid_checksum".into(), 1);
        s.fail_silent.push(crate::control::FailSilent {
            interface: "eth0".into(),
            on: false,
            why: "--xdp-mode off".into(),
        });
        let t = table(&s);
        assert!(
            t.contains("fail silent on eth0: NO (--xdp-mode off)"),
            "{t}"
        );
        assert!(
            t.contains("VI_1") && t.contains("90/100") && t.contains("192.0.2.8/24"),
            "{t}"
        );
        let m = metrics(&s);
        assert!(m.contains("xvrrp_state{instance=\"VI_1\",state=\"Active\"} 1"));
        assert!(m.contains("xvrrp_transitions_total{instance=\"VI_1\"} 2"));
        assert!(m.contains("xvrrp_adverts_discarded_total{instance=\"VI_1\",reason=\"ttl\"} 3"));
        assert!(m.contains("xvrrp_events_total{event=\"invalid_checksum\"} 1"));
        assert!(m.contains("xvrrp_fail_silent{interface=\"eth0\"} 0"), "{m}");
        // Label values are escaped: a check named with a quote stays one label.
        s.instances[0].checks.push(crate::track::CheckStatus {
            kind: "script".into(),
            name: "say \"hi\"\\n".into(),
            state: "ok".into(),
            weight: -5,
            fault: false,
            script: None,
        });
        let m = metrics(&s);
        assert!(
            m.contains(
                r#"xvrrp_check_weight{instance="VI_1",kind="script",check="say \"hi\"\\n"} -5"#
            ),
            "{m}"
        );
        let back: Status = serde_json::from_str(&json(&s)).unwrap();
        assert_eq!(back, s);
    }
}
