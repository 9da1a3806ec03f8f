//! What keepalived changes in a config it runs, with a logged complaint,
//! rather than refuse it (`vrrp_complete_instance`): xvrrp makes the same
//! change and says so in a warning (an error under `xvrrp check --strict`).
//! keepalived's own old default keepalived.conf (`vrrp_strict`, PASS
//! authentication, `state MASTER` at priority 100), copied verbatim onto
//! many hosts, runs this way.

use super::{
    diag::{Diagnostic, Diagnostics},
    model::{AuthType, Command, Config, InitialState, Track},
};

pub fn apply(cfg: &mut Config, diags: &mut Diagnostics) {
    if cfg.global.enable_script_security {
        disable_unsafe_scripts(cfg, diags);
    }
    tracking_weights(cfg, diags);
    let global_strict = cfg.global.strict;
    for i in &mut cfg.instances {
        let strict = i.strict.unwrap_or(global_strict);
        let mut fixed = |what: String, fix: &str| {
            diags.push(
                Diagnostic::warning(&i.pos, &i.name, format!("vrrp_instance {}: {what}", i.name))
                    .fix(fix)
                    .lenient(),
            )
        };
        // keepalived: "State MASTER must match being address owner".
        if strict && (i.state == InitialState::Master) != (i.priority == 255) {
            let to = if i.priority == 255 {
                InitialState::Master
            } else {
                InitialState::Backup
            };
            fixed(
                format!(
                    "vrrp_strict: state {} does not match priority {} (only the address owner, 255, starts MASTER); starting {}, as keepalived does",
                    if i.state == InitialState::Master { "MASTER" } else { "BACKUP" },
                    i.priority,
                    if to == InitialState::Master { "MASTER" } else { "BACKUP" },
                ),
                "use `state MASTER` only with `priority 255`",
            );
            i.state = to;
        }
        if let Some(auth) = &i.auth {
            // AH (RFC 2402, dropped by RFC 3768) is not implemented: the
            // adverts go without it. keepalived peers still using AH reject
            // them (and theirs are accepted here), so the warning says to
            // move the whole group at once; `--strict` refuses it.
            let ignored = if auth.kind == AuthType::Ah {
                Some("auth_type AH (IPsec AH) is not implemented by xvrrp: adverts go out without authentication; keepalived routers of this VRID still using AH would reject them and also become Active, so replace every router of the group at once (or use PASS on all)")
            } else if strict {
                Some("vrrp_strict does not support authentication: ignored, as keepalived does (adverts go out without it)")
            } else if i.version == 3 {
                Some("VRRP version 3 has no authentication: ignored, as keepalived does")
            } else if auth.pass.is_empty() {
                Some("authentication without auth_pass: ignored, as keepalived does")
            } else {
                None
            };
            if let Some(why) = ignored {
                fixed(why.to_owned(), "remove the authentication block");
                i.auth = None;
            }
        }
        if strict && !i.preempt_delay.is_zero() {
            fixed(
                format!(
                    "vrrp_strict does not support preempt_delay: {} s ignored (0), as keepalived does",
                    i.preempt_delay.as_secs_f64()
                ),
                "remove preempt_delay, or vrrp_strict",
            );
            i.preempt_delay = std::time::Duration::ZERO;
        }
    }
}

