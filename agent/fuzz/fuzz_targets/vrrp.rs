//! VRRP v2/v3 over IPv4 and IPv6: parse, verify, and re-emit what parsed.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = xvrrp::wire::fuzz::vrrp(data);
});
