//! keepalived's SMTP alerts: on a transition of an instance (or sync group)
//! with `smtp_alert`, a mail to every `notification_email` through
//! `smtp_server`, with keepalived's subject and body, so mail filters and
//! runbooks keep working. Plain SMTP as keepalived speaks it (no TLS, no
//! authentication), sent by lettre from one background task so a slow or
//! dead mail server never holds up the election; each attempt is bounded
//! by `smtp_connect_timeout`.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use lettre::{
    message::{header::ContentType, Mailbox},
    transport::smtp::extension::ClientId,
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::{config::model::Smtp, proto::State};

/// Alerts waiting to be sent; beyond this they are dropped (and counted):
/// a mail server that is down must not grow the agent without bound.
const QUEUE: usize = 64;

/// What one alert says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub subject: String,
    pub body: &'static str,
}

/// keepalived's alert for `kind` ("INSTANCE" or "GROUP") `name` entering
/// `state` (vrrp_notify.c): `[router_id] VRRP Instance VI_1 - Entering
/// MASTER state`. None for a state keepalived sends no mail about.
pub fn alert(router_id: &str, kind: &str, name: &str, state: State) -> Alert {
    let group = kind == "GROUP";
    let (what, body) = match (state, group) {
        (State::Active, false) => (
            "Entering MASTER state",
            "=> VRRP Instance is now owning VRRP VIPs <=",
        ),
        (State::Backup, false) => (
            "Entering BACKUP state",
            "=> VRRP Instance is no longer owning VRRP VIPs <=",
        ),
        (State::Fault, false) => (
            "Entering FAULT state",
            "=> VRRP Instance is no longer owning VRRP VIPs <=",
        ),
        (State::Initialize, false) => ("Stopping", "=> VRRP Instance stopping <="),
        (State::Active, true) => (
            "Entering MASTER state",
            "=> All VRRP group instances are now in MASTER state <=",
        ),
        (State::Backup, true) => (
            "Entering BACKUP state",
            "=> All VRRP group instances are now in BACKUP state <=",
        ),
        (State::Fault, true) => (
            "Entering FAULT state",
            "=> All VRRP group instances are now in FAULT state <=",
        ),
        (State::Initialize, true) => (
            "Stopping",
            "=> All VRRP group instances are now stopping <=",
        ),
    };
    Alert {
        subject: format!(
            "[{router_id}] VRRP {} {name} - {what}",
            if group { "Group" } else { "Instance" }
        ),
        body,
    }
}

/// The mail sender: a handle to the background task.
#[derive(Clone)]
pub struct Mailer {
    router_id: String,
    no_email_faults: bool,
    queue: mpsc::Sender<Alert>,
    pub counts: Arc<MailCounts>,
}

/// Alerts sent, failed, dropped (queue full), and queued or being sent.
#[derive(Debug, Default)]
pub struct MailCounts {
    pub pending: AtomicU64,
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
}

