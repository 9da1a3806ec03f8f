//! TCP_CHECK: up when a connection to the real (connect_ip/connect_port)
//! completes within connect_timeout, from bindto/bind_port when set; the
//! connection is closed at once, as keepalived's.

use super::Outcome;
use crate::config::lvs::Checker;

pub async fn check(c: &Checker) -> Outcome {
    match tokio::time::timeout(c.connect_timeout, connect(c)).await {
        Ok(Ok(_stream)) => Outcome::Up, // closed at once
        Ok(Err(e)) => Outcome::Down(format!("TCP connect to {}: {e}", c.connect)),
        Err(_) => Outcome::Down(format!(
            "TCP connect to {}: no answer within {:?}",
            c.connect, c.connect_timeout
        )),
    }
}

/// A connection to the checker's target, from bindto/bind_port when set
/// (HTTP_GET/SSL_GET speak over it).
pub async fn connect(c: &Checker) -> std::io::Result<tokio::net::TcpStream> {
    let socket = if c.connect.is_ipv6() {
        tokio::net::TcpSocket::new_v6()?
    } else {
        tokio::net::TcpSocket::new_v4()?
    };
    if c.bindto.is_some() || c.bind_port.is_some() {
        socket.bind(super::local_addr(c))?;
    }
    socket.connect(c.connect).await
}
