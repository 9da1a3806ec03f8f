//! SMTP_CHECK: each host (the real on port 25 by default, or each `host`
//! block) must greet and accept our EHLO (`helo_name`, default the host
//! name) within connect_timeout. Through lettre, the SMTP client the
//! agent's alert mail uses.

use std::net::SocketAddr;

use lettre::{transport::smtp::extension::ClientId, AsyncSmtpTransport, Tokio1Executor};

use super::Outcome;
use crate::config::lvs::Checker;

pub async fn check(c: &Checker, helo: Option<&str>, hosts: &[SocketAddr]) -> Outcome {
    let helo = helo.map(str::to_owned).unwrap_or_else(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into())
    });
    for host in hosts {
        let transport: AsyncSmtpTransport<Tokio1Executor> =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.ip().to_string())
                .port(host.port())
                .timeout(Some(c.connect_timeout))
                .hello_name(ClientId::Domain(helo.clone()))
                .build();
        let r = tokio::time::timeout(c.connect_timeout, transport.test_connection()).await;
        match r {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Outcome::Down(format!("SMTP_CHECK {host}: not accepting")),
            Ok(Err(e)) => return Outcome::Down(format!("SMTP_CHECK {host}: {e}")),
            Err(_) => {
                return Outcome::Down(format!(
                    "SMTP_CHECK {host}: no answer within {:?}",
                    c.connect_timeout
                ))
            }
        }
    }
    Outcome::Up
}
