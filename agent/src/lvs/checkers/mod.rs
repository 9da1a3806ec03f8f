//! The checkers: each an async function from a configured checker to one
//! result, run by the engine on its schedule (`pool::CheckerState`).

pub mod http;
pub mod misc;
pub mod tcp;

use crate::config::lvs::{CheckKind, Checker};

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Up,
    /// misc_dynamic: up, with this weight (exit code - 2).
    UpWeight(u32),
    /// Down, and why (logged when the checker goes down).
    Down(String),
}

impl Outcome {
    pub fn ok(&self) -> bool {
        !matches!(self, Outcome::Down(_))
    }
}

/// Runs one check. `delay_loop` is MISC_CHECK's default timeout.
pub async fn check(c: &Checker, script_user: Option<&crate::config::model::ScriptUser>) -> Outcome {
    match &c.kind {
        CheckKind::Tcp => tcp::check(c).await,
        CheckKind::Misc {
            command,
            timeout,
            dynamic,
        } => {
            misc::check(
                command,
                timeout.unwrap_or(c.delay_loop),
                *dynamic,
                script_user,
            )
            .await
        }
        CheckKind::Http {
            tls,
            urls,
            virtualhost,
            http11,
            sni,
        } => {
            http::check(
                c,
                &http::Http {
                    tls: *tls,
                    urls,
                    virtualhost: virtualhost.as_deref(),
                    http11: *http11,
                    sni: sni.as_deref(),
                },
            )
            .await
        }
        CheckKind::Other(name) => Outcome::Down(format!("{name} is not run by this build")),
    }
}
