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
pub mod nft;
pub mod pool;
