//! UDP_CHECK, as keepalived's check_udp.c: the payload (random without one)
//! to the real; without `require_reply` it is up unless an ICMP error comes
//! back within connect_timeout (a connected socket reports it); with it, a
//! reply is needed, of min_reply_length..=max_reply_length bytes, matching
//! the require_reply pattern up to the shorter of the two.

use super::Outcome;
use crate::config::lvs::Checker;

pub struct Udp<'a> {
    pub payload: &'a [u8],
    pub require_reply: Option<&'a [(u8, u8)]>,
    pub min: usize,
    pub max: usize,
}

pub async fn check(c: &Checker, u: &Udp<'_>) -> Outcome {
    match tokio::time::timeout(c.connect_timeout, exchange(c, u)).await {
        Ok(Ok(())) => Outcome::Up,
        Ok(Err(e)) => Outcome::Down(format!("UDP_CHECK {}: {e}", c.connect)),
        // No answer: fine unless a reply is required.
        Err(_) if u.require_reply.is_none() => Outcome::Up,
        Err(_) => Outcome::Down(format!(
            "UDP_CHECK {}: no reply within {:?}",
            c.connect, c.connect_timeout
        )),
    }
}

async fn exchange(c: &Checker, u: &Udp<'_>) -> Result<(), String> {
    let local = super::local_addr(c);
    let sock = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(|e| e.to_string())?;
    sock.connect(c.connect).await.map_err(|e| e.to_string())?;
    let payload: Vec<u8> = if u.payload.is_empty() {
        (0..16)
            .map(|i| (std::process::id() as u8).wrapping_add(i))
            .collect()
    } else {
        u.payload.to_vec()
    };
    sock.send(&payload).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 65536];
    let n = sock.recv(&mut buf).await.map_err(|e| e.to_string())?;
    judge(&buf[..n], u)
}

pub fn judge(reply: &[u8], u: &Udp<'_>) -> Result<(), String> {
    let Some(pattern) = u.require_reply else {
        return Ok(());
    };
    if reply.len() < u.min || reply.len() > u.max {
        return Err(format!(
            "reply of {} bytes, outside {}..={}",
            reply.len(),
            u.min,
            u.max
        ));
    }
    let same = reply
        .iter()
        .zip(pattern)
        .all(|(b, (mask, value))| b & mask == value & mask);
    if same {
        Ok(())
    } else {
        Err("reply does not match require_reply".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lvs::hex_pattern;

    #[test]
    fn replies_are_matched_as_keepalived_matches_them() {
        let w = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        // keepalived's own example: `Ab12f 3 456 546443123`.
        let p = hex_pattern(&w("Ab12f 3 456 546443123"));
        let values: Vec<u8> = p.iter().map(|(_, v)| *v).collect();
        assert_eq!(
            values,
            [0xab, 0x12, 0x0f, 0x03, 0x45, 0x06, 0x54, 0x64, 0x43, 0x12, 0x03]
        );
        let pat = hex_pattern(&w("12x4"));
        let u = Udp {
            payload: &[],
            require_reply: Some(&pat),
            min: 0,
            max: 255,
        };
        assert!(judge(&[0x12, 0x94, 0xff], &u).is_ok(), "x ignores a nibble");
        assert!(judge(&[0x13, 0x94], &u).is_err());
        assert!(judge(&[0x12], &u).is_ok(), "up to the shorter");
        let u = Udp {
            payload: &[],
            require_reply: Some(&[]),
            min: 2,
            max: 3,
        };
        assert!(judge(&[1], &u).is_err());
        assert!(judge(&[1, 2], &u).is_ok());
        let u = Udp {
            payload: &[],
            require_reply: None,
            min: 0,
            max: 0,
        };
        assert!(judge(&[1, 2, 3], &u).is_ok());
    }
}
