//! What keepalived changes in a config it runs, with a logged complaint,
//! rather than refuse it (`vrrp_complete_instance`): xvrrp makes the same
//! change and says so in a warning (an error under `xvrrp check --strict`).
//! keepalived's own old default keepalived.conf (`vrrp_strict`, PASS
//! authentication, `state MASTER` at priority 100), copied verbatim onto
//! many hosts, runs this way.

use super::{
    diag::{Diagnostic, Diagnostics},
    model::{AuthType, Config, InitialState},
};

pub fn apply(cfg: &mut Config, diags: &mut Diagnostics) {
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
            // AH stays refused (validate.rs): peers expecting it would drop
            // our adverts and both routers would go Active.
            let ignored = if auth.kind == AuthType::Ah {
                None
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
