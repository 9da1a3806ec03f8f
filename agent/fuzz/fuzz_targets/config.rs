//! keepalived.conf text: lexer, tree, typed build and validation never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let opts = xvrrp::config::LoadOptions {
            config_id: Some("a".into()),
            ..Default::default()
        };
        let _ = xvrrp::config::parse_str(text, std::path::Path::new("fuzz.conf"), &opts);
    }
});
