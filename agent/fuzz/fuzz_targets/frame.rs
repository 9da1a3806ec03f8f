//! A whole Ethernet frame: VLAN tag, IP, ARP, VRRP, ICMPv6, as the agent reads them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = xvrrp::wire::fuzz::frame(data);
});
