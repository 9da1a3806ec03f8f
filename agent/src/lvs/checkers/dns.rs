//! DNS_CHECK, as keepalived's check_dns.c: a query (recursion desired) for
//! `name` of `type` (SOA of "." by default) over UDP to the real; up on an
//! answer with the query's id, the response bit set and rcode 0.

use super::Outcome;
use crate::config::lvs::Checker;

pub async fn check(c: &Checker, qtype: u16, name: &str) -> Outcome {
    let r = tokio::time::timeout(c.connect_timeout, exchange(c, qtype, name)).await;
    match r {
        Ok(Ok(())) => Outcome::Up,
        Ok(Err(e)) => Outcome::Down(format!("DNS_CHECK {}: {e}", c.connect)),
        Err(_) => Outcome::Down(format!(
            "DNS_CHECK {}: no answer within {:?}",
            c.connect, c.connect_timeout
        )),
    }
}

/// The query's bytes.
pub fn query(id: u16, qtype: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(32);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // one question
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let l = &label.as_bytes()[..label.len().min(63)];
        q.push(l.len() as u8);
        q.extend_from_slice(l);
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes()); // IN
    q
}

pub fn judge(id: u16, answer: &[u8]) -> Result<(), String> {
    if answer.len() < 12 {
        return Err(format!("short answer ({} bytes)", answer.len()));
    }
    if answer[..2] != id.to_be_bytes() {
        return Err("answer id does not match the query's".into());
    }
    let flags = u16::from_be_bytes([answer[2], answer[3]]);
    if flags & 0x8000 == 0 {
        return Err("not a response (QR clear)".into());
    }
    match flags & 0x000f {
        0 => Ok(()),
        rcode => Err(format!("rcode {rcode}")),
    }
}

async fn exchange(c: &Checker, qtype: u16, name: &str) -> Result<(), String> {
    let local = super::local_addr(c);
    let sock = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(|e| e.to_string())?;
    sock.connect(c.connect).await.map_err(|e| e.to_string())?;
    let id = crate::lvs::random_u64() as u16;
    sock.send(&query(id, qtype, name))
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).await.map_err(|e| e.to_string())?;
        // Another id is a stray answer: keep waiting (the timeout bounds it).
        if n >= 2 && buf[..2] != id.to_be_bytes() {
            continue;
        }
        return judge(id, &buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_answers() {
        let q = query(0x1234, 1, "www.example.org.");
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(&q[12..], b"\x03www\x07example\x03org\x00\x00\x01\x00\x01");
        // The root: one zero label.
        assert_eq!(&query(1, 6, ".")[12..], b"\x00\x00\x06\x00\x01");
        let mut a = q.clone();
        a[2] |= 0x80;
        assert!(judge(0x1234, &a).is_ok());
        a[3] |= 3; // NXDOMAIN
        assert_eq!(judge(0x1234, &a).unwrap_err(), "rcode 3");
        assert!(judge(0x1234, &q).is_err(), "a query is not an answer");
        assert!(judge(0x4321, &a).is_err());
    }
}
