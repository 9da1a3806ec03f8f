//! PING_CHECK: an ICMP (ICMPv6) echo to the real, up on its echo reply
//! within connect_timeout. A raw socket (the agent runs as root), so no
//! ping_group_range change is needed.

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use socket2::{Domain, Protocol, Socket, Type};

use super::Outcome;
use crate::config::lvs::Checker;

pub async fn check(c: &Checker) -> Outcome {
    let target = c.connect.ip();
    let timeout = c.connect_timeout;
    let bind = c.bindto;
    match tokio::task::spawn_blocking(move || echo(target, bind, timeout)).await {
        Ok(Ok(())) => Outcome::Up,
        Ok(Err(e)) => Outcome::Down(format!("PING_CHECK {target}: {e}")),
        Err(e) => Outcome::Down(format!("PING_CHECK {target}: {e}")),
    }
}

fn echo(target: IpAddr, bind: Option<IpAddr>, timeout: Duration) -> std::io::Result<()> {
    let v6 = target.is_ipv6();
    let sock = if v6 {
        Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?
    } else {
        Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?
    };
    if let Some(b) = bind {
        sock.bind(&SocketAddr::new(b, 0).into())?;
    }
    let id = crate::lvs::random_u64() as u16;
    let seq = (crate::lvs::random_u64() >> 16) as u16;
    let mut req = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    req.extend_from_slice(&id.to_be_bytes());
    req.extend_from_slice(&seq.to_be_bytes());
    req.extend_from_slice(b"xvrrp PING_CHECK");
    if !v6 {
        // ICMPv6's checksum is the kernel's (RFC 3542 §3.1).
        let sum = crate::wire::checksum::finish(crate::wire::checksum::sum(&req));
        req[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    sock.send_to(&req, &SocketAddr::new(target, 0).into())?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 1500];
    let s: std::net::UdpSocket = sock.into();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no echo reply within {timeout:?}"),
            ));
        }
        s.set_read_timeout(Some(left))?;
        let (n, from) = match s.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        if from.ip() != target {
            continue;
        }
        // IPv4 raw sockets deliver the IP header; IPv6 ones do not.
        let icmp = if v6 {
            &buf[..n]
        } else {
            let ihl = usize::from(buf[0] & 0x0f) * 4;
            if n < ihl + 8 {
                continue;
            }
            &buf[ihl..n]
        };
        let reply = if v6 { 129 } else { 0 };
        if icmp.len() >= 8
            && icmp[0] == reply
            && icmp[4..6] == id.to_be_bytes()
            && icmp[6..8] == seq.to_be_bytes()
        {
            return Ok(());
        }
    }
}
