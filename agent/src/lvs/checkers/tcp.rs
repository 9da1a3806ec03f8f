//! TCP_CHECK: up when a connection to the real (connect_ip/connect_port)
//! completes within connect_timeout, from bindto/bind_port when set; the
//! connection is closed at once, as keepalived's.

use std::net::SocketAddr;

use super::Outcome;
use crate::config::lvs::Checker;

pub async fn check(c: &Checker) -> Outcome {
    match tokio::time::timeout(c.connect_timeout, connect(c)).await {
        Ok(Ok(())) => Outcome::Up,
        Ok(Err(e)) => Outcome::Down(format!("TCP connect to {}: {e}", c.connect)),
        Err(_) => Outcome::Down(format!(
            "TCP connect to {}: no answer within {:?}",
            c.connect, c.connect_timeout
        )),
    }
}

async fn connect(c: &Checker) -> std::io::Result<()> {
    let socket = if c.connect.is_ipv6() {
        tokio::net::TcpSocket::new_v6()?
    } else {
        tokio::net::TcpSocket::new_v4()?
    };
    if c.bindto.is_some() || c.bind_port.is_some() {
        let ip = c.bindto.unwrap_or(if c.connect.is_ipv6() {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        });
        socket.bind(SocketAddr::new(ip, c.bind_port.unwrap_or(0)))?;
    }
    let stream = socket.connect(c.connect).await?;
    drop(stream);
    Ok(())
}
