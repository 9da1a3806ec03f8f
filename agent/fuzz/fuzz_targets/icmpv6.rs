//! ICMPv6 Neighbor Solicitation / Advertisement and their options.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = xvrrp::wire::fuzz::icmpv6(data);
});
