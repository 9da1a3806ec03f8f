//! xvrrp: a VRRP daemon (RFC 9568 / RFC 3768) with an XDP fast path, that
//! reads keepalived.conf. See docs/design.md for the layout; data flows
//! wire -> proto -> actions, with I/O only in dataplane/ and net/.

pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod lvs;
pub mod net;
pub mod notify;
pub mod proto;
pub mod sched;
pub mod supervise;
pub mod track;
pub mod wire;