/// keepalived's rule for weights (vrrp_complete_instance): a member of a
/// sync group without `sync_group_tracking_weight`, or an address owner,
/// has no floating priority. Its weighted interfaces put it in FAULT
/// (weight 0; an owner stops tracking them), its weighted scripts are not
/// tracked, a track file at the default weight 1 gets 0 and one with
/// another weight is not tracked. A group with an owner member has its own
/// trackers' weights cleared.
fn tracking_weights(cfg: &mut Config, diags: &mut Diagnostics) {
    for i in &mut cfg.instances {
        let group = cfg.groups.iter().find(|g| g.members.contains(&i.name));
        let in_group = group.is_some_and(|g| !g.tracking_weight);
        let owner = i.priority == 255;
        if !in_group && !owner {
            continue;
        }
        let why = if in_group {
            format!(
                "it is in sync group {} without sync_group_tracking_weight",
                group.map(|g| g.name.as_str()).unwrap_or_default()
            )
        } else {
            "it is the address owner (priority 255)".to_owned()
        };
        let mut said = |what: String| {
            diags.push(
                Diagnostic::warning(
                    &i.pos,
                    &i.name,
                    format!(
                        "vrrp_instance {}: {what}, as keepalived does, because {why}",
                        i.name
                    ),
                )
                .fix("add `sync_group_tracking_weight` to the sync group, or drop the weight")
                .lenient(),
            )
        };
        i.track_interfaces.retain_mut(|t| match t.weight {
            Some(w) if w != 0 && owner => {
                said(format!(
                    "tracked interface {} (weight {w}) is not tracked",
                    t.name
                ));
                false
            }
            Some(w) if w != 0 => {
                said(format!(
                    "tracked interface {} weight {w} is ignored: down means FAULT",
                    t.name
                ));
                t.weight = Some(0);
                true
            }
            _ => true,
        });
        i.track_scripts.retain(|t| {
            let w = t
                .weight
                .or_else(|| cfg.scripts.get(&t.name).map(|s| s.weight))
                .unwrap_or(0);
            if w != 0 {
                said(format!(
                    "tracked script {} has weight {w}: not tracked",
                    t.name
                ));
            }
            w == 0
        });
        i.track_files.retain_mut(|t| {
            let w = t.weight.or_else(|| cfg.track_files.get(&t.name).map(|f| f.weight)).unwrap_or(1);
            match w {
                0 => true,
                1 => {
                    said(format!("tracked file {}: its weight 1 is ignored (0: any non-zero value means FAULT)", t.name));
                    t.weight = Some(0);
                    true
                }
                w => {
                    said(format!("tracked file {} has weight {w}: not tracked", t.name));
                    false
                }
            }
        });
    }
    let owners: Vec<String> = cfg
        .instances
        .iter()
        .filter(|i| i.priority == 255)
        .map(|i| i.name.clone())
        .collect();
    for g in &mut cfg.groups {
        if !g.members.iter().any(|m| owners.contains(m)) {
            continue;
        }
        let weights = |t: &Track, default: Option<i32>| t.weight.or(default).unwrap_or(0);
        let mut cleared = Vec::new();
        for t in &mut g.track_scripts {
            if weights(t, cfg.scripts.get(&t.name).map(|s| s.weight)) != 0 {
                t.weight = Some(0);
                cleared.push(t.name.clone());
            }
        }
        for t in &mut g.track_files {
            if weights(t, cfg.track_files.get(&t.name).map(|f| f.weight)) != 0 {
                t.weight = Some(0);
                cleared.push(t.name.clone());
            }
        }
        for t in &mut g.track_processes {
            if weights(t, cfg.track_processes.get(&t.name).map(|p| p.weight)) != 0 {
                t.weight = Some(0);
                cleared.push(t.name.clone());
            }
        }
        for name in cleared {
            diags.push(
                Diagnostic::warning(&g.pos, &g.name, format!("vrrp_sync_group {}: {name} is tracked with weight 0 (FAULT when down), as keepalived does: a member is the address owner", g.name))
                    .fix("give the owner's group unweighted trackers")
                    .lenient(),
            );
        }
    }
}

/// keepalived's enable_script_security: a script root would run that
/// someone else can change is disabled — a vrrp_script no longer tracked
/// ("Disabling track script NAME due to insecure"), a notify script not run.
fn disable_unsafe_scripts(cfg: &mut Config, diags: &mut Diagnostics) {
    let mut said = |cmd: &Command| -> bool {
        let Some(prog) = super::validate::resolve_program(cmd) else {
            return false;
        };
        let found = super::validate::unsafe_paths(&prog);
        let Some((_, why, fix)) = found.first() else {
            return false;
        };
        let pos = cmd.pos.clone().unwrap_or_default();
        diags.push(
            Diagnostic::warning(
                &pos,
                &prog.display().to_string(),
                format!(
                    "{why}: disabled (not run), as keepalived's enable_script_security disables it"
                ),
            )
            .fix(fix.clone())
            .lenient(),
        );
        true
    };
    let unsafe_scripts: Vec<String> = cfg
        .scripts
        .values()
        .filter(|s| s.script.as_ref().is_some_and(&mut said))
        .map(|s| s.name.clone())
        .collect();
    for name in &unsafe_scripts {
        cfg.scripts.remove(name);
    }
    let notifies = cfg
        .instances
        .iter_mut()
        .map(|i| &mut i.notify)
        .chain(cfg.groups.iter_mut().map(|g| &mut g.notify));
    for n in notifies {
        for slot in n.scripts_mut() {
            if slot.as_ref().is_some_and(&mut said) {
                *slot = None;
            }
        }
    }
    for slot in [
        &mut cfg.global.startup_script,
        &mut cfg.global.shutdown_script,
    ] {
        if slot.as_ref().is_some_and(&mut said) {
            *slot = None;
        }
    }
    for vs in &mut cfg.virtual_servers {
        for slot in vs.scripts_mut() {
            if slot.as_ref().is_some_and(&mut said) {
                *slot = None;
            }
        }
        // keepalived disables a MISC_CHECK whose script is unsafe: the
        // real is judged by its other checkers.
        for r in &mut vs.reals {
            r.checkers.retain(|c| match &c.kind {
                super::lvs::CheckKind::Misc { command, .. } => !said(command),
                _ => true,
            });
        }
    }
    for i in &mut cfg.instances {
        i.track_scripts
            .retain(|t| !unsafe_scripts.contains(&t.name));
    }
    for g in &mut cfg.groups {
        g.track_scripts
            .retain(|t| !unsafe_scripts.contains(&t.name));
    }
}
