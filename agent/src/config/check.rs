//! `xvrrp check`: what a config configures, as a table or JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::{diag::Diagnostics, model::*};

#[derive(Serialize)]
struct InstanceRow<'a> {
    name: &'a str,
    interface: &'a str,
    vrid: u8,
    version: u8,
    priority: u8,
    state: InitialState,
    advert_int_s: f64,
    preempt: bool,
    vips: Vec<String>,
    unicast_peers: Vec<String>,
    tracked: Vec<String>,
}

fn tracked(i: &Instance) -> Vec<String> {
    let weight = |t: &Track| t.weight.map(|w| format!(" ({w:+})")).unwrap_or_default();
    i.track_scripts
        .iter()
        .map(|t| format!("script:{}{}", t.name, weight(t)))
        .chain(
            i.track_interfaces
                .iter()
                .map(|t| format!("if:{}{}", t.name, weight(t))),
        )
        .chain(
            i.track_files
                .iter()
                .map(|t| format!("file:{}{}", t.name, weight(t))),
        )
        .collect()
}

fn rows(cfg: &Config) -> Vec<InstanceRow<'_>> {
    cfg.instances
        .iter()
        .map(|i| InstanceRow {
            name: &i.name,
            interface: &i.interface,
            vrid: i.vrid,
            version: i.version,
            priority: i.priority,
            state: i.state,
            advert_int_s: i.advert_int_cs as f64 / 100.0,
            preempt: i.preempt,
            vips: i
                .vips
                .iter()
                .map(|v| format!("{}/{}", v.addr, v.prefix))
                .collect(),
            unicast_peers: i.unicast_peers.iter().map(|p| p.to_string()).collect(),
            tracked: tracked(i),
        })
        .collect()
}

/// The human report: the instance table (when the config loaded) then every
/// diagnostic.
pub fn table(cfg: Option<&Config>, diags: &Diagnostics) -> String {
    let mut out = String::new();
    if let Some(cfg) = cfg {
        let header = [
            "INSTANCE",
            "INTERFACE",
            "VRID",
            "VER",
            "PRIO",
            "STATE",
            "ADVERT",
            "VIPS",
            "TRACKED",
        ];
        let mut lines: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
        for r in rows(cfg) {
            lines.push(vec![
                r.name.to_owned(),
                r.interface.to_owned(),
                r.vrid.to_string(),
                format!("v{}", r.version),
                r.priority.to_string(),
                format!("{:?}", r.state).to_uppercase(),
                format!("{}s", r.advert_int_s),
                r.vips.join(","),
                if r.tracked.is_empty() {
                    "-".into()
                } else {
                    r.tracked.join(",")
                },
            ]);
        }
        let widths: Vec<usize> = (0..header.len())
            .map(|c| lines.iter().map(|l| l[c].len()).max().unwrap_or(0))
            .collect();
        for l in &lines {
            let cells: Vec<String> = l
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        }
        for g in &cfg.groups {
            let _ = writeln!(out, "sync group {}: {}", g.name, g.members.join(", "));
        }
        let st = &cfg.statics;
        if !(st.addresses.is_empty() && st.routes.is_empty() && st.rules.is_empty()) {
            let _ = writeln!(
                out,
                "static: {} address(es), {} route(s), {} rule(s), set while xvrrp runs",
                st.addresses.len(),
                st.routes.len(),
                st.rules.len()
            );
        }
    }
    for d in &diags.0 {
        let _ = writeln!(out, "{d}");
    }
    let (e, w) = (diags.errors().count(), diags.warnings().count());
    let _ = writeln!(
        out,
        "{} error{}, {} warning{}",
        e,
        if e == 1 { "" } else { "s" },
        w,
        if w == 1 { "" } else { "s" }
    );
    out
}

/// The machine report.
pub fn json(cfg: Option<&Config>, diags: &Diagnostics) -> String {
    #[derive(Serialize)]
    struct Report<'a> {
        ok: bool,
        instances: Vec<InstanceRow<'a>>,
        sync_groups: Vec<(&'a str, &'a [String])>,
        statics: Option<&'a crate::config::model::Statics>,
        diagnostics: &'a Diagnostics,
    }
    let report = Report {
        ok: !diags.has_errors(),
        instances: cfg.map(rows).unwrap_or_default(),
        sync_groups: cfg
            .map(|c| {
                c.groups
                    .iter()
                    .map(|g| (g.name.as_str(), g.members.as_slice()))
                    .collect()
            })
            .unwrap_or_default(),
        statics: cfg.map(|c| &c.statics),
        diagnostics: diags,
    };
    serde_json::to_string_pretty(&report).expect("serializable")
}
