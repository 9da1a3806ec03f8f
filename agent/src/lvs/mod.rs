//! keepalived's LVS half: virtual servers whose real servers are health
//! checked and whose connections are forwarded. docs/load-balancing.md says
//! what is followed and how.
//!
//! - `pool`: the sans-IO pool logic (checker results in, weights out);
//! - `checkers/`: one file per checker, each an async function giving a
//!   result;
//! - `nft`: the kernel's NAT engine (nftables + conntrack) as the agent's
//!   own table, driven through `nft`'s JSON interface;
//! - `engine`: the task tying them together, and to the VRRP side.

pub mod checkers;
pub mod engine;
pub mod maglev;
pub mod nft;
pub mod pool;
pub mod xdp;

/// A random number (checker warmup spread, ping and DNS ids: nothing
/// secret). getrandom(2); the clock if it fails.
pub(crate) fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom(2) into our own buffer.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n == 8 {
        u64::from_ne_bytes(b)
    } else {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    }
}