impl Mailer {
    /// The sender for `smtp`, None when no mail can go (no server or no
    /// recipients). `router_id` is the subject's tag, `host` the default
    /// HELO name and sender domain.
    pub fn start(smtp: &Smtp, router_id: &str, host: &str) -> anyhow::Result<Option<Mailer>> {
        let Some((server, port)) = &smtp.server else {
            return Ok(None);
        };
        if smtp.to.is_empty() {
            return Ok(None);
        }
        let from: Mailbox = match &smtp.from {
            Some(f) => f.parse(),
            None => format!("{}@{host}", whoami()).parse(),
        }
        .map_err(|e| anyhow::anyhow!("notification_email_from: {e}"))?;
        let to: Vec<Mailbox> = smtp
            .to
            .iter()
            .map(|t| {
                t.parse()
                    .map_err(|e| anyhow::anyhow!("notification_email `{t}`: {e}"))
            })
            .collect::<anyhow::Result<_>>()?;
        let helo = smtp.helo_name.clone().unwrap_or_else(|| host.to_owned());
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.as_str())
            .port(*port)
            .hello_name(ClientId::Domain(helo))
            .timeout(Some(smtp.connect_timeout))
            .build();
        let (queue, mut rx) = mpsc::channel::<Alert>(QUEUE);
        let counts = Arc::new(MailCounts::default());
        let c = counts.clone();
        let server_name = format!("{server}:{port}");
        let timeout = smtp.connect_timeout;
        tokio::spawn(async move {
            while let Some(a) = rx.recv().await {
                let mut m = Message::builder()
                    .from(from.clone())
                    .subject(&a.subject)
                    .header(ContentType::TEXT_PLAIN)
                    .user_agent("xvrrp".into());
                for t in &to {
                    m = m.to(t.clone());
                }
                let msg = match m.body(a.body.to_owned()) {
                    Ok(m) => m,
                    Err(e) => {
                        warn!("smtp alert `{}`: {e}", a.subject);
                        c.failed.fetch_add(1, Ordering::Relaxed);
                        c.pending.fetch_sub(1, Ordering::SeqCst);
                        continue;
                    }
                };
                // The whole exchange is bounded too, not only each read.
                match tokio::time::timeout(timeout * 2, transport.send(msg)).await {
                    Ok(Ok(_)) => {
                        c.sent.fetch_add(1, Ordering::Relaxed);
                        info!("smtp alert sent through {server_name}: {}", a.subject);
                    }
                    Ok(Err(e)) => {
                        c.failed.fetch_add(1, Ordering::Relaxed);
                        warn!(
                            "smtp alert `{}` not sent through {server_name}: {e}",
                            a.subject
                        );
                    }
                    Err(_) => {
                        c.failed.fetch_add(1, Ordering::Relaxed);
                        warn!(
                            "smtp alert `{}` not sent: {server_name} did not answer within {:?}",
                            a.subject,
                            timeout * 2
                        );
                    }
                }
                c.pending.fetch_sub(1, Ordering::SeqCst);
            }
        });
        Ok(Some(Mailer {
            router_id: router_id.to_owned(),
            no_email_faults: smtp.no_email_faults,
            queue,
            counts,
        }))
    }

    /// Alerts queued or being sent: a stop waits (bounded) for them.
    pub fn pending(&self) -> u64 {
        self.counts.pending.load(Ordering::SeqCst)
    }

    /// Queues keepalived's alert for a transition (Fault not mailed with
    /// `no_email_faults`).
    pub fn state(&self, kind: &str, name: &str, state: State) {
        if state == State::Fault && self.no_email_faults {
            return;
        }
        let a = alert(&self.router_id, kind, name, state);
        self.counts.pending.fetch_add(1, Ordering::SeqCst);
        if self.queue.try_send(a).is_err() {
            self.counts.pending.fetch_sub(1, Ordering::SeqCst);
            let n = self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            if n == 0 {
                warn!("smtp alerts are queuing up (mail server slow or down): further ones are dropped and counted");
            }
        }
    }
}

impl Mailer {
    /// keepalived's mail for an instance a reload removed (with notify_deleted).
    pub fn deleted(&self, kind: &str, name: &str) {
        let what = if kind == "GROUP" { "Group" } else { "Instance" };
        let a = Alert {
            subject: format!("[{}] VRRP {what} {name} - Deleted", self.router_id),
            body: "=> VRRP Deleted at reload <=",
        };
        self.counts.pending.fetch_add(1, Ordering::SeqCst);
        if self.queue.try_send(a).is_err() {
            self.counts.pending.fetch_sub(1, Ordering::SeqCst);
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The user the agent runs as, for keepalived's default sender USER@HOST.
fn whoami() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "root".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_bodies_are_keepalived_s() {
        assert_eq!(
            alert("lb1", "INSTANCE", "VI_1", State::Active),
            Alert {
                subject: "[lb1] VRRP Instance VI_1 - Entering MASTER state".into(),
                body: "=> VRRP Instance is now owning VRRP VIPs <=",
            }
        );
        assert_eq!(
            alert("lb1", "INSTANCE", "VI_1", State::Fault).body,
            "=> VRRP Instance is no longer owning VRRP VIPs <="
        );
        assert_eq!(
            alert("lb1", "GROUP", "G", State::Backup),
            Alert {
                subject: "[lb1] VRRP Group G - Entering BACKUP state".into(),
                body: "=> All VRRP group instances are now in BACKUP state <=",
            }
        );
        assert_eq!(
            alert("lb1", "INSTANCE", "VI_1", State::Initialize).subject,
            "[lb1] VRRP Instance VI_1 - Stopping"
        );
    }
}
