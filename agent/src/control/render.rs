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
    out
}

pub fn json(s: &Status) -> String {
    serde_json::to_string_pretty(s).expect("serializable")
}

/// Prometheus text exposition format.
pub fn metrics(s: &Status) -> String {
    let mut out = String::new();
    let states = ["Initialize", "Backup", "Active", "Fault"];
    let _ = writeln!(
        out,
        "# HELP xvrrp_state 1 for the instance's current state.\n# TYPE xvrrp_state gauge"
    );
    for i in &s.instances {
        for st in states {
            let _ = writeln!(
                out,
                "xvrrp_state{{instance=\"{}\",state=\"{st}\"}} {}",
                i.name,
                u8::from(i.state == st)
            );
        }
    }
    type Field = fn(&super::InstanceStatus) -> u64;
    let per: [(&str, &str, &str, Field); 5] = [
        (
            "xvrrp_priority",
            "gauge",
            "Effective priority.",
            |i: &super::InstanceStatus| i.priority as u64,
        ),
        (
            "xvrrp_transitions_total",
            "counter",
            "State transitions.",
            |i: &super::InstanceStatus| i.transitions,
        ),
        (
            "xvrrp_adverts_sent_total",
            "counter",
            "Adverts sent.",
            |i: &super::InstanceStatus| i.adverts_sent,
        ),
        (
            "xvrrp_adverts_received_total",
            "counter",
            "Adverts received for this instance.",
            |i: &super::InstanceStatus| i.adverts_received,
        ),
        (
            "xvrrp_split_brain_total",
            "counter",
            "Lower-priority Actives heard while Active (split brains healed).",
            |i: &super::InstanceStatus| i.split_brain,
        ),
    ];
    for (name, kind, help, f) in per {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for i in &s.instances {
            let _ = writeln!(out, "{name}{{instance=\"{}\"}} {}", i.name, f(i));
        }
    }
    let _ = writeln!(out, "# HELP xvrrp_adverts_discarded_total Adverts not used, by reason.\n# TYPE xvrrp_adverts_discarded_total counter");
    for i in &s.instances {
        for (reason, n) in &i.discarded {
            let _ = writeln!(
                out,
                "xvrrp_adverts_discarded_total{{instance=\"{}\",reason=\"{reason}\"}} {n}",
                i.name
            );
        }
    }
    type CheckField = fn(&crate::track::script::ScriptStatus) -> u64;
    let checks: [(&str, &str, CheckField); 3] = [
        ("xvrrp_check_runs_total", "Script check runs.", |c| c.runs),
        (
            "xvrrp_check_failures_total",
            "Script check failures (timeouts included).",
            |c| c.failures,
        ),
        (
            "xvrrp_check_timeouts_total",
            "Script checks killed at their timeout.",
            |c| c.timeouts,
        ),
    ];
    for (name, help, f) in checks {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for i in &s.instances {
            for c in &i.checks {
                if let Some(sc) = &c.script {
                    let _ = writeln!(
                        out,
                        "{name}{{instance=\"{}\",check=\"{}\"}} {}",
                        i.name,
                        c.name,
                        f(sc)
                    );
                }
            }
        }
    }
    let _ = writeln!(out, "# HELP xvrrp_check_weight What each tracked item adds to the priority now.\n# TYPE xvrrp_check_weight gauge");
    for i in &s.instances {
        for c in &i.checks {
            let _ = writeln!(
                out,
                "xvrrp_check_weight{{instance=\"{}\",kind=\"{}\",check=\"{}\"}} {}",
                i.name, c.kind, c.name, c.weight
            );
        }
    }
    let _ = writeln!(out, "# HELP xvrrp_xdp_total XDP program counters, every branch, per interface.\n# TYPE xvrrp_xdp_total counter");
    for x in &s.xdp {
        for (k, v) in &x.counters {
            let _ = writeln!(
                out,
                "xvrrp_xdp_total{{interface=\"{}\",counter=\"{k}\"}} {v}",
                x.interface
            );
        }
    }
    let _ = writeln!(out, "# HELP xvrrp_fail_silent 1 when a killed agent's host stops answering ARP/ND for its VIPs (XDP attached, lease-gated), 0 when it does not.\n# TYPE xvrrp_fail_silent gauge");
    for f in &s.fail_silent {
        let _ = writeln!(
            out,
            "xvrrp_fail_silent{{interface=\"{}\"}} {}",
            f.interface,
            u8::from(f.on)
        );
    }
    let _ = writeln!(out, "# HELP xvrrp_events_total Daemon-wide events (invalid adverts by reason, checksum forms, unknown VRIDs).\n# TYPE xvrrp_events_total counter");
    for (k, v) in &s.counters {
        let _ = writeln!(out, "xvrrp_events_total{{event=\"{k}\"}} {v}");
    }
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
        let back: Status = serde_json::from_str(&json(&s)).unwrap();
        assert_eq!(back, s);
    }
}
