//! The checkers: each an async function from a configured checker to one
//! result, run by the engine on its schedule (`pool::CheckerState`).

pub mod dns;
pub mod file;
pub mod http;
pub mod misc;
pub mod ping;
pub mod smtp;
pub mod tcp;
pub mod udp;

use crate::config::lvs::{CheckKind, Checker};

/// Where a check's socket binds: `bindto` and `bind_port`, each "any" when
/// unset, in the family of the address checked.
pub fn local_addr(c: &Checker) -> std::net::SocketAddr {
    let any: std::net::IpAddr = if c.connect.is_ipv6() {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    };
    std::net::SocketAddr::new(c.bindto.unwrap_or(any), c.bind_port.unwrap_or(0))
}

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

/// What a check needs beyond its checker.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub script_user: Option<crate::config::model::ScriptUser>,
    /// FILE_CHECK: the track_file's path.
    pub file: Option<std::path::PathBuf>,
    /// FILE_CHECK dynamic: the real's configured weight.
    pub base_weight: u32,
    /// SSL_GET's TLS settings (one for the agent).
    pub tls: Option<std::sync::Arc<tokio_rustls::rustls::ClientConfig>>,
}

/// Runs one check. `delay_loop` is MISC_CHECK's default timeout.
pub async fn check(c: &Checker, ctx: &Context) -> Outcome {
    let script_user = ctx.script_user.as_ref();
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
            if *tls && ctx.tls.is_none() {
                return Outcome::Down("SSL_GET: no TLS settings (see the agent's log)".into());
            }
            http::check(
                c,
                &http::Http {
                    tls: if *tls { ctx.tls.as_ref() } else { None },
                    urls,
                    virtualhost: virtualhost.as_deref(),
                    http11: *http11,
                    sni: sni.as_deref(),
                },
            )
            .await
        }
        CheckKind::Ping => ping::check(c).await,
        CheckKind::Udp {
            payload,
            require_reply,
            min_reply_length,
            max_reply_length,
        } => {
            udp::check(
                c,
                &udp::Udp {
                    payload,
                    require_reply: require_reply.as_deref(),
                    min: *min_reply_length,
                    max: *max_reply_length,
                },
            )
            .await
        }
        CheckKind::Dns { qtype, name } => dns::check(c, *qtype, name).await,
        CheckKind::File {
            track_file,
            dynamic,
            weight,
            reverse,
        } => {
            file::check(
                track_file,
                &file::File {
                    path: ctx.file.as_deref(),
                    dynamic: *dynamic,
                    weight: *weight,
                    reverse: *reverse,
                    base: ctx.base_weight,
                },
            )
            .await
        }
        CheckKind::Smtp { helo_name, hosts } => smtp::check(c, helo_name.as_deref(), hosts).await,
        CheckKind::Other(name) => Outcome::Down(format!("{name} is not run by this build")),
    }
}
