//! XDP attachment through rtnetlink (IFLA_XDP), not a bpf_link.
//!
//! Why netlink: a netlink-attached program stays on the interface when the
//! process that attached it dies, whatever became of its mount namespace. A
//! bpf_link goes with its last holder, and a pin only holds it while the
//! bpffs it is pinned in lives: under `ip netns exec`, in a container or any
//! private mount namespace, that bpffs dies with the agent, the program
//! detaches and the dead host's kernel answers ARP for the VIPs again beside
//! the new Active. Fail silent (docs/design.md rule 4, docs/conformance.md) needs
//! the program to outlive the agent; the lease in its maps does the rest.
//!
//! The attached program is found again from the interface (IFLA_XDP_PROG_ID)
//! and its maps from the program's map ids, so re-adoption needs no bpffs.
//!
//! These calls run at start, reload and stop only; the socket has a receive
//! timeout so a lost answer cannot hang the agent.

use std::{
    os::fd::{AsRawFd as _, BorrowedFd},
    time::Duration,
};

use anyhow::{anyhow, bail, Context as _};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_packet_route::{
    link::{LinkAttribute, LinkMessage, LinkXdp, XdpAttached},
    RouteNetlinkMessage,
};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::AttachMode;

/// include/uapi/linux/if_link.h
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// How long a netlink answer may take before the call fails.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// The XDP program attached to an interface, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attached {
    pub prog_id: u32,
    /// Driver or Skb.
    pub mode: AttachMode,
}

fn mode_flags(mode: AttachMode) -> u32 {
    match mode {
        AttachMode::Driver => XDP_FLAGS_DRV_MODE,
        AttachMode::Skb => XDP_FLAGS_SKB_MODE,
        AttachMode::Auto | AttachMode::Off => 0,
    }
}

fn socket() -> anyhow::Result<Socket> {
    let mut s = Socket::new(NETLINK_ROUTE).context("opening an rtnetlink socket")?;
    s.bind_auto().context("binding the rtnetlink socket")?;
    s.connect(&SocketAddr::new(0, 0))
        .context("connecting the rtnetlink socket")?;
    let tv = nix::sys::time::TimeVal::new(
        ANSWER_TIMEOUT.as_secs() as _,
        ANSWER_TIMEOUT.subsec_micros() as _,
    );
    // SAFETY: the socket is open for the lifetime of this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(s.as_raw_fd()) };
    nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::ReceiveTimeout, &tv)
        .context("setting the rtnetlink receive timeout")?;
    Ok(s)
}

/// Sends one request and returns the messages answering it (up to the ACK,
/// the error, or the one reply for a non-dump GET).
fn request(message: RouteNetlinkMessage, flags: u16) -> anyhow::Result<Vec<RouteNetlinkMessage>> {
    let s = socket()?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | flags;
    header.sequence_number = 1;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::from(message));
    msg.finalize();
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    s.send(&buf, 0).context("sending an rtnetlink request")?;
    let mut answers = Vec::new();
    loop {
        let (bytes, _) = s
            .recv_from_full()
            .context("waiting for the kernel's rtnetlink answer")?;
        let mut offset = 0;
        while offset < bytes.len() {
            let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[offset..])
                .map_err(|e| anyhow!("undecodable rtnetlink answer: {e}"))?;
            let len = m.header.length as usize;
            match m.payload {
                NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io().into()),
                NetlinkPayload::Error(_) | NetlinkPayload::Done(_) => return Ok(answers),
                NetlinkPayload::InnerMessage(inner) => {
                    answers.push(inner);
                    if flags & NLM_F_ACK == 0 {
                        return Ok(answers);
                    }
                }
                _ => {}
            }
            if len == 0 {
                break;
            }
            offset += (len + 3) & !3;
        }
    }
}

fn link_message(ifindex: u32, attributes: Vec<LinkAttribute>) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = ifindex;
    m.attributes = attributes;
    m
}

/// The XDP program attached to `ifindex`, if any.
pub fn query(ifindex: u32) -> anyhow::Result<Option<Attached>> {
    let answers = request(
        RouteNetlinkMessage::GetLink(link_message(ifindex, Vec::new())),
        0,
    )
    .with_context(|| format!("asking the kernel which XDP program is on ifindex {ifindex}"))?;
    for a in answers {
        let RouteNetlinkMessage::NewLink(link) = a else {
            continue;
        };
        for attr in link.attributes {
            let LinkAttribute::Xdp(xdp) = attr else {
                continue;
            };
            let mut mode = None;
            let mut id = None;
            for x in xdp {
                match x {
                    LinkXdp::Attached(XdpAttached::Driver) => mode = Some(AttachMode::Driver),
                    LinkXdp::Attached(XdpAttached::SocketBuffer) => mode = Some(AttachMode::Skb),
                    LinkXdp::Attached(XdpAttached::None) => return Ok(None),
                    LinkXdp::Attached(other) => {
                        bail!("ifindex {ifindex} has XDP attached as {other:?}; xvrrp uses driver or skb mode only")
                    }
                    LinkXdp::ProgId(p) => id = Some(p),
                    _ => {}
                }
            }
            return Ok(match (mode, id) {
                (Some(mode), Some(prog_id)) => Some(Attached { prog_id, mode }),
                _ => None,
            });
        }
    }
    Ok(None)
}

/// Attaches `prog` to `ifindex` in `mode` (Driver or Skb), replacing a
/// program already attached in that mode atomically (the interface is never
/// without one).
pub fn attach(ifindex: u32, prog: BorrowedFd<'_>, mode: AttachMode) -> anyhow::Result<()> {
    request(
        RouteNetlinkMessage::SetLink(link_message(
            ifindex,
            vec![LinkAttribute::Xdp(vec![
                LinkXdp::Fd(prog.as_raw_fd()),
                LinkXdp::Flags(mode_flags(mode)),
            ])],
        )),
        NLM_F_ACK,
    )
    .map(drop)
    .with_context(|| format!("attaching XDP to ifindex {ifindex} in {mode} mode (rtnetlink)"))
}

/// Detaches whatever XDP program is attached to `ifindex` in `mode`.
pub fn detach(ifindex: u32, mode: AttachMode) -> anyhow::Result<()> {
    request(
        RouteNetlinkMessage::SetLink(link_message(
            ifindex,
            vec![LinkAttribute::Xdp(vec![
                LinkXdp::Fd(-1),
                LinkXdp::Flags(mode_flags(mode)),
            ])],
        )),
        NLM_F_ACK,
    )
    .map(drop)
    .with_context(|| format!("detaching XDP from ifindex {ifindex} (rtnetlink)"))
}
