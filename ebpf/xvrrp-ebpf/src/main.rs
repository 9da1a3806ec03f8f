//! The xvrrp XDP program.
//!
//! It sees every frame on the interface first. Today it parses Ethernet (one
//! optional 802.1Q/802.1ad tag), ARP, IPv4 and IPv6, recognises ARP requests,
//! IPv6 Neighbor Solicitations and VRRP adverts, counts every branch in a
//! per-CPU array and pushes one ring-buffer record per well-formed advert.
//! Every frame is passed on to the kernel.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod prog;

#[cfg(not(target_arch = "bpf"))]
fn main() {}
